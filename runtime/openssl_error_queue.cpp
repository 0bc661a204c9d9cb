// Clears OpenSSL's per-thread error queue before every TLS I/O call that
// caf_openssl makes.
//
// caf_openssl 0.17.6 (libcaf_openssl, session.cpp) never empties the error
// queue after a failed SSL_read, SSL_write, SSL_connect or SSL_accept. With
// OpenSSL 3 a peer that disconnects without close_notify (kill -9, or any
// client that just exits) leaves an error in the queue of the multiplexer
// thread. The next SSL_get_error() on any other connection of that thread
// then reports SSL_ERROR_SSL, and CAF closes that healthy connection too:
// one departing peer disconnected every other peer. OpenSSL documents that
// the queue must be empty before each TLS I/O call, so these wrappers
// empty it and then call the real function.
//
// The wrappers work by symbol interposition: this file is linked into the
// executables (not into a shared library), so the dynamic linker resolves
// libcaf_openssl's calls to the definitions here, which forward to libssl
// through dlsym(RTLD_NEXT).
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

template <class Function>
Function next_symbol(const char* name) {
  auto symbol = dlsym(RTLD_NEXT, name);
  if (symbol == nullptr) {
    std::fprintf(stderr, "mailcluster: cannot find OpenSSL function %s: %s\n", name, dlerror());
    std::abort();
  }
  return reinterpret_cast<Function>(symbol);
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buffer, int size) {
  static auto real = next_symbol<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buffer, size);
}

int SSL_write(SSL* ssl, const void* buffer, int size) {
  static auto real = next_symbol<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buffer, size);
}

int SSL_connect(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

int SSL_accept(SSL* ssl) {
  static auto real = next_symbol<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

} // extern "C"
