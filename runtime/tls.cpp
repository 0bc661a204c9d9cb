// Implements runtime/tls.hpp with the OpenSSL 3 C library.
//
// Every OpenSSL object lives in a std::unique_ptr with its free function.
// Every public function that parses or builds keys or certificates empties
// OpenSSL's thread-local error queue before it returns. As a result, a failed
// parse here never shows up later as a stale error in CAF's TLS code.
#include "runtime/tls.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace mc::tls {

namespace {

// -- RAII wrappers ------------------------------------------------------------

template <class T, void (*Free)(T*)>
struct free_with {
  void operator()(T* object) const noexcept { Free(object); }
};

struct free_x509_stack {
  void operator()(STACK_OF(X509) * stack) const noexcept { sk_X509_pop_free(stack, X509_free); }
};

using bio_ptr = std::unique_ptr<BIO, free_with<BIO, BIO_free_all>>;
using x509_ptr = std::unique_ptr<X509, free_with<X509, X509_free>>;
using x509_stack_ptr = std::unique_ptr<STACK_OF(X509), free_x509_stack>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, free_with<EVP_PKEY, EVP_PKEY_free>>;
using store_ptr = std::unique_ptr<X509_STORE, free_with<X509_STORE, X509_STORE_free>>;
using store_ctx_ptr =
  std::unique_ptr<X509_STORE_CTX, free_with<X509_STORE_CTX, X509_STORE_CTX_free>>;
using md_ctx_ptr = std::unique_ptr<EVP_MD_CTX, free_with<EVP_MD_CTX, EVP_MD_CTX_free>>;
using bignum_ptr = std::unique_ptr<BIGNUM, free_with<BIGNUM, BN_free>>;
using extension_ptr =
  std::unique_ptr<X509_EXTENSION, free_with<X509_EXTENSION, X509_EXTENSION_free>>;
using general_name_ptr = std::unique_ptr<GENERAL_NAME, free_with<GENERAL_NAME, GENERAL_NAME_free>>;
using general_names_ptr =
  std::unique_ptr<GENERAL_NAMES, free_with<GENERAL_NAMES, GENERAL_NAMES_free>>;
using ia5_string_ptr =
  std::unique_ptr<ASN1_IA5STRING, free_with<ASN1_IA5STRING, ASN1_IA5STRING_free>>;
using octet_string_ptr =
  std::unique_ptr<ASN1_OCTET_STRING, free_with<ASN1_OCTET_STRING, ASN1_OCTET_STRING_free>>;

/// Empties OpenSSL's per-thread error queue when a public function returns.
struct error_queue_guard {
  error_queue_guard() { ERR_clear_error(); }
  ~error_queue_guard() { ERR_clear_error(); }
  error_queue_guard(const error_queue_guard&) = delete;
  error_queue_guard& operator=(const error_queue_guard&) = delete;
};

/// A string that is overwritten with zeros before its memory is freed, for
/// PEM text that contains a private key.
struct secret_string {
  std::string value;
  secret_string() = default;
  secret_string(const secret_string&) = delete;
  secret_string& operator=(const secret_string&) = delete;
  ~secret_string() { OPENSSL_cleanse(value.data(), value.size()); }
};

// -- small helpers ------------------------------------------------------------

check_result success() {
  return {true, {}};
}

check_result failure(std::string message) {
  return {false, std::move(message)};
}

std::string quoted(const std::string& text) {
  return "'" + text + "'";
}

std::string errno_text(int code) {
  return std::error_code(code, std::generic_category()).message();
}

/// Wraps `data` in a read-only memory BIO; null if `data` is too large for
/// OpenSSL's int length.
bio_ptr memory_bio(const std::string& data) {
  if (data.size() > static_cast<size_t>(INT_MAX))
    return nullptr;
  return bio_ptr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

/// Returns the contents of a memory BIO written by PEM_write_*.
std::string bio_contents(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  if (size <= 0 || data == nullptr)
    return {};
  return std::string(data, static_cast<size_t>(size));
}

std::string to_hex(const unsigned char* bytes, size_t size, bool upper_case,
                   const char* separator) {
  const char* digits = upper_case ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string result;
  for (size_t i = 0; i < size; ++i) {
    if (i > 0)
      result += separator;
    result += digits[bytes[i] >> 4];
    result += digits[bytes[i] & 0x0f];
  }
  return result;
}

/// Formats an ASN1_TIME as ISO 8601 UTC, e.g. "2025-01-31T12:00:00Z".
std::string format_time(const ASN1_TIME* time) {
  std::tm parts{};
  if (time == nullptr || ASN1_TIME_to_tm(time, &parts) != 1)
    return "(unreadable date)";
  char text[32];
  if (std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts) == 0)
    return "(unreadable date)";
  return text;
}

/// Returns a distinguished name in RFC 2253 form, e.g. "CN=mailcluster CA".
std::string format_name(const X509_NAME* name) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0)
    return "(unreadable name)";
  return bio_contents(bio.get());
}

