#include "actors/mail_relay.hpp"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include <boost/filesystem.hpp>
#include <nlohmann/json.hpp>

#include "caf/all.hpp"

#include "runtime/registry.hpp"

namespace mc {

namespace {

constexpr const char* outbox_format = "mailcluster-mail-change-outbox";
constexpr const char* dedup_format = "mailcluster-mail-change-seen";

bool has_control_character(const std::string& text) {
  return std::any_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte < 0x20 || byte == 0x7f;
  });
}

// Quotes a user value for an error message; control characters become '?'
// so that the message stays on one line.
std::string quoted(const std::string& value) {
  std::string shown;
  for (char c : value.substr(0, 200)) {
    auto byte = static_cast<unsigned char>(c);
    shown += (byte < 0x20 || byte == 0x7f) ? '?' : c;
  }
  if (value.size() > 200)
    shown += "...";
  return "'" + shown + "'";
}

std::string event_list() {
  std::string text;
  for (auto& event : mail_change_events())
    text += (text.empty() ? "" : ", ") + event;
  return text;
}

// Reads a whole file into `out`. Returns false when it does not exist.
bool read_whole_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream buffer;
  buffer << in.rdbuf();
  out = buffer.str();
  return true;
}

nlohmann::json to_json(const mail_change& change) {
  return {{"origin", change.origin},   {"epoch", change.epoch},     {"sequence", change.sequence},
          {"time_ms", change.time_ms}, {"mailbox", change.mailbox}, {"folder", change.folder},
          {"event", change.event},     {"detail", change.detail}};
}

mail_change change_from_json(const nlohmann::json& doc) {
  mail_change change;
  change.origin = doc.at("origin").get<std::string>();
  change.epoch = doc.at("epoch").get<uint64_t>();
  change.sequence = doc.at("sequence").get<uint64_t>();
  change.time_ms = doc.at("time_ms").get<int64_t>();
  change.mailbox = doc.at("mailbox").get<std::string>();
  change.folder = doc.at("folder").get<std::string>();
  change.event = doc.at("event").get<std::string>();
  change.detail = doc.at("detail").get<std::string>();
  return change;
}

} // namespace

const std::vector<std::string>& mail_change_events() {
  static const std::vector<std::string> events{"append",        "copy",          "move",
                                               "flags",         "delete",        "expunge",
                                               "folder-create", "folder-delete", "folder-rename"};
  return events;
}

std::string check_mail_change(const mail_change& change) {
  auto& events = mail_change_events();
  if (change.mailbox.empty())
    return "option '--mailbox' is empty: give the mail address of the mailbox, e.g. "
           "frank@example.com";
  auto at = change.mailbox.find('@');
  if (change.mailbox.size() > max_mailbox_bytes || at == 0 || at == std::string::npos ||
      at + 1 == change.mailbox.size() || has_control_character(change.mailbox) ||
      change.mailbox.find(' ') != std::string::npos)
    return "invalid value " + quoted(change.mailbox) +
           " for option '--mailbox': expected a mail address LOCAL@DOMAIN of at most " +
           std::to_string(max_mailbox_bytes) + " bytes without spaces";
  if (change.folder.empty())
    return "option '--folder' is empty: give the folder name, e.g. INBOX";
  if (change.folder.size() > max_folder_bytes || has_control_character(change.folder))
    return "invalid value " + quoted(change.folder) + " for option '--folder': expected at most " +
           std::to_string(max_folder_bytes) + " bytes without control characters";
  if (std::find(events.begin(), events.end(), change.event) == events.end())
    return "invalid value " + quoted(change.event) + " for option '--event': expected one of " +
           event_list();
  if (change.detail.size() > max_detail_bytes || has_control_character(change.detail))
    return "invalid value " + quoted(change.detail) + " for option '--detail': expected at most " +
           std::to_string(max_detail_bytes) + " bytes without control characters or line breaks";
  return {};
}

