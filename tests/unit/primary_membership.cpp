#define CAF_SUITE primary_membership
#include "caf/test/dsl.hpp"

#include <fstream>

#include <boost/filesystem.hpp>

#include "actors/primary_membership.hpp"
#include "messages/admin.hpp"
#include "messages/events.hpp"
#include "messages/membership.hpp"
#include "runtime/registry.hpp"
#include "runtime/tls.hpp"

using namespace mc;
namespace fs = boost::filesystem;

namespace {

constexpr auto heartbeat = std::chrono::milliseconds(100);
constexpr auto failure_timeout = std::chrono::milliseconds(1000);

// A member actor standing in for a remote secondary: it ignores heartbeats
// and rosters from the primary.
caf::behavior fake_member() {
  return {
    [](const heartbeat_msg&) {},
    [](const roster_msg&) {},
    [](const rejoin_msg&) {},
  };
}

// Certificates for the primary mx1 and the secondaries mx2 and mx3, plus a
// certificate for mx2 from a CA the cluster does not trust.
struct cluster_files {
  fs::path dir;

  cluster_files() {
    dir = fs::temp_directory_path() / fs::unique_path("mc-membership-%%%%-%%%%");
    fs::create_directories(dir / "state");
    auto ca = file("ca.pem");
    auto ca_key = file("ca.key");
    CAF_REQUIRE(tls::make_ca({"test CA"}, ca, ca_key).ok);
    for (auto name : {"mx1", "mx2", "mx3"})
      CAF_REQUIRE(tls::make_node_certificate({name}, ca, ca_key, cert(name), key(name)).ok);
    CAF_REQUIRE(tls::make_ca({"rogue CA"}, file("rogue-ca.pem"), file("rogue-ca.key")).ok);
    CAF_REQUIRE(tls::make_node_certificate({"mx2"}, file("rogue-ca.pem"), file("rogue-ca.key"),
                                           file("rogue-mx2.pem"), file("rogue-mx2.key"))
                  .ok);
  }

  ~cluster_files() {
    boost::system::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  std::string file(const std::string& name) const { return (dir / name).string(); }

  std::string cert(const std::string& node) const { return file(node + ".pem"); }

  std::string key(const std::string& node) const { return file(node + ".key"); }

  std::string pem(const std::string& path) const {
    std::string out;
    CAF_REQUIRE(tls::read_file(path, out).ok);
    return out;
  }
};

struct fixture : test_coordinator_fixture<> {
  cluster_files files;
  caf::actor primary;
  caf::actor member;
  std::vector<peer_event_msg> events;

  fixture() {
    server_registry registry(files.file("state/registered-servers.json"));
    registry.add("mx2", 1);
    registry.add("mx3", 1);
    CAF_REQUIRE(registry.save().empty());
    auto context = std::make_shared<node_context>();
    auto& config = context->config;
    config.cluster_name = "test";
    config.node_name = "mx1";
    config.role = node_role::primary;
    config.listen = endpoint{"127.0.0.1", 4700};
    config.registration_key = "primary-key-0123456789";
    config.heartbeat_interval = heartbeat;
    config.failure_timeout = failure_timeout;
    config.state_dir = files.file("state");
    config.certificate = files.cert("mx1");
    config.key = files.key("mx1");
    config.cafile = files.file("ca.pem");
    context->version = "1.0.0";
    context->incarnation = 1;
    context->certificate_pem = files.pem(config.certificate);
    context->key_digest = tls::sha256_hex(config.registration_key);
    self->join(membership_events(sys));
    primary = sys.spawn(primary_membership, context, membership_options{false});
    member = sys.spawn(fake_member);
    sched.run();
  }

