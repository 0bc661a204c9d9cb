#include "actors/ticker.hpp"

#include "caf/all.hpp"

#include "messages/atoms.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/logging.hpp"

namespace mc {

caf::behavior ticker(caf::event_based_actor* self, caf::actor_addr target, caf::timespan interval) {
  guard_actor(self, log::node);
  self->delayed_send(self, interval, tick_atom::value);
  return {
    [=](tick_atom) {
      auto receiver = caf::actor_cast<caf::actor>(target);
      if (!receiver) {
        self->quit();
        return;
      }
      self->send(receiver, tick_atom::value);
      self->delayed_send(self, interval, tick_atom::value);
    },
  };
}

} // namespace mc
