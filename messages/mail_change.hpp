// Messages of the mail change relay. A node that publishes a change to a
// mailbox (flags, moves, deletes) sends it to the primary's relay, which
// forwards it to the relay of every other node. Each relay sends the
// changes that reach it to the local `mailclusterctl mail-change watch`
// processes. See docs/protocol.md, "Mail change relay".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/meta/type_name.hpp"

namespace mc {

/// One change to mail, as published on its origin node.
struct mail_change {
  /// Node where the change was published.
  std::string origin;
  /// Random number drawn when the origin's mail change queue file was
  /// created. A node whose state directory was wiped starts a new epoch, so
  /// its sequence numbers that restart at 1 are not taken for duplicates.
  uint64_t epoch = 0;
  /// Position in the origin's stream of changes: 1, 2, 3, ... per epoch.
  uint64_t sequence = 0;
  /// Wall-clock time of the publish on the origin, milliseconds since the
  /// Unix epoch.
  int64_t time_ms = 0;
  /// Mail address of the mailbox, e.g. "frank@example.com".
  std::string mailbox;
  /// Folder inside the mailbox, e.g. "INBOX" or "Archive/2024".
  std::string folder;
  /// One of mail_change_events (actors/mail_relay.hpp), e.g. "flags".
  std::string event;
  /// Free text for the event, e.g. the new flags or the target folder.
  std::string detail;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_change& x) {
  return f(caf::meta::type_name("mail_change"), x.origin, x.epoch, x.sequence, x.time_ms, x.mailbox,
           x.folder, x.event, x.detail);
}

/// primary relay -> secondary relay, and any relay -> a local watcher: a
/// change to show. One-way.
struct mail_change_msg {
  mail_change change;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_change_msg& x) {
  return f(caf::meta::type_name("mail_change_msg"), x.change);
}

/// primary relay -> secondary relay, after the secondary's service_hello
/// reached it: "send your changes to me". One-way.
struct mail_relay_ready_msg {
  std::string primary_node;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_relay_ready_msg& x) {
  return f(caf::meta::type_name("mail_relay_ready_msg"), x.primary_node);
}

/// secondary relay -> primary relay: the oldest changes of the secondary's
/// queue, in sequence order, all with origin `node`. Answered with a
/// mail_change_forward_response once the primary forwarded them.
struct mail_change_forward_request {
  std::string node;
  std::vector<mail_change> changes;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_change_forward_request& x) {
  return f(caf::meta::type_name("mail_change_forward_request"), x.node, x.changes);
}

/// primary relay -> secondary relay: every change of `epoch` up to and
/// including `sequence` is forwarded (or was a duplicate); the secondary
/// removes them from its queue.
struct mail_change_forward_response {
  uint64_t epoch = 0;
  uint64_t sequence = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_change_forward_response& x) {
  return f(caf::meta::type_name("mail_change_forward_response"), x.epoch, x.sequence);
}

/// mailclusterctl -> admin endpoint -> relay: send me every change that
/// reaches this node from now on, until I disconnect. Answered with a
/// mail_watch_response.
struct mail_watch_request {
  /// Unused; CAF cannot serialize an empty struct in 0.17.
  uint8_t reserved = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_watch_request& x) {
  return f(caf::meta::type_name("mail_watch_request"), x.reserved);
}

/// relay -> mailclusterctl: the watch is active.
struct mail_watch_response {
  std::string node;
  /// The relay that sends the changes; the watcher monitors it to notice a
  /// restart of the relay.
  caf::actor relay;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_watch_response& x) {
  return f(caf::meta::type_name("mail_watch_response"), x.node, x.relay);
}

} // namespace mc
