#include "actors/admin_endpoint.hpp"

#include <set>

#include "caf/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/manager.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"

namespace mc {

namespace {

auto logger() {
  return log::get(log::admin);
}

caf::actor membership(caf::event_based_actor* self) {
  return caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
}

} // namespace

caf::behavior admin_endpoint(caf::event_based_actor* self, node_context_ptr context) {
  guard_actor(self, log::admin);
  auto address = context->config.admin_listen;
  auto manager = self->system().openssl_manager().actor_handle();
  self
    ->request(manager, context->config.request_timeout, caf::publish_atom::value, address.port,
              caf::actor_cast<caf::strong_actor_ptr>(self), std::set<std::string>{}, address.host,
              true)
    .then(
      [=](uint16_t actual) {
        logger()->info("admin endpoint listening: address={}:{}", address.host, actual);
        auto addr = self->address();
        self->attach_functor([manager, addr, actual] {
          caf::anon_send(manager, caf::unpublish_atom::value, addr, actual);
        });
      },
      [=](caf::error& err) {
        logger()->error("cannot listen on admin address {}: {}; check admin.listen and whether "
                        "another process uses the port",
                        to_string(address), describe_error(self->system(), err));
        self->quit(err);
      });
  return {
    [=](status_request& request) -> caf::result<caf::message> {
      auto target = membership(self);
      if (!target)
        return caf::make_error(caf::sec::runtime_error, "membership actor is restarting");
      return self->delegate(target, std::move(request));
    },
    [=](admin_command& command) -> caf::result<caf::message> {
      std::string args;
      for (auto& arg : command.args)
        args += " " + arg;
      logger()->info("admin command received: {}{} -> passing it to the membership actor",
                     command.verb, args);
      auto target = membership(self);
      if (!target)
        return caf::make_message(
          admin_result{1, "the membership service is restarting; try again in a second"});
      return self->delegate(target, std::move(command));
    },
  };
}

} // namespace mc
