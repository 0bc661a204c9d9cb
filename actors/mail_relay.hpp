// Parts of the mail change relay that both relay actors
// (actors/primary_relay.*, actors/secondary_relay.*) and mailclusterctl
// use: the documented event kinds and input checks, the persisted outbox of
// a node's own changes, duplicate detection by origin, epoch and sequence,
// and the set of local watchers. None of this is an actor.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_addr.hpp"
#include "caf/fwd.hpp"

#include "messages/mail_change.hpp"

namespace mc {

/// Event kinds a mail change may carry, in the order the docs list them:
/// append, copy, move, flags, delete, expunge, folder-create,
/// folder-delete, folder-rename.
const std::vector<std::string>& mail_change_events();

/// Longest accepted values, in bytes. 320 is the longest mail address that
/// RFC 5321 allows (64 for the local part, 255 for the domain, one '@').
constexpr size_t max_mailbox_bytes = 320;
constexpr size_t max_folder_bytes = 1024;
constexpr size_t max_detail_bytes = 4096;

/// Checks the user-given fields of `change`. Returns "" or an error that
/// names the option (--mailbox, --folder, --event, --detail), the value and
/// what is expected.
std::string check_mail_change(const mail_change& change);

/// Parses the words after `mail-change` for a publish: "publish" followed
/// by --mailbox ADDR --folder NAME --event KIND [--detail TEXT], each also
/// as --option=VALUE. Fills the user-given fields of `change` and returns
/// "" or an error for the operator.
std::string parse_publish_args(const std::vector<std::string>& args, mail_change& change);

/// Checks the words after `mail-change` ("publish ..." or "watch") before
/// mailclusterctl connects. Returns "" or an error for the operator.
std::string check_mail_change_args(const std::vector<std::string>& args);

/// Returns the admin_command arguments of a publish: mailbox, folder,
/// event, detail. The relay reads them back with publish_from_args().
std::vector<std::string> publish_args(const mail_change& change);

/// Fills the user-given fields of `change` from publish_args() output.
/// Returns false when the number of arguments is wrong.
bool publish_from_args(const std::vector<std::string>& args, mail_change& change);

/// Returns "mx2#5 flags frank@example.com INBOX" for log lines.
std::string describe_change(const mail_change& change);

/// The changes a node published and the primary has not acknowledged yet,
/// with the node's epoch and next sequence number, kept in one JSON file
/// that is rewritten atomically and durably on every change.
/// NOTE: every add and acknowledgement rewrites the whole file, so a full
/// queue of 10000 changes costs about 2 MB of writes per publish.
class mail_change_outbox {
public:
  /// `limit` is the most changes `pending()` may hold (at least 1).
  mail_change_outbox(std::string path, std::string origin, uint64_t limit);

  /// Reads the file, or starts a new epoch when there is none. A file that
  /// cannot be parsed, or that belongs to another node name, is renamed to
  /// PATH.corrupt and a new epoch starts. Returns "" or a warning for the
  /// log; the outbox is usable either way.
  std::string load();

  /// Stamps `change` with the origin, the epoch, the next sequence number
  /// and `time_ms`, saves the file and, when `keep`, appends the change to
  /// the queue. Returns "" or an error; on an error nothing changed.
  std::string add(mail_change& change, int64_t time_ms, bool keep);

  /// Removes the queued changes of `epoch` up to and including `sequence`
  /// and saves the file when any were removed. Returns "" or an error;
  /// `removed` counts the removed changes, which stay removed in memory
  /// even when the save fails.
  std::string acknowledge(uint64_t epoch, uint64_t sequence, size_t& removed);

  bool full() const { return pending_.size() >= limit_; }
  uint64_t limit() const { return limit_; }
  uint64_t epoch() const { return epoch_; }
  uint64_t next_sequence() const { return next_; }
  const std::deque<mail_change>& pending() const { return pending_; }
  const std::string& path() const { return path_; }

private:
  std::string save() const;
  void start_epoch();

  std::string path_;
  std::string origin_;
  uint64_t limit_;
  uint64_t epoch_ = 0;
  uint64_t next_ = 1;
  std::deque<mail_change> pending_;
};

/// The newest sequence number seen from each origin and epoch, to drop
/// changes that arrive twice (a secondary resends what was not
/// acknowledged before a reconnect). With an empty path it lives in memory
/// only.
class mail_change_dedup {
public:
  explicit mail_change_dedup(std::string path = {});

  /// Reads the file if there is one. Returns "" or a warning for the log.
  std::string load();

  /// Returns true if `change` is newer than everything seen from its origin
  /// in its epoch, or starts a new epoch of that origin.
  bool is_new(const mail_change& change) const;

  /// Records `change` as seen.
  void record(const mail_change& change);

  /// Writes the file atomically and durably (no-op without a path).
  /// Returns "" or an error.
  std::string save() const;

private:
  struct position {
    uint64_t epoch = 0;
    uint64_t sequence = 0;
  };

  std::string path_;
  std::map<std::string, position> seen_;
};

/// The local `mail-change watch` processes of one relay. Each is monitored,
/// and the relay's down handler calls remove() when one exits.
class mail_watchers {
public:
  void add(caf::event_based_actor* self, const caf::actor& watcher);

  /// Returns true if `source` was a watcher.
  bool remove(const caf::actor_addr& source);

  void deliver(caf::event_based_actor* self, const mail_change& change) const;

  size_t size() const { return watchers_.size(); }

private:
  std::map<caf::actor_addr, caf::actor> watchers_;
};

} // namespace mc
