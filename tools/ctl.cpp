#include "tools/ctl.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "caf/all.hpp"
#include "caf/io/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/all.hpp"

#include "messages/admin.hpp"
#include "runtime/config.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/node.hpp"
#include "runtime/node_context.hpp"
#include "runtime/tls.hpp"
#include "tools/local_cluster.hpp"
#include "tools/mail_change_cli.hpp"

namespace mc {

namespace {

constexpr const char* usage =
  "usage: mailclusterctl init-local-cluster DIR --nodes N [--base-port P] [--cluster NAME]\n"
  "       mailclusterctl add-local-node DIR NAME\n"
  "       mailclusterctl --config-file=PATH status [--json]\n"
  "       mailclusterctl --config-file=PATH add-server NAME\n"
  "       mailclusterctl --config-file=PATH remove-server NAME\n"
  "       mailclusterctl --config-file=PATH config list|get PATH|delete PATH\n"
  "       mailclusterctl --config-file=PATH config put PATH [--from FILE]   (stdin without "
  "--from)\n"
  "       mailclusterctl --config-file=PATH mail-change publish --mailbox ADDR --folder NAME\n"
  "                                         --event KIND [--detail TEXT]\n"
  "       mailclusterctl --config-file=PATH mail-change watch [--json]\n"
  "         (KIND: append, copy, move, flags, delete, expunge, folder-create,\n"
  "          folder-delete, folder-rename)\n"
  "\n"
  "--config-file names the role config of the node to talk to; mailclusterctl\n"
  "connects to its admin endpoint (admin.listen) with the node's TLS files.\n"
  "--timeout=MS sets the time allowed to connect and to get an answer (default 3000).\n";

constexpr int exit_failed = 1;
constexpr int exit_usage = 2;

struct ctl_args {
  std::string config_file;
  int timeout_ms = 3000;
  bool json = false;
  std::vector<std::string> words;
};

int fail_usage(const std::string& message) {
  std::cerr << "mailclusterctl: " << message << "\n" << usage;
  return exit_usage;
}

bool parse_int(const std::string& text, int& out) {
  try {
    size_t used = 0;
    out = std::stoi(text, &used);
    return used == text.size();
  } catch (const std::exception&) {
    return false;
  }
}

int init_local(const std::vector<std::string>& words) {
  local_cluster_options options;
  for (size_t i = 1; i < words.size(); ++i) {
    auto& word = words[i];
    auto value = [&](std::string& out) {
      if (i + 1 >= words.size())
        return false;
      out = words[++i];
      return true;
    };
    std::string text;
    if (word == "--nodes") {
      if (!value(text) || !parse_int(text, options.nodes))
        return fail_usage("--nodes needs a number of nodes, e.g. --nodes 3");
    } else if (word == "--base-port") {
      int port = 0;
      if (!value(text) || !parse_int(text, port) || port <= 0 || port > 65535)
        return fail_usage("--base-port needs a TCP port, e.g. --base-port 4700");
      options.base_port = static_cast<uint16_t>(port);
    } else if (word == "--cluster") {
      if (!value(options.cluster_name))
        return fail_usage("--cluster needs a cluster name");
    } else if (options.dir.empty() && word.rfind("--", 0) != 0) {
      options.dir = word;
    } else {
      return fail_usage("unknown argument '" + word + "' for init-local-cluster");
    }
  }
  if (options.dir.empty())
    return fail_usage("init-local-cluster needs a directory");
  if (auto error = init_local_cluster(options); !error.empty()) {
    std::cerr << "mailclusterctl: init-local-cluster: " << error << "\n";
    return exit_failed;
  }
  std::cout << "wrote a " << options.nodes << "-node cluster '" << options.cluster_name << "' to "
            << options.dir << "\n";
  for (int i = 1; i <= options.nodes; ++i)
    std::cout << "  mailclusterd --config-file=" << options.dir << "/" << local_node_name(i)
              << "/node.ini" << (i == 1 ? "   (primary)" : "") << "\n";
  return 0;
}

int add_local(const std::vector<std::string>& words) {
  if (words.size() != 3)
    return fail_usage("add-local-node needs the cluster directory and a node name");
  auto& dir = words[1];
  auto& name = words[2];
  if (auto error = add_local_node(dir, name); !error.empty()) {
    std::cerr << "mailclusterctl: add-local-node: " << error << "\n";
    return exit_failed;
  }
  std::cout << "wrote node " << name << " to " << dir << "/" << name << "\n"
            << "register it on the primary, then start it:\n"
            << "  mailclusterctl --config-file=" << dir << "/" << local_node_name(1)
            << "/node.ini add-server " << name << "\n"
            << "  mailclusterd --config-file=" << dir << "/" << name << "/node.ini\n";
  return 0;
}

std::string format_since(int64_t since_ms) {
  return since_ms > 0 ? iso8601(since_ms) : std::string{"-"};
}

nlohmann::json replication_json(const replication_status& r) {
  if (!r.known)
    return nullptr;
  return {{"applied_generation", r.applied_generation},
          {"primary_generation", r.primary_generation},
          {"lag_generations", r.lag_generations},
          {"lag_ms", r.lag_ms},
          {"pending_files", r.pending_files},
          {"pending_bytes", r.pending_bytes},
          {"last_job_ms", r.last_job_ms >= 0 ? nlohmann::json(r.last_job_ms) : nullptr},
          {"files", r.files},
          {"bytes", r.bytes},
          {"unsafe_paths_refused", r.unsafe_paths_refused},
          {"state", r.state},
          {"error", r.error}};
}

nlohmann::json status_json(const node_status& status) {
  nlohmann::json peers = nlohmann::json::array();
  for (auto& peer : status.peers) {
    nlohmann::json entry = {{"node", peer.node},
                            {"role", peer.role},
                            {"state", peer.state},
                            {"observed_by", peer.observed_by},
                            {"detail", peer.detail}};
    entry["since"] = peer.since_ms > 0 ? nlohmann::json(iso8601(peer.since_ms)) : nullptr;
    entry["last_heartbeat_ms"] =
      peer.last_heartbeat_ms >= 0 ? nlohmann::json(peer.last_heartbeat_ms) : nullptr;
    entry["replication"] = replication_json(peer.replication);
    peers.push_back(std::move(entry));
  }
  nlohmann::json doc = {
    {"cluster", status.cluster},
    {"node", status.node},
    {"role", status.role},
    {"version", status.version},
    {"incarnation", status.incarnation},
    {"join_state", status.join_state},
    {"join_error", status.join_error},
    {"primary", {{"node", status.primary_node}, {"address", status.primary_address}}},
    {"peers", peers},
    {"config_dir", status.config_dir},
    {"replication", replication_json(status.replication)}};
  if (status.role == "primary")
    doc["registered"] = status.registered;
  return doc;
}

std::string replication_line(const replication_status& r) {
  if (!r.known)
    return "no report yet";
  std::string line = "generation " + std::to_string(r.applied_generation);
  if (r.lag_generations > 0)
    line +=
      ", behind by " + std::to_string(r.lag_generations) + " (" + std::to_string(r.lag_ms) + " ms)";
  line += ", " + r.state;
  if (r.pending_files > 0 || r.pending_bytes > 0)
    line += ", pending " + std::to_string(r.pending_files) + " files / " +
            std::to_string(r.pending_bytes) + " bytes";
  if (r.last_job_ms >= 0)
    line += ", last job " + std::to_string(r.last_job_ms) + " ms";
  if (r.unsafe_paths_refused > 0)
    line += ", " + std::to_string(r.unsafe_paths_refused) + " unsafe paths refused";
  if (!r.error.empty())
    line += "; error: " + r.error;
  return line;
}

void print_replication_table(const node_status& status) {
  std::cout << "\nConfiguration directory: " << status.config_dir << "\n";
  std::cout << "  " << status.node << ": " << replication_line(status.replication) << ", "
            << status.replication.files << " files, " << status.replication.bytes << " bytes\n";
  for (auto& peer : status.peers)
    if (peer.replication.known)
      std::cout << "  " << peer.node << ": " << replication_line(peer.replication) << "\n";
}

void print_status_table(const node_status& status) {
  std::cout << "Cluster " << status.cluster << ": node " << status.node << " (" << status.role
            << "), version " << status.version << ", incarnation " << status.incarnation << ", "
            << status.join_state << "\n";
  if (!status.join_error.empty())
    std::cout << "Last join error: " << status.join_error << "\n";
  // Wide enough for the longest name, because a primary that never replied
  // is listed by its address.
  size_t node_width = std::max<size_t>(12, status.node.size());
  for (auto& peer : status.peers)
    node_width = std::max(node_width, peer.node.size());
  auto node_column = static_cast<int>(node_width + 2);
  std::cout << "\n"
            << std::left << std::setw(node_column) << "NODE" << std::setw(11) << "ROLE"
            << std::setw(9) << "STATE" << std::setw(26) << "SINCE" << std::setw(16)
            << "LAST HEARTBEAT"
            << "DETAIL\n";
  std::cout << std::setw(node_column) << status.node << std::setw(11) << status.role << std::setw(9)
            << "online" << std::setw(26) << "-" << std::setw(16) << "-"
            << "this node\n";
  for (auto& peer : status.peers) {
    auto heartbeat =
      peer.last_heartbeat_ms >= 0 ? std::to_string(peer.last_heartbeat_ms) + " ms" : "-";
    auto detail = peer.detail;
    if (peer.observed_by != status.node && !peer.observed_by.empty())
      detail = "as seen by " + peer.observed_by + (detail.empty() ? "" : "; " + detail);
    std::cout << std::setw(node_column) << peer.node << std::setw(11) << peer.role << std::setw(9)
              << peer.state << std::setw(26) << format_since(peer.since_ms) << std::setw(16)
              << heartbeat << detail << "\n";
  }
  print_replication_table(status);
}

int send_command(caf::actor_system& system, const ctl_args& args, const node_config& config,
                 const admin_command& command);

// Turns `config list|get|put|delete ...` into the node's admin verbs
// config-list, config-get, config-put (with the content as the second
// argument) and config-delete. Returns "" or a usage error.
std::string make_config_command(admin_command& command) {
  auto& args = command.args;
  if (args.empty())
    return "config needs list, get PATH, put PATH [--from FILE] or delete PATH";
  auto sub = args[0];
  args.erase(args.begin());
  command.verb = "config-" + sub;
  if (sub == "list")
    return args.empty() ? "" : "config list takes no arguments";
  if ((sub == "get" || sub == "delete") && args.size() != 1)
    return "config " + sub + " needs exactly one PATH, relative to the configuration directory";
  if (sub == "get" || sub == "delete")
    return {};
  if (sub != "put")
    return "unknown config command '" + sub + "'; use list, get, put or delete";
  std::string from;
  if (args.size() == 3 && args[1] == "--from")
    from = args[2];
  else if (args.size() != 1)
    return "config put needs PATH [--from FILE]";
  std::string content;
  if (from.empty()) {
    content.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(from, std::ios::binary);
    if (!in)
      return "cannot read --from file '" + from + "': " + std::strerror(errno);
    content.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  args = {args[0], content};
  return {};
}

// Connects to the node's admin endpoint and runs one command; the whole
// exchange is bounded by args.timeout_ms. Ends the process.
int talk_to_node(const ctl_args& args) {
  auto loaded = load_node_config(args.config_file);
  if (!loaded.config) {
    std::cerr << "mailclusterctl: " << loaded.error << "\n";
    return exit_usage;
  }
  auto& config = *loaded.config;
  auto credentials =
    tls::check_credentials(config.certificate, config.key, config.passphrase, config.cafile);
  if (!credentials.ok) {
    std::cerr << "mailclusterctl: " << config.file << ": [openssl] " << credentials.error << "\n";
    return exit_usage;
  }
  auto& verb = args.words[0];
  admin_command command{verb, {args.words.begin() + 1, args.words.end()}};
  if (verb == "status" && !command.args.empty())
    return fail_usage("status takes no arguments");
  if ((verb == "add-server" || verb == "remove-server") && command.args.size() != 1)
    return fail_usage(verb + " needs exactly one node name");
  if (verb == "config") {
    if (auto error = make_config_command(command); !error.empty())
      return fail_usage(error);
  } else if (verb == "mail-change") {
    if (auto error = check_mail_change_command(command.args); !error.empty())
      return fail_usage(error);
  } else if (verb != "status" && verb != "add-server" && verb != "remove-server") {
    return fail_usage("unknown command '" + verb + "'");
  }

  caf::actor_system_config cfg;
  configure_actor_system(cfg, config);
  caf::actor_system system{cfg};
  auto result = send_command(system, args, config, command);
  // Skip the actor system's shutdown: after a timed-out connect to a hung
  // node, CAF's middleman would wait for that connect without a limit.
  std::cout.flush();
  std::cerr.flush();
  std::_Exit(result);
}

int send_command(caf::actor_system& system, const ctl_args& args, const node_config& config,
                 const admin_command& command) {
  auto& verb = command.verb;
  caf::scoped_actor self{system};
  auto timeout = std::chrono::milliseconds(args.timeout_ms);
  auto target = to_string(config.admin_listen);
  auto unreachable = [&](const std::string& why) {
    std::cerr << "mailclusterctl: cannot reach the admin endpoint of node " << config.node_name
              << " at " << target << ": " << why << "; is mailclusterd running with " << config.file
              << "?\n";
    return exit_failed;
  };
  // A hung node accepts TCP but never completes the TLS handshake, and CAF
  // would spin a core while waiting for it. Probe it first without CAF.
  auto probe =
    tls::probe_handshake(config.admin_listen.host, config.admin_listen.port, config.certificate,
                         config.key, config.passphrase, config.cafile, args.timeout_ms);
  if (!probe.ok)
    return unreachable(probe.error);
  caf::actor admin;
  std::string connect_error;
  auto manager = system.openssl_manager().actor_handle();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  // CAF can close a new connection with connection_timeout during the TLS
  // handshake when its heartbeat tick comes first, so such failures are
  // retried until the deadline.
  for (bool retry = true; retry;) {
    retry = false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      break;
    self
      ->request(manager, left, caf::connect_atom::value, config.admin_listen.host,
                config.admin_listen.port)
      .receive([&](const caf::node_id&, caf::strong_actor_ptr& ptr,
                   const std::set<std::string>&) { admin = caf::actor_cast<caf::actor>(ptr); },
               [&](caf::error& err) {
                 connect_error = describe_error(system, err);
                 if (err == caf::sec::connection_timeout) {
                   retry = true;
                   std::this_thread::sleep_for(std::chrono::milliseconds(50));
                 }
               });
  }
  if (!admin)
    return unreachable(connect_error.empty() ? "no admin endpoint at that address" : connect_error);
  int result = 0;
  if (verb == "status") {
    self->request(admin, timeout, status_request{})
      .receive(
        [&](const node_status& status) {
          if (args.json)
            std::cout << status_json(status).dump(2) << "\n";
          else
            print_status_table(status);
        },
        [&](caf::error& err) {
          result = unreachable("status failed: " + describe_error(system, err));
        });
  } else if (verb == "mail-change") {
    result = mail_change_command(system, self, admin, command.args, args.json, timeout);
  } else {
    self->request(admin, timeout, command)
      .receive(
        [&](const admin_result& answer) {
          // File content and listings go out exactly as they are.
          if (answer.exit_code == 0 && (verb == "config-get" || verb == "config-list"))
            std::cout << answer.message;
          else
            (answer.exit_code == 0 ? std::cout : std::cerr)
              << (answer.exit_code == 0 ? "" : "mailclusterctl: ") << answer.message << "\n";
          result = answer.exit_code;
        },
        [&](caf::error& err) {
          result = unreachable(verb + " failed: " + describe_error(system, err));
        });
  }
  return result;
}

} // namespace

int run_ctl(int argc, char** argv) {
  ctl_args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--config-file=", 0) == 0) {
      args.config_file = arg.substr(14);
    } else if (arg == "--config-file" && i + 1 < argc) {
      args.config_file = argv[++i];
    } else if (arg.rfind("--timeout=", 0) == 0) {
      if (!parse_int(arg.substr(10), args.timeout_ms) || args.timeout_ms <= 0)
        return fail_usage("--timeout needs a positive number of milliseconds");
    } else if (arg == "--json") {
      args.json = true;
    } else if (arg == "--help" || arg == "-h") {
      std::cout << usage;
      return 0;
    } else {
      args.words.push_back(arg);
    }
  }
  if (args.words.empty())
    return fail_usage("missing command");
  if (args.words[0] == "init-local-cluster")
    return init_local(args.words);
  if (args.words[0] == "add-local-node")
    return add_local(args.words);
  if (args.config_file.empty())
    return fail_usage("'" + args.words[0] + "' needs --config-file=PATH of a node's role config");
  return talk_to_node(args);
}

} // namespace mc
