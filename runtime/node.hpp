// Startup and shutdown of mailclusterd: command line, config validation,
// TLS checks, state directory, logging, the actor system and the
// supervisor with the node's actors.
#pragma once

#include <functional>
#include <string>

#include "caf/actor.hpp"

#include "caf/fwd.hpp"

#include "runtime/node_context.hpp"

namespace mc {

/// Exit codes of mailclusterd.
enum exit_code : int {
  exit_ok = 0,
  /// The node ran and stopped because of a failure (restart limit reached).
  exit_failure = 1,
  /// Bad command line, config, TLS files or state directory; nothing started.
  exit_bad_config = 2,
};

/// Replacements for a node's actors. Only test programs set them (see
/// tests/tools/rogue_primary.cpp); mailclusterd runs with the defaults.
struct node_hooks {
  /// Spawns the primary's replication actor instead of the real one.
  std::function<caf::actor(caf::actor_system&, node_context_ptr)> primary_replication;
};

/// Runs mailclusterd until SIGINT or SIGTERM; returns the exit code.
int run_node(int argc, char** argv, const node_hooks& hooks = {});

/// Applies the settings that CAF needs (TLS files, middleman heartbeats) and
/// registers every message type.
void configure_actor_system(caf::actor_system_config& cfg, const node_config& config);

} // namespace mc
