// The node's admin endpoint: published with TLS on the loopback admin
// address for mailclusterctl. Forwards status requests and admin commands
// to the running membership actor, which it looks up in the actor registry
// on every request because the supervisor may have restarted it. Spawned
// and restarted by the node's supervisor.
#pragma once

#include "caf/behavior.hpp"
#include "caf/event_based_actor.hpp"

#include "runtime/node_context.hpp"

namespace mc {

caf::behavior admin_endpoint(caf::event_based_actor* self, node_context_ptr context);

} // namespace mc
