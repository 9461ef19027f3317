#include "storage/secret_box.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/status_macros.h"

namespace evald::storage {
namespace {

// Values are API keys and tokens; anything larger is a mistake in the caller.
constexpr size_t kMaxSecretSize = 1 << 20;

// The one place OpenSSL's error queue becomes a Status.
absl::Status OpenSslError(absl::string_view what) {
  std::string detail;
  while (unsigned long code = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(code, buf, sizeof(buf));
    absl::StrAppend(&detail, detail.empty() ? "" : "; ", buf);
  }
  if (detail.empty()) detail = "no OpenSSL error detail";
  return absl::InternalError(absl::StrCat("OpenSSL failed to ", what, ": ", detail));
}

std::string ErrnoText(int err) { return std::error_code(err, std::generic_category()).message(); }

struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

const unsigned char* Bytes(absl::string_view s) {
  return reinterpret_cast<const unsigned char*>(s.data());
}

std::string WhatToDoAboutKey(const std::string& path) {
  return absl::StrCat(
      "Restore the original key file; if it is lost, move ", path,
      " away and restart evald to create a new key (stored secrets of unfinished invocations "
      "then cannot be decrypted: resume them with their secrets again)");
}

absl::Status ReadKeyFile(const std::string& path, int fd,
                         std::array<unsigned char, SecretBox::kKeySize>* key) {
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot stat key file ", path, ": ", ErrnoText(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("key file ", path, " is not a regular file. ", WhatToDoAboutKey(path)));
  }
  if ((st.st_mode & 077) != 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "key file %s is accessible by group or others (mode %04o); it must be private to evald's "
        "user: run `chmod 600 %s` and restart evald",
        path, st.st_mode & 07777, path));
  }
  if (st.st_uid != geteuid()) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "key file %s is owned by uid %d but evald runs as uid %d; run `chown %d %s` or start "
        "evald as its owner",
        path, st.st_uid, geteuid(), geteuid(), path));
  }
  if (static_cast<size_t>(st.st_size) != SecretBox::kKeySize) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "key file %s has %d bytes, expected %d: it is not an evald key file or was damaged. %s",
        path, st.st_size, SecretBox::kKeySize, WhatToDoAboutKey(path)));
  }
  size_t got = 0;
  while (got < key->size()) {
    const ssize_t n = read(fd, key->data() + got, key->size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      OPENSSL_cleanse(key->data(), key->size());
      return absl::FailedPreconditionError(absl::StrCat("cannot read key file ", path, ": ",
                                                        n < 0 ? ErrnoText(errno) : "file shrank"));
    }
    got += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, const unsigned char* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::ErrnoToStatus(errno, "write");
    done += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

// Writes a fresh key to a private temporary file and links it into place, so a key file is either
// absent or complete. Returns AlreadyExists when another process created the key first.
absl::Status CreateKeyFile(const std::string& path,
                           std::array<unsigned char, SecretBox::kKeySize>* key) {
  std::array<unsigned char, 8> rnd;
  if (RAND_bytes(rnd.data(), static_cast<int>(rnd.size())) != 1) {
    return OpenSslError("generate a temporary key file name");
  }
  const std::string tmp = absl::StrCat(
      path, ".tmp-", getpid(), "-",
      absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(rnd.data()), rnd.size())));
  const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create key file ", path, " (via ", tmp, "): ", ErrnoText(errno)));
  }
  FdCloser closer{fd};
  auto fail = [&](absl::string_view step, int err) {
    unlink(tmp.c_str());
    OPENSSL_cleanse(key->data(), key->size());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create key file ", path, ": ", step, ": ", ErrnoText(err)));
  };
  // The umask can only remove bits from 0600, but make the mode explicit anyway.
  if (fchmod(fd, 0600) != 0) return fail("chmod 600", errno);
  if (RAND_bytes(key->data(), static_cast<int>(key->size())) != 1) {
    unlink(tmp.c_str());
    return OpenSslError("generate the secrets key");
  }
  if (absl::Status s = WriteAll(fd, key->data(), key->size()); !s.ok()) return fail("write", errno);
  if (fsync(fd) != 0) return fail("fsync", errno);
  if (link(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    unlink(tmp.c_str());
    OPENSSL_cleanse(key->data(), key->size());
    if (err == EEXIST) return absl::AlreadyExistsError(path);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create key file ", path, ": link: ", ErrnoText(err)));
  }
  unlink(tmp.c_str());
  const std::string dir = std::filesystem::path(path).parent_path().string();
  const int dfd = open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace

std::string SecretAad(absl::string_view invocation_id, absl::string_view name) {
  std::string aad(invocation_id);
  aad.push_back('\0');
  aad.append(name.data(), name.size());
  return aad;
}

SecretBox::SecretBox(std::string key_path, const std::array<unsigned char, kKeySize>& key)
    : key_path_(std::move(key_path)), key_(key) {}

SecretBox::~SecretBox() { OPENSSL_cleanse(key_.data(), key_.size()); }

absl::StatusOr<std::unique_ptr<SecretBox>> SecretBox::LoadOrCreate(const std::string& key_path) {
  if (key_path.empty()) return absl::InvalidArgumentError("secrets key file path is empty");
  const std::filesystem::path parent = std::filesystem::path(key_path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat("cannot create folder ", parent.string(),
                                                        " for key file ", key_path, ": ",
                                                        ec.message()));
    }
  }
  std::array<unsigned char, kKeySize> key;
  // Two attempts: a concurrent creator can win the race between our open and our link.
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int fd = open(key_path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd >= 0) {
      FdCloser closer{fd};
      EVALD_RETURN_IF_ERROR(ReadKeyFile(key_path, fd, &key));
      std::unique_ptr<SecretBox> box(new SecretBox(key_path, key));
      OPENSSL_cleanse(key.data(), key.size());
      return box;
    }
    if (errno == ELOOP) {
      return absl::FailedPreconditionError(absl::StrCat(
          "key file ", key_path, " is a symbolic link; evald only uses a regular file there"));
    }
    if (errno != ENOENT) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot open key file ", key_path, ": ", ErrnoText(errno)));
    }
    absl::Status created = CreateKeyFile(key_path, &key);
    if (created.ok()) {
      std::unique_ptr<SecretBox> box(new SecretBox(key_path, key));
      OPENSSL_cleanse(key.data(), key.size());
      return box;
    }
    if (!absl::IsAlreadyExists(created)) return created;
  }
  return absl::UnavailableError(
      absl::StrCat("key file ", key_path, " kept changing while evald tried to read it"));
}

