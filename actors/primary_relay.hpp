// Mail change relay of the primary. It takes each change a secondary's
// relay sends (mail_change_forward_request), drops the ones it has seen
// (by origin, epoch and sequence, kept in <state-dir>/mail-changes.seen),
// forwards the rest to the relay of every other online secondary and to
// the local watchers, and acknowledges the batch. Changes published on the
// primary itself go to every secondary. It learns the secondaries' relays
// from the membership actor (service_peer) and announces itself to each
// with mail_relay_ready_msg. It keeps the last forwarded changes in memory
// and replays the ones a secondary missed when its relay (re)connects, so
// a secondary that joins after another one's queue was drained still gets
// those changes. The supervisor spawns it detached, because it writes its
// files with fsync.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/stateful_actor.hpp"

#include "actors/mail_relay.hpp"
#include "runtime/node_context.hpp"

namespace mc {

/// A change the primary forwarded, kept for secondaries that missed it.
struct forwarded_change {
  mail_change change;
  /// Steady clock time of the forwarding, in milliseconds.
  int64_t forwarded_ms = 0;
};

struct primary_relay_state {
  node_context_ptr context;
  /// Epoch and next sequence number of the primary's own changes. Its
  /// queue stays empty, because the primary sends its changes at once.
  std::unique_ptr<mail_change_outbox> outbox;
  std::unique_ptr<mail_change_dedup> seen;
  mail_watchers watchers;
  /// Relay of each online secondary that said hello, by node name.
  std::map<std::string, caf::actor> peers;
  /// The last forwarded changes, oldest first, at most
  /// [mail-changes] queue-limit of them.
  std::deque<forwarded_change> history;
  /// Steady clock time, in milliseconds, when each secondary's relay went
  /// down. A secondary without an entry never connected to this process
  /// and gets the whole history when it connects.
  std::map<std::string, int64_t> left_ms;
  static inline const char* name = "primary_relay";
};

caf::behavior primary_relay(caf::stateful_actor<primary_relay_state>* self,
                            node_context_ptr context);

} // namespace mc
