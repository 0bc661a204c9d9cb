// The node's supervisor: spawns each child actor, monitors it and restarts
// it when it fails, with exponential backoff. A child that fails more than
// `max_restarts` times within `window` stops the node: the supervisor
// quits with supervisor_gave_up, and mailclusterd exits non-zero.
// On an exit message from outside (shutdown) it stops every child with the
// same reason and quits.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/actor_clock.hpp"
#include "caf/behavior.hpp"
#include "caf/stateful_actor.hpp"

namespace mc {

/// A child of the supervisor: a name for the log and a function that
/// spawns a fresh instance.
struct child_spec {
  std::string name;
  std::function<caf::actor(caf::actor_system&)> spawn;
};

struct restart_policy {
  caf::timespan initial_backoff = std::chrono::milliseconds(100);
  caf::timespan max_backoff = std::chrono::seconds(5);
  /// Failures of one child tolerated within `window`; one more stops the node.
  size_t max_restarts = 5;
  caf::timespan window = std::chrono::seconds(60);
};

struct supervisor_state {
  std::vector<child_spec> children;
  restart_policy policy;
  /// Running instance per child name; absent while a restart is pending.
  std::map<std::string, caf::actor> running;
  /// Failure times per child name within the current window.
  std::map<std::string, std::deque<caf::actor_clock::time_point>> failures;
  bool stopping = false;
  static inline const char* name = "supervisor";
};

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self,
                         std::vector<child_spec> children, restart_policy policy);

/// Exit reason of a supervisor that hit the restart limit; its context
/// names the child and its last failure.
caf::error supervisor_gave_up(const std::string& child, const std::string& last_failure);

/// Returns a sentence for an exit reason from supervisor_gave_up(), else "".
std::string describe_gave_up(const caf::error& reason);

/// Returns true if `reason` came from supervisor_gave_up().
bool is_supervisor_gave_up(const caf::error& reason);

} // namespace mc