// -- reading files ------------------------------------------------------------

/// Reason a file could not be read, and the action that fixes it.
struct read_failure {
  std::string problem;
  std::string remedy;
};

read_failure describe_open_error(int code) {
  switch (code) {
  case ENOENT:
  case ENOTDIR:
    return {"was not found", "check the path"};
  case EACCES:
  case EPERM:
    return {"is not readable by this user (permission denied)",
            "make it readable by the user that runs mailcluster"};
  default:
    return {"could not be opened (" + errno_text(code) + ")", "check the path and the file"};
  }
}

/// Reads the regular file `path` into `out`. Returns an empty problem on
/// success. Devices and FIFOs are rejected because reading them may never end.
read_failure read_regular_file(const std::string& path, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return describe_open_error(errno);
  struct stat status {};
  read_failure result;
  if (::fstat(fd, &status) != 0) {
    result = {"could not be inspected (" + errno_text(errno) + ")", "check the file"};
  } else if (S_ISDIR(status.st_mode)) {
    result = {"is a directory", "set the path of the file itself"};
  } else if (!S_ISREG(status.st_mode)) {
    result = {"is not a regular file", "set the path of a regular file"};
  } else {
    // Reserving the whole size up front keeps key material from being left
    // behind in buffers that a growing string would free.
    out.reserve(static_cast<size_t>(status.st_size));
    char buffer[4096];
    for (;;) {
      ssize_t count = ::read(fd, buffer, sizeof(buffer));
      if (count > 0) {
        out.append(buffer, static_cast<size_t>(count));
      } else if (count == 0) {
        break;
      } else if (errno != EINTR) {
        result = {"could not be read (" + errno_text(errno) + ")", "check the file and the disk"};
        break;
      }
    }
    OPENSSL_cleanse(buffer, sizeof(buffer));
  }
  ::close(fd);
  return result;
}

/// Reads the file `path` that plays `role` (e.g. "certificate file").
check_result read_role_file(const std::string& role, const std::string& path, std::string& out) {
  auto failed = read_regular_file(path, out);
  if (failed.problem.empty())
    return success();
  return failure(role + " " + quoted(path) + " " + failed.problem + ", so " + failed.remedy + ".");
}

// -- parsing PEM --------------------------------------------------------------

/// PEM password callback that rejects every request for a passphrase.
/// Passing null instead would make OpenSSL prompt on the terminal, which
/// hangs a daemon.
int reject_passphrase(char*, int, int, void*) {
  return -1;
}

enum class pem_status { ok, empty, corrupt };

/// Appends every certificate in `pem` to `certificates`, in file order. Other
/// PEM blocks (keys, parameters) are skipped.
pem_status parse_certificates(const std::string& pem, std::vector<x509_ptr>& certificates) {
  auto bio = memory_bio(pem);
  if (!bio)
    return pem_status::corrupt;
  ERR_clear_error();
  for (;;) {
    x509_ptr certificate(PEM_read_bio_X509(bio.get(), nullptr, reject_passphrase, nullptr));
    if (!certificate)
      break;
    certificates.push_back(std::move(certificate));
  }
  // The loop ends with "no start line" when it has read everything; any
  // other error means a block that looks like a certificate did not parse.
  unsigned long last_error = ERR_peek_last_error();
  bool at_end =
    ERR_GET_LIB(last_error) == ERR_LIB_PEM && ERR_GET_REASON(last_error) == PEM_R_NO_START_LINE;
  ERR_clear_error();
  if (!at_end)
    return pem_status::corrupt;
  return certificates.empty() ? pem_status::empty : pem_status::ok;
}

