// Plain-language descriptions of the CAF errors that operators see in the
// cluster log, in status and in mailclusterctl's messages.
#pragma once

#include <string>

#include "caf/fwd.hpp"

namespace mc {

/// Returns what `err` means in plain words, followed by CAF's name for it
/// in brackets (e.g. "connection closed [remote_link_unreachable]"), or
/// CAF's full rendering for errors without a description.
std::string describe_error(caf::actor_system& system, const caf::error& err);

} // namespace mc
