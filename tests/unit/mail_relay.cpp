#define CAF_SUITE mail_relay
#include "caf/test/dsl.hpp"

#include <fstream>

#include <boost/filesystem.hpp>

#include "caf/binary_deserializer.hpp"
#include "caf/binary_serializer.hpp"

#include "actors/mail_relay.hpp"
#include "messages/register.hpp"

using namespace mc;
namespace fs = boost::filesystem;

namespace {

struct config : caf::actor_system_config {
  config() { register_message_types(*this); }
};

struct fixture : test_coordinator_fixture<config> {
  fs::path dir;

  fixture() {
    dir = fs::temp_directory_path() / fs::unique_path("mc-mail-relay-%%%%-%%%%");
    fs::create_directories(dir);
  }

  ~fixture() {
    boost::system::error_code ignored;
    fs::remove_all(dir, ignored);
  }

  std::string queue_path() const { return (dir / "mail-changes.queue").string(); }

  static mail_change user_change(const std::string& event = "flags") {
    mail_change change;
    change.mailbox = "frank@example.com";
    change.folder = "INBOX";
    change.event = event;
    change.detail = "\\Seen";
    return change;
  }

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

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

CAF_TEST_FIXTURE_SCOPE(mail_relay_tests, fixture)

CAF_TEST(outbox numbers changes in order) {
  mail_change_outbox outbox{queue_path(), "mx2", 10};
  CAF_CHECK_EQUAL(outbox.load(), "");
  CAF_CHECK(outbox.epoch() != 0u);
  for (int i = 0; i < 3; ++i) {
    auto change = user_change();
    CAF_CHECK_EQUAL(outbox.add(change, 1000 + i, true), "");
    CAF_CHECK_EQUAL(change.origin, "mx2");
    CAF_CHECK_EQUAL(change.epoch, outbox.epoch());
    CAF_CHECK_EQUAL(change.sequence, static_cast<uint64_t>(i + 1));
    CAF_CHECK_EQUAL(change.time_ms, 1000 + i);
  }
  CAF_REQUIRE_EQUAL(outbox.pending().size(), 3u);
  CAF_CHECK_EQUAL(outbox.pending().front().sequence, 1u);
  CAF_CHECK_EQUAL(outbox.pending().back().sequence, 3u);
  CAF_CHECK_EQUAL(outbox.next_sequence(), 4u);
}

CAF_TEST(outbox survives a reload) {
  uint64_t epoch = 0;
  {
    mail_change_outbox outbox{queue_path(), "mx2", 10};
    CAF_CHECK_EQUAL(outbox.load(), "");
    epoch = outbox.epoch();
    for (auto event : {"flags", "move", "delete"}) {
      auto change = user_change(event);
      CAF_CHECK_EQUAL(outbox.add(change, 5, true), "");
    }
  }
  mail_change_outbox reloaded{queue_path(), "mx2", 10};
  CAF_CHECK_EQUAL(reloaded.load(), "");
  CAF_CHECK_EQUAL(reloaded.epoch(), epoch);
  CAF_CHECK_EQUAL(reloaded.next_sequence(), 4u);
  CAF_REQUIRE_EQUAL(reloaded.pending().size(), 3u);
  CAF_CHECK_EQUAL(reloaded.pending()[0].event, "flags");
  CAF_CHECK_EQUAL(reloaded.pending()[1].event, "move");
  CAF_CHECK_EQUAL(reloaded.pending()[2].event, "delete");
  CAF_CHECK_EQUAL(reloaded.pending()[2].detail, "\\Seen");
}

CAF_TEST(outbox acknowledgement removes a prefix) {
  mail_change_outbox outbox{queue_path(), "mx2", 10};
  CAF_CHECK_EQUAL(outbox.load(), "");
  for (int i = 0; i < 4; ++i) {
    auto change = user_change();
    CAF_CHECK_EQUAL(outbox.add(change, 1, true), "");
  }
  size_t removed = 99;
  CAF_CHECK_EQUAL(outbox.acknowledge(outbox.epoch() + 1, 4, removed), "");
  CAF_CHECK_EQUAL(removed, 0u);
  CAF_CHECK_EQUAL(outbox.pending().size(), 4u);
  CAF_CHECK_EQUAL(outbox.acknowledge(outbox.epoch(), 2, removed), "");
  CAF_CHECK_EQUAL(removed, 2u);
  CAF_REQUIRE_EQUAL(outbox.pending().size(), 2u);
  CAF_CHECK_EQUAL(outbox.pending().front().sequence, 3u);
  // A repeated acknowledgement changes nothing.
  CAF_CHECK_EQUAL(outbox.acknowledge(outbox.epoch(), 2, removed), "");
  CAF_CHECK_EQUAL(removed, 0u);
  mail_change_outbox reloaded{queue_path(), "mx2", 10};
  CAF_CHECK_EQUAL(reloaded.load(), "");
  CAF_REQUIRE_EQUAL(reloaded.pending().size(), 2u);
  CAF_CHECK_EQUAL(reloaded.pending().front().sequence, 3u);
  CAF_CHECK_EQUAL(reloaded.next_sequence(), 5u);
}

CAF_TEST(outbox is full at its limit) {
  mail_change_outbox outbox{queue_path(), "mx2", 2};
  CAF_CHECK_EQUAL(outbox.load(), "");
  auto change = user_change();
  CAF_CHECK_EQUAL(outbox.add(change, 1, true), "");
  CAF_CHECK(!outbox.full());
  CAF_CHECK_EQUAL(outbox.add(change, 1, true), "");
  CAF_CHECK(outbox.full());
  size_t removed = 0;
  CAF_CHECK_EQUAL(outbox.acknowledge(outbox.epoch(), 1, removed), "");
  CAF_CHECK(!outbox.full());
}

CAF_TEST(outbox without queue keeps only the sequence) {
  mail_change_outbox outbox{queue_path(), "mx1", 1};
  CAF_CHECK_EQUAL(outbox.load(), "");
  for (int i = 0; i < 3; ++i) {
    auto change = user_change();
    CAF_CHECK_EQUAL(outbox.add(change, 1, false), "");
  }
  CAF_CHECK(outbox.pending().empty());
  CAF_CHECK(!outbox.full());
  mail_change_outbox reloaded{queue_path(), "mx1", 1};
  CAF_CHECK_EQUAL(reloaded.load(), "");
  CAF_CHECK_EQUAL(reloaded.next_sequence(), 4u);
}

CAF_TEST(outbox save failure changes nothing) {
  auto path = (dir / "missing-dir" / "mail-changes.queue").string();
  mail_change_outbox outbox{path, "mx2", 10};
  CAF_CHECK(!outbox.load().empty());
  auto change = user_change();
  CAF_CHECK(!outbox.add(change, 1, true).empty());
  CAF_CHECK(outbox.pending().empty());
  CAF_CHECK_EQUAL(outbox.next_sequence(), 1u);
}

CAF_TEST(outbox moves a corrupt file aside) {
  {
    std::ofstream out(queue_path());
    out << "{\"format\": \"mailcluster-mail-change-outbox\", \"version\": 1, trunc";
  }
  mail_change_outbox outbox{queue_path(), "mx2", 10};
  auto warning = outbox.load();
  CAF_CHECK(contains(warning, "moved it to"));
  CAF_CHECK(fs::exists(queue_path() + ".corrupt"));
  CAF_CHECK(fs::exists(queue_path()));
  CAF_CHECK(outbox.epoch() != 0u);
  CAF_CHECK_EQUAL(outbox.next_sequence(), 1u);
}

CAF_TEST(outbox of another node is not used) {
  {
    mail_change_outbox outbox{queue_path(), "mx3", 10};
    CAF_CHECK_EQUAL(outbox.load(), "");
    auto change = user_change();
    CAF_CHECK_EQUAL(outbox.add(change, 1, true), "");
  }
  mail_change_outbox outbox{queue_path(), "mx2", 10};
  CAF_CHECK(contains(outbox.load(), "written by node 'mx3'"));
  CAF_CHECK(outbox.pending().empty());
}

CAF_TEST(dedup drops repeats and accepts new epochs) {
  auto path = (dir / "mail-changes.seen").string();
  mail_change change = user_change();
  change.origin = "mx2";
  change.epoch = 7;
  change.sequence = 3;
  {
    mail_change_dedup seen{path};
    CAF_CHECK_EQUAL(seen.load(), "");
    CAF_CHECK(seen.is_new(change));
    seen.record(change);
    CAF_CHECK(!seen.is_new(change));
    CAF_CHECK_EQUAL(seen.save(), "");
  }
  mail_change_dedup seen{path};
  CAF_CHECK_EQUAL(seen.load(), "");
  CAF_CHECK(!seen.is_new(change));
  change.sequence = 2;
  CAF_CHECK(!seen.is_new(change));
  change.sequence = 4;
  CAF_CHECK(seen.is_new(change));
  change.sequence = 1;
  change.epoch = 8;
  CAF_CHECK(seen.is_new(change));
  change.origin = "mx3";
  change.epoch = 7;
  CAF_CHECK(seen.is_new(change));
}

CAF_TEST(check names the bad option) {
  auto change = user_change("flagz");
  auto error = check_mail_change(change);
  CAF_CHECK(contains(error, "'--event'"));
  CAF_CHECK(contains(error, "'flagz'"));
  CAF_CHECK(contains(error, "folder-rename"));
  change = user_change();
  change.mailbox = "frank";
  CAF_CHECK(contains(check_mail_change(change), "'--mailbox'"));
  change.mailbox = "frank@";
  CAF_CHECK(contains(check_mail_change(change), "'--mailbox'"));
  change = user_change();
  change.folder = "";
  CAF_CHECK(contains(check_mail_change(change), "'--folder'"));
  change = user_change();
  change.detail = "two\nlines";
  CAF_CHECK(contains(check_mail_change(change), "'--detail'"));
  change.detail = std::string(max_detail_bytes + 1, 'x');
  CAF_CHECK(contains(check_mail_change(change), "'--detail'"));
  for (auto& event : mail_change_events())
    CAF_CHECK_EQUAL(check_mail_change(user_change(event)), "");
}

CAF_TEST(publish arguments parse both forms) {
  mail_change change;
  CAF_CHECK_EQUAL(parse_publish_args({"publish", "--mailbox", "a@b.example", "--folder=Sent Items",
                                      "--event", "move", "--detail", "--to Archive"},
                                     change),
                  "");
  CAF_CHECK_EQUAL(change.mailbox, "a@b.example");
  CAF_CHECK_EQUAL(change.folder, "Sent Items");
  CAF_CHECK_EQUAL(change.event, "move");
  CAF_CHECK_EQUAL(change.detail, "--to Archive");
  CAF_CHECK(contains(parse_publish_args({"publish", "--mailbox", "a@b"}, change), "'--folder'"));
  CAF_CHECK(contains(parse_publish_args({"publish", "--mailbox"}, change), "needs a value"));
  CAF_CHECK(contains(
    parse_publish_args({"publish", "--mailbox", "a@b", "--mailbox", "c@d"}, change), "twice"));
  CAF_CHECK(contains(parse_publish_args({"publish", "--colour", "red"}, change), "'--colour'"));
  CAF_CHECK(contains(check_mail_change_args({"watch", "extra"}), "'extra'"));
  CAF_CHECK(contains(check_mail_change_args({"subscribe"}), "'publish' or 'watch'"));
  CAF_CHECK_EQUAL(check_mail_change_args({"watch"}), "");
}

CAF_TEST(forward request round trip) {
  auto change = user_change("expunge");
  change.origin = "mx3";
  change.epoch = 12345678901234ull;
  change.sequence = 42;
  change.time_ms = 1700000000123;
  auto copy = round_trip(mail_change_forward_request{"mx3", {change, change}});
  CAF_CHECK_EQUAL(copy.node, "mx3");
  CAF_REQUIRE_EQUAL(copy.changes.size(), 2u);
  CAF_CHECK_EQUAL(copy.changes[1].epoch, change.epoch);
  CAF_CHECK_EQUAL(copy.changes[1].sequence, 42u);
  CAF_CHECK_EQUAL(copy.changes[1].time_ms, change.time_ms);
  CAF_CHECK_EQUAL(copy.changes[1].event, "expunge");
  CAF_CHECK_EQUAL(copy.changes[1].detail, "\\Seen");
  auto response = round_trip(mail_change_forward_response{change.epoch, 42});
  CAF_CHECK_EQUAL(response.epoch, change.epoch);
  CAF_CHECK_EQUAL(response.sequence, 42u);
}

CAF_TEST_FIXTURE_SCOPE_END()