  ~fixture() override {
    // The primary's periodic tick would keep the fixture's final run()
    // going forever.
    caf::anon_send_exit(primary, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(member, caf::exit_reason::user_shutdown);
    sched.run();
  }

  challenge_response challenge(const std::string& node) {
    self->send(primary, challenge_request{node, "secondary nonce"});
    sched.run();
    challenge_response response;
    self->receive([&](challenge_response& x) { response = std::move(x); });
    return response;
  }

  // Builds a valid join of `node` (signed with `signer`'s certificate and
  // key) after asking for a challenge.
  join_request make_join(const std::string& node, const std::string& signer,
                         const std::string& key_text, uint64_t incarnation = 7) {
    auto nonce = challenge(node).nonce;
    return make_join_with_nonce(node, signer, key_text, nonce, incarnation);
  }

  join_request make_join_with_nonce(const std::string& node, const std::string& signer,
                                    const std::string& key_text, const std::string& nonce,
                                    uint64_t incarnation = 7) {
    join_request request;
    request.cluster = "test";
    request.node = node;
    request.version = "1.0.0";
    request.key_digest = key_text.empty() ? "" : tls::sha256_hex(key_text);
    request.incarnation = incarnation;
    request.certificate = files.pem(files.cert(signer));
    request.member = member;
    auto proof = join_proof_data(request.cluster, node, incarnation, nonce);
    CAF_REQUIRE(tls::sign(files.key(signer), "", proof, request.signature).ok);
    return request;
  }

  join_response join(join_request request) {
    self->send(primary, std::move(request));
    sched.run();
    join_response response;
    self->receive([&](join_response& x) { response = std::move(x); });
    return response;
  }

  join_verdict verdict_of(join_request request) {
    return static_cast<join_verdict>(join(std::move(request)).verdict);
  }

  node_status status() {
    self->send(primary, status_request{});
    sched.run();
    node_status result;
    self->receive([&](node_status& x) { result = std::move(x); },
                  [&](peer_event_msg& x) { events.push_back(std::move(x)); });
    // Events may arrive before the status; keep reading until it comes.
    while (result.node.empty())
      self->receive([&](node_status& x) { result = std::move(x); },
                    [&](peer_event_msg& x) { events.push_back(std::move(x)); });
    return result;
  }

  std::string state_of(const std::string& node) {
    for (auto& peer : status().peers)
      if (peer.node == node)
        return peer.state + (peer.detail.empty() ? "" : " (" + peer.detail + ")");
    return "missing";
  }

  admin_result command(const std::string& verb, const std::string& arg) {
    self->send(primary, admin_command{verb, {arg}});
    sched.run();
    admin_result result;
    bool done = false;
    while (!done)
      self->receive(
        [&](admin_result& x) {
          result = std::move(x);
          done = true;
        },
        [&](peer_event_msg& x) { events.push_back(std::move(x)); });
    return result;
  }

  // Advances the test clock in heartbeat steps, running the actors in
  // between, and sends a heartbeat of `node` at each step if requested.
  void advance(std::chrono::milliseconds total, const std::string& beating_node = "",
               uint64_t incarnation = 7) {
    for (auto elapsed = std::chrono::milliseconds(0); elapsed < total; elapsed += heartbeat) {
      if (!beating_node.empty())
        self->send(primary, heartbeat_msg{beating_node, incarnation, 0});
      advance_time(heartbeat);
      sched.run();
    }
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(primary_membership_tests, fixture)

CAF_TEST(valid join is accepted) {
  auto response = join(make_join("mx2", "mx2", "mx2-key-0123456789"));
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::accepted);
  CAF_CHECK_EQUAL(response.primary_node, "mx1");
  CAF_CHECK(response.newly_added);
  CAF_CHECK_EQUAL(state_of("mx2"), "online");
}

CAF_TEST(first join binds the key in the registry) {
  join(make_join("mx2", "mx2", "mx2-key-0123456789"));
  server_registry registry(files.file("state/registered-servers.json"));
  CAF_REQUIRE(registry.load().empty());
  auto server = registry.find("mx2");
  CAF_REQUIRE(server != nullptr);
  CAF_CHECK(server->joined);
  CAF_CHECK_EQUAL(server->key_digest, tls::sha256_hex("mx2-key-0123456789"));
}

CAF_TEST(second join is not newly added) {
  join(make_join("mx2", "mx2", "mx2-key-0123456789", 7));
  auto response = join(make_join("mx2", "mx2", "mx2-key-0123456789", 7));
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::accepted);
  CAF_CHECK(!response.newly_added);
}

CAF_TEST(wrong cluster is rejected) {
  auto request = make_join("mx2", "mx2", "mx2-key-0123456789");
  request.cluster = "other";
  auto response = join(request);
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::wrong_cluster);
  CAF_CHECK(response.reason.find("'other'") != std::string::npos);
}

CAF_TEST(other version is rejected) {
  auto request = make_join("mx2", "mx2", "mx2-key-0123456789");
  request.version = "0.9.0";
  auto response = join(request);
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::version_mismatch);
  CAF_CHECK(response.reason.find("0.9.0") != std::string::npos);
  CAF_CHECK(response.reason.find("1.0.0") != std::string::npos);
  CAF_CHECK_EQUAL(state_of("mx2"), "offline (never joined)");
}

CAF_TEST(missing key is rejected) {
  CAF_CHECK_EQUAL(verdict_of(make_join("mx2", "mx2", "")), join_verdict::missing_key);
}

CAF_TEST(key of the primary is a duplicate) {
  CAF_CHECK_EQUAL(verdict_of(make_join("mx2", "mx2", "primary-key-0123456789")),
                  join_verdict::duplicate_key);
}

CAF_TEST(key of another secondary is a duplicate) {
  join(make_join("mx2", "mx2", "shared-key-0123456789"));
  auto response = join(make_join("mx3", "mx3", "shared-key-0123456789"));
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::duplicate_key);
  CAF_CHECK(response.reason.find("'mx2'") != std::string::npos);
}