absl::StatusOr<SealedSecret> SecretBox::Seal(absl::string_view plaintext,
                                             absl::string_view aad) const {
  if (plaintext.size() > kMaxSecretSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "secret value has ", plaintext.size(), " bytes; at most ", kMaxSecretSize, " are allowed"));
  }
  SealedSecret out;
  out.nonce.resize(kNonceSize);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.nonce.data()), kNonceSize) != 1) {
    return OpenSslError("generate a nonce");
  }
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("allocate a cipher context");
  out.ciphertext.resize(plaintext.size() + kTagSize);
  auto* ct = reinterpret_cast<unsigned char*>(out.ciphertext.data());
  int len = 0;
  int total = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_EncryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), Bytes(out.nonce)) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), ct, &len, Bytes(plaintext),
                        static_cast<int>(plaintext.size())) != 1) {
    return OpenSslError("encrypt a secret");
  }
  total = len;
  if (EVP_EncryptFinal_ex(ctx.get(), ct + total, &len) != 1) return OpenSslError("encrypt");
  total += len;
  if (static_cast<size_t>(total) != plaintext.size() ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, ct + total) != 1) {
    return OpenSslError("finish encrypting a secret");
  }
  return out;
}

absl::StatusOr<std::string> SecretBox::Open(const SealedSecret& sealed,
                                            absl::string_view aad) const {
  if (sealed.nonce.size() != kNonceSize || sealed.ciphertext.size() < kTagSize) {
    return absl::DataLossError(absl::StrFormat(
        "stored secret is malformed (nonce %d bytes, ciphertext %d bytes; expected %d and >= %d)",
        sealed.nonce.size(), sealed.ciphertext.size(), kNonceSize, kTagSize));
  }
  const size_t size = sealed.ciphertext.size() - kTagSize;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) return OpenSslError("allocate a cipher context");
  std::string plain(size, '\0');
  auto* pt = reinterpret_cast<unsigned char*>(plain.data());
  // GCM's SET_TAG takes a non-const pointer but only reads from it.
  std::string tag = sealed.ciphertext.substr(size);
  int len = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, nullptr, nullptr) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_IVLEN, kNonceSize, nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx.get(), nullptr, nullptr, key_.data(), Bytes(sealed.nonce)) != 1 ||
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, Bytes(aad), static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx.get(), pt, &len, Bytes(sealed.ciphertext), static_cast<int>(size)) !=
          1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag.data()) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    return OpenSslError("decrypt a secret");
  }
  int final_len = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), pt + len, &final_len) != 1) {
    OPENSSL_cleanse(plain.data(), plain.size());
    ERR_clear_error();
    return absl::DataLossError(
        absl::StrCat("stored secret does not authenticate: the database row was modified or the "
                     "key file ",
                     key_path_, " is not the one it was encrypted with"));
  }
  return plain;
}

}  // namespace evald::storage
