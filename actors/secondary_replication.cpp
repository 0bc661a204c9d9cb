#include "actors/secondary_replication.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "caf/all.hpp"

#include "actors/ticker.hpp"
#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"
#include "runtime/replication_support.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<secondary_replication_state>*;

/// Bytes requested by one fetch_request, and requests in flight. Together
/// they bound the memory of a transfer: a 100 MB file moves 1 MiB at a time.
constexpr uint64_t request_bytes = 1024 * 1024;
constexpr int window = 4;
constexpr size_t max_items_per_request = 512;
/// A batch is committed (synced, renamed) after this many files or bytes,
/// or this long after the last commit, so a killed node keeps its progress.
constexpr size_t commit_files = 256;
constexpr uint64_t commit_bytes = 32 * 1024 * 1024;
constexpr int64_t commit_interval_ms = 1000;
constexpr int64_t progress_log_ms = 2000;
constexpr int64_t report_ms = 1000;
constexpr auto retry_delay = std::chrono::seconds(2);
/// A fetch without a reply for this long counts as failed.
constexpr int64_t fetch_timeout_ms = 15000;
/// Warnings about one kind of refused or overwritten path, per signal.
constexpr size_t max_path_warnings = 20;

auto logger() {
  return log::get(log::replication);
}

std::string applied_file(const node_context& context) {
  return context.config.state_dir + "/replication/applied-list";
}

bool same_entry(const file_entry& x, const file_entry& y) {
  return x.size == y.size && x.sha256 == y.sha256 && same_attributes(x, y);
}

// Replaces or inserts `updates` (sorted by path) in `list` in one pass.
void merge_entries(file_list& list, std::vector<file_entry> updates) {
  if (updates.empty())
    return;
  std::sort(updates.begin(), updates.end(),
            [](const file_entry& x, const file_entry& y) { return x.path < y.path; });
  file_list merged;
  merged.reserve(list.size() + updates.size());
  size_t i = 0, j = 0;
  while (i < list.size() || j < updates.size()) {
    if (j == updates.size() || (i < list.size() && list[i].path < updates[j].path)) {
      merged.push_back(std::move(list[i++]));
    } else {
      if (i < list.size() && list[i].path == updates[j].path)
        ++i;
      merged.push_back(std::move(updates[j++]));
    }
  }
  list = std::move(merged);
}

void drop_entries(file_list& list, const std::set<std::string>& paths) {
  if (paths.empty())
    return;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const file_entry& x) { return paths.count(x.path) > 0; }),
             list.end());
}

const file_entry* find_entry(const file_list& list, const std::string& path) {
  auto i = std::lower_bound(list.begin(), list.end(), path,
                            [](const file_entry& x, const std::string& p) { return x.path < p; });
  return i != list.end() && i->path == path ? &*i : nullptr;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string out;
  for (auto& name : names)
    out += (out.empty() ? "" : ", ") + name;
  return out;
}