CAF_TEST(changed key is rejected) {
  join(make_join("mx2", "mx2", "mx2-key-0123456789"));
  CAF_CHECK_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-new-key-0123456789")),
                  join_verdict::key_mismatch);
}

CAF_TEST(unregistered node is told the command) {
  CAF_REQUIRE_EQUAL(command("remove-server", "mx3").exit_code, 0);
  auto response = join(make_join("mx3", "mx3", "mx3-key-0123456789"));
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::not_registered);
  CAF_CHECK(response.reason.find("add-server mx3") != std::string::npos);
}

CAF_TEST(certificate of another node is rejected) {
  auto response = join(make_join("mx2", "mx3", "mx2-key-0123456789"));
  CAF_CHECK_EQUAL(static_cast<join_verdict>(response.verdict), join_verdict::bad_identity);
  CAF_CHECK(response.reason.find("mx3") != std::string::npos);
  CAF_CHECK_EQUAL(state_of("mx2"), "offline (never joined)");
}

CAF_TEST(certificate of another CA is rejected) {
  auto nonce = challenge("mx2").nonce;
  auto request = make_join_with_nonce("mx2", "mx2", "mx2-key-0123456789", nonce);
  request.certificate = files.pem(files.file("rogue-mx2.pem"));
  auto proof = join_proof_data("test", "mx2", 7, nonce);
  CAF_REQUIRE(tls::sign(files.file("rogue-mx2.key"), "", proof, request.signature).ok);
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::bad_identity);
}

CAF_TEST(signature over another nonce is rejected) {
  challenge("mx2");
  auto request = make_join_with_nonce("mx2", "mx2", "mx2-key-0123456789", "guessed nonce");
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::bad_identity);
}

CAF_TEST(join without challenge is rejected) {
  auto request = make_join_with_nonce("mx2", "mx2", "mx2-key-0123456789", "no challenge");
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::bad_identity);
}

CAF_TEST(replayed join is rejected) {
  auto request = make_join("mx2", "mx2", "mx2-key-0123456789");
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::accepted);
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::bad_identity);
}

CAF_TEST(expired challenge is rejected) {
  auto nonce = challenge("mx2").nonce;
  // Challenges are valid for twice the request timeout (2 s by default).
  advance(std::chrono::milliseconds(4100));
  auto request = make_join_with_nonce("mx2", "mx2", "mx2-key-0123456789", nonce);
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::bad_identity);
}

CAF_TEST(second live process of a node is rejected) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789", 7)),
                    join_verdict::accepted);
  CAF_CHECK_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789", 8)),
                  join_verdict::already_online);
}

