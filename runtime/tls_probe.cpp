// A TLS handshake with a peer, done with a blocking deadline outside CAF.
//
// While a peer is hung (SIGSTOP, or a machine that stopped scheduling it),
// its kernel still accepts TCP connections. caf_openssl 0.17.6 spins its
// multiplexer thread at up to 100 % of a core for as long as a TLS handshake
// to such a peer is pending. A secondary that retried CAF connects to a hung
// primary therefore used most of a core. Checking with this probe first
// costs one short handshake when the peer is fine and no CPU while it hangs.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "runtime/tls.hpp"

namespace mc::tls {

namespace {

using clock_type = std::chrono::steady_clock;

int password_callback(char* buffer, int size, int, void* user_data) {
  auto passphrase = static_cast<const std::string*>(user_data);
  if (size <= 0 || passphrase->size() >= static_cast<size_t>(size))
    return 0;
  std::memcpy(buffer, passphrase->data(), passphrase->size());
  return static_cast<int>(passphrase->size());
}

int remaining_ms(clock_type::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

// Connects a non-blocking TCP socket before the deadline. Returns the
// socket, or -1 with `error` set.
int connect_tcp(const std::string& host, uint16_t port, clock_type::time_point deadline,
                std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto service = std::to_string(port);
  if (int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    error = "cannot resolve '" + host + "': " + ::gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string{"cannot create a socket: "} + std::strerror(errno);
    return -1;
  }
  if (::connect(fd, found->ai_addr, found->ai_addrlen) != 0 && errno != EINPROGRESS) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  pollfd waiting{fd, POLLOUT, 0};
  if (::poll(&waiting, 1, remaining_ms(deadline)) <= 0) {
    error = "TCP connect timed out";
    ::close(fd);
    return -1;
  }
  int so_error = 0;
  socklen_t length = sizeof(so_error);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &length);
  if (so_error != 0) {
    error = std::strerror(so_error);
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

check_result probe_handshake(const std::string& host, uint16_t port,
                             const std::string& certificate_file, const std::string& key_file,
                             const std::string& passphrase, const std::string& ca_file,
                             int timeout_ms) {
  auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
  auto target = host + ":" + std::to_string(port);
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        SSL_CTX_free);
  if (!ctx)
    return {false, "cannot create a TLS context"};
  SSL_CTX_set_default_passwd_cb(ctx.get(), password_callback);
  SSL_CTX_set_default_passwd_cb_userdata(ctx.get(), const_cast<std::string*>(&passphrase));
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), certificate_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
    ERR_clear_error();
    return {false, "cannot load this node's TLS files"};
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  std::string error;
  int fd = connect_tcp(host, port, deadline, error);
  if (fd < 0)
    return {false, "cannot connect to " + target + ": " + error};
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(SSL_new(ctx.get()), SSL_free);
  SSL_set_fd(ssl.get(), fd);
  check_result result{false, ""};
  for (;;) {
    ERR_clear_error();
    int rc = SSL_connect(ssl.get());
    if (rc == 1) {
      result.ok = true;
      break;
    }
    int reason = SSL_get_error(ssl.get(), rc);
    short events = reason == SSL_ERROR_WANT_READ    ? POLLIN
                   : reason == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                    : 0;
    if (events == 0) {
      result.error = "TLS handshake with " + target + " failed (certificate rejected?)";
      break;
    }
    pollfd waiting{fd, events, 0};
    if (::poll(&waiting, 1, remaining_ms(deadline)) <= 0) {
      result.error = "no TLS handshake from " + target + " within " + std::to_string(timeout_ms) +
                     " ms (the process may be hung)";
      break;
    }
  }
  if (result.ok)
    SSL_shutdown(ssl.get());
  ERR_clear_error();
  ::close(fd);
  return result;
}

} // namespace mc::tls
