#include "tools/mail_change_cli.hpp"

#include <signal.h>

#include <chrono>
#include <csignal>
#include <iostream>
#include <optional>

#include <nlohmann/json.hpp>

#include "caf/all.hpp"

#include "actors/mail_relay.hpp"
#include "messages/admin.hpp"
#include "messages/mail_change.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/node_context.hpp"

namespace mc {

namespace {

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

/// How often the watch loop checks for a stop signal.
constexpr auto poll_interval = std::chrono::milliseconds(100);
/// A relay that went down is asked again after this long, unless the admin
/// endpoint went down too (the whole node stopped).
constexpr auto resubscribe_delay = std::chrono::milliseconds(500);

volatile std::sig_atomic_t stop_signal = 0;

extern "C" void on_stop_signal(int signal_number) {
  stop_signal = signal_number;
}

// Makes SIGINT and SIGTERM set stop_signal instead of ending the process,
// in every thread (CAF's threads run already).
void catch_stop_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
}

void print_change(const mail_change& change, const std::string& node, bool json) {
  if (json) {
    nlohmann::json doc = {{"node", node},
                          {"origin", change.origin},
                          {"epoch", change.epoch},
                          {"sequence", change.sequence},
                          {"time", iso8601(change.time_ms)},
                          {"time_ms", change.time_ms},
                          {"mailbox", change.mailbox},
                          {"folder", change.folder},
                          {"event", change.event},
                          {"detail", change.detail}};
    std::cout << doc.dump() << std::endl;
    return;
  }
  // Folder and detail may contain spaces, so they are quoted JSON strings.
  std::cout << iso8601(change.time_ms) << " origin=" << change.origin
            << " sequence=" << change.sequence << " event=" << change.event
            << " mailbox=" << change.mailbox << " folder=" << nlohmann::json(change.folder).dump()
            << " detail=" << nlohmann::json(change.detail).dump() << std::endl;
}

int publish(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin,
            const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
  mail_change change;
  if (auto error = parse_publish_args(args, change); !error.empty()) {
    std::cerr << "mailclusterctl: " << error << "\n";
    return exit_usage;
  }
  int result = exit_failed;
  self->request(admin, timeout, admin_command{"mail-change-publish", publish_args(change)})
    .receive(
      [&](const admin_result& answer) {
        if (answer.exit_code == 0)
          std::cout << answer.message << "\n";
        else
          std::cerr << "mailclusterctl: " << answer.message << "\n";
        result = answer.exit_code;
      },
      [&](caf::error& err) {
        std::cerr << "mailclusterctl: mail-change publish failed: " << describe_error(system, err)
                  << "; the change may or may not have been published\n";
      });
  return result;
}

// Asks the node for a watch. Returns the relay, or an invalid handle after
// printing why not.
caf::actor subscribe(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin,
                     std::chrono::milliseconds timeout, std::string& node) {
  caf::actor relay;
  self->request(admin, timeout, mail_watch_request{})
    .receive(
      [&](mail_watch_response& response) {
        relay = response.relay;
        node = response.node;
      },
      [&](caf::error& err) {
        std::cerr << "mailclusterctl: cannot watch mail changes: " << describe_error(system, err)
                  << "\n";
      });
  return relay;
}

int watch(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin, bool json,
          std::chrono::milliseconds timeout) {
  catch_stop_signals();
  self->monitor(admin);
  std::string node;
  auto relay = subscribe(system, self, admin, timeout, node);
  if (!relay)
    return exit_failed;
  self->monitor(relay);
  std::cerr << "mailclusterctl: watching mail changes on node " << node << "; stop with Ctrl-C"
            << std::endl;
  std::optional<std::chrono::steady_clock::time_point> relay_lost_at;
  int result = -1;
  while (result < 0) {
    if (stop_signal != 0) {
      result = 0;
      break;
    }
    self->receive([&](mail_change_msg& msg) { print_change(msg.change, node, json); },
                  [&](caf::down_msg& down) {
                    if (down.source == admin.address()) {
                      std::cerr << "mailclusterctl: node " << node << " went away ("
                                << describe_error(system, down.reason) << "); stopped watching"
                                << std::endl;
                      result = exit_failed;
                    } else if (relay && down.source == relay.address()) {
                      relay = caf::actor{};
                      relay_lost_at = std::chrono::steady_clock::now();
                    }
                  },
                  caf::after(poll_interval) >> [] {});
    if (result < 0 && relay_lost_at &&
        std::chrono::steady_clock::now() - *relay_lost_at >= resubscribe_delay) {
      relay = subscribe(system, self, admin, timeout, node);
      if (relay) {
        self->monitor(relay);
        relay_lost_at.reset();
        std::cerr << "mailclusterctl: the mail change relay of node " << node
                  << " restarted; changes that reached it meanwhile are not shown; watching again"
                  << std::endl;
      } else {
        relay_lost_at = std::chrono::steady_clock::now();
      }
    }
  }
  return result;
}

} // namespace

std::string check_mail_change_command(const std::vector<std::string>& args) {
  return check_mail_change_args(args);
}

int mail_change_command(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin,
                        const std::vector<std::string>& args, bool json,
                        std::chrono::milliseconds timeout) {
  if (!args.empty() && args[0] == "watch")
    return watch(system, self, admin, json, timeout);
  return publish(system, self, admin, args, timeout);
}

} // namespace mc