/// Returns a stack of the certificates after the first one, which TLS peers
/// send as untrusted intermediates. Null only if allocation fails.
x509_stack_ptr intermediates_of(const std::vector<x509_ptr>& certificates) {
  x509_stack_ptr stack(sk_X509_new_null());
  if (!stack)
    return nullptr;
  for (size_t i = 1; i < certificates.size(); ++i) {
    if (X509_up_ref(certificates[i].get()) != 1)
      return nullptr;
    if (sk_X509_push(stack.get(), certificates[i].get()) <= 0) {
      X509_free(certificates[i].get());
      return nullptr;
    }
  }
  return stack;
}

/// Reads the certificate file `path`: the first certificate is the node's
/// own, the rest are intermediates.
check_result load_certificate_file(const std::string& path, std::vector<x509_ptr>& certificates) {
  std::string pem;
  if (auto read = read_role_file("certificate file", path, pem); !read.ok)
    return read;
  if (parse_certificates(pem, certificates) != pem_status::ok)
    return failure("certificate file " + quoted(path) +
                   " is not a PEM certificate, so replace it with the node's certificate in PEM"
                   " form (-----BEGIN CERTIFICATE-----).");
  return success();
}

/// Reads all trust anchors from the CA file `path`.
check_result load_ca_file(const std::string& path, std::vector<x509_ptr>& certificates) {
  std::string pem;
  if (auto read = read_role_file("CA file", path, pem); !read.ok)
    return read;
  switch (parse_certificates(pem, certificates)) {
  case pem_status::ok:
    return success();
  case pem_status::empty:
    return failure("CA file " + quoted(path) +
                   " contains no PEM certificate, so put the cluster CA certificate in it.");
  case pem_status::corrupt:
    break;
  }
  return failure("CA file " + quoted(path) +
                 " contains a certificate that is not valid PEM, so replace it with the cluster"
                 " CA certificate in PEM form.");
}

/// Passphrase for supply_passphrase(), plus whether OpenSSL requested it,
/// which distinguishes an encrypted key from a corrupt one.
struct passphrase_request {
  const std::string* passphrase = nullptr;
  bool requested = false;
};

int supply_passphrase(char* buffer, int size, int, void* user_data) {
  auto* request = static_cast<passphrase_request*>(user_data);
  request->requested = true;
  const std::string& passphrase = *request->passphrase;
  if (passphrase.empty() || size < 0 || passphrase.size() > static_cast<size_t>(size))
    return -1;
  std::memcpy(buffer, passphrase.data(), passphrase.size());
  return static_cast<int>(passphrase.size());
}

/// Reads and decrypts the private key file `path` that plays `role`.
check_result load_private_key_file(const std::string& role, const std::string& path,
                                   const std::string& passphrase, pkey_ptr& key) {
  secret_string pem;
  if (auto read = read_role_file(role, path, pem.value); !read.ok)
    return read;
  auto bio = memory_bio(pem.value);
  passphrase_request request{&passphrase, false};
  if (bio)
    key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, supply_passphrase, &request));
  if (key)
    return success();
  if (!request.requested)
    return failure(role + " " + quoted(path) +
                   " is not a PEM private key, so replace it with the private key in PEM form.");
  if (passphrase.empty())
    return failure(role + " " + quoted(path) +
                   " is encrypted and no passphrase was given, so configure its passphrase.");
  return failure(role + " " + quoted(path) +
                 " is not a PEM private key or the passphrase is wrong, so check the"
                 " passphrase and the file.");
}

// -- certificate checks -------------------------------------------------------

/// Returns "" if `certificate` is valid now, otherwise a clause with the
/// reason, the certificate's dates and the fix.
std::string validity_problem(X509* certificate) {
  const ASN1_TIME* not_before = X509_get0_notBefore(certificate);
  const ASN1_TIME* not_after = X509_get0_notAfter(certificate);
  // X509_cmp_current_time() returns 0 when the field does not parse.
  int before_start = X509_cmp_current_time(not_before);
  int before_end = X509_cmp_current_time(not_after);
  if (before_start == 0 || before_end == 0)
    return "has an unreadable validity date, so issue a new certificate from the cluster CA";
  if (before_start > 0)
    return "is not valid before " + format_time(not_before) + " (valid until " +
           format_time(not_after) + "), so check the system clock or wait until then";
  if (before_end < 0)
    return "expired at " + format_time(not_after) + " (valid from " + format_time(not_before) +
           "), so issue a new certificate from the cluster CA";
  return {};
}

