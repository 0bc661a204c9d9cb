#include "actors/secondary_relay.hpp"

#include <algorithm>
#include <chrono>

#include "caf/all.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/events.hpp"
#include "messages/replication.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"
#include "runtime/replication_support.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<secondary_relay_state>*;

/// Timer of this actor: send the queue to the primary again now.
/// NOTE: defined here and not in messages/atoms.hpp because it never leaves
/// this actor; move it there if another actor needs it.
using resend_atom = caf::atom_constant<caf::atom("mc_resend")>;

/// Changes per mail_change_forward_request.
constexpr size_t batch_size = 100;
constexpr auto retry_delay = std::chrono::seconds(1);
/// After the first failed forward request in a row, every this many
/// failures are logged.
constexpr uint64_t failure_log_interval = 30;

auto logger() {
  return log::get(log::relay);
}

void say_hello(self_ptr self) {
  auto membership = caf::actor_cast<caf::actor>(self->system().registry().get(membership_key));
  if (!membership)
    return;
  self->request(membership, self->state.context->config.request_timeout, primary_atom::value)
    .then([=](const caf::actor& primary, const std::string&, uint64_t incarnation) {
      if (!primary)
        return;
      self->send(primary,
                 service_hello{self->state.context->config.node_name, incarnation, "relay"});
    });
}

void schedule_retry(self_ptr self) {
  auto& st = self->state;
  if (st.retry_pending)
    return;
  st.retry_pending = true;
  self->delayed_send(self, retry_delay, resend_atom::value);
}

void pump(self_ptr self);

void on_acknowledged(self_ptr self, uint64_t connection,
                     const mail_change_forward_response& response) {
  auto& st = self->state;
  size_t removed = 0;
  if (auto error = st.outbox->acknowledge(response.epoch, response.sequence, removed);
      !error.empty())
    logger()->error("cannot save the mail change queue after the primary acknowledged changes up "
                    "to #{}: {}; they may be sent again after a restart, and the primary drops "
                    "them as duplicates",
                    response.sequence, error);
  if (connection != st.connection)
    return;
  st.sending = false;
  st.failures = 0;
  if (st.backlog && st.outbox->pending().empty()) {
    st.backlog = false;
    logger()->info("sent every queued mail change to the primary {}: queue empty, last #{}",
                   st.primary_node, response.sequence);
  }
  pump(self);
}

// Sends the oldest queued changes to the primary's relay, one request at a
// time so that they arrive in order.
void pump(self_ptr self) {
  auto& st = self->state;
  auto& pending = st.outbox->pending();
  if (!st.primary || st.sending || pending.empty())
    return;
  mail_change_forward_request request;
  request.node = st.context->config.node_name;
  auto count = std::min(batch_size, pending.size());
  request.changes.assign(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(count));
  st.sending = true;
  auto connection = st.connection;
  self->request(st.primary, st.context->config.request_timeout, std::move(request))
    .then(
      [=](const mail_change_forward_response& response) {
        on_acknowledged(self, connection, response);
      },
      [=](caf::error& err) {
        auto& st = self->state;
        if (connection != st.connection)
          return;
        st.sending = false;
        if (st.failures++ % failure_log_interval == 0)
          logger()->warn("sending {} mail changes to the primary {} failed: {}; {} changes wait, "
                         "retrying every {} s",
                         count, st.primary_node, describe_error(self->system(), err),
                         st.outbox->pending().size(), retry_delay.count());
        schedule_retry(self);
      });
}

