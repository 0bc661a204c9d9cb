#include "runtime/node.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/filesystem.hpp>

#include "caf/all.hpp"
#include "caf/io/all.hpp"
#include "caf/openssl/all.hpp"

#include "actors/admin_endpoint.hpp"
#include "actors/primary_membership.hpp"
#include "actors/primary_relay.hpp"
#include "actors/primary_replication.hpp"
#include "actors/secondary_membership.hpp"
#include "actors/secondary_relay.hpp"
#include "actors/secondary_replication.hpp"
#include "messages/atoms.hpp"
#include "messages/register.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"
#include "runtime/registry.hpp"
#include "runtime/supervisor.hpp"
#include "runtime/tls.hpp"

namespace mc {

namespace {

constexpr const char* usage = "usage: mailclusterd --config-file=PATH [--check-config]\n"
                              "       mailclusterd --version\n";

struct command_line {
  std::string config_file;
  bool check_only = false;
  bool show_version = false;
  bool show_help = false;
  std::string error;
};

command_line parse_command_line(int argc, char** argv) {
  command_line result;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--config-file=", 0) == 0)
      result.config_file = arg.substr(std::strlen("--config-file="));
    else if (arg == "--config-file" && i + 1 < argc)
      result.config_file = argv[++i];
    else if (arg == "--check-config")
      result.check_only = true;
    else if (arg == "--version")
      result.show_version = true;
    else if (arg == "--help" || arg == "-h")
      result.show_help = true;
    else
      result.error = "unknown argument '" + arg + "'";
  }
  if (result.error.empty() && result.config_file.empty() && !result.show_version &&
      !result.show_help)
    result.error = "missing --config-file=PATH";
  return result;
}

// Increments and stores the node's incarnation number, so that peers can
// tell a restarted process from the old one.
uint64_t next_incarnation(const std::string& state_dir, std::string& error) {
  auto file = state_dir + "/incarnation";
  uint64_t previous = 0;
  std::ifstream in(file);
  if (in)
    in >> previous;
  auto next = previous + 1;
  error = write_file_durably(file, std::to_string(next) + "\n");
  return next;
}

std::string prepare_state_dir(const std::string& dir) {
  boost::system::error_code ec;
  boost::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create state directory '" + dir +
           "' (option 'storage.state-dir'): " + ec.message();
  auto probe = dir + "/.write-test";
  std::ofstream out(probe);
  if (!out)
    return "state directory '" + dir +
           "' (option 'storage.state-dir') is not writable: " + std::strerror(errno);
  out.close();
  boost::filesystem::remove(probe, ec);
  return {};
}

// Takes an exclusive lock on <state-dir>/mailclusterd.lock for the life of
// the process and writes the process id into it. Returns "" or the reason.
std::string lock_state_dir(const std::string& dir) {
  auto file = dir + "/mailclusterd.lock";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return "cannot open lock file '" + file + "': " + std::strerror(errno);
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char owner[32] = {};
    auto n = ::pread(fd, owner, sizeof(owner) - 1, 0);
    std::string pid = n > 0 ? std::string(owner, static_cast<size_t>(n)) : "unknown";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' '))
      pid.pop_back();
    ::close(fd);
    return "another mailclusterd (pid " + pid + ") already runs with state directory '" + dir +
           "'; stop it first or use another storage.state-dir";
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0)
    return "cannot write lock file '" + file + "': " + std::strerror(errno);
  // The descriptor stays open on purpose: closing it would release the lock.
  return {};
}

