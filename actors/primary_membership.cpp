#include "actors/primary_membership.hpp"

#include <set>

#include "caf/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/manager.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/membership.hpp"
#include "messages/replication.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"
#include "runtime/tls.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<primary_state>*;

constexpr size_t nonce_size = 32;

auto logger() {
  return log::get(log::membership);
}

int64_t elapsed_ms(steady_time since, steady_time now) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count();
}

roster_msg make_roster(self_ptr self) {
  auto& st = self->state;
  roster_msg roster;
  roster.members.push_back(member_info{st.context->config.node_name, "primary", true, 0});
  for (auto& server : st.registry->servers()) {
    member_info info{server.name, "secondary", false, 0};
    auto i = st.members.find(server.name);
    if (i != st.members.end()) {
      info.online = i->second.online;
      info.since_ms = i->second.since_ms;
    }
    roster.members.push_back(std::move(info));
  }
  return roster;
}

void send_roster(self_ptr self) {
  auto roster = make_roster(self);
  for (auto& [name, member] : self->state.members)
    if (member.online)
      self->send(member.handle, roster);
}

void publish_event(self_ptr self, const std::string& node, bool online, const std::string& reason) {
  self->send(self->state.events, peer_event_msg{node, "secondary", online, reason});
}

// Marks a member offline and publishes the change. Does nothing if the member
// is offline already.
void mark_offline(self_ptr self, member_entry& member, const std::string& reason) {
  if (!member.online)
    return;
  member.online = false;
  member.since_ms = wall_clock_ms();
  member.detail = reason;
  self->demonitor(member.handle);
  member.handle = caf::actor{};
  member.services.clear();
  logger()->warn("secondary {} offline: {} incarnation={}", member.node, reason,
                 member.incarnation);
  publish_event(self, member.node, false, reason);
  send_roster(self);
}

challenge_response answer_challenge(self_ptr self, const challenge_request& request) {
  auto& st = self->state;
  auto& config = st.context->config;
  challenge_response response;
  response.cluster = config.cluster_name;
  response.primary_node = config.node_name;
  response.nonce = tls::random_bytes(nonce_size);
  response.certificate = st.context->certificate_pem;
  auto proof =
    primary_proof_data(config.cluster_name, config.node_name, request.node, request.nonce);
  auto signed_ok = tls::sign(config.key, config.passphrase, proof, response.signature);
  if (!signed_ok.ok)
    logger()->error("cannot sign the primary's proof of identity: {}", signed_ok.error);
  // One outstanding challenge per node name; a newer one replaces it.
  st.challenges[request.node] =
    pending_challenge{response.nonce, self->clock().now() + 2 * config.request_timeout};
  return response;
}

join_response reject(self_ptr self, const join_request& request, join_verdict verdict,
                     std::string reason) {
  // A rejected node retries every few seconds: log each reason once.
  auto& last = self->state.last_rejection[request.node];
  if (last != reason) {
    last = reason;
    logger()->warn("rejected join of {}: {} verdict={} version={} incarnation={}", request.node,
                   reason, to_string(verdict), request.version, request.incarnation);
  } else {
    logger()->debug("rejected join of {} again: verdict={}", request.node, to_string(verdict));
  }
  join_response response;
  response.verdict = static_cast<uint8_t>(verdict);
  response.reason = std::move(reason);
  return response;
}