std::string parse_publish_args(const std::vector<std::string>& args, mail_change& change) {
  std::map<std::string, std::string*> fields{{"--mailbox", &change.mailbox},
                                             {"--folder", &change.folder},
                                             {"--event", &change.event},
                                             {"--detail", &change.detail}};
  std::map<std::string, bool> given;
  for (size_t i = 1; i < args.size(); ++i) {
    auto name = args[i];
    std::string value;
    bool has_value = false;
    if (auto equals = name.find('='); name.rfind("--", 0) == 0 && equals != std::string::npos) {
      value = name.substr(equals + 1);
      name = name.substr(0, equals);
      has_value = true;
    }
    auto field = fields.find(name);
    if (field == fields.end())
      return "unknown argument " + quoted(args[i]) +
             " for mail-change publish; it takes --mailbox, --folder, --event and --detail";
    if (given[name])
      return "option '" + name + "' is given twice";
    if (!has_value) {
      if (i + 1 >= args.size())
        return "option '" + name + "' needs a value";
      value = args[++i];
    }
    given[name] = true;
    *field->second = value;
  }
  for (auto name : {"--mailbox", "--folder", "--event"})
    if (!given[name])
      return std::string("mail-change publish needs option '") + name + "'";
  return check_mail_change(change);
}

std::string check_mail_change_args(const std::vector<std::string>& args) {
  if (args.empty())
    return "mail-change needs 'publish' or 'watch'";
  if (args[0] != "publish" && args[0] != "watch")
    return "unknown mail-change command " + quoted(args[0]) + "; use 'publish' or 'watch'";
  if (args[0] == "watch") {
    if (args.size() > 1)
      return "mail-change watch takes no arguments but --json; got " + quoted(args[1]);
    return {};
  }
  mail_change change;
  return parse_publish_args(args, change);
}

std::vector<std::string> publish_args(const mail_change& change) {
  return {change.mailbox, change.folder, change.event, change.detail};
}

bool publish_from_args(const std::vector<std::string>& args, mail_change& change) {
  if (args.size() != 4)
    return false;
  change.mailbox = args[0];
  change.folder = args[1];
  change.event = args[2];
  change.detail = args[3];
  return true;
}

std::string describe_change(const mail_change& change) {
  return change.origin + "#" + std::to_string(change.sequence) + " " + change.event + " " +
         change.mailbox + " " + change.folder;
}

// -- mail_change_outbox -------------------------------------------------------

mail_change_outbox::mail_change_outbox(std::string path, std::string origin, uint64_t limit)
    : path_(std::move(path)), origin_(std::move(origin)), limit_(std::max<uint64_t>(limit, 1)) {
  // Nothing else: load() reads or creates the state.
}

void mail_change_outbox::start_epoch() {
  std::random_device source;
  do {
    epoch_ = (static_cast<uint64_t>(source()) << 32) | source();
  } while (epoch_ == 0);
  next_ = 1;
  pending_.clear();
}

std::string mail_change_outbox::load() {
  std::string text;
  if (!read_whole_file(path_, text)) {
    start_epoch();
    return save();
  }
  std::string problem;
  try {
    auto doc = nlohmann::json::parse(text);
    if (doc.at("format").get<std::string>() != outbox_format || doc.at("version").get<int>() != 1)
      problem = "unknown format or version";
    else if (doc.at("origin").get<std::string>() != origin_)
      problem = "written by node '" + doc.at("origin").get<std::string>() + "'";
    if (problem.empty()) {
      epoch_ = doc.at("epoch").get<uint64_t>();
      next_ = doc.at("next_sequence").get<uint64_t>();
      pending_.clear();
      for (auto& entry : doc.at("pending"))
        pending_.push_back(change_from_json(entry));
    }
  } catch (const std::exception& error) {
    problem = error.what();
  }
  if (problem.empty())
    return {};
  // Keep the unreadable file for the operator and start a fresh stream.
  boost::system::error_code ec;
  boost::filesystem::rename(path_, path_ + ".corrupt", ec);
  start_epoch();
  auto saved = save();
  return "cannot use the mail change queue " + path_ + " (" + problem + "); moved it to " + path_ +
         ".corrupt and started a new queue; changes still in it are not sent" +
         (saved.empty() ? "" : "; " + saved);
}

