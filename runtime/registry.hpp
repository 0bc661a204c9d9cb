// The primary's list of registered servers, persisted as JSON in its state
// directory so that it survives restarts. Only the membership actor of the
// primary uses it, so it needs no locking.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mc {

/// One secondary that may join the cluster.
struct registered_server {
  std::string name;
  /// SHA-256 (hex) of the registration key the node first joined with;
  /// empty until its first join. The key itself is never stored.
  std::string key_digest;
  /// False until the first join after add-server.
  bool joined = false;
  /// When add-server ran, milliseconds since the Unix epoch.
  int64_t added_ms = 0;
};

class server_registry {
public:
  /// Uses `file` for storage; call load() before anything else.
  explicit server_registry(std::string file);

  /// Reads the file; a missing file is an empty list. Returns "" or an error
  /// naming the file.
  std::string load();

  /// Writes the list atomically and durably (temporary file, fsync, rename,
  /// directory fsync). Returns "" or an error naming the file.
  std::string save() const;

  const registered_server* find(const std::string& name) const;

  /// Returns the name of the server bound to `key_digest`, if any.
  std::optional<std::string> owner_of_key(const std::string& key_digest) const;

  /// Adds a server; returns false if it is registered already.
  bool add(const std::string& name, int64_t now_ms);

  /// Removes a server; returns false if it was not registered.
  bool remove(const std::string& name);

  /// Records the first successful join of `name` with `key_digest`.
  void mark_joined(const std::string& name, const std::string& key_digest);

  const std::vector<registered_server>& servers() const { return servers_; }

  const std::string& file() const { return file_; }

private:
  std::string file_;
  std::vector<registered_server> servers_;
};

/// Writes `content` to `path` atomically and durably. Returns "" or an
/// error naming the file.
std::string write_file_durably(const std::string& path, const std::string& content);

} // namespace mc
