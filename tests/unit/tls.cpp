#define CAF_SUITE tls
#include "caf/test/unit_test.hpp"

#include "runtime/tls.hpp"

#include <cctype>
#include <fstream>
#include <memory>
#include <string>

#include <sys/stat.h>

#include <boost/filesystem.hpp>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace fs = boost::filesystem;
using namespace mc::tls;

namespace {

using bio_ptr = std::unique_ptr<BIO, decltype(&BIO_free_all)>;
using x509_ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

/// A fresh directory under the system temp directory, removed with its
/// contents when the test ends.
struct temp_dir {
  fs::path path;

  temp_dir() : path(fs::temp_directory_path() / fs::unique_path("mc-tls-test-%%%%-%%%%-%%%%")) {
    fs::create_directories(path);
  }

  ~temp_dir() {
    boost::system::error_code ignored;
    fs::remove_all(path, ignored);
  }

  std::string file(const std::string& name) const { return (path / name).string(); }
};

/// Paths of a CA and one node certificate issued by it.
struct credentials {
  std::string ca_certificate;
  std::string ca_key;
  std::string certificate;
  std::string key;
};

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

std::string read_text(const std::string& path) {
  std::string text;
  read_file(path, text);
  return text;
}

/// Creates a CA named `ca_name` and a node certificate in `dir`; all file
/// names start with `prefix`. Fails the test if generation fails.
credentials make_credentials(const temp_dir& dir, const std::string& prefix,
                             const cert_options& node = cert_options{"node-a"},
                             const std::string& ca_name = "test CA") {
  credentials result{dir.file(prefix + "ca.pem"), dir.file(prefix + "ca.key"),
                     dir.file(prefix + "node.pem"), dir.file(prefix + "node.key")};
  auto ca = make_ca(cert_options{ca_name}, result.ca_certificate, result.ca_key);
  CAF_REQUIRE_EQUAL(ca.error, "");
  auto issued = make_node_certificate(node, result.ca_certificate, result.ca_key,
                                      result.certificate, result.key);
  CAF_REQUIRE_EQUAL(issued.error, "");
  return result;
}

x509_ptr parse_certificate(const std::string& pem) {
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free_all);
  return x509_ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), X509_free);
}

/// Returns the PEM text of `key`, encrypted with AES-256 under `passphrase`
/// unless it is empty.
std::string private_key_pem(EVP_PKEY* key, const std::string& passphrase) {
  bio_ptr bio(BIO_new(BIO_s_mem()), BIO_free_all);
  const EVP_CIPHER* cipher = passphrase.empty() ? nullptr : EVP_aes_256_cbc();
  PEM_write_bio_PKCS8PrivateKey(bio.get(), key, cipher, passphrase.data(),
                                static_cast<int>(passphrase.size()), nullptr, nullptr);
  char* data = nullptr;
  long size = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(size));
}

/// Writes the node key of `files` again, encrypted under `passphrase`.
void encrypt_key_file(const credentials& files, const std::string& passphrase) {
  std::string pem = read_text(files.key);
  bio_ptr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free_all);
  pkey_ptr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  CAF_REQUIRE(key != nullptr);
  write_text(files.key, private_key_pem(key.get(), passphrase));
}

} // namespace

// -- check_credentials --------------------------------------------------------

CAF_TEST(credentials good files pass) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(result.ok);
  CAF_CHECK_EQUAL(result.error, "");
}

CAF_TEST(credentials missing certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto missing = dir.file("absent.pem");
  auto result = check_credentials(missing, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, missing));
  CAF_CHECK(contains(result.error, "not found"));
}

CAF_TEST(credentials garbage certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  write_text(files.certificate, "this is not a certificate\n");
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, files.certificate));
  CAF_CHECK(contains(result.error, "not a PEM certificate"));
}

CAF_TEST(credentials truncated certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto pem = read_text(files.certificate);
  write_text(files.certificate, pem.substr(0, pem.size() / 2) + "\n-----END CERTIFICATE-----\n");
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "not a PEM certificate"));
}

CAF_TEST(credentials directory as certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto result = check_credentials(dir.path.string(), files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "is a directory"));
}

CAF_TEST(credentials garbage key) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  write_text(files.key, "not a key\n");
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, files.key));
  CAF_CHECK(contains(result.error, "not a PEM private key"));
}

