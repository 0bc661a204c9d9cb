#include "actors/secondary_membership.hpp"

#include <set>

#include <boost/filesystem.hpp>

#include "caf/all.hpp"
#include "caf/io/middleman_actor.hpp"
#include "caf/openssl/manager.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"
#include "runtime/tls.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<secondary_state>*;

constexpr size_t nonce_size = 32;

// First reconnect delay; doubles per failed attempt up to the configured
// cluster.reconnect-max-backoff.
constexpr caf::timespan initial_backoff = std::chrono::milliseconds(50);

// Connects that fail with connection_timeout are retried after
// initial_backoff this many times in a row before the backoff grows.
constexpr int max_quick_retries = 3;

// Delay before asking again after the primary rejected the join. Rejections
// need an operator (add-server, a fixed config), so retries are slower.
constexpr caf::timespan rejected_retry = std::chrono::seconds(2);

auto logger() {
  return log::get(log::membership);
}

std::string primary_label(self_ptr self) {
  auto& st = self->state;
  auto address = to_string(*st.context->config.primary);
  if (st.primary_node.empty())
    return "at " + address;
  return st.primary_node + " at " + address;
}

void schedule_attempt(self_ptr self, caf::timespan delay) {
  self->delayed_send(self, delay, join_atom::value);
}

// Records a failed attempt, logs it once per distinct reason, and retries
// with exponential backoff.
void attempt_failed(self_ptr self, const std::string& reason, bool rejected) {
  auto& st = self->state;
  st.attempt_in_flight = false;
  st.join_error = reason;
  caf::timespan delay;
  if (rejected) {
    st.phase = secondary_phase::rejected;
    delay = std::max<caf::timespan>(rejected_retry, st.context->config.reconnect_max_backoff);
  } else if (st.connect_timeouts > 0 && st.connect_timeouts <= max_quick_retries) {
    // CAF can close a new connection with connection_timeout during the
    // TLS handshake when its heartbeat tick comes first; retry at once.
    st.phase = secondary_phase::connecting;
    delay = initial_backoff;
  } else {
    st.phase = secondary_phase::connecting;
    st.backoff = st.backoff.count() == 0 ? initial_backoff : st.backoff * 2;
    st.backoff = std::min<caf::timespan>(st.backoff, st.context->config.reconnect_max_backoff);
    delay = st.backoff;
  }
  if (reason != st.logged_error) {
    st.logged_error = reason;
    if (rejected)
      logger()->error("primary {} rejected this node: {} -> retrying every {} ms",
                      primary_label(self), reason,
                      std::chrono::duration_cast<std::chrono::milliseconds>(delay).count());
    else
      logger()->warn("cannot join primary {}: {} -> retrying with backoff up to {} ms",
                     primary_label(self), reason, st.context->config.reconnect_max_backoff.count());
  } else {
    logger()->debug("join attempt failed again: {}", reason);
  }
  schedule_attempt(self, delay);
}

void discard_local_settings(self_ptr self) {
  namespace fs = boost::filesystem;
  auto dir = fs::path(self->state.context->config.state_dir) / "cluster";
  boost::system::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec)
    fs::create_directories(dir, ec);
  if (ec)
    logger()->error("cannot discard local cluster settings in {}: {}", dir.string(), ec.message());
}

void on_joined(self_ptr self, caf::actor primary, const join_response& response) {
  auto& st = self->state;
  st.attempt_in_flight = false;
  st.phase = secondary_phase::joined;
  st.primary = primary;
  st.dead_primary = caf::actor{};
  st.primary_node = response.primary_node;
  st.primary_online = true;
  st.primary_since_ms = wall_clock_ms();
  st.last_heard = self->clock().now();
  st.heard_once = true;
  st.backoff = caf::timespan{0};
  st.join_error.clear();
  st.logged_error.clear();
  self->monitor(primary);
  if (response.newly_added) {
    logger()->info("registered as a new member by primary {}: discarding local cluster settings "
                   "and starting over from the primary's",
                   response.primary_node);
    discard_local_settings(self);
  }
  logger()->info("primary {} online: joined cluster={} primary-incarnation={}", primary_label(self),
                 st.context->config.cluster_name, response.primary_incarnation);
  self->send(st.events, peer_event_msg{response.primary_node, "primary", true, "joined"});
}

// Leaves the joined phase after the primary failed or asked for a new join.
void primary_lost(self_ptr self, const std::string& reason, bool connection_closed) {
  auto& st = self->state;
  if (st.phase != secondary_phase::joined)
    return;
  self->demonitor(st.primary);
  if (connection_closed)
    st.dead_primary = st.primary;
  st.primary = caf::actor{};
  st.primary_online = false;
  st.primary_since_ms = wall_clock_ms();
  st.phase = secondary_phase::connecting;
  st.backoff = caf::timespan{0};
  st.join_error = reason;
  st.logged_error.clear();
  logger()->warn("primary {} offline: {} -> reconnecting", primary_label(self), reason);
  self->send(st.events, peer_event_msg{st.primary_node, "primary", false, reason});
  schedule_attempt(self, connection_closed ? initial_backoff : caf::timespan{0});
}