// Runs every check of the join handshake in a fixed order, so that the
// first problem an operator sees is the most basic one.
join_response check_join(self_ptr self, const join_request& request) {
  auto& st = self->state;
  auto& config = st.context->config;
  const auto& me = config.node_name;
  if (request.cluster != config.cluster_name)
    return reject(self, request, join_verdict::wrong_cluster,
                  "cluster name '" + request.cluster + "' differs from the primary's cluster '" +
                    config.cluster_name + "'; set cluster.name = \"" + config.cluster_name +
                    "\" in the node's role config");
  if (request.version != st.context->version)
    return reject(self, request, join_verdict::version_mismatch,
                  "mailcluster version " + request.version + " differs from version " +
                    st.context->version + " on the primary " + me +
                    "; every node must run the same version");
  auto challenge = st.challenges.find(request.node);
  if (challenge == st.challenges.end() || challenge->second.expires < self->clock().now())
    return reject(self, request, join_verdict::bad_identity,
                  "no valid challenge for node '" + request.node +
                    "' (unknown or expired); the node retries the handshake");
  auto nonce = challenge->second.nonce;
  st.challenges.erase(challenge);
  auto proof = join_proof_data(request.cluster, request.node, request.incarnation, nonce);
  auto verified = tls::verify_signature(request.certificate, config.cafile, request.node, proof,
                                        request.signature);
  if (!verified.ok)
    return reject(self, request, join_verdict::bad_identity,
                  "cannot prove identity as '" + request.node + "': " + verified.error);
  if (request.key_digest.empty())
    return reject(self, request, join_verdict::missing_key,
                  "node '" + request.node +
                    "' sent no registration key; set cluster.registration-key in its role config");
  if (request.key_digest == st.context->key_digest)
    return reject(self, request, join_verdict::duplicate_key,
                  "registration key of node '" + request.node + "' is already used by node '" + me +
                    "'; give every node its own cluster.registration-key");
  auto server = st.registry->find(request.node);
  if (server == nullptr)
    return reject(self, request, join_verdict::not_registered,
                  "node '" + request.node + "' is not registered on the primary " + me +
                    "; run 'mailclusterctl --config-file=<primary config> add-server " +
                    request.node + "' on " + me);
  auto owner = st.registry->owner_of_key(request.key_digest);
  if (owner && *owner != request.node)
    return reject(self, request, join_verdict::duplicate_key,
                  "registration key of node '" + request.node + "' is already used by node '" +
                    *owner + "'; give every node its own cluster.registration-key");
  if (!server->key_digest.empty() && server->key_digest != request.key_digest)
    return reject(self, request, join_verdict::key_mismatch,
                  "registration key of node '" + request.node +
                    "' differs from the key it first joined with; restore the old key, or run "
                    "'mailclusterctl remove-server " +
                    request.node + "' and 'add-server " + request.node + "' on " + me);
  auto existing = st.members.find(request.node);
  // Two processes can share an incarnation number (two machines that both
  // start for the first time), so a different member actor also counts.
  if (existing != st.members.end() && existing->second.online &&
      (existing->second.incarnation != request.incarnation ||
       existing->second.handle != request.member))
    return reject(self, request, join_verdict::already_online,
                  "node '" + request.node + "' is already online with incarnation " +
                    std::to_string(existing->second.incarnation) +
                    "; stop the other process that uses this name");
  join_response response;
  response.verdict = static_cast<uint8_t>(join_verdict::accepted);
  response.newly_added = !server->joined;
  return response;
}

void accept_member(self_ptr self, const join_request& request, bool newly_added) {
  auto& st = self->state;
  auto& member = st.members[request.node];
  if (member.online && member.handle != request.member)
    self->demonitor(member.handle);
  member.node = request.node;
  member.incarnation = request.incarnation;
  member.handle = request.member;
  member.online = true;
  member.since_ms = wall_clock_ms();
  member.last_heard = self->clock().now();
  member.detail.clear();
  member.services.clear();
  st.last_rejection.erase(request.node);
  self->monitor(request.member);
  if (newly_added) {
    st.registry->mark_joined(request.node, request.key_digest);
    if (auto error = st.registry->save(); !error.empty())
      logger()->error("cannot save registered servers: {}", error);
  }
  logger()->info("secondary {} online: joined incarnation={} version={}{}", request.node,
                 request.incarnation, request.version, newly_added ? " first-join=true" : "");
  publish_event(self, request.node, true, "joined");
  send_roster(self);
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  auto& config = st.context->config;
  auto now = self->clock().now();
  auto stall = record_tick(st.last_tick, now, config.failure_timeout);
  if (stall.count() > 0) {
    logger()->warn("this node was stalled for {} ms (paused or starved of CPU) -> restarting the "
                   "silence timers of {} members",
                   std::chrono::duration_cast<std::chrono::milliseconds>(stall).count(),
                   st.members.size());
    for (auto& [name, member] : st.members)
      member.last_heard = now;
  }
  heartbeat_msg beat{config.node_name, st.context->incarnation, ++st.heartbeat_sequence};
  for (auto& [name, member] : st.members) {
    if (!member.online)
      continue;
    auto silence = elapsed_ms(member.last_heard, now);
    if (silence > config.failure_timeout.count()) {
      mark_offline(self, member, "no heartbeat for " + std::to_string(silence) + " ms");
      continue;
    }
    self->send(member.handle, beat);
  }
  for (auto i = st.challenges.begin(); i != st.challenges.end();) {
    if (i->second.expires < now)
      i = st.challenges.erase(i);
    else
      ++i;
  }
  self->delayed_send(self, config.heartbeat_interval, tick_atom::value);
}

