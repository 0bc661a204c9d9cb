#include "runtime/supervisor.hpp"

#include "caf/all.hpp"

#include "messages/atoms.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/describe_error.hpp"
#include "runtime/logging.hpp"

namespace mc {

namespace {

using self_ptr = caf::stateful_actor<supervisor_state>*;

auto logger() {
  return log::get(log::supervisor);
}

const child_spec* find_spec(self_ptr self, const std::string& name) {
  for (auto& spec : self->state.children)
    if (spec.name == name)
      return &spec;
  return nullptr;
}

void start_child(self_ptr self, const child_spec& spec) {
  auto child = spec.spawn(self->system());
  self->monitor(child);
  self->state.running[spec.name] = child;
  logger()->debug("started child {}", spec.name);
}

// Returns the name of the running child with this address, or "".
std::string child_name(self_ptr self, const caf::actor_addr& source) {
  for (auto& [name, child] : self->state.running)
    if (child.address() == source)
      return name;
  return {};
}

void on_child_down(self_ptr self, const std::string& name, const caf::error& reason) {
  auto& st = self->state;
  st.running.erase(name);
  auto now = self->clock().now();
  auto& failures = st.failures[name];
  while (!failures.empty() && now - failures.front() > st.policy.window)
    failures.pop_front();
  failures.push_back(now);
  auto reason_text = reason ? describe_error(self->system(), reason) : std::string{"normal exit"};
  if (failures.size() > st.policy.max_restarts) {
    logger()->error(
      "child {} failed {} times within {} s: reason={} -> stopping the node", name, failures.size(),
      std::chrono::duration_cast<std::chrono::seconds>(st.policy.window).count(), reason_text);
    st.stopping = true;
    for (auto& [other, child] : st.running)
      self->send_exit(child, caf::exit_reason::user_shutdown);
    self->quit(supervisor_gave_up(name, reason_text));
    return;
  }
  auto delay = st.policy.initial_backoff;
  for (size_t i = 1; i < failures.size() && delay < st.policy.max_backoff; ++i)
    delay *= 2;
  delay = std::min(delay, st.policy.max_backoff);
  logger()->warn("child {} failed: reason={} -> restarting in {} ms (failure {} of {} allowed "
                 "within {} s)",
                 name, reason_text,
                 std::chrono::duration_cast<std::chrono::milliseconds>(delay).count(),
                 failures.size(), st.policy.max_restarts,
                 std::chrono::duration_cast<std::chrono::seconds>(st.policy.window).count());
  self->delayed_send(self, delay, restart_atom::value, name);
}

} // namespace

caf::error supervisor_gave_up(const std::string& child, const std::string& last_failure) {
  return caf::make_error(caf::sec::runtime_error, "supervisor gave up", child, last_failure);
}

std::string describe_gave_up(const caf::error& reason) {
  auto& context = reason.context();
  if (!is_supervisor_gave_up(reason) || context.size() < 3 ||
      !context.match_element<std::string>(1) || !context.match_element<std::string>(2))
    return {};
  return "the " + context.get_as<std::string>(1) +
         " actor failed too often; last failure: " + context.get_as<std::string>(2);
}

bool is_supervisor_gave_up(const caf::error& reason) {
  if (reason != caf::sec::runtime_error)
    return false;
  auto& context = reason.context();
  return context.match_element<std::string>(0) &&
         context.get_as<std::string>(0) == "supervisor gave up";
}

caf::behavior supervisor(caf::stateful_actor<supervisor_state>* self,
                         std::vector<child_spec> children, restart_policy policy) {
  guard_actor(self, log::supervisor);
  self->state.children = std::move(children);
  self->state.policy = policy;
  for (auto& spec : self->state.children)
    start_child(self, spec);
  self->set_down_handler([=](caf::down_msg& msg) {
    if (self->state.stopping)
      return;
    auto name = child_name(self, msg.source);
    if (!name.empty())
      on_child_down(self, name, msg.reason);
  });
  self->set_exit_handler([=](caf::exit_msg& msg) {
    auto& st = self->state;
    st.stopping = true;
    logger()->info("stopping {} children: reason={}", st.running.size(),
                   describe_error(self->system(), msg.reason));
    for (auto& [name, child] : st.running)
      self->send_exit(child, msg.reason);
    self->quit(msg.reason);
  });
  return {
    [=](restart_atom, const std::string& name) {
      if (self->state.stopping || self->state.running.count(name) > 0)
        return;
      if (auto spec = find_spec(self, name)) {
        logger()->info("restarting child {}", name);
        start_child(self, *spec);
      }
    },
  };
}

} // namespace mc
