// Mail change relay of a secondary. It owns the node's outbox
// (<state-dir>/mail-changes.queue): each `mail-change publish` is stamped
// with the next sequence number, saved durably, shown to the local
// watchers and sent to the primary's relay in order, a batch at a time;
// a change leaves the outbox only when the primary acknowledged it. While
// the primary is offline the outbox grows up to [mail-changes] queue-limit
// and publish fails beyond it. Changes the primary forwards from other
// nodes go to the local watchers. The supervisor spawns it detached,
// because every publish and acknowledgement writes the outbox with fsync.
//
//   waiting --mail_relay_ready_msg--> sending --primary relay down--> waiting
#pragma once

#include <memory>
#include <string>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/group.hpp"
#include "caf/stateful_actor.hpp"

#include "actors/mail_relay.hpp"
#include "runtime/node_context.hpp"

namespace mc {

struct secondary_relay_state {
  node_context_ptr context;
  std::unique_ptr<mail_change_outbox> outbox;
  /// Changes from other origins seen here, so a resend is shown once.
  mail_change_dedup seen;
  mail_watchers watchers;
  /// The primary's relay, once its mail_relay_ready_msg arrived.
  caf::actor primary;
  std::string primary_node;
  caf::group events;
  /// A mail_change_forward_request is in flight.
  bool sending = false;
  /// Grows with each new primary relay handle, so that the error of a
  /// request to an old handle does not touch the current one.
  uint64_t connection = 0;
  bool retry_pending = false;
  /// Failed forward requests in a row, for rate-limited warnings.
  uint64_t failures = 0;
  /// The outbox held changes while the primary was away; the drain is
  /// logged once it is empty.
  bool backlog = false;
  static inline const char* name = "secondary_relay";
};

caf::behavior secondary_relay(caf::stateful_actor<secondary_relay_state>* self,
                              node_context_ptr context);

} // namespace mc