admin_result add_server(self_ptr self, const std::string& name) {
  auto& st = self->state;
  if (auto error = check_node_name(name); !error.empty())
    return {1, error};
  if (name == st.context->config.node_name)
    return {1, "'" + name + "' is the primary itself; only secondaries are registered"};
  if (!st.registry->add(name, wall_clock_ms()))
    return {1, "server '" + name + "' is already registered"};
  if (auto error = st.registry->save(); !error.empty()) {
    st.registry->remove(name);
    logger()->error("cannot save registered servers: {}", error);
    return {1, "cannot save the registered servers list: " + error};
  }
  logger()->info("Secondary cluster node added: Cluster Service on {} will now restart", name);
  send_roster(self);
  return {0, "server '" + name + "' registered; it joins at its next attempt"};
}

admin_result remove_server(self_ptr self, const std::string& name) {
  auto& st = self->state;
  if (!st.registry->remove(name))
    return {1, "server '" + name + "' is not registered"};
  if (auto error = st.registry->save(); !error.empty()) {
    logger()->error("cannot save registered servers: {}", error);
    st.registry->load();
    return {1, "cannot save the registered servers list: " + error};
  }
  auto i = st.members.find(name);
  if (i != st.members.end()) {
    if (i->second.online) {
      self->send(i->second.handle, rejoin_msg{"node was removed from the registered servers"});
      mark_offline(self, i->second, "removed from the registered servers");
    }
    st.members.erase(i);
  }
  logger()->info("secondary {} removed from the registered servers", name);
  send_roster(self);
  return {0, "server '" + name + "' removed"};
}

// Hands a secondary's service actor to the local service of that name,
// after checking that it comes over the connection of that joined member.
void on_service_hello(self_ptr self, const service_hello& hello) {
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  auto i = self->state.members.find(hello.node);
  if (!sender || i == self->state.members.end() || !i->second.online ||
      i->second.incarnation != hello.incarnation || sender.node() != i->second.handle.node()) {
    logger()->warn("ignored a service hello for '{}' from '{}': that node is not online on this "
                   "connection",
                   hello.service, hello.node);
    return;
  }
  auto key = service_key(hello.service);
  if (key == caf::atom("")) {
    logger()->warn("ignored a hello from {} for the unknown service '{}'", hello.node,
                   hello.service);
    return;
  }
  i->second.services[hello.service] = sender;
  auto service = caf::actor_cast<caf::actor>(self->system().registry().get(key));
  if (service)
    self->send(service, service_peer{hello.node, sender});
}

std::vector<service_peer> service_peers(self_ptr self, const std::string& service) {
  std::vector<service_peer> peers;
  for (auto& [name, member] : self->state.members) {
    auto i = member.services.find(service);
    if (member.online && i != member.services.end())
      peers.push_back(service_peer{name, i->second});
  }
  return peers;
}

node_status make_status(self_ptr self) {
  auto& st = self->state;
  auto& config = st.context->config;
  auto status = status_header(*st.context);
  status.join_state = "serving";
  status.primary_node = config.node_name;
  status.primary_address = config.listen ? to_string(*config.listen) : "";
  auto now = self->clock().now();
  for (auto& server : st.registry->servers()) {
    status.registered.push_back(server.name);
    peer_status peer;
    peer.node = server.name;
    peer.role = "secondary";
    peer.state = "offline";
    peer.observed_by = config.node_name;
    peer.detail = "never joined";
    auto i = st.members.find(server.name);
    if (i != st.members.end()) {
      peer.state = i->second.online ? "online" : "offline";
      peer.since_ms = i->second.since_ms;
      peer.last_heartbeat_ms = elapsed_ms(i->second.last_heard, now);
      peer.detail = i->second.detail;
    }
    status.peers.push_back(std::move(peer));
  }
  return status;
}

void publish_listener(self_ptr self) {
  auto& config = self->state.context->config;
  auto port = config.listen->port;
  auto host = config.listen->host;
  auto manager = self->system().openssl_manager().actor_handle();
  self
    ->request(manager, config.request_timeout, caf::publish_atom::value, port,
              caf::actor_cast<caf::strong_actor_ptr>(self), std::set<std::string>{}, host, true)
    .then(
      [=](uint16_t actual) {
        logger()->info("primary {} listening: address={}:{} cluster={}", config.node_name, host,
                       actual, config.cluster_name);
        // Unpublish when this actor goes away, so that a restarted
        // membership actor can bind the same port.
        auto addr = self->address();
        self->attach_functor([manager, addr, actual] {
          caf::anon_send(manager, caf::unpublish_atom::value, addr, actual);
        });
      },
      [=](caf::error& err) {
        logger()->error("cannot listen on cluster address {}:{}: {}; check cluster.listen and "
                        "whether another process uses the port",
                        host, port, describe_error(self->system(), err));
        self->quit(err);
      });
}

} // namespace