CAF_TEST(credentials key does not match) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto other_key = dir.file("other.key");
  auto issued = make_node_certificate(cert_options{"node-b"}, files.ca_certificate, files.ca_key,
                                      dir.file("other.pem"), other_key);
  CAF_REQUIRE(issued.ok);
  auto result = check_credentials(files.certificate, other_key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, other_key));
  CAF_CHECK(contains(result.error, files.certificate));
  CAF_CHECK(contains(result.error, "does not match"));
}

CAF_TEST(credentials other CA fails chain) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto foreign = make_credentials(dir, "foreign-", cert_options{"node-a"}, "foreign CA");
  auto result = check_credentials(foreign.certificate, foreign.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, foreign.certificate));
  CAF_CHECK(contains(result.error, files.ca_certificate));
  CAF_CHECK(contains(result.error, "does not chain"));
}

CAF_TEST(credentials expired certificate) {
  temp_dir dir;
  cert_options expired{"node-a", -7200, -3600};
  auto files = make_credentials(dir, "", expired);
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, files.certificate));
  CAF_CHECK(contains(result.error, "expired at "));
  CAF_CHECK(contains(result.error, "valid from "));
  CAF_CHECK(contains(result.error, "Z"));
}

CAF_TEST(credentials not yet valid) {
  temp_dir dir;
  cert_options future{"node-a", 3600, 7200};
  auto files = make_credentials(dir, "", future);
  auto result = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, files.certificate));
  CAF_CHECK(contains(result.error, "not valid before "));
  CAF_CHECK(contains(result.error, "valid until "));
}

CAF_TEST(credentials CA file without certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  // A private key is valid PEM but not a certificate.
  auto ca_file = dir.file("key-only-ca.pem");
  write_text(ca_file, read_text(files.ca_key));
  auto result = check_credentials(files.certificate, files.key, "", ca_file);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, ca_file));
  CAF_CHECK(contains(result.error, "contains no PEM certificate"));
}

CAF_TEST(credentials empty CA file) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto ca_file = dir.file("empty-ca.pem");
  write_text(ca_file, "");
  auto result = check_credentials(files.certificate, files.key, "", ca_file);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "contains no PEM certificate"));
}

CAF_TEST(credentials CA file with two CAs) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto foreign = make_credentials(dir, "foreign-", cert_options{"node-a"}, "foreign CA");
  auto bundle = dir.file("bundle.pem");
  write_text(bundle, read_text(foreign.ca_certificate) + read_text(files.ca_certificate));
  auto result = check_credentials(files.certificate, files.key, "", bundle);
  CAF_CHECK(result.ok);
  CAF_CHECK_EQUAL(result.error, "");
}

CAF_TEST(credentials encrypted key with passphrase) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  encrypt_key_file(files, "correct horse");
  auto good =
    check_credentials(files.certificate, files.key, "correct horse", files.ca_certificate);
  CAF_CHECK(good.ok);
  auto wrong =
    check_credentials(files.certificate, files.key, "battery staple", files.ca_certificate);
  CAF_CHECK(!wrong.ok);
  CAF_CHECK(contains(wrong.error, "passphrase is wrong"));
  CAF_CHECK(!contains(wrong.error, "battery staple"));
  auto none = check_credentials(files.certificate, files.key, "", files.ca_certificate);
  CAF_CHECK(!none.ok);
  CAF_CHECK(contains(none.error, "no passphrase was given"));
}

// -- sign and verify_signature ------------------------------------------------

CAF_TEST(signature round trip) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  std::string signature;
  auto signed_ok = sign(files.key, "", "join challenge 42", signature);
  CAF_REQUIRE(signed_ok.ok);
  CAF_CHECK(!signature.empty());
  auto pem = read_text(files.certificate);
  auto result =
    verify_signature(pem, files.ca_certificate, "node-a", "join challenge 42", signature);
  CAF_CHECK(result.ok);
  CAF_CHECK_EQUAL(result.error, "");
}

CAF_TEST(signature wrong expected name) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  std::string signature;
  CAF_REQUIRE(sign(files.key, "", "data", signature).ok);
  auto pem = read_text(files.certificate);
  auto result = verify_signature(pem, files.ca_certificate, "node-b", "data", signature);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "'node-a'"));
  CAF_CHECK(contains(result.error, "'node-b'"));
}

