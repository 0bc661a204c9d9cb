// Membership actor of the primary. It owns the list of registered servers
// and the table of joined secondaries. It checks every join (cluster name,
// version, proof of identity, registration key, registration), sends and
// watches heartbeats, and publishes peer events on membership_events(). It
// also executes the admin commands that change membership (add-server,
// remove-server). The node's supervisor spawns and restarts it.
//
//   unknown --join accepted--> online --down_msg / silence / leave--> offline
//      ^                                                               |
//      +------------------------ join accepted <------------------------+
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "caf/actor.hpp"
#include "caf/behavior.hpp"
#include "caf/group.hpp"
#include "caf/stateful_actor.hpp"

#include "messages/admin.hpp"
#include "runtime/node_context.hpp"
#include "runtime/registry.hpp"

namespace mc {

using steady_time = caf::actor_clock::time_point;

/// A registered secondary in the primary's membership table.
struct member_entry {
  std::string node;
  uint64_t incarnation = 0;
  /// The secondary's membership actor while online, else invalid.
  caf::actor handle;
  bool online = false;
  int64_t since_ms = 0;
  steady_time last_heard;
  /// Reason for the last offline state or rejection.
  std::string detail;
  /// The member's service actors by service name, from service_hello;
  /// cleared when the member goes offline.
  std::map<std::string, caf::actor> services;
};

/// A nonce handed out by a challenge_response, valid once until `expires`.
struct pending_challenge {
  std::string nonce;
  steady_time expires;
};

struct primary_state {
  node_context_ptr context;
  std::unique_ptr<server_registry> registry;
  std::map<std::string, member_entry> members;
  std::map<std::string, pending_challenge> challenges;
  /// Last rejection reason logged per node name, so retries log once.
  std::map<std::string, std::string> last_rejection;
  uint64_t heartbeat_sequence = 0;
  /// When the last tick ran; a much later tick means this node was stalled.
  steady_time last_tick;
  caf::group events;
  static inline const char* name = "primary_membership";
};

/// Switches for tests: the deterministic test coordinator has no network.
struct membership_options {
  /// Publish the actor on the configured cluster address.
  bool publish = true;
};

caf::behavior primary_membership(caf::stateful_actor<primary_state>* self, node_context_ptr context,
                                 membership_options options);

/// Returns how long this node itself was stalled (paused, or starved of
/// CPU) if the tick at `now` comes more than half the failure timeout after
/// the previous one at `last_tick`, else zero. Peers are not to blame for
/// silence during such a stall.
caf::timespan local_stall(steady_time last_tick, steady_time now, caf::timespan failure_timeout);

/// Records a tick at `now` in `last_tick` and returns local_stall() for it.
caf::timespan record_tick(steady_time& last_tick, steady_time now, caf::timespan failure_timeout);

/// Returns a node_status with this node's own fields filled in (cluster,
/// node, role, version, incarnation), for either role's status reply.
node_status status_header(const node_context& context);

/// Returns an error sentence if `name` is not a valid node name, else "".
std::string check_node_name(const std::string& name);

} // namespace mc
