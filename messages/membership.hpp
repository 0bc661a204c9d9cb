// Messages of the membership protocol between a secondary and the primary.
// docs/protocol.md describes the join handshake, heartbeats and the rules
// for changing these types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "caf/actor.hpp"
#include "caf/meta/type_name.hpp"

namespace mc {

/// Secondary -> primary, first step of the join handshake: a request for a
/// nonce to sign. The primary replies with a challenge_response.
struct challenge_request {
  /// Name the secondary wants to join under.
  std::string node;
  /// Random bytes the primary signs to prove its own identity.
  std::string nonce;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, challenge_request& x) {
  return f(caf::meta::type_name("challenge_request"), x.node, x.nonce);
}

/// Primary -> secondary: the nonce to sign, and the primary's own proof.
struct challenge_response {
  /// The primary's cluster name.
  std::string cluster;
  /// The primary's node name.
  std::string primary_node;
  /// Random bytes the secondary must sign in its join_request; valid once.
  std::string nonce;
  /// The primary's certificate (PEM).
  std::string certificate;
  /// The primary's signature over primary_proof_data() of the request.
  std::string signature;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, challenge_response& x) {
  return f(caf::meta::type_name("challenge_response"), x.cluster, x.primary_node, x.nonce,
           x.certificate, x.signature);
}

/// Secondary -> primary, second step: the join itself. The primary replies
/// with a join_response.
struct join_request {
  std::string cluster;
  std::string node;
  /// The secondary's mailcluster version; must equal the primary's.
  std::string version;
  /// Lower-case hex SHA-256 of the node's registration key. Empty when
  /// the node has no key (the primary rejects it).
  std::string key_digest;
  /// Grows with each start of the node (persisted in its state directory).
  uint64_t incarnation = 0;
  /// The secondary's certificate (PEM); its subject common name must be
  /// `node`.
  std::string certificate;
  /// The secondary's signature over join_proof_data() of this request.
  std::string signature;
  /// The secondary's membership actor; the primary monitors it.
  caf::actor member;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request& x) {
  return f(caf::meta::type_name("join_request"), x.cluster, x.node, x.version, x.key_digest,
           x.incarnation, x.certificate, x.signature, x.member);
}

/// Outcome of a join; every value but `accepted` is a rejection.
enum class join_verdict : uint8_t {
  accepted = 0,
  wrong_cluster,
  version_mismatch,
  bad_identity,
  missing_key,
  duplicate_key,
  key_mismatch,
  not_registered,
  already_online,
};

/// Returns a short stable name of the verdict, e.g. "version_mismatch".
const char* to_string(join_verdict verdict);

/// Primary -> secondary: the result of a join_request.
struct join_response {
  /// A join_verdict value.
  uint8_t verdict = 0;
  /// Sentence for the operator: why the node was rejected and what to do.
  std::string reason;
  std::string primary_node;
  std::string primary_version;
  uint64_t primary_incarnation = 0;
  /// True on the first join after `add-server`: the secondary discards its
  /// local cluster settings and starts over from the primary's.
  bool newly_added = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_response& x) {
  return f(caf::meta::type_name("join_response"), x.verdict, x.reason, x.primary_node,
           x.primary_version, x.primary_incarnation, x.newly_added);
}

/// Either direction, every heartbeat interval while joined.
struct heartbeat_msg {
  std::string node;
  uint64_t incarnation = 0;
  uint64_t sequence = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, heartbeat_msg& x) {
  return f(caf::meta::type_name("heartbeat_msg"), x.node, x.incarnation, x.sequence);
}

/// Secondary -> primary on a clean shutdown, so the primary marks it
/// offline at once instead of after the failure timeout.
struct leave_msg {
  std::string node;
  uint64_t incarnation = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leave_msg& x) {
  return f(caf::meta::type_name("leave_msg"), x.node, x.incarnation);
}

/// Primary -> secondary: the primary no longer counts the sender as a
/// member (it timed out, or was removed); the secondary must join again.
struct rejoin_msg {
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, rejoin_msg& x) {
  return f(caf::meta::type_name("rejoin_msg"), x.reason);
}

/// One cluster member in the primary's view.
struct member_info {
  std::string node;
  /// "primary" or "secondary".
  std::string role;
  bool online = false;
  /// Wall-clock time of the last state change, milliseconds since the Unix
  /// epoch.
  int64_t since_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_info& x) {
  return f(caf::meta::type_name("member_info"), x.node, x.role, x.online, x.since_ms);
}

/// Primary -> every online secondary whenever membership changes.
struct roster_msg {
  std::vector<member_info> members;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, roster_msg& x) {
  return f(caf::meta::type_name("roster_msg"), x.members);
}

/// Returns the bytes a secondary signs to prove it has the private key of its
/// certificate: binds cluster, node, incarnation and the primary's nonce.
std::string join_proof_data(const std::string& cluster, const std::string& node,
                            uint64_t incarnation, const std::string& nonce);

/// Returns the bytes the primary signs to prove its identity to a
/// secondary: binds cluster, both names and the secondary's nonce.
std::string primary_proof_data(const std::string& cluster, const std::string& primary,
                               const std::string& secondary, const std::string& nonce);

} // namespace mc