std::string mail_change_outbox::save() const {
  nlohmann::json pending = nlohmann::json::array();
  for (auto& change : pending_)
    pending.push_back(to_json(change));
  nlohmann::json doc = {{"format", outbox_format}, {"version", 1},
                        {"origin", origin_},       {"epoch", epoch_},
                        {"next_sequence", next_},  {"pending", std::move(pending)}};
  return write_file_durably(path_, doc.dump() + "\n");
}

std::string mail_change_outbox::add(mail_change& change, int64_t time_ms, bool keep) {
  change.origin = origin_;
  change.epoch = epoch_;
  change.sequence = next_;
  change.time_ms = time_ms;
  ++next_;
  if (keep)
    pending_.push_back(change);
  auto error = save();
  if (!error.empty()) {
    --next_;
    if (keep)
      pending_.pop_back();
  }
  return error;
}

std::string mail_change_outbox::acknowledge(uint64_t epoch, uint64_t sequence, size_t& removed) {
  removed = 0;
  if (epoch != epoch_)
    return {};
  while (!pending_.empty() && pending_.front().sequence <= sequence) {
    pending_.pop_front();
    ++removed;
  }
  return removed > 0 ? save() : std::string{};
}

// -- mail_change_dedup --------------------------------------------------------

mail_change_dedup::mail_change_dedup(std::string path) : path_(std::move(path)) {
  // Nothing else: load() reads the file.
}

std::string mail_change_dedup::load() {
  std::string text;
  if (path_.empty() || !read_whole_file(path_, text))
    return {};
  try {
    auto doc = nlohmann::json::parse(text);
    if (doc.at("format").get<std::string>() != dedup_format || doc.at("version").get<int>() != 1)
      return "ignored " + path_ + ": unknown format or version";
    for (auto& [origin, entry] : doc.at("origins").items())
      seen_[origin] = {entry.at("epoch").get<uint64_t>(), entry.at("sequence").get<uint64_t>()};
  } catch (const std::exception& error) {
    seen_.clear();
    return "ignored " + path_ + ": " + error.what() +
           "; changes that secondaries resend now may reach the other nodes twice";
  }
  return {};
}

bool mail_change_dedup::is_new(const mail_change& change) const {
  auto i = seen_.find(change.origin);
  return i == seen_.end() || i->second.epoch != change.epoch ||
         change.sequence > i->second.sequence;
}

void mail_change_dedup::record(const mail_change& change) {
  seen_[change.origin] = {change.epoch, change.sequence};
}

std::string mail_change_dedup::save() const {
  if (path_.empty())
    return {};
  nlohmann::json origins = nlohmann::json::object();
  for (auto& [origin, position] : seen_)
    origins[origin] = {{"epoch", position.epoch}, {"sequence", position.sequence}};
  nlohmann::json doc = {{"format", dedup_format}, {"version", 1}, {"origins", std::move(origins)}};
  return write_file_durably(path_, doc.dump() + "\n");
}

// -- mail_watchers ------------------------------------------------------------

void mail_watchers::add(caf::event_based_actor* self, const caf::actor& watcher) {
  if (watchers_.emplace(watcher.address(), watcher).second)
    self->monitor(watcher);
}

bool mail_watchers::remove(const caf::actor_addr& source) {
  return watchers_.erase(source) > 0;
}

void mail_watchers::deliver(caf::event_based_actor* self, const mail_change& change) const {
  for (auto& [address, watcher] : watchers_)
    self->send(watcher, mail_change_msg{change});
}

} // namespace mc