CAF_TEST(signature over other data) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  std::string signature;
  CAF_REQUIRE(sign(files.key, "", "nonce 1", signature).ok);
  auto pem = read_text(files.certificate);
  auto result = verify_signature(pem, files.ca_certificate, "node-a", "nonce 2", signature);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "does not match"));
}

CAF_TEST(signature malformed bytes) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto pem = read_text(files.certificate);
  auto result = verify_signature(pem, files.ca_certificate, "node-a", "data", "garbage");
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "does not match"));
}

CAF_TEST(signature from other CA) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto foreign = make_credentials(dir, "foreign-", cert_options{"node-a"}, "foreign CA");
  std::string signature;
  CAF_REQUIRE(sign(foreign.key, "", "data", signature).ok);
  auto pem = read_text(foreign.certificate);
  auto result = verify_signature(pem, files.ca_certificate, "node-a", "data", signature);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "does not chain"));
  CAF_CHECK(contains(result.error, files.ca_certificate));
}

CAF_TEST(signature expired peer certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "", cert_options{"node-a", -7200, -3600});
  std::string signature;
  CAF_REQUIRE(sign(files.key, "", "data", signature).ok);
  auto pem = read_text(files.certificate);
  auto result = verify_signature(pem, files.ca_certificate, "node-a", "data", signature);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "expired at "));
}

CAF_TEST(signature garbage certificate) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto result = verify_signature("junk", files.ca_certificate, "node-a", "data", "sig");
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, "not a PEM certificate"));
}

CAF_TEST(signature with RSA key) {
  temp_dir dir;
  pkey_ptr key(EVP_RSA_gen(2048), EVP_PKEY_free);
  CAF_REQUIRE(key != nullptr);
  auto key_file = dir.file("rsa.key");
  write_text(key_file, private_key_pem(key.get(), ""));
  std::string signature;
  auto result = sign(key_file, "", "data", signature);
  CAF_CHECK(result.ok);
  CAF_CHECK_EQUAL(signature.size(), 256u);
}

CAF_TEST(signature missing key file) {
  temp_dir dir;
  std::string signature = "stale";
  auto missing = dir.file("absent.key");
  auto result = sign(missing, "", "data", signature);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, missing));
  CAF_CHECK(signature.empty());
}

// -- certificate inspection ---------------------------------------------------

CAF_TEST(fingerprint format) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto pem = read_text(files.certificate);
  auto text = fingerprint(pem);
  // 32 bytes as two hex digits each, with 31 colons between them.
  CAF_REQUIRE_EQUAL(text.size(), 95u);
  for (size_t i = 0; i < text.size(); ++i) {
    if (i % 3 == 2)
      CAF_CHECK_EQUAL(text[i], ':');
    else
      CAF_CHECK(std::isxdigit(static_cast<unsigned char>(text[i])) &&
                !std::islower(static_cast<unsigned char>(text[i])));
  }
  // The fingerprint is the SHA-256 of the DER encoding.
  auto certificate = parse_certificate(pem);
  CAF_REQUIRE(certificate != nullptr);
  unsigned char* der = nullptr;
  int der_size = i2d_X509(certificate.get(), &der);
  CAF_REQUIRE(der_size > 0);
  auto digest = sha256_hex(std::string(reinterpret_cast<char*>(der), der_size));
  OPENSSL_free(der);
  std::string expected;
  for (size_t i = 0; i < digest.size(); i += 2) {
    if (i > 0)
      expected += ':';
    expected += static_cast<char>(std::toupper(digest[i]));
    expected += static_cast<char>(std::toupper(digest[i + 1]));
  }
  CAF_CHECK_EQUAL(text, expected);
  CAF_CHECK_EQUAL(fingerprint("junk"), "");
}

CAF_TEST(common name of certificates) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  CAF_CHECK_EQUAL(common_name(read_text(files.certificate)), "node-a");
  CAF_CHECK_EQUAL(common_name(read_text(files.ca_certificate)), "test CA");
  CAF_CHECK_EQUAL(common_name("junk"), "");
}

