// The facts about a node that every actor of the node needs. The context is
// built once at startup from the validated role config and never changed,
// so actors share it by const reference.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "runtime/config.hpp"

namespace mc {

struct node_context {
  node_config config;
  /// Version this node advertises in the join handshake.
  std::string version;
  /// Grows with each start of the node; persisted in the state directory.
  uint64_t incarnation = 0;
  /// The node's own certificate (PEM), sent in the join handshake.
  std::string certificate_pem;
  /// SHA-256 (hex) of the node's registration key.
  std::string key_digest;
};

using node_context_ptr = std::shared_ptr<const node_context>;

/// Returns the version this build advertises: MC_VERSION, unless the
/// environment variable MAILCLUSTER_TEST_ADVERTISE_VERSION overrides it
/// (integration tests use it to start a node of "another version").
std::string advertised_version();

/// Returns the wall-clock time in milliseconds since the Unix epoch.
int64_t wall_clock_ms();

/// Formats milliseconds since the Unix epoch as ISO 8601 UTC with
/// milliseconds, e.g. "2026-12-04T15:56:03.123Z".
std::string iso8601(int64_t epoch_ms);

} // namespace mc
