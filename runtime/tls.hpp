// TLS credential checks, node-identity signatures and certificate generation,
// all done with the OpenSSL 3 library (never the openssl command).
//
// CAF's openssl module aborts or hangs on bad local files, so mailclusterd
// checks its certificate, key and CA here before CAF loads them. CAF also
// accepts any certificate from the cluster CA as any node, so the join
// handshake proves identity with sign() and verify_signature().
#pragma once

#include <cstdint>
#include <string>

namespace mc::tls {

/// Outcome of a check: `ok` is true on success, otherwise `error` is one
/// sentence that names the file or the peer and what to do.
struct check_result {
  bool ok = false;
  std::string error;
};

/// Checks the node's own credentials: each file exists and parses, the key
/// matches the certificate, the certificate chains to the CA file and is
/// within its validity period.
check_result check_credentials(const std::string& certificate_file, const std::string& key_file,
                               const std::string& passphrase, const std::string& ca_file);

/// Reads a whole file into `out`. Returns an error naming the file on failure.
check_result read_file(const std::string& path, std::string& out);

/// Signs `data` (SHA-256) with the private key in `key_file`; `signature`
/// receives the raw signature bytes.
check_result sign(const std::string& key_file, const std::string& passphrase,
                  const std::string& data, std::string& signature);

/// Verifies a peer's proof of identity: `certificate_pem` parses, chains to
/// `ca_file`, is within its validity period, its subject common name is
/// `expected_name`, and `signature` is its key's signature over `data`.
check_result verify_signature(const std::string& certificate_pem, const std::string& ca_file,
                              const std::string& expected_name, const std::string& data,
                              const std::string& signature);

/// Connects to `host:port` and completes a TLS handshake with this node's
/// credentials within `timeout_ms`, then closes the connection. Runs
/// blocking, so call it from a detached actor or a plain thread.
check_result probe_handshake(const std::string& host, uint16_t port,
                             const std::string& certificate_file, const std::string& key_file,
                             const std::string& passphrase, const std::string& ca_file,
                             int timeout_ms);

/// Returns the subject common name of a PEM certificate, or "" if it does
/// not parse.
std::string common_name(const std::string& certificate_pem);

/// Returns the SHA-256 fingerprint of a PEM certificate as colon-separated
/// upper-case hex, or "" if it does not parse.
std::string fingerprint(const std::string& certificate_pem);

/// Returns the lower-case hex SHA-256 digest of `data`.
std::string sha256_hex(const std::string& data);

/// Returns `bytes` as lower-case hex, two digits per byte.
std::string hex_encode(const std::string& bytes);

/// Returns `n` bytes from OpenSSL's CSPRNG.
std::string random_bytes(size_t n);

/// Options for generated certificates (init-local-cluster and tests).
struct cert_options {
  std::string common_name;
  /// Validity starts this many seconds from now (negative: in the past).
  int64_t not_before_offset_s = -3600;
  /// Validity ends this many seconds from now (negative: already expired).
  int64_t not_after_offset_s = 10LL * 365 * 24 * 3600;
};

/// Writes a self-signed CA certificate and its private key (PEM, key file
/// mode 0600).
check_result make_ca(const cert_options& options, const std::string& certificate_file,
                     const std::string& key_file);

/// Writes a node certificate signed by the CA and its private key (PEM, key
/// file mode 0600). The certificate is good for TLS client and server use.
check_result make_node_certificate(const cert_options& options,
                                   const std::string& ca_certificate_file,
                                   const std::string& ca_key_file,
                                   const std::string& certificate_file,
                                   const std::string& key_file);

} // namespace mc::tls