/// Verifies that `leaf` chains to one of `anchors`, using the certificates
/// after the first in `certificates` as untrusted intermediates. Returns ""
/// on success, otherwise OpenSSL's reason and the certificate it concerns.
/// Validity periods are checked along the chain.
std::string chain_problem(X509* leaf, const std::vector<x509_ptr>& certificates,
                          const std::vector<x509_ptr>& anchors) {
  store_ptr store(X509_STORE_new());
  store_ctx_ptr context(X509_STORE_CTX_new());
  auto intermediates = intermediates_of(certificates);
  if (!store || !context || !intermediates)
    return "out of memory while verifying";
  for (const auto& anchor : anchors)
    if (X509_STORE_add_cert(store.get(), anchor.get()) != 1)
      return "CA certificate " + format_name(X509_get_subject_name(anchor.get())) +
             " could not be added to the trust store";
  if (X509_STORE_CTX_init(context.get(), store.get(), leaf, intermediates.get()) != 1)
    return "the verification context could not be set up";
  if (X509_verify_cert(context.get()) == 1)
    return {};
  int code = X509_STORE_CTX_get_error(context.get());
  std::string reason = X509_verify_cert_error_string(code);
  int depth = X509_STORE_CTX_get_error_depth(context.get());
  X509* culprit = X509_STORE_CTX_get_current_cert(context.get());
  if (depth > 0 && culprit != nullptr)
    reason += " at " + format_name(X509_get_subject_name(culprit));
  return reason;
}

/// Reads the subject common name of `certificate` into `name`. Fails if there
/// is none, more than one (which one a TLS stack uses varies), or if it
/// contains a NUL byte that could hide a suffix from a string comparison.
bool read_common_name(X509* certificate, std::string& name) {
  const X509_NAME* subject = X509_get_subject_name(certificate);
  int index = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
  if (index < 0 || X509_NAME_get_index_by_NID(subject, NID_commonName, index) >= 0)
    return false;
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, index));
  unsigned char* utf8 = nullptr;
  int size = ASN1_STRING_to_UTF8(&utf8, data);
  if (size < 0)
    return false;
  name.assign(reinterpret_cast<char*>(utf8), static_cast<size_t>(size));
  OPENSSL_free(utf8);
  return name.find('\0') == std::string::npos;
}

/// Parses the first certificate in `pem`; null if there is none.
x509_ptr parse_first_certificate(const std::string& pem) {
  std::vector<x509_ptr> certificates;
  // A corrupt block after the first certificate does not matter here.
  parse_certificates(pem, certificates);
  if (certificates.empty())
    return nullptr;
  return std::move(certificates.front());
}

// -- signatures ---------------------------------------------------------------