bool is_sha256_hex(const std::string& text) {
  return text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

replication_status make_status(self_ptr self) {
  auto& st = self->state;
  replication_status status;
  status.known = true;
  status.applied_generation = st.applied_generation;
  status.primary_generation = st.have_target ? st.target.generation : 0;
  if (st.have_target && st.target.generation > st.applied_generation) {
    status.lag_generations = st.target.generation - st.applied_generation;
    status.lag_ms = std::max<int64_t>(0, wall_clock_ms() - st.target.built_ms);
  }
  if (st.job) {
    auto& job = *st.job;
    status.pending_files = job.fetch.size() - std::min<uint64_t>(job.files_done, job.fetch.size());
    status.pending_bytes = job.bytes_total - std::min(job.bytes_done, job.bytes_total);
  }
  status.last_job_ms = st.last_job_ms;
  status.files = st.local.size();
  status.bytes = total_bytes(st.local);
  status.unsafe_paths_refused = st.unsafe_refused;
  status.error = st.error;
  status.state = !st.error.empty() ? "error"
                 : st.job          ? "syncing"
                 : !st.primary     ? "waiting"
                                   : "idle";
  return status;
}

void report(self_ptr self) {
  auto& st = self->state;
  if (st.primary)
    self->send(st.primary, replication_report{st.context->config.node_name, make_status(self)});
}

void say_hello(self_ptr self) {
  auto membership = caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
  if (!membership)
    return;
  self->request(membership, caf::infinite, primary_atom::value)
    .then([=](const caf::actor& primary, const std::string&, uint64_t incarnation) {
      if (!primary)
        return;
      self->send(primary,
                 service_hello{self->state.context->config.node_name, incarnation, "replication"});
    });
}

void refresh_local(self_ptr self) {
  auto& st = self->state;
  if (st.dirty.empty())
    return;
  auto errors = rescan_paths(st.root, st.rules, st.local, st.dirty);
  st.dirty.clear();
  for (auto& error : errors)
    logger()->warn("cannot read a local file of the configuration directory: {}", error);
}

void schedule_retry(self_ptr self) {
  auto& st = self->state;
  if (st.retry_at_ms == 0)
    st.retry_at_ms = steady_ms() + std::chrono::milliseconds(retry_delay).count();
}

// Ends the running job. Files that are wholly written and verified are
// committed first, so that the next job does not fetch them again.
void stop_job(self_ptr self, bool keep_finished) {
  auto& st = self->state;
  if (!st.job)
    return;
  st.writer->cancel_current();
  if (keep_finished && st.writer->commit().empty()) {
    merge_entries(st.applied, st.job->uncommitted);
    merge_entries(st.local, std::move(st.job->uncommitted));
  }
  st.writer->abort();
  st.job.reset();
}

void write_failed(self_ptr self, const std::string& error) {
  auto& st = self->state;
  if (st.error != error)
    logger()->error("cannot write into the configuration directory {}: {}; replication to this "
                    "node is paused and retried every {} s; if the disk is full, free space",
                    st.root, error, retry_delay.count());
  st.error = error;
  stop_job(self, false);
  report(self);
  schedule_retry(self);
}

bool commit(self_ptr self, bool force) {
  auto& st = self->state;
  auto& job = *st.job;
  if (job.uncommitted.empty())
    return true;
  auto now = steady_ms();
  if (!force && job.uncommitted.size() < commit_files && job.uncommitted_bytes < commit_bytes &&
      now - job.last_commit_ms < commit_interval_ms)
    return true;
  if (auto error = st.writer->commit(); !error.empty()) {
    job.uncommitted.clear();
    write_failed(self, error);
    return false;
  }
  // What this node wrote from the primary is not a local change, even if
  // the job does not finish.
  merge_entries(st.applied, job.uncommitted);
  merge_entries(st.local, std::move(job.uncommitted));
  job.uncommitted.clear();
  job.uncommitted_bytes = 0;
  job.last_commit_ms = now;
  return true;
}

void progress(self_ptr self) {
  auto& st = self->state;
  auto& job = *st.job;
  auto now = steady_ms();
  if (now - job.last_progress_ms >= progress_log_ms) {
    job.last_progress_ms = now;
    logger()->info("Replication progress: generation={} files={}/{} bytes={}/{}", job.generation,
                   job.files_done, job.fetch.size(), job.bytes_done, job.bytes_total);
  }
  if (now - job.last_report_ms >= report_ms) {
    job.last_report_ms = now;
    report(self);
  }
}

void start_job(self_ptr self);
void pump(self_ptr self);

void complete_job(self_ptr self) {
  auto& st = self->state;
  if (!commit(self, true))
    return;
  auto& job = *st.job;
  if (st.target.generation != job.generation) {
    // A newer signal came during the transfer: go on with that one.
    st.job.reset();
    start_job(self);
    return;
  }
  auto diff = diff_file_lists(st.local, st.target.files);
  std::set<std::string> removed;
  std::vector<file_entry> changed;
  {
    for (auto& path : diff.change_mode) {
      auto* entry = find_entry(st.target.files, path);
      if (auto error = st.writer->set_mode(path, entry->mode, local_uid(entry->owner),
                                           local_gid(entry->group));
          !error.empty()) {
        logger()->warn("{}", error);
        ++job.failed;
        continue;
      }
      auto updated = *find_entry(st.local, path);
      updated.mode = entry->mode;
      updated.owner = entry->owner;
      updated.group = entry->group;
      changed.push_back(updated);
    }
    for (auto& path : diff.remove) {
      if (auto error = st.writer->remove(path); !error.empty()) {
        logger()->warn("{}", error);
        ++job.failed;
        continue;
      }
      removed.insert(path);
    }
    if (!removed.empty() || !diff.change_mode.empty())
      if (auto error = st.writer->sync(); !error.empty())
        logger()->warn("{}", error);
  }
  merge_entries(st.applied, changed);
  merge_entries(st.local, std::move(changed));
  drop_entries(st.local, removed);
  drop_entries(st.applied, removed);
  auto elapsed = steady_ms() - job.started_ms;
  st.last_job_ms = elapsed;
  st.error.clear();
  auto generation = job.generation;
  auto complete = job.failed == 0;
  if (complete) {
    st.applied = st.target.files;
    st.applied_generation = generation;
    logger()->info("Replication Job Completed: generation={} files={} bytes={} deleted={} "
                   "modes={} ms={}",
                   generation, job.files_done, job.bytes_done, job.removed + removed.size(),
                   diff.change_mode.size(), elapsed);
  } else {
    st.error = std::to_string(job.failed) + " files of generation " + std::to_string(generation) +
               " not updated; see the cluster log";
    logger()->warn("Replication job for generation {} ended with {} files not updated (see the "
                   "warnings above); trying again in {} s",
                   generation, job.failed, retry_delay.count());
  }
  st.job.reset();
  report(self);
  // Saved by the tick: writing 10,000 entries would delay the next job.
  if (complete)
    st.applied_dirty = true;
  if (!complete)
    schedule_retry(self);
  else if (!st.dirty.empty())
    start_job(self);
}

void on_reply(self_ptr self, uint64_t job_id, const std::vector<fetch_item>& items,
              fetch_reply& reply) {
  auto& st = self->state;
  if (!st.job || reinterpret_cast<uint64_t>(st.job.get()) != job_id)
    return;
  auto& job = *st.job;
  --job.in_flight;
  job.last_reply_ms = steady_ms();
  if (reply.chunks.size() != items.size()) {
    logger()->error("the primary answered a fetch of {} ranges with {} chunks; stopping this job",
                    items.size(), reply.chunks.size());
    stop_job(self, true);
    schedule_retry(self);
    return;
  }
  for (size_t i = 0; i < items.size(); ++i) {
    auto& item = items[i];
    auto& chunk = reply.chunks[i];
    auto* entry = find_entry(st.target.files, item.path);
    if (entry == nullptr || st.target.generation != job.generation)
      entry = find_entry(job.fetch, item.path);
    if (entry == nullptr || chunk.path != item.path || chunk.offset != item.offset) {
      ++job.failed;
      continue;
    }
    if (item.offset == 0) {
      st.writer->cancel_current();
      auto error =
        st.writer->begin(item.path, entry->mode, local_uid(entry->owner), local_gid(entry->group));
      for (auto& [path, was_link] : st.writer->take_replaced()) {
        if (was_link) {
          // The path would have left the managed directory through the link.
          ++st.unsafe_refused;
          logger()->warn("'{}' on this secondary is a symbolic link where the primary {} has a "
                         "folder: nothing is written through it, and the link is replaced by a "
                         "folder",
                         path, st.primary_node);
        } else {
          logger()->warn("local file '{}' on this secondary is replaced by the primary's folder",
                         path);
        }
      }
      if (!error.empty()) {
        if (error.find("No space") != std::string::npos) {
          write_failed(self, error);
          return;
        }
        if (error.find("symbolic link") != std::string::npos) {
          // The path would leave the managed directory through a link.
          ++st.unsafe_refused;
          logger()->warn("refused unsafe path from the primary {}: '{}': {}; it is not written; "
                         "remove the link from {} if it is not wanted",
                         st.primary_node, item.path, error, st.root);
        } else {
          logger()->warn("cannot replicate '{}': {}", item.path, error);
        }
        ++job.failed;
        continue;
      }
    } else if (!st.writer->writing()) {
      continue; // an earlier chunk of this file failed
    }
    if (!chunk.error.empty() || chunk.data.size() != item.length) {
      logger()->warn("the primary could not send '{}': {}; it is fetched again later", item.path,
                     chunk.error.empty() ? "the file is shorter than listed" : chunk.error);
      st.writer->cancel_current();
      ++job.failed;
      continue;
    }
    if (auto error = st.writer->append(chunk.data.data(), chunk.data.size()); !error.empty()) {
      write_failed(self, error);
      return;
    }
    job.bytes_done += chunk.data.size();
    if (item.offset + item.length == entry->size) {
      if (auto error = st.writer->finish(entry->sha256, entry->mtime_ns); !error.empty()) {
        if (error.find("SHA-256") == std::string::npos) {
          write_failed(self, error);
          return;
        }
        logger()->warn("'{}' changed on the primary during the transfer ({}); the next generation "
                       "brings it",
                       item.path, error);
        // The primary reads it again, in case the edit kept its size and
        // modification time and so escaped its stat-based check.
        self->send(st.primary, rehash_request{st.context->config.node_name, {item.path}});
        ++job.failed;
        continue;
      }
      ++job.files_done;
      job.uncommitted.push_back(*entry);
      job.uncommitted_bytes += entry->size;
    }
  }
  if (!commit(self, false))
    return;
  progress(self);
  pump(self);
}

void pump(self_ptr self) {
  auto& st = self->state;
  auto& job = *st.job;
  auto timeout =
    std::max<caf::timespan>(st.context->config.request_timeout, std::chrono::seconds(10));
  while (job.in_flight < window && job.next_file < job.fetch.size()) {
    fetch_request request;
    request.generation = job.generation;
    uint64_t budget = request_bytes;
    while (job.next_file < job.fetch.size() && budget > 0 &&
           request.items.size() < max_items_per_request) {
      auto& entry = job.fetch[job.next_file];
      auto length = std::min(entry.size - job.next_offset, budget);
      request.items.push_back(
        fetch_item{entry.path, job.next_offset, static_cast<uint32_t>(length)});
      budget -= std::min<uint64_t>(budget, std::max<uint64_t>(length, 256));
      job.next_offset += length;
      if (job.next_offset == entry.size) {
        ++job.next_file;
        job.next_offset = 0;
      }
    }
    ++job.in_flight;
    auto job_id = reinterpret_cast<uint64_t>(st.job.get());
    auto items = request.items;
    job.last_reply_ms = steady_ms();
    // No CAF timeout here (see actors/ticker.hpp). The tick checks for
    // replies that take too long, and a lost primary gives a down_msg.
    self->request(st.primary, caf::infinite, std::move(request))
      .then([=](fetch_reply& reply) { on_reply(self, job_id, items, reply); },
            [=](caf::error& err) {
              auto& st = self->state;
              if (!st.job || reinterpret_cast<uint64_t>(st.job.get()) != job_id)
                return;
              logger()->warn("fetching files from the primary failed: {}; the transfer resumes "
                             "without the files written so far",
                             describe_error(self->system(), err));
              stop_job(self, true);
              report(self);
              schedule_retry(self);
            });
  }
  if (job.in_flight == 0 && job.next_file >= job.fetch.size())
    complete_job(self);
}

// Warns about files that were changed on this node since the last applied
// generation and that the primary's copy now replaces.
void warn_local_edits(self_ptr self) {
  auto& st = self->state;
  size_t warned = 0, total = 0;
  auto warn = [&](const std::string& text) {
    if (++total <= max_path_warnings)
      logger()->warn("{}", text);
  };
  for (auto& entry : st.local) {
    auto* before = find_entry(st.applied, entry.path);
    auto* wanted = find_entry(st.target.files, entry.path);
    if (before != nullptr && same_entry(*before, entry))
      continue;
    if (wanted != nullptr && same_entry(*wanted, entry))
      continue;
    if (before == nullptr && st.applied_generation == 0)
      continue; // first synchronisation: nothing was applied yet
    if (wanted == nullptr)
      warn("'" + entry.path +
           "' was added on this secondary and is removed: the primary does not have it");
    else
      warn("local change to '" + entry.path +
           "' on this secondary is overwritten with the primary's copy");
  }
  for (auto& entry : st.applied)
    if (find_entry(st.local, entry.path) == nullptr && find_entry(st.target.files, entry.path))
      warn("'" + entry.path + "' was deleted on this secondary and is restored from the primary");
  if (total > max_path_warnings)
    logger()->warn("{} more local changes on this secondary are overwritten",
                   total - max_path_warnings);
  (void)warned;
}

void start_job(self_ptr self) {
  auto& st = self->state;
  if (st.job || !st.have_target || !st.primary)
    return;
  refresh_local(self);
  if (st.target.generation == st.applied_generation && same_content(st.local, st.target.files))
    return;
  warn_local_edits(self);
  auto diff = diff_file_lists(st.local, st.target.files);
  st.job = std::make_unique<replication_job>();
  auto& job = *st.job;
  job.generation = st.target.generation;
  job.started_ms = steady_ms();
  job.last_commit_ms = job.started_ms;
  job.last_progress_ms = job.started_ms;
  for (auto& path : diff.fetch) {
    job.fetch.push_back(*find_entry(st.target.files, path));
    job.bytes_total += job.fetch.back().size;
  }
  if (!st.writer)
    st.writer = std::make_unique<batch_writer>(st.root);
  // Deletions go first: a folder the primary replaced by a file of the same
  // name must be gone before that file can be renamed into place.
  std::set<std::string> removed;
  for (auto& path : diff.remove) {
    if (auto error = st.writer->remove(path); !error.empty()) {
      logger()->warn("{}", error);
      continue;
    }
    removed.insert(path);
  }
  if (!removed.empty()) {
    if (auto error = st.writer->sync(); !error.empty())
      logger()->warn("{}", error);
    drop_entries(st.local, removed);
    drop_entries(st.applied, removed);
    job.removed = removed.size();
  }
  report(self);
  pump(self);
}

// Clears the owner or group of an entry that this node cannot apply, so
// that it matches any owner. That is a name unknown here, or any name when
// this node does not run as root and so cannot change owners.
void adapt_owner(self_ptr self, file_entry& entry) {
  auto& st = self->state;
  if (::geteuid() != 0) {
    entry.owner.clear();
    entry.group.clear();
    return;
  }
  if (!entry.owner.empty() && local_uid(entry.owner) < 0) {
    if (st.unknown_names.insert("user " + entry.owner).second)
      logger()->warn("user '{}' of '{}' on the primary does not exist on this node; files of "
                     "that user keep the owner they get here",
                     entry.owner, entry.path);
    entry.owner.clear();
  }
  if (!entry.group.empty() && local_gid(entry.group) < 0) {
    if (st.unknown_names.insert("group " + entry.group).second)
      logger()->warn("group '{}' of '{}' on the primary does not exist on this node; files of "
                     "that group keep the group they get here",
                     entry.group, entry.path);
    entry.group.clear();
  }
}

// Keeps the entries of a signal that are safe to write here, and counts
// and logs the rest. A change signal is applied to the list of its base
// generation. Returns false if this node does not hold that generation.
bool accept_signal(self_ptr self, replication_signal signal) {
  auto& st = self->state;
  // The primary's own exclusions apply here too, so that this node's files
  // below them are neither deleted nor reported as local changes.
  auto rules = node_exclusions(st.context->config);
  rules.top_level.insert(rules.top_level.end(), signal.exclude.begin(), signal.exclude.end());
  rules.suffixes.insert(rules.suffixes.end(), signal.exclude_suffix.begin(),
                        signal.exclude_suffix.end());
  if (rules.top_level != st.rules.top_level || rules.suffixes != st.rules.suffixes) {
    st.rules = std::move(rules);
    st.dirty.push_back(std::string{});
    logger()->info("exclusions from the primary {}: exclude='{}' exclude-suffix='{}'",
                   signal.primary_node, join_names(signal.exclude),
                   join_names(signal.exclude_suffix));
  }
  if (signal.base_generation != 0 &&
      (!st.have_target || st.target.generation != signal.base_generation))
    return false;
  size_t refused = 0;
  file_list safe;
  safe.reserve(signal.files.size());
  for (auto& entry : signal.files) {
    auto reason = check_relative_path(entry.path);
    if (reason.empty() && is_excluded(st.rules, st.root, entry.path))
      reason = "excluded from replication on this node";
    if (reason.empty() && (!is_sha256_hex(entry.sha256) || entry.mode > 07777))
      reason = "malformed file entry";
    if (reason.empty() && !safe.empty() && safe.back().path >= entry.path)
      reason = "out of order or repeated in the list";
    if (!reason.empty()) {
      ++refused;
      ++st.unsafe_refused;
      if (refused <= max_path_warnings) {
        std::string shown;
        for (char c : entry.path.substr(0, 200))
          shown += (static_cast<unsigned char>(c) < 0x20) ? '?' : c;
        logger()->warn("refused unsafe path from the primary {}: '{}': {}; it is not written",
                       signal.primary_node, shown, reason);
      }
      continue;
    }
    adapt_owner(self, entry);
    safe.push_back(std::move(entry));
  }
  if (refused > max_path_warnings)
    logger()->warn("refused {} more unsafe paths from the primary {}", refused - max_path_warnings,
                   signal.primary_node);
  if (signal.base_generation == 0) {
    signal.files = std::move(safe);
    st.target = std::move(signal);
    st.have_target = true;
    return true;
  }
  std::set<std::string> removed;
  for (auto& path : signal.removed)
    if (check_relative_path(path).empty())
      removed.insert(path);
  drop_entries(st.target.files, removed);
  merge_entries(st.target.files, std::move(safe));
  st.target.generation = signal.generation;
  st.target.built_ms = signal.built_ms;
  st.target.primary_node = signal.primary_node;
  return true;
}

void config_command(self_ptr self, const admin_command& command, admin_result& result) {
  auto& st = self->state;
  auto& verb = command.verb;
  if (verb == "config-list") {
    refresh_local(self);
    result = {0, format_listing(st.local)};
    return;
  }
  if (verb == "config-get") {
    if (command.args.empty()) {
      result = {1, "config get needs a PATH"};
      return;
    }
    std::string content;
    auto error = read_managed_file(st.root, command.args[0], content, 16 * 1024 * 1024);
    result = error.empty() ? admin_result{0, content} : admin_result{1, error};
    return;
  }
  auto& config = st.context->config;
  auto primary = st.primary_node.empty() ? std::string{"(name not known yet)"} : st.primary_node;
  logger()->warn("refused '{}': this node is a secondary and its configuration is read-only", verb);
  result = {1, config.node_name +
                 " is a secondary: its configuration is read-only and is overwritten by the "
                 "primary's copy; run this command on the primary " +
                 primary + " (cluster address " + to_string(*config.primary) +
                 "), with mailclusterctl --config-file naming that node's role config"};
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  auto now = steady_ms();
  if (!st.job) {
    // A slice of the local files is read again on each tick; see
    // rehash_slice().
    auto interval = std::max<int64_t>(st.context->config.rescan_interval.count(), 1);
    add_rehash_credit(st.rehash_credit, total_bytes(st.local), interval);
    auto changed = rehash_slice(st.root, st.local, st.rehash_cursor, st.rehash_credit);
    if (!changed.empty()) {
      std::set<std::string> paths(changed.begin(), changed.end());
      for (auto& entry : st.local)
        if (paths.count(entry.path))
          entry.sha256.clear();
      st.dirty.insert(st.dirty.end(), changed.begin(), changed.end());
      start_job(self);
    }
  }
  if (st.applied_dirty && now - st.last_applied_save_ms >= 1000) {
    st.applied_dirty = false;
    st.last_applied_save_ms = now;
    if (auto error = save_file_list(applied_file(*st.context), st.applied_generation, st.applied);
        !error.empty())
      logger()->error("cannot save the applied replication list: {}", error);
  }
  if (st.job && st.job->in_flight > 0 && now - st.job->last_reply_ms > fetch_timeout_ms) {
    logger()->warn("the primary did not answer a fetch for {} ms; the transfer resumes without "
                   "the files written so far",
                   now - st.job->last_reply_ms);
    stop_job(self, true);
    report(self);
    schedule_retry(self);
  }
  if (now >= st.next_rescan_ms) {
    st.next_rescan_ms = now + st.context->config.rescan_interval.count();
    st.dirty.push_back(std::string{});
    if (!st.job)
      start_job(self);
  }
  if (st.retry_at_ms != 0 && now >= st.retry_at_ms) {
    st.retry_at_ms = 0;
    start_job(self);
  }
}

} // namespace

