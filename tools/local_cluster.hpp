// `mailclusterctl init-local-cluster`: writes a complete cluster for one
// machine (a CA, one certificate, role config and state directory per node)
// so that every feature can be tried on loopback.
#pragma once

#include <cstdint>
#include <string>

namespace mc {

struct local_cluster_options {
  std::string dir;
  int nodes = 3;
  /// Cluster port of node i is base_port + i - 1; its admin port is
  /// base_port + 100 + i - 1.
  uint16_t base_port = 4700;
  std::string cluster_name = "local";
};

/// Creates the cluster in options.dir. Returns "" or an error naming the
/// file or option.
std::string init_local_cluster(const local_cluster_options& options);

/// Adds a secondary called `name` to a cluster made by init_local_cluster():
/// its certificate from the cluster CA in `dir`/ca, its role config and
/// state directory, with the next free admin port. It still has to be
/// registered with add-server on the primary. Returns "" or the reason.
std::string add_local_node(const std::string& dir, const std::string& name);

/// Returns the name of node `index` (1-based): mx1, mx2, ...
std::string local_node_name(int index);

} // namespace mc