admin_result publish(self_ptr self, const admin_command& command) {
  auto& st = self->state;
  auto& config = st.context->config;
  mail_change change;
  if (!publish_from_args(command.args, change))
    return {1, "mail-change-publish needs 4 arguments: mailbox, folder, event, detail"};
  if (auto error = check_mail_change(change); !error.empty())
    return {1, error};

  auto primary = st.primary_node.empty() ? std::string{"(name not known yet)"} : st.primary_node;
  if (st.outbox->full()) {
    logger()->warn("rejected a mail change for {}: the queue holds {} changes, the limit; the "
                   "primary {} has not acknowledged them",
                   change.mailbox, st.outbox->pending().size(), primary);
    return {1, "the mail change queue of " + config.node_name +
                 " is full: " + std::to_string(st.outbox->pending().size()) +
                 " changes wait for the primary " + primary +
                 " ([mail-changes] queue-limit); the change was not published; publish it "
                 "again when the primary is back"};
  }

  if (auto error = st.outbox->add(change, wall_clock_ms(), true); !error.empty()) {
    logger()->error("cannot save a mail change for {} in the queue: {}", change.mailbox, error);
    return {1, "cannot save the mail change in the queue " + st.outbox->path() + ": " + error +
                 "; the change was not published"};
  }

  st.watchers.deliver(self, change);
  auto waiting = st.outbox->pending().size();
  logger()->debug("published {}: {} changes wait for the primary", describe_change(change),
                  waiting);
  if (!st.primary) {
    if (!st.backlog)
      logger()->info("queueing mail changes while the primary {} is offline: queue={} limit={}",
                     primary, st.outbox->path(), st.outbox->limit());
    st.backlog = true;
    return {0, "published " + describe_change(change) + "; the primary " + primary +
                 " is offline, so it waits in the queue (" + std::to_string(waiting) + " of " +
                 std::to_string(st.outbox->limit()) + ")"};
  }

  pump(self);
  return {0, "published " + describe_change(change) + "; sending it to the primary " + primary};
}

void on_primary_ready(self_ptr self, const mail_relay_ready_msg& ready) {
  auto& st = self->state;
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  if (!sender)
    return;
  follow_peer(self, st.primary, sender);
  st.primary_node = ready.primary_node;
  ++st.connection;
  st.sending = false;
  st.failures = 0;
  logger()->info("mail change relay of the primary {} ready: {} queued changes to send",
                 ready.primary_node, st.outbox->pending().size());
  pump(self);
}

} // namespace

caf::behavior secondary_relay(caf::stateful_actor<secondary_relay_state>* self,
                              node_context_ptr context) {
  guard_actor(self, log::relay);
  auto& st = self->state;
  st.context = context;
  auto& config = context->config;
  st.outbox = std::make_unique<mail_change_outbox>(config.state_dir + "/mail-changes.queue",
                                                   config.node_name, config.mail_queue_limit);
  if (auto warning = st.outbox->load(); !warning.empty())
    logger()->error("{}", warning);
  if (!st.outbox->pending().empty()) {
    st.backlog = true;
    logger()->info("mail change queue holds {} changes from before the restart; they are sent "
                   "when the primary's relay is reachable",
                   st.outbox->pending().size());
  }
  st.events = membership_events(self->system());
  self->join(st.events);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& st = self->state;
    if (st.watchers.remove(msg.source)) {
      logger()->debug("a mail change watcher left: {} remain", st.watchers.size());
      return;
    }
    if (st.primary && st.primary.address() == msg.source) {
      logger()->warn("lost the mail change relay of the primary {}: {}; {} changes wait, new "
                     "ones are queued until it returns",
                     st.primary_node, describe_error(self->system(), msg.reason),
                     st.outbox->pending().size());
      st.primary = caf::actor{};
      st.sending = false;
      ++st.connection;
      if (!st.outbox->pending().empty())
        st.backlog = true;
    }
  });
  say_hello(self);
  return {
    [=](const peer_event_msg& event) {
      if (event.role == "primary" && event.online)
        say_hello(self);
    },
    [=](const mail_relay_ready_msg& ready) { on_primary_ready(self, ready); },
    [=](const mail_change_msg& msg) {
      auto& st = self->state;
      if (!st.primary ||
          caf::actor_cast<caf::strong_actor_ptr>(st.primary) != self->current_sender())
        return;
      if (!st.seen.is_new(msg.change)) {
        logger()->debug("dropped a repeated mail change {}", describe_change(msg.change));
        return;
      }
      st.seen.record(msg.change);
      st.watchers.deliver(self, msg.change);
    },
    [=](resend_atom) {
      self->state.retry_pending = false;
      pump(self);
    },
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