CAF_TEST(sha256 known answer) {
  CAF_CHECK_EQUAL(sha256_hex("abc"),
                  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CAF_CHECK_EQUAL(sha256_hex(""),
                  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

CAF_TEST(random bytes length) {
  CAF_CHECK_EQUAL(random_bytes(0).size(), 0u);
  CAF_CHECK_EQUAL(random_bytes(32).size(), 32u);
  CAF_CHECK_NOT_EQUAL(random_bytes(32), random_bytes(32));
}

CAF_TEST(read file missing) {
  temp_dir dir;
  std::string text;
  auto missing = dir.file("absent.txt");
  auto result = read_file(missing, text);
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, missing));
  CAF_CHECK(contains(result.error, "not found"));
}

// -- certificate generation ---------------------------------------------------

CAF_TEST(generated key files mode 0600) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  struct stat status {};
  CAF_REQUIRE_EQUAL(::stat(files.key.c_str(), &status), 0);
  CAF_CHECK_EQUAL(status.st_mode & 0777, 0600u);
  CAF_REQUIRE_EQUAL(::stat(files.ca_key.c_str(), &status), 0);
  CAF_CHECK_EQUAL(status.st_mode & 0777, 0600u);
}

CAF_TEST(generated certificate extensions) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto ca = parse_certificate(read_text(files.ca_certificate));
  auto node = parse_certificate(read_text(files.certificate));
  CAF_REQUIRE(ca != nullptr);
  CAF_REQUIRE(node != nullptr);
  CAF_CHECK_EQUAL(X509_get_version(ca.get()), X509_VERSION_3);
  CAF_CHECK_EQUAL(X509_check_ca(ca.get()), 1);
  CAF_CHECK((X509_get_key_usage(ca.get()) & KU_KEY_CERT_SIGN) != 0);
  CAF_CHECK((X509_get_key_usage(ca.get()) & KU_CRL_SIGN) != 0);
  CAF_CHECK_EQUAL(X509_check_ca(node.get()), 0);
  CAF_CHECK((X509_get_key_usage(node.get()) & KU_DIGITAL_SIGNATURE) != 0);
  CAF_CHECK((X509_get_key_usage(node.get()) & KU_KEY_ENCIPHERMENT) != 0);
  CAF_CHECK_EQUAL(X509_check_purpose(node.get(), X509_PURPOSE_SSL_SERVER, 0), 1);
  CAF_CHECK_EQUAL(X509_check_purpose(node.get(), X509_PURPOSE_SSL_CLIENT, 0), 1);
  CAF_CHECK_EQUAL(X509_check_host(node.get(), "node-a", 0, 0, nullptr), 1);
  CAF_CHECK_EQUAL(X509_check_ip_asc(node.get(), "127.0.0.1", 0), 1);
  CAF_CHECK_EQUAL(EVP_PKEY_get_base_id(X509_get0_pubkey(node.get())), EVP_PKEY_EC);
}

CAF_TEST(generated serials differ) {
  temp_dir dir;
  auto first = make_credentials(dir, "first-");
  auto second = make_credentials(dir, "second-");
  auto a = parse_certificate(read_text(first.certificate));
  auto b = parse_certificate(read_text(second.certificate));
  CAF_REQUIRE(a != nullptr);
  CAF_REQUIRE(b != nullptr);
  CAF_CHECK_NOT_EQUAL(
    ASN1_INTEGER_cmp(X509_get0_serialNumber(a.get()), X509_get0_serialNumber(b.get())), 0);
}

CAF_TEST(node certificate CA key mismatch) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto foreign = make_credentials(dir, "foreign-", cert_options{"node-a"}, "foreign CA");
  auto result = make_node_certificate(cert_options{"node-c"}, files.ca_certificate, foreign.ca_key,
                                      dir.file("c.pem"), dir.file("c.key"));
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, foreign.ca_key));
  CAF_CHECK(contains(result.error, "does not match"));
}

CAF_TEST(node certificate invalid name) {
  temp_dir dir;
  auto files = make_credentials(dir, "");
  auto spaced = make_node_certificate(cert_options{"node a"}, files.ca_certificate, files.ca_key,
                                      dir.file("c.pem"), dir.file("c.key"));
  CAF_CHECK(!spaced.ok);
  auto empty = make_node_certificate(cert_options{""}, files.ca_certificate, files.ca_key,
                                     dir.file("c.pem"), dir.file("c.key"));
  CAF_CHECK(!empty.ok);
  CAF_CHECK(!fs::exists(dir.file("c.pem")));
}

CAF_TEST(make CA unwritable directory) {
  temp_dir dir;
  auto target = dir.file("missing-dir/ca.pem");
  auto result = make_ca(cert_options{"test CA"}, target, dir.file("missing-dir/ca.key"));
  CAF_CHECK(!result.ok);
  CAF_CHECK(contains(result.error, dir.file("missing-dir/")));
}
