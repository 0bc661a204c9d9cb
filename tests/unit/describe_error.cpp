#define CAF_SUITE describe_error
#include "caf/test/dsl.hpp"

#include "runtime/describe_error.hpp"

using namespace mc;

CAF_TEST_FIXTURE_SCOPE(describe_error_tests, test_coordinator_fixture<>)

CAF_TEST(empty error is described) {
  CAF_CHECK_EQUAL(describe_error(sys, caf::error{}), "no error");
}

CAF_TEST(known errors get plain words) {
  CAF_CHECK_EQUAL(describe_error(sys, caf::make_error(caf::exit_reason::remote_link_unreachable)),
                  "connection closed [remote_link_unreachable]");
  CAF_CHECK_EQUAL(describe_error(sys, caf::make_error(caf::sec::request_timeout)),
                  "no reply within the request timeout [request_timeout]");
}

CAF_TEST(unknown errors keep the CAF rendering) {
  auto err = caf::make_error(caf::sec::invalid_argument);
  CAF_CHECK_EQUAL(describe_error(sys, err), sys.render(err));
}

CAF_TEST_FIXTURE_SCOPE_END()
