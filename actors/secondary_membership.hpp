// Membership actor of a secondary. Connects to the configured primary over
// TLS, proves its identity and joins; then exchanges heartbeats and watches
// the primary's proxy. Publishes peer events on membership_events(), keeps
// the primary's roster for status, and rejects admin commands that change
// cluster state. Spawned and restarted by the node's supervisor.
//
//   connecting --accepted--> joined --down_msg / silence / rejoin_msg--> connecting
//       |   ^
//       v   | retry after the refusal delay
//     rejected
#pragma once

#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/group.hpp"
#include "caf/stateful_actor.hpp"

#include "actors/primary_membership.hpp"
#include "messages/membership.hpp"
#include "runtime/node_context.hpp"

namespace mc {

enum class secondary_phase { connecting, joined, rejected };

struct secondary_state {
  node_context_ptr context;
  secondary_phase phase = secondary_phase::connecting;
  /// True while a connect or handshake request is outstanding; at most one
  /// join attempt runs at a time.
  bool attempt_in_flight = false;
  /// The primary's membership actor while joined.
  caf::actor primary;
  /// Proxy of a primary that went down. CAF may return this cached dead
  /// proxy right after a down_msg; such a result is retried.
  caf::actor dead_primary;
  /// The primary's node name, once learned from a handshake.
  std::string primary_node;
  bool primary_online = false;
  int64_t primary_since_ms = 0;
  steady_time last_heard;
  bool heard_once = false;
  caf::timespan backoff{0};
  /// Reason the last join attempt failed; empty while joined.
  std::string join_error;
  /// The last failure written to the log, so that retries log once per change.
  std::string logged_error;
  std::vector<member_info> roster;
  uint64_t heartbeat_sequence = 0;
  /// When the last tick ran; a much later tick means this node was stalled.
  steady_time last_tick;
  /// Consecutive connects that failed with CAF's connection_timeout.
  int connect_timeouts = 0;
  caf::group events;
  static inline const char* name = "secondary_membership";
};

caf::behavior secondary_membership(caf::stateful_actor<secondary_state>* self,
                                   node_context_ptr context);

} // namespace mc
