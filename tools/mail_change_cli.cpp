#include "tools/mail_change_cli.hpp"

#include <iostream>

#include "caf/all.hpp"

namespace mc {

int mail_change_command(caf::actor_system&, caf::scoped_actor&, const caf::actor&,
                        const std::vector<std::string>&, bool, std::chrono::milliseconds) {
  // Placeholder until the relay lands; see actors/mail_relay.*.
  std::cerr << "mailclusterctl: mail-change is not available in this build yet\n";
  return 1;
}

} // namespace mc
