#include "actors/primary_replication.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>

#include <chrono>

#include "caf/all.hpp"

#include "actors/ticker.hpp"
#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/batch_writer.hpp"
#include "runtime/logging.hpp"
#include "runtime/registry.hpp"
#include "runtime/replication_support.hpp"
#include "runtime/tls.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<primary_replication_state>*;

/// Largest range one fetch_item may ask for, and all items of one request.
constexpr uint32_t max_item_bytes = 4 * 1024 * 1024;
constexpr uint64_t max_request_bytes = 16 * 1024 * 1024;
constexpr size_t max_items_per_request = 4096;
/// Generations whose build time is kept for the lag in status.
constexpr size_t kept_build_times = 1000;

auto logger() {
  return log::get(log::replication);
}

std::string list_file(const node_context& context) {
  return context.config.state_dir + "/replication/file-list";
}

std::string generation_file(const node_context& context) {
  return context.config.state_dir + "/replication/generation";
}

void reindex(self_ptr self) {
  auto& st = self->state;
  st.index.clear();
  for (size_t i = 0; i < st.files.size(); ++i)
    st.index[st.files[i].path] = i;
}

void log_scan_errors(self_ptr self, const std::vector<std::string>& errors) {
  for (auto& error : errors)
    if (self->state.logged_errors.insert(error).second)
      logger()->warn("skipped while building the replication file list: {}; the file is not "
                     "replicated until it can be read",
                     error);
}

replication_signal make_signal(self_ptr self) {
  auto& st = self->state;
  replication_signal signal;
  signal.primary_node = st.context->config.node_name;
  signal.generation = st.generation;
  signal.built_ms = st.built_ms;
  signal.files = st.files;
  signal.exclude = st.context->config.exclude;
  signal.exclude_suffix = st.context->config.exclude_suffix;
  return signal;
}