// Startup checks that need no actor system. Returns the context or prints
// one error and returns nullptr.
node_context_ptr prepare(const std::string& config_file) {
  auto loaded = load_node_config(config_file);
  if (!loaded.config) {
    std::cerr << "mailclusterd: " << loaded.error << "\n";
    return nullptr;
  }
  auto& config = *loaded.config;
  auto credentials =
    tls::check_credentials(config.certificate, config.key, config.passphrase, config.cafile);
  if (!credentials.ok) {
    std::cerr << "mailclusterd: " << config.file << ": [openssl] " << credentials.error << "\n";
    return nullptr;
  }
  auto context = std::make_shared<node_context>();
  context->config = config;
  context->version = advertised_version();
  context->key_digest = tls::sha256_hex(config.registration_key);
  if (auto read = tls::read_file(config.certificate, context->certificate_pem); !read.ok) {
    std::cerr << "mailclusterd: " << read.error << "\n";
    return nullptr;
  }
  auto cn = tls::common_name(context->certificate_pem);
  // Integration tests set this to start a node that claims another node's
  // name, to check that the primary rejects it.
  bool test_allow_mismatch = std::getenv("MAILCLUSTER_TEST_ALLOW_NAME_MISMATCH") != nullptr;
  if (cn != config.node_name && !test_allow_mismatch) {
    std::cerr << "mailclusterd: " << config.file << ": option 'openssl.certificate' names '"
              << config.certificate << "', whose subject common name is '" << cn
              << "', but cluster.node is '" << config.node_name
              << "'; use the certificate issued for this node\n";
    return nullptr;
  }
  return context;
}

std::vector<child_spec> node_children(node_context_ptr context, const node_hooks& hooks) {
  std::vector<child_spec> children;
  children.push_back({"membership", [context](caf::actor_system& system) {
                        caf::actor member;
                        if (context->config.role == node_role::primary)
                          member = system.spawn(primary_membership, context, membership_options{});
                        else
                          member = system.spawn(secondary_membership, context);
                        system.registry().put(membership_key,
                                              caf::actor_cast<caf::strong_actor_ptr>(member));
                        return member;
                      }});
  // Replication scans, hashes and writes files in its handlers, so it runs
  // on a thread of its own instead of blocking a scheduler worker.
  children.push_back({"replication", [context, hooks](caf::actor_system& system) {
                        caf::actor replication;
                        if (context->config.role == node_role::primary && hooks.primary_replication)
                          replication = hooks.primary_replication(system, context);
                        else if (context->config.role == node_role::primary)
                          replication = system.spawn<caf::detached>(primary_replication, context);
                        else
                          replication = system.spawn<caf::detached>(secondary_replication, context);
                        system.registry().put(replication_key,
                                              caf::actor_cast<caf::strong_actor_ptr>(replication));
                        return replication;
                      }});
  // The mail change relay writes its queue with fsync on every publish, so
  // it also runs on a thread of its own.
  children.push_back({"relay", [context](caf::actor_system& system) {
                        caf::actor relay;
                        if (context->config.role == node_role::primary)
                          relay = system.spawn<caf::detached>(primary_relay, context);
                        else
                          relay = system.spawn<caf::detached>(secondary_relay, context);
                        system.registry().put(relay_key,
                                              caf::actor_cast<caf::strong_actor_ptr>(relay));
                        return relay;
                      }});
  children.push_back({"admin", [context](caf::actor_system& system) {
                        return system.spawn(admin_endpoint, context);
                      }});
  return children;
}

} // namespace

void configure_actor_system(caf::actor_system_config& cfg, const node_config& config) {
  cfg.load<caf::io::middleman>();
  cfg.load<caf::openssl::manager>();
  register_message_types(cfg);
  // Setting these turns on mutual TLS verification in caf_openssl; without
  // them it would fall back to anonymous TLS.
  cfg.openssl_certificate = config.certificate;
  cfg.openssl_key = config.key;
  cfg.openssl_passphrase = config.passphrase;
  cfg.openssl_cafile = config.cafile;
  // Without middleman heartbeats a hung peer (SIGSTOP) keeps its TCP
  // connection open and is never reported by a down_msg. CAF checks the
  // connection timeout once per middleman heartbeat. Membership heartbeats
  // already keep cluster links busy every heartbeat interval, so a quarter
  // of the failure timeout is often enough and costs less CPU.
  auto middleman_heartbeat = std::max(config.heartbeat_interval, config.failure_timeout / 4);
  cfg.set("middleman.heartbeat-interval", caf::timespan{middleman_heartbeat});
  cfg.set("middleman.connection-timeout", caf::timespan{config.failure_timeout});
  // The work-stealing scheduler's workers poll while idle: on 2 cores an
  // idle node used 4-7 % of a core with it and under 1 % with the sharing
  // policy (bench/membership). Cluster control traffic is light, so the
  // lower throughput of the sharing policy does not matter here.
  cfg.set("scheduler.policy", caf::atom("sharing"));
}