/// Computes the SHA-256 signature of `data` with `key`; false on failure.
bool sign_with_key(EVP_PKEY* key, const std::string& data, std::string& signature) {
  md_ctx_ptr context(EVP_MD_CTX_new());
  if (!context || EVP_DigestSignInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return false;
  const auto* input = reinterpret_cast<const unsigned char*>(data.data());
  size_t size = 0;
  if (EVP_DigestSign(context.get(), nullptr, &size, input, data.size()) != 1)
    return false;
  signature.resize(size);
  auto* output = reinterpret_cast<unsigned char*>(signature.data());
  if (EVP_DigestSign(context.get(), output, &size, input, data.size()) != 1)
    return false;
  // ECDSA signatures are DER and often shorter than the maximum size.
  signature.resize(size);
  return true;
}

/// Returns true if `signature` is the SHA-256 signature of `data` by `key`.
/// A malformed signature and a failure to run the check both return false.
bool signature_matches(EVP_PKEY* key, const std::string& data, const std::string& signature) {
  md_ctx_ptr context(EVP_MD_CTX_new());
  if (!context || EVP_DigestVerifyInit(context.get(), nullptr, EVP_sha256(), nullptr, key) != 1)
    return false;
  // EVP_DigestVerify() returns 0 for a wrong signature and a negative value
  // for one that is not even valid DER.
  return EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
}

// -- certificate generation ---------------------------------------------------

/// Checks a common name for a generated certificate. X.509 limits it to 64
/// characters. Node names also become a DNS subjectAltName, so they must not
/// contain spaces.
check_result check_new_common_name(const std::string& name, bool is_dns_name) {
  if (name.empty() || name.size() > 64)
    return failure("common name " + quoted(name) +
                   " must be 1 to 64 characters long, so choose another name.");
  for (char c : name) {
    if (c < 0x20 || c > 0x7e)
      return failure("common name " + quoted(name) +
                     " contains a character that is not printable ASCII, so remove it.");
    if (is_dns_name && c == ' ')
      return failure("common name " + quoted(name) +
                     " contains a space, which a DNS subjectAltName cannot contain, so remove it.");
  }
  return success();
}

/// Generates an EC key on the NIST P-256 curve.
pkey_ptr generate_key() {
  return pkey_ptr(EVP_EC_gen("P-256"));
}

/// Sets a random positive 127-bit serial number. RFC 5280 requires serials
/// to be positive and at most 20 octets, and random ones need no counter.
bool set_random_serial(X509* certificate) {
  std::string bytes = random_bytes(16);
  // Clearing the top bit keeps the DER integer positive, and setting the
  // next one keeps it from being zero or shorter than 16 bytes.
  bytes[0] = static_cast<char>((bytes[0] & 0x7f) | 0x40);
  bignum_ptr number(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), 16, nullptr));
  return number && BN_to_ASN1_INTEGER(number.get(), X509_get_serialNumber(certificate)) != nullptr;
}

/// Fills in version, serial, subject, issuer, validity and public key.
bool fill_basic_fields(X509* certificate, const cert_options& options, const X509_NAME* issuer_name,
                       EVP_PKEY* key) {
  X509_NAME* subject = X509_get_subject_name(certificate);
  const auto* name = reinterpret_cast<const unsigned char*>(options.common_name.c_str());
  return X509_set_version(certificate, X509_VERSION_3) == 1 && set_random_serial(certificate) &&
         X509_NAME_add_entry_by_NID(subject, NID_commonName, MBSTRING_UTF8, name, -1, -1, 0) == 1 &&
         X509_set_issuer_name(certificate, issuer_name == nullptr ? subject : issuer_name) == 1 &&
         X509_gmtime_adj(X509_getm_notBefore(certificate),
                         static_cast<long>(options.not_before_offset_s)) != nullptr &&
         X509_gmtime_adj(X509_getm_notAfter(certificate),
                         static_cast<long>(options.not_after_offset_s)) != nullptr &&
         X509_set_pubkey(certificate, key) == 1;
}

/// Adds one extension written in OpenSSL's config syntax, e.g.
/// "critical,CA:TRUE". `issuer` is used for the authority key identifier.
bool add_extension(X509* certificate, X509* issuer, int nid, const char* value) {
  // Zero-initialized, the context has no config database, which the fixed
  // values here never refer to.
  X509V3_CTX context{};
  X509V3_set_ctx(&context, issuer, certificate, nullptr, nullptr, 0);
  extension_ptr extension(X509V3_EXT_conf_nid(nullptr, &context, nid, value));
  return extension && X509_add_ext(certificate, extension.get(), -1) == 1;
}

/// Adds subjectAltName DNS:<dns_name>, IP:127.0.0.1. The names are built as
/// ASN.1 objects, not as a config string, so a comma in a name cannot add
/// another entry.
bool add_subject_alt_name(X509* certificate, const std::string& dns_name) {
  general_names_ptr names(GENERAL_NAMES_new());
  general_name_ptr dns(GENERAL_NAME_new());
  general_name_ptr ip(GENERAL_NAME_new());
  ia5_string_ptr dns_value(ASN1_IA5STRING_new());
  octet_string_ptr ip_value(a2i_IPADDRESS("127.0.0.1"));
  if (!names || !dns || !ip || !dns_value || !ip_value ||
      ASN1_STRING_set(dns_value.get(), dns_name.data(), static_cast<int>(dns_name.size())) != 1)
    return false;
  // GENERAL_NAME_set0_value() and a successful push take ownership.
  GENERAL_NAME_set0_value(dns.get(), GEN_DNS, dns_value.release());
  GENERAL_NAME_set0_value(ip.get(), GEN_IPADD, ip_value.release());
  if (sk_GENERAL_NAME_push(names.get(), dns.get()) <= 0)
    return false;
  dns.release();
  if (sk_GENERAL_NAME_push(names.get(), ip.get()) <= 0)
    return false;
  ip.release();
  return X509_add1_ext_i2d(certificate, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) ==
         1;
}