CAF_TEST(silent member goes offline after the timeout) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                    join_verdict::accepted);
  advance(std::chrono::milliseconds(1000));
  CAF_CHECK_EQUAL(state_of("mx2"), "online");
  advance(std::chrono::milliseconds(200));
  auto state = state_of("mx2");
  CAF_CHECK(state.find("offline (no heartbeat for 1") == 0);
  bool offline_event = false;
  for (auto& event : events)
    if (event.node == "mx2" && !event.online)
      offline_event = true;
  CAF_CHECK(offline_event);
}

CAF_TEST(local stall does not blame members) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                    join_verdict::accepted);
  advance(std::chrono::milliseconds(300));
  // One late tick: the primary itself did not run for 3 s.
  advance_time(std::chrono::seconds(3));
  sched.run();
  CAF_CHECK_EQUAL(state_of("mx2"), "online");
  advance(std::chrono::milliseconds(1200));
  CAF_CHECK(state_of("mx2").find("offline (no heartbeat for") == 0);
}

CAF_TEST(local stall threshold is half the timeout) {
  steady_time start{std::chrono::seconds(100)};
  auto timeout = std::chrono::milliseconds(1000);
  CAF_CHECK_EQUAL(local_stall(steady_time{}, start, timeout).count(), 0);
  CAF_CHECK_EQUAL(local_stall(start, start + std::chrono::milliseconds(500), timeout).count(), 0);
  CAF_CHECK_EQUAL(local_stall(start, start + std::chrono::milliseconds(501), timeout),
                  caf::timespan{std::chrono::milliseconds(501)});
}

CAF_TEST(second process with same incarnation is rejected) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789", 1)),
                    join_verdict::accepted);
  auto other = sys.spawn(fake_member);
  auto request = make_join("mx2", "mx2", "mx2-key-0123456789", 1);
  request.member = other;
  CAF_CHECK_EQUAL(verdict_of(request), join_verdict::already_online);
  caf::anon_send_exit(other, caf::exit_reason::user_shutdown);
  sched.run();
}

CAF_TEST(beating member stays online) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                    join_verdict::accepted);
  advance(std::chrono::seconds(10), "mx2");
  CAF_CHECK_EQUAL(state_of("mx2"), "online");
}

CAF_TEST(heartbeat of an old incarnation does not count) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789", 7)),
                    join_verdict::accepted);
  advance(std::chrono::milliseconds(1500), "mx2", 6);
  CAF_CHECK(state_of("mx2").find("offline") == 0);
}

CAF_TEST(member down goes offline at once) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                    join_verdict::accepted);
  caf::anon_send_exit(member, caf::exit_reason::kill);
  sched.run();
  CAF_CHECK(state_of("mx2").find("offline (connection lost") == 0);
}

CAF_TEST(stray messages do not stop the primary) {
  self->monitor(primary);
  self->send(primary, std::string{"unexpected text"});
  self->send(primary, caf::make_error(caf::sec::unexpected_message));
  sched.run();
  CAF_CHECK_EQUAL(status().node, "mx1");
  CAF_CHECK_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                  join_verdict::accepted);
}

CAF_TEST(add server registers and persists) {
  auto result = command("add-server", "mx4");
  CAF_CHECK_EQUAL(result.exit_code, 0);
  server_registry registry(files.file("state/registered-servers.json"));
  CAF_REQUIRE(registry.load().empty());
  CAF_CHECK(registry.find("mx4") != nullptr);
  CAF_CHECK_EQUAL(command("add-server", "mx4").exit_code, 1);
  CAF_CHECK_EQUAL(command("add-server", "mx1").exit_code, 1);
  CAF_CHECK_EQUAL(command("add-server", "bad name").exit_code, 1);
}

CAF_TEST(remove server takes an online member offline) {
  CAF_REQUIRE_EQUAL(verdict_of(make_join("mx2", "mx2", "mx2-key-0123456789")),
                    join_verdict::accepted);
  CAF_CHECK_EQUAL(command("remove-server", "mx2").exit_code, 0);
  CAF_CHECK_EQUAL(state_of("mx2"), "missing");
  CAF_CHECK_EQUAL(command("remove-server", "mx2").exit_code, 1);
}

CAF_TEST_FIXTURE_SCOPE_END()