// Stores the generation number durably before anyone hears of it. The file
// keeps a fixed width, so one small write and one fdatasync suffice.
void save_generation(self_ptr self) {
  auto& st = self->state;
  if (st.generation_fd < 0) {
    // The first write creates the file and its folder entry durably.
    if (auto error =
          write_file_durably(generation_file(*st.context), std::to_string(st.generation) + "\n");
        !error.empty()) {
      logger()->error("cannot save the replication generation: {}", error);
      return;
    }
    st.generation_fd =
      ::open(generation_file(*st.context).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (st.generation_fd < 0) {
      logger()->error("cannot save the replication generation in {}: {}",
                      generation_file(*st.context), std::strerror(errno));
      return;
    }
  }
  char text[32];
  auto n =
    std::snprintf(text, sizeof(text), "%020llu\n", static_cast<unsigned long long>(st.generation));
  if (::pwrite(st.generation_fd, text, static_cast<size_t>(n), 0) != n ||
      ::fdatasync(st.generation_fd) != 0)
    logger()->error("cannot save the replication generation in {}: {}",
                    generation_file(*st.context), std::strerror(errno));
}

void save_list(self_ptr self) {
  auto& st = self->state;
  st.list_dirty = false;
  st.last_list_save_ms = steady_ms();
  if (st.saver.joinable())
    st.saver.join();
  st.saver =
    std::thread([file = list_file(*st.context), generation = st.generation, files = st.files] {
      if (auto error = save_file_list(file, generation, files); !error.empty())
        logger()->error("cannot save the replication file list: {}", error);
    });
}

// Makes `files` the current list under a new generation: persists the
// generation number first (a restart never reuses a number a secondary may
// have seen), signals every secondary, then persists the list.
void publish(self_ptr self, file_list files, int64_t started_ms) {
  auto& st = self->state;
  // The change signal for secondaries that hold the previous generation.
  replication_signal change;
  change.base_generation = st.generation;
  auto diff = diff_file_lists(st.files, files);
  change.removed = std::move(diff.remove);
  std::set<std::string> changed(diff.fetch.begin(), diff.fetch.end());
  changed.insert(diff.change_mode.begin(), diff.change_mode.end());
  for (auto& entry : files)
    if (changed.count(entry.path))
      change.files.push_back(entry);
  st.files = std::move(files);
  reindex(self);
  ++st.generation;
  st.built_ms = wall_clock_ms();
  st.built_at[st.generation] = st.built_ms;
  while (st.built_at.size() > kept_build_times)
    st.built_at.erase(st.built_at.begin());
  save_generation(self);
  logger()->info("Completed rebuilding current replication file list: generation={} files={} "
                 "bytes={} ms={}",
                 st.generation, st.files.size(), total_bytes(st.files), steady_ms() - started_ms);
  change.primary_node = st.context->config.node_name;
  change.exclude = st.context->config.exclude;
  change.exclude_suffix = st.context->config.exclude_suffix;
  change.generation = st.generation;
  change.built_ms = st.built_ms;
  std::optional<replication_signal> full;
  for (auto& [node, replica] : st.replicas) {
    if (!replica.handle)
      continue;
    if (replica.signalled == change.base_generation) {
      self->send(replica.handle, change);
    } else {
      if (!full)
        full = make_signal(self);
      self->send(replica.handle, *full);
    }
    replica.signalled = st.generation;
  }
  // Saving 10,000 entries takes milliseconds, so a thread does it while
  // this actor serves the secondaries' fetches.
  save_list(self);
}

// Rebuilds the list for `dirty` paths ("" = everything) and publishes a new
// generation if the content changed.
void rebuild(self_ptr self, const std::vector<std::string>& dirty) {
  auto& st = self->state;
  auto started = steady_ms();
  // A missing root (moved away while another folder is swapped in) must
  // not read as "every file deleted".
  struct stat info {};
  if (::stat(st.root.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
    if (st.logged_errors.insert("root").second)
      logger()->error("configuration directory {} is missing; replication waits until it is back",
                      st.root);
    return;
  }
  st.logged_errors.erase("root");
  auto files = st.files;
  auto errors = rescan_paths(st.root, st.rules, files, dirty);
  log_scan_errors(self, errors);
  if (st.paused_empty) {
    if (files.empty())
      return;
    st.paused_empty = false;
    logger()->info("configuration directory {} holds files again: replication resumes", st.root);
    // Every secondary gets the whole list, none got anything while paused.
    for (auto& [node, replica] : st.replicas)
      replica.signalled = 0;
    if (same_content(files, st.files)) {
      st.files = std::move(files);
      reindex(self);
      auto signal = make_signal(self);
      for (auto& [node, replica] : st.replicas)
        if (replica.handle) {
          self->send(replica.handle, signal);
          replica.signalled = st.generation;
        }
      return;
    }
  }
  if (same_content(files, st.files)) {
    // Only modification times changed, or nothing: keep the generation,
    // but remember the new times so hashes are reused next time.
    st.files = std::move(files);
    reindex(self);
    return;
  }
  publish(self, std::move(files), started);
}

// Reads a slice of the files again on each tick, so that over one rescan
// interval every file is read: an edit that kept size and modification
// time is invisible to the stat-based checks.
void rehash_some(self_ptr self) {
  auto& st = self->state;
  auto interval = std::max<int64_t>(st.context->config.rescan_interval.count(), 1);
  add_rehash_credit(st.rehash_credit, total_bytes(st.files), interval);
  auto changed = rehash_slice(st.root, st.files, st.rehash_cursor, st.rehash_credit);
  if (changed.empty())
    return;
  for (auto& path : changed)
    if (auto i = st.index.find(path); i != st.index.end())
      st.files[i->second].sha256.clear();
  rebuild(self, changed);
}

void load_and_scan(self_ptr self) {
  auto& st = self->state;
  auto started = steady_ms();
  uint64_t saved_generation = 0;
  file_list saved;
  if (auto error = load_file_list(list_file(*st.context), saved_generation, saved); !error.empty())
    logger()->warn("{}", error);
  // The generation file is written before each signal, the list after it.
  uint64_t generation_number = 0;
  std::string text;
  if (read_managed_file(st.context->config.state_dir, "replication/generation", text, 64).empty())
    generation_number = std::strtoull(text.c_str(), nullptr, 10);
  st.generation = std::max(saved_generation, generation_number);
  auto scan = scan_tree(st.root, st.rules, saved);
  log_scan_errors(self, scan.errors);
  if (scan.files.empty() && !saved.empty()) {
    // An empty folder where files were (an unmounted file system, a
    // restored backup not yet copied back) must not delete every
    // secondary's copy. Replication waits for files to appear.
    st.paused_empty = true;
    st.files = std::move(saved);
    reindex(self);
    logger()->error("configuration directory {} is empty, but it held {} files at generation {}: "
                    "replication to the secondaries is paused until files appear; to empty the "
                    "tree on purpose, delete the files while this node runs",
                    st.root, st.files.size(), st.generation);
    return;
  }
  if (st.generation > 0 && same_content(scan.files, saved)) {
    st.files = std::move(scan.files);
    reindex(self);
    st.built_ms = wall_clock_ms();
    st.built_at[st.generation] = st.built_ms;
    logger()->info("Completed rebuilding current replication file list: generation={} files={} "
                   "bytes={} ms={} unchanged-since-restart=true",
                   st.generation, st.files.size(), scan.bytes, steady_ms() - started);
    return;
  }
  publish(self, std::move(scan.files), started);
}

// Reads the ranges of a fetch_request. Every path must be on the current
// list; the file is opened without following symbolic links.
fetch_reply serve(self_ptr self, const fetch_request& request) {
  auto& st = self->state;
  fetch_reply reply;
  uint64_t total = 0;
  for (auto& item : request.items) {
    file_chunk chunk;
    chunk.path = item.path;
    chunk.offset = item.offset;
    total += item.length;
    if (st.index.count(item.path) == 0) {
      chunk.error = "not on the primary's current file list";
    } else if (item.length > max_item_bytes || total > max_request_bytes) {
      chunk.error = "range too large";
    } else {
      int fd = open_managed_file(st.root, item.path);
      if (fd < 0) {
        chunk.error = std::strerror(errno);
      } else {
        chunk.data.resize(item.length);
        size_t done = 0;
        while (done < item.length) {
          auto n = ::pread(fd, chunk.data.data() + done, item.length - done,
                           static_cast<off_t>(item.offset + done));
          if (n < 0 && errno == EINTR)
            continue;
          if (n < 0) {
            chunk.error = std::strerror(errno);
            break;
          }
          if (n == 0)
            break;
          done += static_cast<size_t>(n);
        }
        chunk.data.resize(done);
        ::close(fd);
      }
    }
    reply.chunks.push_back(std::move(chunk));
  }
  return reply;
}

replication_status own_status(self_ptr self) {
  auto& st = self->state;
  replication_status status;
  status.applied_generation = st.generation;
  status.primary_generation = st.generation;
  status.files = st.files.size();
  status.bytes = total_bytes(st.files);
  status.state = "idle";
  status.known = true;
  return status;
}

void fill_status(self_ptr self, node_status& status) {
  auto& st = self->state;
  status.config_dir = st.root;
  status.replication = own_status(self);
  auto now = wall_clock_ms();
  for (auto& peer : status.peers) {
    auto i = st.replicas.find(peer.node);
    if (i == st.replicas.end())
      continue;
    auto replication = i->second.status;
    replication.primary_generation = st.generation;
    if (replication.known && replication.applied_generation < st.generation) {
      replication.lag_generations = st.generation - replication.applied_generation;
      // Behind since the first generation it has not applied was built.
      auto first = st.built_at.upper_bound(replication.applied_generation);
      replication.lag_ms = first != st.built_at.end() ? now - first->second : now - st.built_ms;
    }
    peer.replication = replication;
  }
}

admin_result config_command(self_ptr self, const admin_command& command) {
  auto& st = self->state;
  auto& verb = command.verb;
  if (verb == "config-list")
    return {0, format_listing(st.files)};
  if (command.args.empty())
    return {1, verb + " needs a PATH"};
  auto& path = command.args[0];
  if (auto reason = check_relative_path(path); !reason.empty())
    return {1, "path '" + path + "' is not allowed: " + reason +
                 "; give a path relative to the configuration directory " + st.root};
  if (is_excluded(st.rules, st.root, path))
    return {1, "'" + path +
                 "' is excluded from replication (shared folder, lock file or the "
                 "node's own state); manage it outside mailcluster"};
  if (verb == "config-get") {
    std::string content;
    if (auto error = read_managed_file(st.root, path, content, max_admin_file_size); !error.empty())
      return {1, error};
    return {0, content};
  }
  if (verb == "config-put" && command.args.size() == 2) {
    auto& content = command.args[1];
    if (content.size() > max_admin_file_size)
      return {1, "content of " + std::to_string(content.size()) + " bytes is more than the " +
                   std::to_string(max_admin_file_size) +
                   " that config put transfers; copy the file into " + st.root + " directly"};
    uint32_t mode = 0644;
    if (auto i = st.index.find(path); i != st.index.end())
      mode = st.files[i->second].mode;
    batch_writer writer(st.root);
    std::string error = writer.begin(path, mode);
    if (error.empty())
      error = writer.append(content.data(), content.size());
    if (error.empty())
      error = writer.finish(tls::sha256_hex(content));
    if (error.empty())
      error = writer.commit();
    if (!error.empty())
      return {1, "cannot write '" + path + "' in " + st.root + ": " + error};
    logger()->info("config put {}: {} bytes written through mailclusterctl", path, content.size());
  } else if (verb == "config-delete") {
    if (st.index.count(path) == 0) {
      struct stat info {};
      auto absolute = st.root + "/" + path;
      if (::lstat(absolute.c_str(), &info) == 0 && S_ISDIR(info.st_mode))
        return {1, "'" + path +
                     "' is a folder; config delete removes files only, so delete the "
                     "files in it (the folder goes with the last one)"};
      return {1, "'" + path + "' is not a file of the configuration directory " + st.root +
                   "; see 'config list'"};
    }
    batch_writer writer(st.root);
    if (auto error = writer.remove(path); !error.empty())
      return {1, error};
    logger()->info("config delete {}: removed through mailclusterctl", path);
  } else {
    return {1, "unknown config command '" + verb + "'"};
  }
  auto before = st.generation;
  rebuild(self, {path});
  return {0, verb == "config-put"
               ? "wrote '" + path + "'; generation " + std::to_string(st.generation) +
                   (st.generation == before ? " (content unchanged)" : "") + " replicates it"
               : "deleted '" + path + "'; generation " + std::to_string(st.generation) +
                   " replicates the deletion"};
}

void add_replica(self_ptr self, const service_peer& peer) {
  auto& replica = self->state.replicas[peer.node];
  if (replica.handle && replica.handle != peer.handle)
    self->demonitor(replica.handle);
  replica.handle = peer.handle;
  replica.status.state = "waiting";
  self->monitor(peer.handle);
  if (self->state.paused_empty) {
    replica.signalled = 0;
    logger()->warn("secondary {} is ready for replication, but the configuration directory is "
                   "empty; it gets no list until files appear",
                   peer.node);
    return;
  }
  replica.signalled = self->state.generation;
  logger()->info("secondary {} ready for replication: sending generation {}", peer.node,
                 self->state.generation);
  self->send(peer.handle, make_signal(self));
}

} // namespace

primary_replication_state::~primary_replication_state() {
  watcher.reset();
  if (saver.joinable())
    saver.join();
  if (list_dirty && context)
    save_file_list(list_file(*context), generation, files);
  if (generation_fd >= 0)
    ::close(generation_fd);
}

caf::behavior primary_replication(caf::stateful_actor<primary_replication_state>* self,
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
  load_and_scan(self);
  // A weak handle: the watcher lives in this actor's state, and a strong
  // one would keep the actor alive forever.
  caf::actor_addr me = self->address();
  st.watcher = std::make_unique<tree_watcher>(
    st.root, st.rules, context->config.debounce, [me](std::vector<std::string> paths) {
      if (auto actor = caf::actor_cast<caf::actor>(me))
        caf::anon_send(actor, dirty_atom::value, std::move(paths));
    });
  if (!st.watcher->error().empty())
    logger()->warn("{}; changes are found by the periodic rescan only (every {} ms)",
                   st.watcher->error(), context->config.rescan_interval.count());
  if (auto n = st.watcher->unwatched_folders(); n > 0)
    logger()->warn("{} folders of {} are not watched (inotify limit); changes there are found by "
                   "the periodic rescan; raise fs.inotify.max_user_watches",
                   n, st.root);
  // A secondary that goes offline or is removed keeps its connection for a
  // while, and it must get no further signals until its next hello.
  self->join(membership_events(self->system()));
  self->set_down_handler([=](caf::down_msg& msg) {
    for (auto& [node, replica] : self->state.replicas)
      if (replica.handle.address() == msg.source) {
        replica.handle = caf::actor{};
        replica.status.state = "offline";
      }
  });
  // After a restart of this actor, pick up the secondaries that said hello
  // before.
  auto membership = caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
  if (membership)
    self->request(membership, caf::infinite, service_peers_request{"replication"})
      .then([=](const std::vector<service_peer>& peers) {
        for (auto& peer : peers)
          add_replica(self, peer);
      });
  st.next_rescan_ms = steady_ms() + context->config.rescan_interval.count();
  self->spawn(ticker, self->address(), caf::timespan{replication_tick});
  return {
    [=](dirty_atom, const std::vector<std::string>& paths) { rebuild(self, paths); },
    [=](tick_atom) {
      auto& st = self->state;
      auto now = steady_ms();
      if (st.list_dirty)
        save_list(self);
      rehash_some(self);
      if (now < st.next_rescan_ms)
        return;
      st.next_rescan_ms = now + st.context->config.rescan_interval.count();
      rebuild(self, {std::string{}});
    },
    [=](const service_peer& peer) { add_replica(self, peer); },
    [=](const peer_event_msg& event) {
      auto i = self->state.replicas.find(event.node);
      if (event.online || i == self->state.replicas.end() || !i->second.handle)
        return;
      self->demonitor(i->second.handle);
      i->second.handle = caf::actor{};
      i->second.status.state = "offline";
    },
    [=](const rehash_request& request) {
      auto& st = self->state;
      auto i = st.replicas.find(request.node);
      if (i == st.replicas.end() ||
          caf::actor_cast<caf::strong_actor_ptr>(i->second.handle) != self->current_sender())
        return;
      std::vector<std::string> paths;
      for (auto& path : request.paths)
        if (auto j = st.index.find(path); j != st.index.end() && paths.size() < 1000) {
          st.files[j->second].sha256.clear();
          paths.push_back(path);
        }
      if (!paths.empty())
        rebuild(self, paths);
    },
    [=](const full_list_request& request) {
      auto i = self->state.replicas.find(request.node);
      if (i == self->state.replicas.end() ||
          caf::actor_cast<caf::strong_actor_ptr>(i->second.handle) != self->current_sender())
        return;
      i->second.signalled = self->state.generation;
      self->send(i->second.handle, make_signal(self));
    },
    [=](const fetch_request& request) -> caf::result<fetch_reply> {
      auto sender = self->current_sender();
      bool known = false;
      for (auto& [node, replica] : self->state.replicas)
        if (replica.handle && caf::actor_cast<caf::strong_actor_ptr>(replica.handle) == sender)
          known = true;
      if (!known)
        return caf::make_error(caf::sec::request_receiver_down,
                               "fetch_request from an actor that is not a joined secondary");
      // Secondaries ask for at most 512 ranges at a time; a larger request
      // would only make this node build a huge reply.
      if (request.items.size() > max_items_per_request) {
        logger()->warn("refused a fetch of {} ranges (more than {})", request.items.size(),
                       max_items_per_request);
        return caf::make_error(caf::sec::invalid_argument, "too many ranges in one fetch_request");
      }
      return serve(self, request);
    },
    [=](const replication_report& report) {
      auto i = self->state.replicas.find(report.node);
      if (i == self->state.replicas.end() ||
          caf::actor_cast<caf::strong_actor_ptr>(i->second.handle) != self->current_sender())
        return;
      i->second.status = report.status;
      i->second.status.known = true;
    },
    [=](fill_status_atom, node_status& status) {
      fill_status(self, status);
      return status;
    },
    [=](const admin_command& command) {
      auto result = config_command(self, command);
      if (result.exit_code != 0)
        logger()->warn("{} {} rejected: {}", command.verb,
                       command.args.empty() ? std::string{} : command.args[0], result.message);
      return result;
    },
  };
}

} // namespace mc
