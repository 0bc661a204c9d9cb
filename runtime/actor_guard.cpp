#include "runtime/actor_guard.hpp"

#include "caf/all.hpp"

#include "runtime/logging.hpp"

namespace mc {

namespace {

// Logs the first few occurrences of a kind of stray message, then every
// 1000th, so that a misbehaving peer cannot flood the cluster log.
bool should_log(uint64_t count) {
  return count <= 5 || count % 1000 == 0;
}

} // namespace

void guard_actor(caf::scheduled_actor* self, const char* component) {
  auto unexpected = std::make_shared<uint64_t>(0);
  self->set_default_handler(
    [=](caf::scheduled_actor* actor, caf::message_view& view) -> caf::result<caf::message> {
      ++*unexpected;
      if (should_log(*unexpected))
        log::get(component)->warn("{} dropped an unexpected message: content={} count={}",
                                  actor->name(), caf::to_string(view.copy_content_to_message()),
                                  *unexpected);
      // A delegated result sends no reply: an error reply would make the
      // sender quit, and an empty one could bounce back and forth.
      return caf::delegated<caf::message>{};
    });
  auto errors = std::make_shared<uint64_t>(0);
  self->set_error_handler([=](caf::scheduled_actor* actor, caf::error& err) {
    ++*errors;
    if (should_log(*errors))
      log::get(component)->warn("{} ignored an error message: error={} count={}", actor->name(),
                                actor->system().render(err), *errors);
  });
}

} // namespace mc
