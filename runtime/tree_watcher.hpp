// Watches a directory tree with inotify and reports which paths changed,
// after a quiet period, from a thread of its own.
//
// One save of many files makes one report: a report waits until no event
// came for `debounce`, but never longer than 10 x debounce (at least 100
// ms) after the first event. Folders created later are watched as they
// appear. When the kernel's event queue overflows, the report contains the
// empty path, which means "rescan everything". The periodic rescan of the
// replication actors covers anything else inotify misses.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runtime/file_list.hpp"

namespace mc {

class tree_watcher {
public:
  /// Receives the changed paths, relative to the root ('/'-separated); ""
  /// stands for the whole tree. Called on the watcher's thread.
  using report_fn = std::function<void(std::vector<std::string>)>;

  /// Starts watching `root`. Excluded paths are not watched or reported.
  tree_watcher(std::string root, exclusion_rules rules, std::chrono::milliseconds debounce,
               report_fn report);

  /// Stops the thread and closes the inotify descriptor.
  ~tree_watcher();

  tree_watcher(const tree_watcher&) = delete;
  tree_watcher& operator=(const tree_watcher&) = delete;

  /// "" if the watcher runs, else why it could not start (the tree is then
  /// only rescanned periodically).
  const std::string& error() const;

  /// Folders that could not be watched (e.g. the inotify watch limit).
  size_t unwatched_folders() const;

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace mc
