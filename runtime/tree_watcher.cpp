#include "runtime/tree_watcher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <set>
#include <thread>

#include <boost/filesystem.hpp>

namespace mc {

namespace fs = boost::filesystem;

namespace {

constexpr uint32_t watch_mask = IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;

std::string join_path(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}

} // namespace

struct tree_watcher::impl {
  std::string root;
  exclusion_rules rules;
  std::chrono::milliseconds debounce;
  report_fn report;
  int inotify_fd = -1;
  int stop_fd = -1;
  std::string error;
  std::atomic<size_t> unwatched{0};
  std::map<int, std::string> folders;
  /// The root itself was moved or deleted (an administrator swapped in
  /// another folder): every watch is renewed once the root exists again.
  bool root_gone = false;
  std::thread thread;

  void rewatch_root(std::set<std::string>& dirty) {
    for (auto& [wd, path] : folders)
      ::inotify_rm_watch(inotify_fd, wd);
    folders.clear();
    watch_tree("");
    root_gone = folders.empty();
    dirty.insert("");
  }

  // Watches `relative` and every folder below it.
  void watch_tree(const std::string& relative) {
    watch_folder(relative);
    boost::system::error_code ec;
    fs::path base = fs::path(root) / relative;
    fs::recursive_directory_iterator i(base, ec), end;
    for (; !ec && i != end; i.increment(ec)) {
      if (i->symlink_status(ec).type() != fs::directory_file)
        continue;
      auto sub = join_path(relative, i->path().lexically_relative(base).generic_string());
      if (is_excluded(rules, root, sub)) {
        i.disable_recursion_pending();
        continue;
      }
      watch_folder(sub);
    }
  }

  void watch_folder(const std::string& relative) {
    auto absolute = relative.empty() ? root : root + "/" + relative;
    int wd = ::inotify_add_watch(inotify_fd, absolute.c_str(), watch_mask | IN_DONT_FOLLOW);
    if (wd < 0) {
      ++unwatched;
      return;
    }
    folders[wd] = relative;
  }

  void run() {
    std::set<std::string> dirty;
    using clock = std::chrono::steady_clock;
    clock::time_point first{}, last{};
    auto cap = std::max<std::chrono::milliseconds>(10 * debounce, std::chrono::milliseconds{100});
    alignas(inotify_event) char buffer[64 * 1024];
    for (;;) {
      int timeout = root_gone ? 100 : -1;
      if (root_gone)
        rewatch_root(dirty);
      if (!dirty.empty()) {
        auto now = clock::now();
        auto due = std::min(last + debounce, first + cap);
        timeout =
          due <= now
            ? 0
            : static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(due - now).count());
      }
      pollfd fds[2] = {{inotify_fd, POLLIN, 0}, {stop_fd, POLLIN, 0}};
      auto ready = ::poll(fds, 2, timeout);
      if (ready < 0 && errno != EINTR)
        return;
      if (fds[1].revents != 0)
        return;
      if (ready > 0 && (fds[0].revents & POLLIN)) {
        auto n = ::read(inotify_fd, buffer, sizeof(buffer));
        auto now = clock::now();
        for (char* p = buffer; n > 0 && p < buffer + n;) {
          auto* event = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + event->len;
          if (dirty.empty())
            first = now;
          last = now;
          handle(*event, dirty);
        }
        if (root_gone)
          rewatch_root(dirty);
      }
      if (!dirty.empty()) {
        auto now = clock::now();
        if (now >= std::min(last + debounce, first + cap)) {
          report(std::vector<std::string>(dirty.begin(), dirty.end()));
          dirty.clear();
        }
      }
    }
  }

  void handle(const inotify_event& event, std::set<std::string>& dirty) {
    if (event.mask & IN_Q_OVERFLOW) {
      dirty.insert("");
      return;
    }
    auto folder = folders.find(event.wd);
    if (folder == folders.end())
      return;
    if (event.mask & IN_IGNORED) {
      folders.erase(folder);
      return;
    }
    if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
      if (folder->second.empty())
        root_gone = true;
      dirty.insert(folder->second);
      return;
    }
    if (event.len == 0)
      return;
    // A new file counts once it is closed after writing (IN_CLOSE_WRITE)
    // or moved into place; at IN_CREATE it may be half written.
    if ((event.mask & IN_CREATE) && !(event.mask & IN_ISDIR))
      return;
    auto relative = join_path(folder->second, event.name);
    if (is_excluded(rules, root, relative))
      return;
    if ((event.mask & IN_ISDIR) && (event.mask & (IN_CREATE | IN_MOVED_TO)))
      watch_tree(relative);
    dirty.insert(relative);
  }
};

tree_watcher::tree_watcher(std::string root, exclusion_rules rules,
                           std::chrono::milliseconds debounce, report_fn report)
    : impl_(std::make_unique<impl>()) {
  impl_->root = std::move(root);
  impl_->rules = std::move(rules);
  impl_->debounce = debounce;
  impl_->report = std::move(report);
  impl_->inotify_fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  impl_->stop_fd = ::eventfd(0, EFD_CLOEXEC);
  if (impl_->inotify_fd < 0 || impl_->stop_fd < 0) {
    impl_->error = std::string("cannot start inotify: ") + std::strerror(errno);
    return;
  }
  impl_->watch_tree("");
  impl_->thread = std::thread([this] { impl_->run(); });
}

tree_watcher::~tree_watcher() {
  if (impl_->thread.joinable()) {
    uint64_t one = 1;
    auto written = ::write(impl_->stop_fd, &one, sizeof(one));
    (void)written;
    impl_->thread.join();
  }
  if (impl_->inotify_fd >= 0)
    ::close(impl_->inotify_fd);
  if (impl_->stop_fd >= 0)
    ::close(impl_->stop_fd);
}

const std::string& tree_watcher::error() const {
  return impl_->error;
}

size_t tree_watcher::unwatched_folders() const {
  return impl_->unwatched;
}

} // namespace mc