bool add_ca_extensions(X509* certificate) {
  // The subject key identifier must exist before the authority key
  // identifier of a self-signed certificate can copy it.
  return add_extension(certificate, certificate, NID_basic_constraints, "critical,CA:TRUE") &&
         add_extension(certificate, certificate, NID_key_usage, "critical,keyCertSign,cRLSign") &&
         add_extension(certificate, certificate, NID_subject_key_identifier, "hash") &&
         add_extension(certificate, certificate, NID_authority_key_identifier, "keyid:always");
}

bool add_node_extensions(X509* certificate, X509* issuer, const std::string& dns_name) {
  return add_extension(certificate, issuer, NID_basic_constraints, "critical,CA:FALSE") &&
         add_extension(certificate, issuer, NID_key_usage,
                       "critical,digitalSignature,keyEncipherment") &&
         add_extension(certificate, issuer, NID_ext_key_usage, "serverAuth,clientAuth") &&
         add_extension(certificate, issuer, NID_subject_key_identifier, "hash") &&
         add_extension(certificate, issuer, NID_authority_key_identifier, "keyid:always") &&
         add_subject_alt_name(certificate, dns_name);
}

// -- writing files ------------------------------------------------------------

int write_all(int fd, const std::string& data) {
  size_t written = 0;
  while (written < data.size()) {
    ssize_t count = ::write(fd, data.data() + written, data.size() - written);
    if (count < 0 && errno == EINTR)
      continue;
    if (count < 0)
      return errno;
    written += static_cast<size_t>(count);
  }
  return 0;
}

/// Writes `data` to a new file next to `path` and renames it over `path`, so
/// readers see either the old file or the whole new one. The new file gets
/// `mode` (less the umask) from the moment it exists.
check_result write_file_atomically(const std::string& role, const std::string& path,
                                   const std::string& data, mode_t mode) {
  std::string suffix = random_bytes(6);
  std::string temporary =
    path + ".tmp-" + to_hex(reinterpret_cast<const unsigned char*>(suffix.data()), 6, false, "");
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0)
    return failure("could not create " + role + " " + quoted(path) + " (" + errno_text(errno) +
                   "), so check that the directory exists and is writable.");
  int error = write_all(fd, data);
  if (error == 0 && ::fsync(fd) != 0)
    error = errno;
  if (::close(fd) != 0 && error == 0)
    error = errno;
  if (error == 0 && ::rename(temporary.c_str(), path.c_str()) != 0)
    error = errno;
  if (error == 0)
    return success();
  ::unlink(temporary.c_str());
  return failure("could not write " + role + " " + quoted(path) + " (" + errno_text(error) +
                 "), so check the disk space and the directory permissions.");
}

check_result write_certificate(X509* certificate, const std::string& path) {
  bio_ptr bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), certificate) != 1)
    return failure("could not encode the certificate for " + quoted(path) + " as PEM, so retry.");
  return write_file_atomically("certificate file", path, bio_contents(bio.get()), 0644);
}

/// Writes `key` unencrypted as PKCS#8 PEM with mode 0600.
check_result write_private_key(EVP_PKEY* key, const std::string& path) {
  // Secure-heap memory is zeroed when freed, like secret_string.
  bio_ptr bio(BIO_new(BIO_s_secmem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1)
    return failure("could not encode the private key for " + quoted(path) + " as PEM, so retry.");
  secret_string pem;
  pem.value = bio_contents(bio.get());
  return write_file_atomically("key file", path, pem.value, 0600);
}

/// Signs `certificate` with `issuer_key` and writes it and `key` to disk,
/// the key first so a certificate never exists without its key.
check_result sign_and_write(X509* certificate, EVP_PKEY* issuer_key, EVP_PKEY* key,
                            const std::string& certificate_file, const std::string& key_file) {
  if (X509_sign(certificate, issuer_key, EVP_sha256()) <= 0)
    return failure("could not sign the certificate for " + quoted(certificate_file) +
                   ", so check that the CA key is an RSA or EC key.");
  if (auto written = write_private_key(key, key_file); !written.ok)
    return written;
  return write_certificate(certificate, certificate_file);
}

/// Loads the CA certificate and key for make_node_certificate() and checks
/// that they belong together.
check_result load_ca(const std::string& certificate_file, const std::string& key_file,
                     x509_ptr& certificate, pkey_ptr& key) {
  std::vector<x509_ptr> certificates;
  if (auto loaded = load_certificate_file(certificate_file, certificates); !loaded.ok)
    return loaded;
  certificate = std::move(certificates.front());
  // NOTE: there is no passphrase parameter, so an encrypted CA key fails
  // here. make_ca() writes unencrypted keys.
  if (auto loaded = load_private_key_file("CA key file", key_file, "", key); !loaded.ok)
    return loaded;
  if (EVP_PKEY_eq(X509_get0_pubkey(certificate.get()), key.get()) != 1)
    return failure("CA key file " + quoted(key_file) + " does not match CA certificate " +
                   quoted(certificate_file) + ", so pass the key that belongs to it.");
  return success();
}

} // namespace

