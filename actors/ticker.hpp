// A small scheduled actor that sends tick_atom to a target every interval
// for as long as the target lives.
//
// Detached actors use it instead of delayed_send. CAF 0.17 keeps a strong
// reference to the receiver of every pending delayed message, and at
// shutdown the actor system waits for each detached actor to be destroyed.
// One pending timer of a detached actor therefore made the node hang on
// exit. The ticker keeps only a weak reference to its target.
#pragma once

#include "caf/actor.hpp"
#include "caf/actor_addr.hpp"
#include "caf/behavior.hpp"
#include "caf/event_based_actor.hpp"
#include "caf/timespan.hpp"

namespace mc {

caf::behavior ticker(caf::event_based_actor* self, caf::actor_addr target, caf::timespan interval);

} // namespace mc
