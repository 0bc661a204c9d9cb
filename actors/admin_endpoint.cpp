#include "actors/admin_endpoint.hpp"

#include <set>

#include "caf/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/manager.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/mail_change.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"

namespace mc {

namespace {

constexpr auto replication_status_timeout = std::chrono::milliseconds(500);

auto logger() {
  return log::get(log::admin);
}

caf::actor membership(caf::event_based_actor* self) {
  return caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
}

caf::actor service(caf::event_based_actor* self, caf::atom_value key) {
  return caf::actor_cast<caf::actor>(self->system().registry().get(key));
}

// The actor that runs an admin command, by the command's verb, and its
// name for messages.
std::pair<caf::atom_value, const char*> command_owner(const std::string& verb) {
  if (verb.rfind("config-", 0) == 0)
    return {replication_key, "replication"};
  if (verb.rfind("mail-change-", 0) == 0)
    return {relay_key, "mail change relay"};
  return {membership_key, "membership"};
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
    [=](status_request& request) -> caf::result<node_status> {
      auto target = membership(self);
      if (!target)
        return caf::make_error(caf::sec::runtime_error, "membership actor is restarting");
      // Membership fills in the peers, replication its own fields.
      auto promise = self->make_response_promise<node_status>();
      auto timeout = context->config.request_timeout;
      self->request(target, timeout, std::move(request))
        .then(
          [=](node_status& status) mutable {
            auto replication = service(self, replication_key);
            if (!replication) {
              promise.deliver(std::move(status));
              return;
            }
            // The replication actor blocks while it scans, hashes or syncs,
            // so status then replies without its fields instead of timing out.
            self->request(replication, replication_status_timeout, fill_status_atom::value, status)
              .then([=](node_status& full) mutable { promise.deliver(std::move(full)); },
                    [=](caf::error&) mutable {
                      auto partial = status;
                      partial.replication.known = true;
                      partial.replication.state = "busy";
                      partial.replication.error =
                        "the replication service did not answer within 500 ms (scanning, "
                        "hashing or syncing); try again";
                      promise.deliver(std::move(partial));
                    });
          },
          [=](caf::error& err) mutable { promise.deliver(std::move(err)); });
      return promise;
    },
    // `mail-change watch`: the relay sends each change straight to the
    // requesting mailclusterctl, which delegation keeps as the sender.
    [=](mail_watch_request& request) -> caf::result<caf::message> {
      auto target = service(self, relay_key);
      if (!target)
        return caf::make_error(caf::sec::runtime_error,
                               "the mail change relay is restarting; try again in a second");
      logger()->info("mail change watch requested -> passing it to the mail change relay actor");
      return self->delegate(target, std::move(request));
    },
    [=](admin_command& command) -> caf::result<caf::message> {
      std::string args;
      for (auto& arg : command.args)
        args += " " + arg;
      auto [key, owner] = command_owner(command.verb);
      // Content of config put is not logged: it may be long or secret.
      if (command.verb == "config-put" && !command.args.empty())
        args = " " + command.args[0] + " (" +
               std::to_string(command.args.size() > 1 ? command.args[1].size() : 0) + " bytes)";
      logger()->info("admin command received: {}{} -> passing it to the {} actor", command.verb,
                     args, owner);
      auto target = service(self, key);
      if (!target)
        return caf::make_message(admin_result{
          1, std::string("the ") + owner + " service is restarting; try again in a second"});
      return self->delegate(target, std::move(command));
    },
  };
}

} // namespace mc