secondary_replication_state::~secondary_replication_state() {
  watcher.reset();
  if (applied_dirty && context)
    save_file_list(applied_file(*context), applied_generation, applied);
}

caf::behavior secondary_replication(caf::stateful_actor<secondary_replication_state>* self,
                                    node_context_ptr context) {
  guard_actor(self, log::replication);
  auto& st = self->state;
  st.context = context;
  st.root = context->config.config_dir;
  st.rules = node_exclusions(context->config);
  for (auto dir : {st.root, context->config.state_dir + "/replication"})
    if (auto error = ensure_directory(dir); !error.empty()) {
      logger()->error("{}; check replication.config-dir and storage.state-dir", error);
      self->quit(caf::make_error(caf::sec::runtime_error, error));
      return {};
    }
  if (auto removed = remove_temporary_files(st.root); removed > 0)
    logger()->info("removed {} temporary files that an interrupted transfer left in {}", removed,
                   st.root);
  if (auto error = load_file_list(applied_file(*context), st.applied_generation, st.applied);
      !error.empty())
    logger()->warn("{}", error);
  auto started = steady_ms();
  auto scan = scan_tree(st.root, st.rules, st.applied);
  st.local = std::move(scan.files);
  for (auto& error : scan.errors)
    logger()->warn("cannot read a local file of the configuration directory: {}", error);
  logger()->info("replication of {} ready: config-dir={} applied-generation={} files={} bytes={} "
                 "ms={}",
                 context->config.node_name, st.root, st.applied_generation, st.local.size(),
                 scan.bytes, steady_ms() - started);
  // A weak handle: the watcher lives in this actor's state, and a strong
  // one would keep the actor alive forever.
  caf::actor_addr me = self->address();
  st.watcher = std::make_unique<tree_watcher>(
    st.root, st.rules, context->config.debounce, [me](std::vector<std::string> paths) {
      if (auto actor = caf::actor_cast<caf::actor>(me))
        caf::anon_send(actor, dirty_atom::value, std::move(paths));
    });
  if (!st.watcher->error().empty())
    logger()->warn("{}; local changes are found by the periodic rescan only", st.watcher->error());
  st.events = membership_events(self->system());
  self->join(st.events);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.primary && st.primary.address() == msg.source) {
      logger()->warn("lost the primary's replication service: {}; waiting for it to return",
                     describe_error(self->system(), msg.reason));
      stop_job(self, true);
      st.primary = caf::actor{};
    }
  });
  say_hello(self);
  st.next_rescan_ms = steady_ms() + context->config.rescan_interval.count();
  self->spawn(ticker, self->address(), caf::timespan{replication_tick});
  return {
    [=](const peer_event_msg& event) {
      if (event.role == "primary" && event.online)
        say_hello(self);
    },
    [=](replication_signal& signal) {
      auto& st = self->state;
      auto sender = caf::actor_cast<caf::actor>(self->current_sender());
      if (!sender)
        return;
      follow_peer(self, st.primary, sender);
      st.primary_node = signal.primary_node;
      if (signal.base_generation == 0)
        logger()->info("Replication Signal from: {} generation={} files={}", signal.primary_node,
                       signal.generation, signal.files.size());
      else
        logger()->info("Replication Signal from: {} generation={} changed={} removed={}",
                       signal.primary_node, signal.generation, signal.files.size(),
                       signal.removed.size());
      if (!accept_signal(self, std::move(signal))) {
        // This node missed a generation: ask for the whole list.
        self->send(st.primary, full_list_request{st.context->config.node_name});
        return;
      }
      if (!st.job)
        start_job(self);
      // The primary shows this node's state from reports, also when there
      // was nothing to fetch (for example after the primary restarted).
      if (!st.job)
        report(self);
    },
    [=](dirty_atom, std::vector<std::string>& paths) {
      auto& st = self->state;
      st.dirty.insert(st.dirty.end(), paths.begin(), paths.end());
      if (!st.job)
        start_job(self);
    },
    [=](tick_atom) { on_tick(self); },
    [=](fill_status_atom, node_status& status) {
      status.config_dir = self->state.root;
      status.replication = make_status(self);
      return status;
    },
    [=](const admin_command& command) {
      admin_result result;
      config_command(self, command, result);
      return result;
    },
  };
}

} // namespace mc
