// Registration of every message type with CAF. Both ends of a connection
// must register the same types, so mailclusterd, mailclusterctl and the
// tests all call this one function.
#pragma once

#include "caf/fwd.hpp"

namespace mc {

/// Adds every mailcluster message type to `config`.
void register_message_types(caf::actor_system_config& config);

} // namespace mc