int run_node(int argc, char** argv, const node_hooks& hooks) {
  // Block the stop signals before any thread starts (spdlog's flusher, CAF's
  // workers), because threads inherit the mask. One thread of ours waits
  // for them with sigwait().
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto args = parse_command_line(argc, argv);
  if (args.show_help) {
    std::cout << usage;
    return exit_ok;
  }
  if (args.show_version) {
    std::cout << "mailclusterd " << MC_VERSION << "\n";
    return exit_ok;
  }
  if (!args.error.empty()) {
    std::cerr << "mailclusterd: " << args.error << "\n" << usage;
    return exit_bad_config;
  }
  auto context = prepare(args.config_file);
  if (!context)
    return exit_bad_config;
  auto& config = context->config;
  if (args.check_only) {
    std::cout << "mailclusterd: " << config.file << ": configuration is valid\n";
    return exit_ok;
  }
  if (auto error = prepare_state_dir(config.state_dir); !error.empty()) {
    std::cerr << "mailclusterd: " << config.file << ": " << error << "\n";
    return exit_bad_config;
  }
  // Held until the process exits, before the log or the incarnation is
  // touched, so a second start with the same config changes nothing.
  if (auto error = lock_state_dir(config.state_dir); !error.empty()) {
    std::cerr << "mailclusterd: " << config.file << ": " << error << "\n";
    return exit_bad_config;
  }
  log::log_settings settings{config.log_file, config.log_level, config.log_max_size,
                             config.log_max_files, config.log_console};
  boost::system::error_code ec;
  boost::filesystem::create_directories(boost::filesystem::path(config.log_file).parent_path(), ec);
  if (auto error = log::init(settings); !error.empty()) {
    std::cerr << "mailclusterd: " << config.file << ": option 'log.file': " << error << "\n";
    return exit_bad_config;
  }
  std::string incarnation_error;
  auto mutable_context = std::const_pointer_cast<node_context>(context);
  mutable_context->incarnation = next_incarnation(config.state_dir, incarnation_error);
  if (!incarnation_error.empty()) {
    std::cerr << "mailclusterd: " << incarnation_error << "\n";
    return exit_bad_config;
  }
  auto lg = log::get(log::node);
  if (context->version != MC_VERSION)
    lg->warn("advertising version {} instead of {} (MAILCLUSTER_TEST_ADVERTISE_VERSION is set; "
             "for tests only)",
             context->version, MC_VERSION);
  lg->info("mailclusterd {} starting: role={} cluster={} version={} incarnation={} config={}",
           config.node_name, to_string(config.role), config.cluster_name, context->version,
           context->incarnation, config.file);

  int result = exit_ok;
  {
    caf::actor_system_config cfg;
    configure_actor_system(cfg, config);
    caf::actor_system system{cfg};
    auto root = system.spawn(supervisor, node_children(context, hooks), restart_policy{});
    std::atomic<bool> node_stopped{false};
    std::thread signal_waiter([&node_stopped, root, stop_signals, lg] {
      int signal_number = 0;
      sigwait(&stop_signals, &signal_number);
      if (node_stopped)
        return;
      lg->info("received signal {}: shutting down", strsignal(signal_number));
      caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    });
    caf::scoped_actor waiter{system};
    waiter->monitor(root);
    waiter->receive([&](caf::down_msg& msg) {
      if (msg.reason == caf::exit_reason::user_shutdown) {
        lg->info("mailclusterd {} stopped", config.node_name);
      } else {
        auto reason = describe_gave_up(msg.reason);
        if (reason.empty())
          reason = describe_error(system, msg.reason);
        lg->error("mailclusterd {} stopping after a failure: {}", config.node_name, reason);
        // The log may go to a file only, so write the reason to stderr too.
        std::cerr << "mailclusterd: node " << config.node_name
                  << " stopped after a failure: " << reason << "; see " << config.log_file << "\n";
        result = exit_failure;
      }
    });
    // Wake the signal thread if the node stopped on its own.
    node_stopped = true;
    pthread_kill(signal_waiter.native_handle(), SIGTERM);
    signal_waiter.join();
    system.registry().erase(membership_key);
    system.registry().erase(replication_key);
    system.registry().erase(relay_key);
  }
  log::shutdown();
  return result;
}

} // namespace mc
