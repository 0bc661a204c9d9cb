#include "runtime/registry.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <boost/filesystem.hpp>
#include <nlohmann/json.hpp>

namespace mc {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

} // namespace

std::string write_file_durably(const std::string& path, const std::string& content) {
  auto tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return "cannot create '" + tmp + "': " + errno_text();
  const char* data = content.data();
  size_t left = content.size();
  while (left > 0) {
    auto n = ::write(fd, data, left);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      auto error = "cannot write '" + tmp + "': " + errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      return error;
    }
    data += n;
    left -= static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    auto error = "cannot sync '" + tmp + "' to disk: " + errno_text();
    ::close(fd);
    ::unlink(tmp.c_str());
    return error;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    auto error = "cannot rename '" + tmp + "' to '" + path + "': " + errno_text();
    ::unlink(tmp.c_str());
    return error;
  }

  // The rename is durable only once the directory entry is on disk.
  auto dir = boost::filesystem::path(path).parent_path().string();
  int dir_fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return {};
}

server_registry::server_registry(std::string file) : file_(std::move(file)) {
  // nop
}

std::string server_registry::load() {
  servers_.clear();
  std::ifstream in(file_);
  if (!in) {
    if (errno == ENOENT)
      return {};
    return "cannot read registered servers file '" + file_ + "': " + errno_text();
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    auto doc = nlohmann::json::parse(buffer.str());
    for (auto& entry : doc.at("servers")) {
      registered_server server;
      server.name = entry.at("name").get<std::string>();
      server.key_digest = entry.value("key_sha256", "");
      server.joined = entry.value("joined", false);
      server.added_ms = entry.value("added_ms", int64_t{0});
      servers_.push_back(std::move(server));
    }
  } catch (const nlohmann::json::exception& ex) {
    servers_.clear();
    return "registered servers file '" + file_ + "' is damaged (" + ex.what() +
           "); restore it from a backup or delete it and run add-server again";
  }
  return {};
}

std::string server_registry::save() const {
  nlohmann::json list = nlohmann::json::array();
  for (auto& server : servers_)
    list.push_back({{"name", server.name},
                    {"key_sha256", server.key_digest},
                    {"joined", server.joined},
                    {"added_ms", server.added_ms}});
  nlohmann::json doc = {{"format", 1}, {"servers", list}};
  return write_file_durably(file_, doc.dump(2) + "\n");
}

const registered_server* server_registry::find(const std::string& name) const {
  for (auto& server : servers_)
    if (server.name == name)
      return &server;
  return nullptr;
}

std::optional<std::string> server_registry::owner_of_key(const std::string& key_digest) const {
  for (auto& server : servers_)
    if (!server.key_digest.empty() && server.key_digest == key_digest)
      return server.name;
  return std::nullopt;
}

bool server_registry::add(const std::string& name, int64_t now_ms) {
  if (find(name) != nullptr)
    return false;
  servers_.push_back(registered_server{name, {}, false, now_ms});
  return true;
}

bool server_registry::remove(const std::string& name) {
  for (auto i = servers_.begin(); i != servers_.end(); ++i) {
    if (i->name == name) {
      servers_.erase(i);
      return true;
    }
  }
  return false;
}

void server_registry::mark_joined(const std::string& name, const std::string& key_digest) {
  for (auto& server : servers_) {
    if (server.name == name) {
      server.joined = true;
      server.key_digest = key_digest;
    }
  }
}

} // namespace mc