void send_join(self_ptr self, caf::actor primary, const std::string& my_nonce,
               const challenge_response& challenge) {
  auto& st = self->state;
  auto& config = st.context->config;
  auto primary_proof =
    primary_proof_data(challenge.cluster, challenge.primary_node, config.node_name, my_nonce);
  auto verified = tls::verify_signature(challenge.certificate, config.cafile,
                                        challenge.primary_node, primary_proof, challenge.signature);
  if (!verified.ok) {
    attempt_failed(self, "the primary failed to prove its identity: " + verified.error, true);
    return;
  }
  st.primary_node = challenge.primary_node;
  join_request request;
  request.cluster = config.cluster_name;
  request.node = config.node_name;
  request.version = st.context->version;
  request.key_digest = st.context->key_digest;
  request.incarnation = st.context->incarnation;
  request.certificate = st.context->certificate_pem;
  request.member = caf::actor_cast<caf::actor>(self);
  auto proof = join_proof_data(request.cluster, request.node, request.incarnation, challenge.nonce);
  auto signed_ok = tls::sign(config.key, config.passphrase, proof, request.signature);
  if (!signed_ok.ok) {
    attempt_failed(self, "cannot sign the join request: " + signed_ok.error, true);
    return;
  }
  self->request(primary, config.request_timeout, std::move(request))
    .then(
      [=](const join_response& response) {
        if (static_cast<join_verdict>(response.verdict) == join_verdict::accepted)
          on_joined(self, primary, response);
        else
          attempt_failed(self,
                         std::string{to_string(static_cast<join_verdict>(response.verdict))} +
                           ": " + response.reason,
                         true);
      },
      [=](caf::error& err) {
        attempt_failed(self, "join request failed: " + describe_error(self->system(), err), false);
      });
}

void start_handshake(self_ptr self, caf::actor primary) {
  auto& config = self->state.context->config;
  auto my_nonce = tls::random_bytes(nonce_size);
  self->request(primary, config.request_timeout, challenge_request{config.node_name, my_nonce})
    .then(
      [=](const challenge_response& challenge) { send_join(self, primary, my_nonce, challenge); },
      [=](caf::error& err) {
        attempt_failed(self, "handshake failed: " + describe_error(self->system(), err), false);
      });
}

void connect_to_primary(self_ptr self) {
  auto& config = self->state.context->config;
  auto manager = self->system().openssl_manager().actor_handle();
  self
    ->request(manager, config.request_timeout, caf::connect_atom::value, config.primary->host,
              config.primary->port)
    .then(
      [=](const caf::node_id&, caf::strong_actor_ptr& ptr, const std::set<std::string>&) {
        auto primary = caf::actor_cast<caf::actor>(ptr);
        if (!primary) {
          attempt_failed(self, "no membership actor at that address (is it the primary?)", false);
          return;
        }
        // Compare proxy objects, not addresses: a new proxy for the same
        // remote actor after a reconnect has the same address.
        if (caf::actor_cast<caf::abstract_actor*>(primary) ==
            caf::actor_cast<caf::abstract_actor*>(self->state.dead_primary)) {
          attempt_failed(self, "connection to the old primary process is still closing", false);
          return;
        }
        self->state.connect_timeouts = 0;
        start_handshake(self, primary);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        st.connect_timeouts = err == caf::sec::connection_timeout ? st.connect_timeouts + 1 : 0;
        attempt_failed(self, "cannot connect: " + describe_error(self->system(), err), false);
      });
}

// Runs tls::probe_handshake() in a detached actor, because it blocks.
caf::behavior tls_prober(caf::event_based_actor* self, node_context_ptr context) {
  return {
    [=](probe_atom) -> std::string {
      auto& config = context->config;
      auto timeout = static_cast<int>(config.request_timeout.count());
      auto result =
        tls::probe_handshake(config.primary->host, config.primary->port, config.certificate,
                             config.key, config.passphrase, config.cafile, timeout);
      self->quit();
      return result.ok ? std::string{} : result.error;
    },
  };
}

void try_join(self_ptr self) {
  auto& st = self->state;
  if (st.phase == secondary_phase::joined || st.attempt_in_flight)
    return;
  st.attempt_in_flight = true;
  // Every attempt starts with a plain TLS handshake, so that a hung primary
  // is found without CAF, which would spin a core while waiting for it.
  auto prober = self->spawn<caf::detached>(tls_prober, st.context);
  auto limit = st.context->config.request_timeout + std::chrono::seconds(1);
  self->request(prober, limit, probe_atom::value)
    .then(
      [=](const std::string& error) {
        if (!error.empty()) {
          attempt_failed(self, error, false);
          return;
        }
        connect_to_primary(self);
      },
      [=](caf::error& err) {
        attempt_failed(self, "TLS probe failed: " + describe_error(self->system(), err), false);
      });
}

