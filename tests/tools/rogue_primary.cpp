// A primary for tests only: it runs the real node (membership, TLS, admin)
// but its replication actor sends each secondary a file list with unsafe
// paths, and serves content for all of them. Integration tests use it to
// check that a secondary refuses, logs and counts such paths and writes
// nothing outside its configuration directory.
//
// Besides one good file "good.txt" (content "good\n"), the list contains
// ../escape.txt, /tmp/absolute.txt, a/../../up.txt, "nul\0byte.txt", a
// 300-byte name, "Users/excluded.txt" (a shared folder) and an entry with a
// malformed hash. It also lists "link/inside.txt", which is lexically safe
// but leaves the directory if the secondary has a symbolic link "link".
#include <string>

#include "caf/all.hpp"

#include "messages/admin.hpp"
#include "messages/atoms.hpp"
#include "messages/replication.hpp"
#include "runtime/actor_guard.hpp"
#include "runtime/logging.hpp"
#include "runtime/node.hpp"
#include "runtime/tls.hpp"

namespace {

const std::string good_content = "good\n";
const std::string bad_content = "written by the rogue primary\n";

mc::file_entry entry(const std::string& path, const std::string& content) {
  mc::file_entry result;
  result.path = path;
  result.size = content.size();
  result.mode = 0644;
  result.mtime_ns = 1700000000LL * 1000000000LL;
  result.sha256 = mc::tls::sha256_hex(content);
  return result;
}

mc::replication_signal rogue_signal(const std::string& primary) {
  mc::replication_signal signal;
  signal.primary_node = primary;
  signal.generation = 1;
  signal.built_ms = mc::wall_clock_ms();
  // Sorted as a real list would be, so only the paths are wrong.
  std::vector<mc::file_entry> files = {
    entry("../escape.txt", bad_content),
    entry("/tmp/absolute.txt", bad_content),
    entry("Users/excluded.txt", bad_content),
    entry("a/../../up.txt", bad_content),
    entry("good.txt", good_content),
    entry("link/inside.txt", bad_content),
    entry(std::string("nul\0byte.txt", 12), bad_content),
    entry(std::string(300, 'x'), bad_content),
  };
  auto malformed = entry("zz-malformed-hash.txt", bad_content);
  malformed.sha256 = "not-a-hash";
  files.push_back(malformed);
  std::sort(files.begin(), files.end(),
            [](const mc::file_entry& x, const mc::file_entry& y) { return x.path < y.path; });
  signal.files = files;
  return signal;
}

caf::behavior rogue_replication(caf::event_based_actor* self, mc::node_context_ptr context) {
  mc::guard_actor(self, mc::log::replication);
  auto primary = context->config.node_name;
  return {
    [=](const mc::service_peer& peer) {
      mc::log::get(mc::log::replication)
        ->warn("rogue primary: sending unsafe paths to {}", peer.node);
      self->send(peer.handle, rogue_signal(primary));
    },
    [=](const mc::full_list_request&) {
      self->send(caf::actor_cast<caf::actor>(self->current_sender()), rogue_signal(primary));
    },
    [=](const mc::fetch_request& request) {
      mc::fetch_reply reply;
      for (auto& item : request.items) {
        auto& content = item.path == "good.txt" ? good_content : bad_content;
        mc::file_chunk chunk;
        chunk.path = item.path;
        chunk.offset = item.offset;
        if (item.offset < content.size())
          chunk.data = content.substr(item.offset, item.length);
        reply.chunks.push_back(std::move(chunk));
      }
      return reply;
    },
    [=](const mc::replication_report&) {},
    [=](mc::fill_status_atom, mc::node_status& status) { return status; },
  };
}

} // namespace

int main(int argc, char** argv) {
  mc::node_hooks hooks;
  hooks.primary_replication = [](caf::actor_system& system, mc::node_context_ptr context) {
    // run_node registers it under replication_key like the real one.
    return system.spawn(rogue_replication, context);
  };
  return mc::run_node(argc, argv, hooks);
}
