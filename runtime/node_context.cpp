#include "runtime/node_context.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace mc {

std::string advertised_version() {
  if (const char* override_version = std::getenv("MAILCLUSTER_TEST_ADVERTISE_VERSION"))
    return override_version;
  return MC_VERSION;
}

int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

std::string iso8601(int64_t epoch_ms) {
  std::time_t seconds = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(epoch_ms % 1000));
  return buffer;
}

} // namespace mc