caf::timespan local_stall(steady_time last_tick, steady_time now, caf::timespan failure_timeout) {
  if (last_tick == steady_time{})
    return caf::timespan{0};
  auto gap = now - last_tick;
  if (gap > failure_timeout / 2)
    return std::chrono::duration_cast<caf::timespan>(gap);
  return caf::timespan{0};
}

node_status status_header(const node_context& context) {
  node_status status;
  status.cluster = context.config.cluster_name;
  status.node = context.config.node_name;
  status.role = to_string(context.config.role);
  status.version = context.version;
  status.incarnation = context.incarnation;
  return status;
}

caf::timespan record_tick(steady_time& last_tick, steady_time now, caf::timespan failure_timeout) {
  auto stall = local_stall(last_tick, now, failure_timeout);
  last_tick = now;
  return stall;
}

std::string check_node_name(const std::string& name) {
  if (name.empty() || name.size() > 64)
    return "node name '" + name + "' must have 1 to 64 characters";
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'))
      return "node name '" + name + "' may contain only letters, digits, '.', '_' and '-'";
  return {};
}

caf::behavior primary_membership(caf::stateful_actor<primary_state>* self, node_context_ptr context,
                                 membership_options options) {
  guard_actor(self, log::membership);
  auto& st = self->state;
  st.context = context;
  st.events = membership_events(self->system());
  auto registry_file = context->config.state_dir + "/registered-servers.json";
  st.registry = std::make_unique<server_registry>(registry_file);
  if (auto error = st.registry->load(); !error.empty()) {
    logger()->error("cannot load registered servers: {}", error);
    self->quit(caf::make_error(caf::sec::runtime_error, error));
    return {};
  }
  logger()->info("primary {} started: cluster={} version={} incarnation={} registered={}",
                 context->config.node_name, context->config.cluster_name, context->version,
                 context->incarnation, st.registry->servers().size());
  if (options.publish)
    publish_listener(self);
  self->set_down_handler([=](caf::down_msg& msg) {
    for (auto& [name, member] : self->state.members)
      if (member.online && member.handle.address() == msg.source)
        mark_offline(self, member,
                     "connection lost: " + describe_error(self->system(), msg.reason));
  });
  self->send(self, tick_atom::value);
  return {
    [=](const challenge_request& request) { return answer_challenge(self, request); },
    [=](const join_request& request) {
      auto response = check_join(self, request);
      auto verdict = static_cast<join_verdict>(response.verdict);
      if (verdict == join_verdict::accepted)
        accept_member(self, request, response.newly_added);
      else if (auto i = self->state.members.find(request.node); i != self->state.members.end())
        i->second.detail = "rejected: " + response.reason;
      response.primary_node = self->state.context->config.node_name;
      response.primary_version = self->state.context->version;
      response.primary_incarnation = self->state.context->incarnation;
      return response;
    },
    [=](const heartbeat_msg& beat) {
      auto& members = self->state.members;
      auto i = members.find(beat.node);
      if (i == members.end() || !i->second.online || i->second.incarnation != beat.incarnation) {
        // A member the primary gave up on (silence) is still running: it
        // must join again so both sides agree.
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        if (sender)
          self->send(sender, rejoin_msg{"the primary counts this node as offline"});
        return;
      }
      i->second.last_heard = self->clock().now();
    },
    [=](const leave_msg& leave) {
      auto i = self->state.members.find(leave.node);
      if (i != self->state.members.end() && i->second.incarnation == leave.incarnation)
        mark_offline(self, i->second, "node shut down");
    },
    [=](tick_atom) { on_tick(self); },
    [=](const service_hello& hello) { on_service_hello(self, hello); },
    [=](const service_peers_request& request) { return service_peers(self, request.service); },
    [=](const status_request&) { return make_status(self); },
    [=](const admin_command& command) -> admin_result {
      if (command.verb == "add-server" && command.args.size() == 1)
        return add_server(self, command.args[0]);
      if (command.verb == "remove-server" && command.args.size() == 1)
        return remove_server(self, command.args[0]);
      return {1, "unknown admin command '" + command.verb + "'"};
    },
  };
}

} // namespace mc