void on_tick(self_ptr self) {
  auto& st = self->state;
  auto& config = st.context->config;
  auto now = self->clock().now();
  auto stall = record_tick(st.last_tick, now, config.failure_timeout);
  if (stall.count() > 0 && st.phase == secondary_phase::joined) {
    logger()->warn("this node was stalled for {} ms (paused or starved of CPU) -> restarting the "
                   "primary's silence timer",
                   std::chrono::duration_cast<std::chrono::milliseconds>(stall).count());
    st.last_heard = now;
  }
  if (st.phase == secondary_phase::joined) {
    auto silence =
      std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() - st.last_heard);
    if (silence > config.failure_timeout)
      primary_lost(self, "no heartbeat for " + std::to_string(silence.count()) + " ms", false);
    else
      self->send(st.primary,
                 heartbeat_msg{config.node_name, st.context->incarnation, ++st.heartbeat_sequence});
  }
  self->delayed_send(self, config.heartbeat_interval, tick_atom::value);
}

node_status make_status(self_ptr self) {
  auto& st = self->state;
  auto& config = st.context->config;
  auto status = status_header(*st.context);
  switch (st.phase) {
  case secondary_phase::connecting:
    status.join_state = "connecting";
    break;
  case secondary_phase::joined:
    status.join_state = "joined";
    break;
  case secondary_phase::rejected:
    status.join_state = "rejected";
    break;
  }
  status.join_error = st.join_error;
  status.primary_node = st.primary_node;
  status.primary_address = to_string(*config.primary);
  peer_status primary;
  primary.node = st.primary_node.empty() ? to_string(*config.primary) : st.primary_node;
  primary.role = "primary";
  primary.state = st.primary_online ? "online" : "offline";
  primary.since_ms = st.primary_since_ms;
  if (st.heard_once)
    primary.last_heartbeat_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(self->clock().now() - st.last_heard)
        .count();
  primary.observed_by = config.node_name;
  primary.detail = st.join_error;
  status.peers.push_back(std::move(primary));
  for (auto& member : st.roster) {
    if (member.node == config.node_name || member.role == "primary")
      continue;
    peer_status peer;
    peer.node = member.node;
    peer.role = member.role;
    peer.state = member.online ? "online" : "offline";
    peer.since_ms = member.since_ms;
    peer.observed_by = st.primary_node;
    if (!st.primary_online)
      peer.detail = "last reported by the primary before it went offline";
    status.peers.push_back(std::move(peer));
  }
  return status;
}

} // namespace

caf::behavior secondary_membership(caf::stateful_actor<secondary_state>* self,
                                   node_context_ptr context) {
  guard_actor(self, log::membership);
  auto& st = self->state;
  st.context = context;
  st.events = membership_events(self->system());
  logger()->info("secondary {} started: cluster={} primary={} version={} incarnation={}",
                 context->config.node_name, context->config.cluster_name,
                 to_string(*context->config.primary), context->version, context->incarnation);
  self->set_down_handler([=](caf::down_msg& msg) {
    if (msg.source == self->state.primary.address())
      primary_lost(self, "connection lost: " + describe_error(self->system(), msg.reason), true);
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    if (st.phase == secondary_phase::joined)
      self->send(st.primary, leave_msg{st.context->config.node_name, st.context->incarnation});
    self->quit(msg.reason);
  });
  self->send(self, join_atom::value);
  self->send(self, tick_atom::value);
  return {
    [=](join_atom) { try_join(self); },
    [=](tick_atom) { on_tick(self); },
    [=](const heartbeat_msg& beat) {
      auto& st = self->state;
      if (st.phase == secondary_phase::joined && beat.node == st.primary_node)
        st.last_heard = self->clock().now();
    },
    // The primary sends the roster right before its join_response, so it
    // arrives while this node is still connecting.
    [=](const roster_msg& roster) { self->state.roster = roster.members; },
    [=](const rejoin_msg& msg) {
      auto& st = self->state;
      if (st.phase == secondary_phase::joined &&
          caf::actor_cast<caf::actor>(self->current_sender()) == st.primary)
        primary_lost(self, "the primary requested a new join: " + msg.reason, false);
    },
    [=](const status_request&) { return make_status(self); },
    // The node's service actors ask for the primary to say hello to it.
    [=](primary_atom) {
      auto& st = self->state;
      auto joined = st.phase == secondary_phase::joined;
      return caf::make_message(joined ? st.primary : caf::actor{}, st.primary_node,
                               st.context->incarnation);
    },
    [=](const admin_command& command) -> admin_result {
      auto& st = self->state;
      auto primary = st.primary_node.empty() ? std::string{"the primary"} : st.primary_node;
      logger()->warn("rejected admin command {}: this node is a secondary; the primary is {}",
                     command.verb, primary);
      return {1, st.context->config.node_name +
                   " is a secondary: cluster state and configuration "
                   "are read-only here; run '" +
                   command.verb + "' on the primary " + primary + " (" +
                   to_string(*st.context->config.primary) + ")"};
    },
  };
}

} // namespace mc
