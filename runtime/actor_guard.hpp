// Protection of an actor against messages it does not expect. CAF 0.17's
// defaults print unexpected messages to stdout and send an error back to
// the sender, and an actor that receives an unhandled error message quits.
// So one stray message between two nodes could stop a membership actor on
// the other node. Guarded actors log such messages and carry on.
#pragma once

#include "caf/fwd.hpp"

namespace mc {

/// Makes `self` log and drop unexpected messages (without replying) and log
/// error messages that no request handler took, instead of quitting.
/// `component` is the logger name (see runtime/logging.hpp).
void guard_actor(caf::scheduled_actor* self, const char* component);

} // namespace mc