// -- public interface ---------------------------------------------------------

check_result read_file(const std::string& path, std::string& out) {
  return read_role_file("file", path, out);
}

check_result check_credentials(const std::string& certificate_file, const std::string& key_file,
                               const std::string& passphrase, const std::string& ca_file) {
  error_queue_guard guard;
  std::vector<x509_ptr> certificates;
  if (auto loaded = load_certificate_file(certificate_file, certificates); !loaded.ok)
    return loaded;
  pkey_ptr key;
  if (auto loaded = load_private_key_file("key file", key_file, passphrase, key); !loaded.ok)
    return loaded;
  std::vector<x509_ptr> anchors;
  if (auto loaded = load_ca_file(ca_file, anchors); !loaded.ok)
    return loaded;
  X509* certificate = certificates.front().get();
  if (EVP_PKEY_eq(X509_get0_pubkey(certificate), key.get()) != 1)
    return failure("key file " + quoted(key_file) + " does not match certificate file " +
                   quoted(certificate_file) + ", so configure the key that belongs to it.");
  if (auto problem = validity_problem(certificate); !problem.empty())
    return failure("certificate file " + quoted(certificate_file) + " " + problem + ".");
  if (auto problem = chain_problem(certificate, certificates, anchors); !problem.empty())
    return failure("certificate file " + quoted(certificate_file) +
                   " does not chain to the CA in " + quoted(ca_file) + " (" + problem +
                   "), so use a certificate issued by that CA or configure the CA that issued it.");
  return success();
}

check_result sign(const std::string& key_file, const std::string& passphrase,
                  const std::string& data, std::string& signature) {
  error_queue_guard guard;
  signature.clear();
  pkey_ptr key;
  if (auto loaded = load_private_key_file("key file", key_file, passphrase, key); !loaded.ok)
    return loaded;
  if (!sign_with_key(key.get(), data, signature)) {
    signature.clear();
    return failure("signing with key file " + quoted(key_file) +
                   " failed, so check that it holds an RSA or EC private key.");
  }
  return success();
}

check_result verify_signature(const std::string& certificate_pem, const std::string& ca_file,
                              const std::string& expected_name, const std::string& data,
                              const std::string& signature) {
  error_queue_guard guard;
  const std::string label = "certificate of peer " + quoted(expected_name);
  std::vector<x509_ptr> certificates;
  if (parse_certificates(certificate_pem, certificates) != pem_status::ok)
    return failure(label + " is not a PEM certificate, so check that the peer runs a matching"
                           " mailcluster version.");
  std::vector<x509_ptr> anchors;
  if (auto loaded = load_ca_file(ca_file, anchors); !loaded.ok)
    return loaded;
  X509* certificate = certificates.front().get();
  if (auto problem = validity_problem(certificate); !problem.empty())
    return failure(label + " " + problem + ".");
  if (auto problem = chain_problem(certificate, certificates, anchors); !problem.empty())
    return failure(label + " does not chain to the CA in " + quoted(ca_file) + " (" + problem +
                   "), so give the peer a certificate issued by the cluster CA.");
  std::string name;
  if (!read_common_name(certificate, name))
    return failure(label + " has no single common name, so issue it a certificate with CN " +
                   quoted(expected_name) + ".");
  if (name != expected_name)
    return failure("peer certificate has common name " + quoted(name) + " but " +
                   quoted(expected_name) + " was expected, so check the peer's node name" +
                   " and certificate.");
  if (!signature_matches(X509_get0_pubkey(certificate), data, signature))
    return failure("signature from peer " + quoted(expected_name) +
                   " does not match its certificate, so check that the peer uses the key of"
                   " that certificate.");
  return success();
}

