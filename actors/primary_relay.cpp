#include "actors/primary_relay.hpp"

#include <chrono>

#include "caf/all.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/replication.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/logging.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<primary_relay_state>*;

auto logger() {
  return log::get(log::relay);
}

int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::steady_clock::now().time_since_epoch())
    .count();
}

// Sends `change` to the local watchers and to the relay of every online
// secondary except its origin, and keeps it for replays. Returns the
// number of secondaries.
size_t forward(self_ptr self, const mail_change& change) {
  auto& st = self->state;
  st.watchers.deliver(self, change);
  st.history.push_back({change, steady_ms()});
  while (st.history.size() > st.context->config.mail_queue_limit)
    st.history.pop_front();
  size_t sent = 0;
  for (auto& [node, relay] : st.peers) {
    if (node == change.origin)
      continue;
    self->send(relay, mail_change_msg{change});
    ++sent;
  }
  return sent;
}

// Sends a (re)connected secondary the kept changes it may have missed:
// all of them when it never connected to this process, else those
// forwarded since shortly before its relay went down. A link can fail up
// to a failure timeout before the down_msg, hence twice that as a margin.
// The secondary's relay drops the ones it has already shown.
void replay(self_ptr self, const service_peer& peer) {
  auto& st = self->state;
  int64_t since = 0;
  if (auto i = st.left_ms.find(peer.node); i != st.left_ms.end()) {
    auto margin =
      std::chrono::duration_cast<std::chrono::milliseconds>(2 * st.context->config.failure_timeout);
    since = i->second - margin.count();
    st.left_ms.erase(i);
  }
  size_t sent = 0;
  for (auto& entry : st.history) {
    if (entry.forwarded_ms < since || entry.change.origin == peer.node)
      continue;
    self->send(peer.handle, mail_change_msg{entry.change});
    ++sent;
  }
  if (sent > 0)
    logger()->info("sent {} kept mail changes to secondary {} that it may have missed", sent,
                   peer.node);
}

void add_peer(self_ptr self, const service_peer& peer) {
  auto& st = self->state;
  auto& relay = st.peers[peer.node];
  // A repeated hello of the same relay changes nothing but the ready
  // message, and needs no replay.
  bool is_new = relay != peer.handle;
  if (relay && is_new) {
    // The old relay of that node is going away, so treat it as gone now.
    self->demonitor(relay);
    st.left_ms.emplace(peer.node, steady_ms());
  }
  if (is_new)
    self->monitor(peer.handle);
  relay = peer.handle;
  logger()->info("mail change relay of secondary {} connected: {} secondaries reachable", peer.node,
                 st.peers.size());
  self->send(peer.handle, mail_relay_ready_msg{st.context->config.node_name});
  if (is_new)
    replay(self, peer);
}

caf::result<mail_change_forward_response> on_forward(self_ptr self,
                                                     const mail_change_forward_request& request) {
  auto& st = self->state;
  auto peer = st.peers.find(request.node);
  if (peer == st.peers.end() ||
      caf::actor_cast<caf::strong_actor_ptr>(peer->second) != self->current_sender()) {
    logger()->warn("rejected {} mail changes for '{}' from an actor that is not that secondary's "
                   "relay",
                   request.changes.size(), request.node);
    return caf::make_error(caf::sec::request_receiver_down,
                           "mail changes from an actor that is not the sending node's relay");
  }
  for (auto& change : request.changes)
    if (change.origin != request.node) {
      logger()->warn("rejected mail changes from {}: one names the origin '{}'", request.node,
                     change.origin);
      return caf::make_error(caf::sec::invalid_argument,
                             "a mail change names another node as its origin");
    }
  mail_change_forward_response response;
  size_t forwarded = 0;
  for (auto& change : request.changes) {
    response.epoch = change.epoch;
    response.sequence = change.sequence;
    if (!st.seen->is_new(change)) {
      logger()->debug("dropped a repeated mail change {}", describe_change(change));
      continue;
    }
    st.seen->record(change);
    // Acknowledged either way, so that one bad change does not block the
    // secondary's queue for ever.
    if (auto error = check_mail_change(change); !error.empty()) {
      logger()->warn("dropped mail change {} from {}: {}", describe_change(change), request.node,
                     error);
      continue;
    }
    forward(self, change);
    ++forwarded;
  }
  // Saved after forwarding: a crash in between makes the secondary resend
  // changes that were forwarded already, and the secondaries' relays drop
  // those as long as they ran meanwhile.
  if (forwarded > 0)
    if (auto error = st.seen->save(); !error.empty())
      logger()->error("cannot save the mail changes seen: {}; after a restart of this node, "
                      "changes that secondaries resend may be forwarded twice",
                      error);
  if (forwarded > 0)
    logger()->debug("forwarded {} mail changes from {} up to #{}", forwarded, request.node,
                    response.sequence);
  return response;
}

