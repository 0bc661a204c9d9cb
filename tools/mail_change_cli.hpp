// `mailclusterctl mail-change publish|watch`: the client side of the mail
// change relay (actors/mail_relay.*).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "caf/fwd.hpp"
#include "caf/scoped_actor.hpp"

namespace mc {

/// Runs `mail-change ARGS...` against the node's admin endpoint `admin`.
/// `args` starts with "publish" or "watch". Returns the exit code; watch
/// returns only when the node goes away.
int mail_change_command(caf::actor_system& system, caf::scoped_actor& self, const caf::actor& admin,
                        const std::vector<std::string>& args, bool json,
                        std::chrono::milliseconds timeout);

} // namespace mc
