// mailclusterctl, the operator's tool: local cluster setup, and commands
// sent to a node's admin endpoint (loopback, TLS with the node's own
// credentials from its role config).
#pragma once

namespace mc {

/// Runs mailclusterctl; returns its exit code (0 done, 1 failed or
/// rejected, 2 bad usage or config).
int run_ctl(int argc, char** argv);

} // namespace mc