admin_result publish(self_ptr self, const admin_command& command) {
  auto& st = self->state;
  mail_change change;
  if (!publish_from_args(command.args, change))
    return {1, "mail-change-publish needs 4 arguments: mailbox, folder, event, detail"};
  if (auto error = check_mail_change(change); !error.empty())
    return {1, error};
  if (auto error = st.outbox->add(change, wall_clock_ms(), false); !error.empty()) {
    logger()->error("cannot save the mail change sequence number: {}", error);
    return {1, "cannot save the mail change sequence number in " + st.outbox->path() + ": " +
                 error + "; the change was not published"};
  }
  auto sent = forward(self, change);
  logger()->debug("published {} to {} secondaries", describe_change(change), sent);
  std::string names;
  for (auto& [node, relay] : st.peers)
    names += (names.empty() ? "" : ", ") + node;
  if (sent == 0)
    return {0, "published " + describe_change(change) +
                 "; no secondary is online, so only watchers on this node saw it"};
  return {0, "published " + describe_change(change) + " to " + std::to_string(sent) +
               " secondaries: " + names};
}

} // namespace

caf::behavior primary_relay(caf::stateful_actor<primary_relay_state>* self,
                            node_context_ptr context) {
  guard_actor(self, log::relay);
  auto& st = self->state;
  st.context = context;
  auto& config = context->config;
  st.outbox = std::make_unique<mail_change_outbox>(config.state_dir + "/mail-changes.queue",
                                                   config.node_name, config.mail_queue_limit);
  if (auto warning = st.outbox->load(); !warning.empty())
    logger()->error("{}", warning);
  st.seen = std::make_unique<mail_change_dedup>(config.state_dir + "/mail-changes.seen");
  if (auto warning = st.seen->load(); !warning.empty())
    logger()->error("{}", warning);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.watchers.remove(msg.source)) {
      logger()->debug("a mail change watcher left: {} remain", st.watchers.size());
      return;
    }
    for (auto i = st.peers.begin(); i != st.peers.end(); ++i)
      if (i->second.address() == msg.source) {
        logger()->info("mail change relay of secondary {} gone: it gets no changes until it says "
                       "hello again",
                       i->first);
        st.left_ms[i->first] = steady_ms();
        st.peers.erase(i);
        return;
      }
  });
  // After a restart of this actor, pick up the secondaries that said hello
  // before.
  auto membership = caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
  if (membership)
    self->request(membership, config.request_timeout, service_peers_request{"relay"})
      .then([=](const std::vector<service_peer>& peers) {
        for (auto& peer : peers)
          add_peer(self, peer);
      });
  return {
    [=](const service_peer& peer) { add_peer(self, peer); },
    [=](const mail_change_forward_request& request) { return on_forward(self, request); },
    [=](const mail_watch_request&) -> caf::result<mail_watch_response> {
      auto watcher = caf::actor_cast<caf::actor>(self->current_sender());
      if (!watcher)
        return caf::make_error(caf::sec::invalid_argument, "a watch needs a sender");
      self->state.watchers.add(self, watcher);
      logger()->debug("a mail change watcher joined: {} now", self->state.watchers.size());
      return mail_watch_response{self->state.context->config.node_name,
                                 caf::actor_cast<caf::actor>(self)};
    },
    [=](const admin_command& command) -> admin_result {
      if (command.verb == "mail-change-publish")
        return publish(self, command);
      return {1, "unknown mail change command '" + command.verb + "'"};
    },
  };
}

} // namespace mc
