#include "runtime/describe_error.hpp"

#include "caf/actor_system.hpp"
#include "caf/error.hpp"
#include "caf/exit_reason.hpp"
#include "caf/sec.hpp"

namespace mc {

namespace {

struct description {
  const char* plain;
  const char* name;
};

description describe_sec(caf::sec code) {
  switch (code) {
  case caf::sec::cannot_connect_to_node:
    return {"connection refused or address unreachable", "cannot_connect_to_node"};
  case caf::sec::connection_timeout:
    return {"connection timed out", "connection_timeout"};
  case caf::sec::request_timeout:
    return {"no reply within the request timeout", "request_timeout"};
  case caf::sec::cannot_open_port:
    return {"cannot listen on the port (in use, or not allowed)", "cannot_open_port"};
  case caf::sec::disconnect_during_handshake:
    return {"the peer closed the connection during the handshake (certificate rejected?)",
            "disconnect_during_handshake"};
  case caf::sec::unexpected_message:
    return {"the peer does not understand the message (another version?)", "unexpected_message"};
  default:
    return {nullptr, nullptr};
  }
}

description describe_exit(caf::exit_reason code) {
  switch (code) {
  case caf::exit_reason::remote_link_unreachable:
    return {"connection closed", "remote_link_unreachable"};
  case caf::exit_reason::user_shutdown:
    return {"shut down", "user_shutdown"};
  case caf::exit_reason::kill:
    return {"killed", "kill"};
  default:
    return {nullptr, nullptr};
  }
}

} // namespace

std::string describe_error(caf::actor_system& system, const caf::error& err) {
  description known{nullptr, nullptr};
  // An empty error has no category, and asking an empty error for one
  // crashes CAF 0.17, so the categories come from non-empty errors.
  if (!err)
    return "no error";
  static const auto sec_category = caf::make_error(caf::sec::runtime_error).category();
  static const auto exit_category = caf::make_error(caf::exit_reason::kill).category();
  if (err.category() == sec_category)
    known = describe_sec(static_cast<caf::sec>(err.code()));
  else if (err.category() == exit_category)
    known = describe_exit(static_cast<caf::exit_reason>(err.code()));
  if (known.plain == nullptr)
    return system.render(err);
  return std::string{known.plain} + " [" + known.name + "]";
}

} // namespace mc
