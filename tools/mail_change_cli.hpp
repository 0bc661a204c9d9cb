// `mailclusterctl mail-change publish|watch`: the client side of the mail
// change relay (actors/primary_relay.*, actors/secondary_relay.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "caf/fwd.hpp"
#include "caf/scoped_actor.hpp"

namespace mc {

/// Checks the words after `mail-change` before mailclusterctl connects.
/// Returns "" or a usage error that names the bad option and value.
std::string check_mail_change_command(const std::vector<std::string>& args);

/// Runs `mail-change ARGS...` against the node's admin endpoint `admin`.
/// `args` starts with "publish" or "watch" and passed
/// check_mail_change_command(). Returns the exit code: publish returns the
/// node's verdict; watch returns 1 when the node goes away and 0 after
/// SIGINT or SIGTERM.
int mail_change_command(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin,
                        const std::vector<std::string>& args, bool json,
                        std::chrono::milliseconds timeout);

} // namespace mc
