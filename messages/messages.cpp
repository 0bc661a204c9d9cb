#include "caf/actor_system.hpp"
#include "caf/actor_system_config.hpp"
#include "caf/group_manager.hpp"

#include "messages/admin.hpp"
#include "messages/events.hpp"
#include "messages/mail_change.hpp"
#include "messages/membership.hpp"
#include "messages/register.hpp"
#include "messages/replication.hpp"

namespace mc {

const char* to_string(join_verdict verdict) {
  switch (verdict) {
  case join_verdict::accepted:
    return "accepted";
  case join_verdict::wrong_cluster:
    return "wrong_cluster";
  case join_verdict::version_mismatch:
    return "version_mismatch";
  case join_verdict::bad_identity:
    return "bad_identity";
  case join_verdict::missing_key:
    return "missing_key";
  case join_verdict::duplicate_key:
    return "duplicate_key";
  case join_verdict::key_mismatch:
    return "key_mismatch";
  case join_verdict::not_registered:
    return "not_registered";
  case join_verdict::already_online:
    return "already_online";
  }
  return "unknown";
}

namespace {

// Length-prefixes each field so that no two different inputs give the same
// bytes to sign ("ab"+"c" differs from "a"+"bc").
void append_field(std::string& out, const std::string& field) {
  out += std::to_string(field.size());
  out += ':';
  out += field;
}

} // namespace

std::string join_proof_data(const std::string& cluster, const std::string& node,
                            uint64_t incarnation, const std::string& nonce) {
  std::string out = "mailcluster-join-v1|";
  append_field(out, cluster);
  append_field(out, node);
  append_field(out, std::to_string(incarnation));
  append_field(out, nonce);
  return out;
}

std::string primary_proof_data(const std::string& cluster, const std::string& primary,
                               const std::string& secondary, const std::string& nonce) {
  std::string out = "mailcluster-primary-v1|";
  append_field(out, cluster);
  append_field(out, primary);
  append_field(out, secondary);
  append_field(out, nonce);
  return out;
}

caf::group membership_events(caf::actor_system& system) {
  return system.groups().get_local("mailcluster.membership");
}

void register_message_types(caf::actor_system_config& config) {
  config.add_message_type<challenge_request>("mc.challenge_request");
  config.add_message_type<challenge_response>("mc.challenge_response");
  config.add_message_type<join_request>("mc.join_request");
  config.add_message_type<join_response>("mc.join_response");
  config.add_message_type<heartbeat_msg>("mc.heartbeat_msg");
  config.add_message_type<leave_msg>("mc.leave_msg");
  config.add_message_type<rejoin_msg>("mc.rejoin_msg");
  config.add_message_type<member_info>("mc.member_info");
  config.add_message_type<std::vector<member_info>>("mc.member_info_list");
  config.add_message_type<roster_msg>("mc.roster_msg");
  config.add_message_type<status_request>("mc.status_request");
  config.add_message_type<peer_status>("mc.peer_status");
  config.add_message_type<std::vector<peer_status>>("mc.peer_status_list");
  config.add_message_type<node_status>("mc.node_status");
  config.add_message_type<admin_command>("mc.admin_command");
  config.add_message_type<admin_result>("mc.admin_result");
  config.add_message_type<peer_event_msg>("mc.peer_event_msg");
  config.add_message_type<file_entry>("mc.file_entry");
  config.add_message_type<file_list>("mc.file_list");
  config.add_message_type<service_hello>("mc.service_hello");
  config.add_message_type<service_peer>("mc.service_peer");
  config.add_message_type<std::vector<service_peer>>("mc.service_peer_list");
  config.add_message_type<service_peers_request>("mc.service_peers_request");
  config.add_message_type<replication_signal>("mc.replication_signal");
  config.add_message_type<full_list_request>("mc.full_list_request");
  config.add_message_type<rehash_request>("mc.rehash_request");
  config.add_message_type<fetch_item>("mc.fetch_item");
  config.add_message_type<std::vector<fetch_item>>("mc.fetch_item_list");
  config.add_message_type<fetch_request>("mc.fetch_request");
  config.add_message_type<file_chunk>("mc.file_chunk");
  config.add_message_type<std::vector<file_chunk>>("mc.file_chunk_list");
  config.add_message_type<fetch_reply>("mc.fetch_reply");
  config.add_message_type<replication_status>("mc.replication_status");
  config.add_message_type<replication_report>("mc.replication_report");
  config.add_message_type<mail_change>("mc.mail_change");
  config.add_message_type<std::vector<mail_change>>("mc.mail_change_list");
  config.add_message_type<mail_change_msg>("mc.mail_change_msg");
  config.add_message_type<mail_relay_ready_msg>("mc.mail_relay_ready_msg");
  config.add_message_type<mail_change_forward_request>("mc.mail_change_forward_request");
  config.add_message_type<mail_change_forward_response>("mc.mail_change_forward_response");
  config.add_message_type<mail_watch_request>("mc.mail_watch_request");
  config.add_message_type<mail_watch_response>("mc.mail_watch_response");
}

} // namespace mc
