#include "tools/local_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/filesystem.hpp>

#include "actors/primary_membership.hpp"
#include "runtime/config.hpp"
#include "runtime/node_context.hpp"
#include "runtime/registry.hpp"
#include "runtime/tls.hpp"

namespace mc {

namespace fs = boost::filesystem;

namespace {

std::string node_ini(const local_cluster_options& options, const std::string& name, int index,
                     const fs::path& node_dir, const fs::path& ca_file) {
  auto cluster_port = options.base_port + index - 1;
  auto admin_port = options.base_port + 100 + index - 1;
  auto primary_port = options.base_port;
  std::string out;
  out += "; Role config of " + name + ", written by mailclusterctl.\n";
  out += "; config/primary.ini and config/secondary.ini explain every option.\n\n";
  out += "[cluster]\n";
  out += "name = \"" + options.cluster_name + "\"\n";
  out += "node = \"" + name + "\"\n";
  if (index == 1) {
    out += "role = \"primary\"\n";
    out += "listen = \"127.0.0.1:" + std::to_string(cluster_port) + "\"\n";
  } else {
    out += "role = \"secondary\"\n";
    out += "primary = \"127.0.0.1:" + std::to_string(primary_port) + "\"\n";
  }
  out += "registration-key = \"" + tls::hex_encode(tls::random_bytes(16)) + "\"\n";
  out += "heartbeat-interval = 200ms\n";
  out += "failure-timeout = 1s\n\n";
  out += "[admin]\n";
  out += "listen = \"127.0.0.1:" + std::to_string(admin_port) + "\"\n\n";
  out += "[storage]\n";
  out += "state-dir = \"" + (node_dir / "state").string() + "\"\n\n";
  out += "[replication]\n";
  out += "config-dir = \"" + (node_dir / "config").string() + "\"\n\n";
  out += "[log]\n";
  out += "file = \"" + (node_dir / "cluster.log").string() + "\"\n";
  out += "level = \"info\"\n";
  out += "console = false\n\n";
  out += "[openssl]\n";
  out += "certificate = \"" + (node_dir / "tls" / "node.pem").string() + "\"\n";
  out += "key = \"" + (node_dir / "tls" / "node.key").string() + "\"\n";
  out += "cafile = \"" + ca_file.string() + "\"\n";
  return out;
}

std::string write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file.string());
  out << text;
  out.close();
  if (!out)
    return "cannot write '" + file.string() + "'";
  // The role config contains the registration key.
  boost::system::error_code ec;
  fs::permissions(file, fs::owner_read | fs::owner_write, ec);
  if (ec)
    return "cannot restrict access to '" + file.string() + "': " + ec.message();
  return {};
}

// Creates the directory, certificate and role config of one node.
std::string write_node(const local_cluster_options& options, const fs::path& root,
                       const std::string& name, int index) {
  boost::system::error_code ec;
  auto node_dir = root / name;
  fs::create_directories(node_dir / "tls", ec);
  if (!ec)
    fs::create_directories(node_dir / "state", ec);
  if (!ec)
    fs::create_directories(node_dir / "config", ec);
  if (ec)
    return "cannot create '" + node_dir.string() + "': " + ec.message();
  auto ca_file = root / "ca" / "ca.pem";
  auto ca_key = root / "ca" / "ca.key";
  tls::cert_options cert{name};
  auto made = tls::make_node_certificate(cert, ca_file.string(), ca_key.string(),
                                         (node_dir / "tls" / "node.pem").string(),
                                         (node_dir / "tls" / "node.key").string());
  if (!made.ok)
    return made.error;
  return write_text(node_dir / "node.ini", node_ini(options, name, index, node_dir, ca_file));
}

// Returns "" if a TCP socket can bind 127.0.0.1:`port` now, else the reason.
std::string check_port_free(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return std::string{"cannot create a socket: "} + std::strerror(errno);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address));
  auto bind_errno = errno;
  ::close(fd);
  if (rc != 0)
    return "port " + std::to_string(port) + " on 127.0.0.1 is not free (" +
           std::strerror(bind_errno) + "); choose another --base-port";
  return {};
}

} // namespace

std::string local_node_name(int index) {
  return "mx" + std::to_string(index);
}

std::string init_local_cluster(const local_cluster_options& options) {
  if (options.nodes < 2 || options.nodes > 50)
    return "--nodes " + std::to_string(options.nodes) +
           " is out of range: a cluster has 2 to 50 nodes";
  if (options.base_port < 1024 || options.base_port + 100 + options.nodes > 65535)
    return "--base-port " + std::to_string(options.base_port) + " is out of range: use 1024 to " +
           std::to_string(65535 - 100 - options.nodes);
  for (int i = 0; i < options.nodes; ++i) {
    for (int port : {options.base_port + i, options.base_port + 100 + i}) {
      if (auto error = check_port_free(port); !error.empty())
        return error;
    }
  }
  boost::system::error_code ec;
  auto root = fs::absolute(options.dir);
  if (fs::exists(root / local_node_name(1) / "node.ini", ec))
    return "'" + root.string() + "' already holds a cluster; choose an empty directory";
  fs::create_directories(root / "ca", ec);
  if (ec)
    return "cannot create '" + (root / "ca").string() + "': " + ec.message();
  auto ca_file = root / "ca" / "ca.pem";
  auto ca_key = root / "ca" / "ca.key";
  auto made =
    tls::make_ca({options.cluster_name + " cluster CA"}, ca_file.string(), ca_key.string());
  if (!made.ok)
    return made.error;
  server_registry registry(
    (root / local_node_name(1) / "state" / "registered-servers.json").string());
  for (int i = 1; i <= options.nodes; ++i) {
    auto name = local_node_name(i);
    if (auto error = write_node(options, root, name, i); !error.empty())
      return error;
    if (i > 1)
      registry.add(name, wall_clock_ms());
  }
  return registry.save();
}

std::string add_local_node(const std::string& dir, const std::string& name) {
  if (auto error = check_node_name(name); !error.empty())
    return error;
  boost::system::error_code ec;
  auto root = fs::absolute(dir);
  auto primary_file = root / local_node_name(1) / "node.ini";
  auto primary = load_node_config(primary_file.string());
  if (!primary.config)
    return "'" + root.string() + "' holds no cluster from init-local-cluster: " + primary.error;
  if (fs::exists(root / name, ec))
    return "'" + (root / name).string() + "' exists already; choose another node name";
  // The new node takes the next index after every node directory there.
  int index = 1;
  for (fs::directory_iterator i(root, ec), end; !ec && i != end; i.increment(ec))
    if (fs::exists(i->path() / "node.ini"))
      ++index;
  local_cluster_options options;
  options.dir = root.string();
  options.cluster_name = primary.config->cluster_name;
  options.base_port = primary.config->listen->port;
  if (options.base_port + 100 + index > 65535)
    return "no admin port left for node " + std::to_string(index);
  if (auto error = check_port_free(options.base_port + 100 + index - 1); !error.empty())
    return error;
  return write_node(options, root, name, index);
}

} // namespace mc
