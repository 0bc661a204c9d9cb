#define CAF_SUITE messages
#include "caf/test/dsl.hpp"

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"

#include "messages/admin.hpp"
#include "messages/membership.hpp"
#include "messages/register.hpp"

using namespace mc;

namespace {

struct config : caf::actor_system_config {
  config() { register_message_types(*this); }
};

struct fixture : test_coordinator_fixture<config> {
  // Serializes `value` and reads it back, as the wire would.
  template <class T>
  T round_trip(T value) {
    std::vector<char> buffer;
    caf::binary_serializer sink{sys, buffer};
    CAF_REQUIRE(!sink(value));
    T result;
    caf::binary_deserializer source{sys, buffer};
    CAF_REQUIRE(!source(result));
    return result;
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(message_tests, fixture)

CAF_TEST(join request round trip) {
  join_request request{"c", "mx2", "1.0", "digest", 42, "pem", "sig", caf::actor{}};
  auto copy = round_trip(request);
  CAF_CHECK_EQUAL(copy.cluster, "c");
  CAF_CHECK_EQUAL(copy.node, "mx2");
  CAF_CHECK_EQUAL(copy.version, "1.0");
  CAF_CHECK_EQUAL(copy.key_digest, "digest");
  CAF_CHECK_EQUAL(copy.incarnation, 42u);
  CAF_CHECK_EQUAL(copy.certificate, "pem");
  CAF_CHECK_EQUAL(copy.signature, "sig");
}

CAF_TEST(join response round trip) {
  join_response response{
    static_cast<uint8_t>(join_verdict::not_registered), "why", "mx1", "1.0", 9, true};
  auto copy = round_trip(response);
  CAF_CHECK_EQUAL(copy.verdict, static_cast<uint8_t>(join_verdict::not_registered));
  CAF_CHECK_EQUAL(copy.reason, "why");
  CAF_CHECK_EQUAL(copy.primary_node, "mx1");
  CAF_CHECK_EQUAL(copy.primary_incarnation, 9u);
  CAF_CHECK(copy.newly_added);
}

CAF_TEST(challenge round trip) {
  auto request = round_trip(challenge_request{"mx2", std::string("\0\1\2", 3)});
  CAF_CHECK_EQUAL(request.nonce, std::string("\0\1\2", 3));
  auto response = round_trip(challenge_response{"c", "mx1", "n", "pem", "sig"});
  CAF_CHECK_EQUAL(response.cluster, "c");
  CAF_CHECK_EQUAL(response.primary_node, "mx1");
  CAF_CHECK_EQUAL(response.signature, "sig");
}

CAF_TEST(roster round trip) {
  roster_msg roster{
    {member_info{"mx1", "primary", true, 5}, member_info{"mx2", "secondary", false, 6}}};
  auto copy = round_trip(roster);
  CAF_REQUIRE_EQUAL(copy.members.size(), 2u);
  CAF_CHECK_EQUAL(copy.members[1].node, "mx2");
  CAF_CHECK(!copy.members[1].online);
  CAF_CHECK_EQUAL(copy.members[1].since_ms, 6);
}

CAF_TEST(node status round trip) {
  node_status status;
  status.cluster = "c";
  status.node = "mx2";
  status.peers.push_back(peer_status{"mx1", "primary", "online", 7, 12, "mx2", "", {}});
  status.registered = {"mx2", "mx3"};
  auto copy = round_trip(status);
  CAF_REQUIRE_EQUAL(copy.peers.size(), 1u);
  CAF_CHECK_EQUAL(copy.peers[0].last_heartbeat_ms, 12);
  CAF_CHECK_EQUAL(copy.registered.size(), 2u);
}

CAF_TEST(admin command round trip) {
  auto copy = round_trip(admin_command{"add-server", {"mx4"}});
  CAF_CHECK_EQUAL(copy.verb, "add-server");
  CAF_REQUIRE_EQUAL(copy.args.size(), 1u);
  CAF_CHECK_EQUAL(copy.args[0], "mx4");
}

CAF_TEST(proof data separates fields) {
  CAF_CHECK_NOT_EQUAL(join_proof_data("ab", "c", 1, "n"), join_proof_data("a", "bc", 1, "n"));
  CAF_CHECK_NOT_EQUAL(primary_proof_data("c", "mx1", "mx2", "n"),
                      primary_proof_data("c", "mx1", "mx2", "m"));
}

CAF_TEST_FIXTURE_SCOPE_END()
