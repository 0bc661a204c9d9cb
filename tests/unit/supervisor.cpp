#define CAF_SUITE supervisor
#include "caf/test/dsl.hpp"

#include "runtime/supervisor.hpp"

using namespace mc;

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;

// A child that fails on request, as an actor with a bug would.
caf::behavior crashing_child(caf::event_based_actor* self) {
  return {
    [=](crash_atom) { self->quit(caf::make_error(caf::sec::runtime_error, "test crash")); },
  };
}

struct fixture : test_coordinator_fixture<> {
  std::shared_ptr<int> spawned = std::make_shared<int>(0);
  std::shared_ptr<caf::actor> latest = std::make_shared<caf::actor>();
  caf::actor root;
  restart_policy policy;

  fixture() {
    policy.initial_backoff = std::chrono::milliseconds(100);
    policy.max_backoff = std::chrono::milliseconds(400);
    policy.max_restarts = 3;
    policy.window = std::chrono::seconds(60);
    auto counter = spawned;
    auto handle = latest;
    std::vector<child_spec> children{{"worker", [counter, handle](caf::actor_system& system) {
                                        ++*counter;
                                        *handle = system.spawn(crashing_child);
                                        return *handle;
                                      }}};
    root = sys.spawn(supervisor, children, policy);
    self->monitor(root);
    sched.run();
  }

  ~fixture() override {
    caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
    sched.run();
  }

  void crash_latest() {
    caf::anon_send(*latest, crash_atom::value);
    sched.run();
  }
};

} // namespace

CAF_TEST_FIXTURE_SCOPE(supervisor_tests, fixture)

CAF_TEST(child starts once) {
  CAF_CHECK_EQUAL(*spawned, 1);
}

CAF_TEST(failed child restarts after backoff) {
  crash_latest();
  CAF_CHECK_EQUAL(*spawned, 1);
  advance_time(std::chrono::milliseconds(99));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 1);
  advance_time(std::chrono::milliseconds(1));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 2);
}

CAF_TEST(backoff doubles per failure) {
  crash_latest();
  advance_time(std::chrono::milliseconds(100));
  sched.run();
  CAF_REQUIRE_EQUAL(*spawned, 2);
  crash_latest();
  advance_time(std::chrono::milliseconds(150));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 2);
  advance_time(std::chrono::milliseconds(50));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 3);
}

CAF_TEST(restart limit stops the supervisor) {
  for (int i = 0; i < 3; ++i) {
    crash_latest();
    advance_time(std::chrono::milliseconds(400));
    sched.run();
  }
  CAF_REQUIRE_EQUAL(*spawned, 4);
  crash_latest();
  advance_time(std::chrono::milliseconds(400));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 4);
  bool stopped = false;
  self->receive([&](caf::down_msg& msg) {
    stopped = true;
    CAF_CHECK(is_supervisor_gave_up(msg.reason));
  });
  CAF_CHECK(stopped);
}

CAF_TEST(failures outside the window are forgotten) {
  for (int i = 0; i < 3; ++i) {
    crash_latest();
    advance_time(std::chrono::seconds(61));
    sched.run();
  }
  crash_latest();
  advance_time(std::chrono::milliseconds(400));
  sched.run();
  CAF_CHECK_EQUAL(*spawned, 5);
}

CAF_TEST(shutdown stops the children) {
  auto child = *latest;
  self->monitor(child);
  caf::anon_send_exit(root, caf::exit_reason::user_shutdown);
  sched.run();
  int downs = 0;
  for (int i = 0; i < 2; ++i)
    self->receive([&](caf::down_msg& msg) {
      ++downs;
      CAF_CHECK_EQUAL(msg.reason, caf::exit_reason::user_shutdown);
    });
  CAF_CHECK_EQUAL(downs, 2);
  CAF_CHECK_EQUAL(*spawned, 1);
}

CAF_TEST_FIXTURE_SCOPE_END()