std::string common_name(const std::string& certificate_pem) {
  error_queue_guard guard;
  auto certificate = parse_first_certificate(certificate_pem);
  std::string name;
  if (!certificate || !read_common_name(certificate.get(), name))
    return {};
  return name;
}

std::string fingerprint(const std::string& certificate_pem) {
  error_queue_guard guard;
  auto certificate = parse_first_certificate(certificate_pem);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  // Also returns "" if X509_digest() fails, which a parsed certificate
  // should not cause.
  if (!certificate || X509_digest(certificate.get(), EVP_sha256(), digest, &size) != 1)
    return {};
  return to_hex(digest, size, true, ":");
}

std::string hex_encode(const std::string& bytes) {
  return to_hex(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), false, "");
}

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &size, EVP_sha256(), nullptr) != 1) {
    // Returning "" would make two different inputs compare equal, so a
    // broken SHA-256 provider stops the process instead.
    std::fprintf(stderr, "mailcluster: SHA-256 is unavailable in OpenSSL, aborting\n");
    std::abort();
  }
  return to_hex(digest, size, false, "");
}

std::string random_bytes(size_t n) {
  std::string bytes(n, '\0');
  auto* output = reinterpret_cast<unsigned char*>(bytes.data());
  size_t done = 0;
  while (done < n) {
    // RAND_bytes() takes an int length, so large requests go in chunks.
    int chunk = static_cast<int>(std::min<size_t>(n - done, INT_MAX));
    if (RAND_bytes(output + done, chunk) != 1) {
      // Keys, serials and nonces must not fall back to weak randomness.
      std::fprintf(stderr, "mailcluster: OpenSSL's random generator failed, aborting\n");
      std::abort();
    }
    done += static_cast<size_t>(chunk);
  }
  return bytes;
}

check_result make_ca(const cert_options& options, const std::string& certificate_file,
                     const std::string& key_file) {
  error_queue_guard guard;
  if (auto valid = check_new_common_name(options.common_name, false); !valid.ok)
    return valid;
  auto key = generate_key();
  x509_ptr certificate(X509_new());
  if (!key || !certificate)
    return failure("could not generate a P-256 key for CA " + quoted(options.common_name) +
                   ", so check the OpenSSL installation.");
  if (!fill_basic_fields(certificate.get(), options, nullptr, key.get()) ||
      !add_ca_extensions(certificate.get()))
    return failure("could not build the CA certificate for " + quoted(certificate_file) +
                   ", so check the validity offsets and the OpenSSL installation.");
  return sign_and_write(certificate.get(), key.get(), key.get(), certificate_file, key_file);
}

check_result make_node_certificate(const cert_options& options,
                                   const std::string& ca_certificate_file,
                                   const std::string& ca_key_file,
                                   const std::string& certificate_file,
                                   const std::string& key_file) {
  error_queue_guard guard;
  if (auto valid = check_new_common_name(options.common_name, true); !valid.ok)
    return valid;
  x509_ptr ca_certificate;
  pkey_ptr ca_key;
  if (auto loaded = load_ca(ca_certificate_file, ca_key_file, ca_certificate, ca_key); !loaded.ok)
    return loaded;
  auto key = generate_key();
  x509_ptr certificate(X509_new());
  if (!key || !certificate)
    return failure("could not generate a P-256 key for node " + quoted(options.common_name) +
                   ", so check the OpenSSL installation.");
  const X509_NAME* issuer_name = X509_get_subject_name(ca_certificate.get());
  if (!fill_basic_fields(certificate.get(), options, issuer_name, key.get()) ||
      !add_node_extensions(certificate.get(), ca_certificate.get(), options.common_name))
    return failure("could not build the node certificate for " + quoted(certificate_file) +
                   ", so check the validity offsets and the OpenSSL installation.");
  return sign_and_write(certificate.get(), ca_key.get(), key.get(), certificate_file, key_file);
}

} // namespace mc::tls
