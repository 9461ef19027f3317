// Secrets: AES-256-GCM at rest, the key file's creation and checks, deletion when the invocation
// ends, and tampering.
#include <sys/stat.h>

#include "storage/secret_box.h"
#include "storage_test_util.h"

namespace evald::storage {
namespace {

using testing::Contains;
using testing::CountRows;
using testing::CreateSimple;
using testing::DatabaseBytes;
using testing::Move;
using testing::OpenStore;
using testing::Raw;
using testing::TempDir;

constexpr char kCanary[] = "sk-CANARY-7f3e9b1d2c4a-do-not-store-in-clear";

mode_t ModeOf(const std::string& path) {
  struct stat st;
  REQUIRE(stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

StoreOptions Options(const TempDir& dir) {
  StoreOptions o;
  o.db_path = dir / "state/evald.db";
  o.key_path = dir / "state/secrets.key";
  return o;
}

TEST_CASE("SecretBox seals with a fresh nonce and opens only with the same row") {
  TempDir dir;
  auto box = SecretBox::LoadOrCreate(dir / "k");
  REQUIRE_OK(box);
  const std::string value = std::string("bin\0ary\xff", 8);
  auto a = (*box)->Seal(value, SecretAad("aaaaaaaa", "API_KEY"));
  auto b = (*box)->Seal(value, SecretAad("aaaaaaaa", "API_KEY"));
  REQUIRE_OK(a);
  REQUIRE_OK(b);
  REQUIRE(a->nonce.size() == SecretBox::kNonceSize);
  REQUIRE(a->ciphertext.size() == value.size() + SecretBox::kTagSize);
  REQUIRE(a->nonce != b->nonce);
  REQUIRE(a->ciphertext != b->ciphertext);
  REQUIRE_FALSE(Contains(a->ciphertext, value));

  auto opened = (*box)->Open(*a, SecretAad("aaaaaaaa", "API_KEY"));
  REQUIRE_OK(opened);
  REQUIRE(*opened == value);
  REQUIRE_CODE((*box)->Open(*a, SecretAad("bbbbbbbb", "API_KEY")), absl::StatusCode::kDataLoss);
  REQUIRE_CODE((*box)->Open(*a, SecretAad("aaaaaaaa", "HF_TOKEN")), absl::StatusCode::kDataLoss);
  SealedSecret cut = *a;
  cut.ciphertext.resize(3);
  REQUIRE_CODE((*box)->Open(cut, SecretAad("aaaaaaaa", "API_KEY")), absl::StatusCode::kDataLoss);

  auto empty = (*box)->Seal("", SecretAad("aaaaaaaa", "EMPTY"));
  REQUIRE_OK(empty);
  auto empty_back = (*box)->Open(*empty, SecretAad("aaaaaaaa", "EMPTY"));
  REQUIRE_OK(empty_back);
  REQUIRE(empty_back->empty());
}

TEST_CASE("The key file is created with mode 0600 and 32 bytes and reused") {
  TempDir dir;
  const mode_t old_umask = umask(0);  // the most permissive umask must not widen the mode
  auto first = SecretBox::LoadOrCreate(dir / "keys/secrets.key");
  umask(old_umask);
  REQUIRE_OK(first);
  REQUIRE(ModeOf(dir / "keys/secrets.key") == 0600);
  const std::string key = testing::ReadFileBytes(dir / "keys/secrets.key");
  REQUIRE(key.size() == 32);
  // No temporary files left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir / "keys")) {
    (void)e;
    ++files;
  }
  REQUIRE(files == 1);

  auto sealed = (*first)->Seal("v", SecretAad("aaaaaaaa", "K"));
  REQUIRE_OK(sealed);
  auto second = SecretBox::LoadOrCreate(dir / "keys/secrets.key");
  REQUIRE_OK(second);
  REQUIRE(testing::ReadFileBytes(dir / "keys/secrets.key") == key);
  auto opened = (*second)->Open(*sealed, SecretAad("aaaaaaaa", "K"));
  REQUIRE_OK(opened);
  REQUIRE(*opened == "v");
}

TEST_CASE("A key file readable by group or others is refused") {
  TempDir dir;
  { OpenStore(dir); }
  const std::string key = dir / "state/secrets.key";
  REQUIRE(chmod(key.c_str(), 0644) == 0);
  auto store = Store::Open(Options(dir));
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  const std::string msg(store.status().message());
  INFO(msg);
  REQUIRE(Contains(msg, key));
  REQUIRE(Contains(msg, "0644"));
  REQUIRE(Contains(msg, "chmod 600"));
  REQUIRE(chmod(key.c_str(), 0600) == 0);
  REQUIRE_OK(Store::Open(Options(dir)));
}

TEST_CASE("A key file of the wrong size is refused with what to do") {
  TempDir dir;
  { OpenStore(dir); }
  const std::string key = dir / "state/secrets.key";
  testing::WriteFileBytes(key, "short");
  REQUIRE(chmod(key.c_str(), 0600) == 0);
  auto store = Store::Open(Options(dir));
  REQUIRE_CODE(store, absl::StatusCode::kFailedPrecondition);
  const std::string msg(store.status().message());
  INFO(msg);
  REQUIRE(Contains(msg, key));
  REQUIRE(Contains(msg, "expected 32"));
  REQUIRE(Contains(msg, "Restore"));
  REQUIRE(testing::ReadFileBytes(key) == "short");  // never overwritten
}

TEST_CASE("Secrets are stored encrypted and read back decrypted") {
  TempDir dir;
  auto store = OpenStore(dir);
  const std::string db = dir / "state/evald.db";
  std::vector<EventRecord> events;
  InvocationRecord inv = testing::MakeInvocation("20000001", 1000);
  REQUIRE_OK(store->CreateInvocation(inv, testing::MakeJobs(inv), {},
                                     {{"API_KEY", kCanary}, {"HF_TOKEN", "hf_second"}}, 1000,
                                     &events));

  // Neither the database file nor its WAL holds the value in the clear.
  const std::string bytes = DatabaseBytes(db);
  REQUIRE(bytes.size() > 0);
  REQUIRE_FALSE(Contains(bytes, kCanary));
  REQUIRE_FALSE(Contains(bytes, "hf_second"));
  // The row holds a 12-byte nonce and value + 16-byte tag, nothing else.
  {
    auto raw = Raw(db);
    SQLite::Statement q(*raw,
                        "SELECT name, length(nonce), length(ciphertext) FROM secrets "
                        "WHERE invocation_id = '20000001' ORDER BY name");
    REQUIRE(q.executeStep());
    REQUIRE(q.getColumn(0).getString() == "API_KEY");
    REQUIRE(q.getColumn(1).getInt() == 12);
    REQUIRE(q.getColumn(2).getInt() == static_cast<int>(std::strlen(kCanary)) + 16);
    REQUIRE(raw->execAndGet("SELECT count(*) FROM pragma_table_info('secrets')").getInt() == 4);
  }
  for (const EventRecord& e : events) REQUIRE_FALSE(Contains(e.message, kCanary));

  auto secrets = store->GetSecrets("20000001");
  REQUIRE_OK(secrets);
  REQUIRE(secrets->size() == 2);
  REQUIRE(secrets->at("API_KEY") == kCanary);
  REQUIRE(secrets->at("HF_TOKEN") == "hf_second");

  // PutSecrets replaces the whole set.
  REQUIRE_OK(store->PutSecrets("20000001", {{"API_KEY", "rotated"}}));
  secrets = store->GetSecrets("20000001");
  REQUIRE_OK(secrets);
  REQUIRE(*secrets == std::map<std::string, std::string>{{"API_KEY", "rotated"}});
}

TEST_CASE("Secrets are deleted when the invocation ends and leave no trace after a checkpoint") {
  TempDir dir;
  auto store = OpenStore(dir);
  const std::string db = dir / "state/evald.db";
  CreateSimple(*store, "20000002", 1000, "local", 2, {{"API_KEY", kCanary}});
  std::string ciphertext;
  {
    auto raw = Raw(db);
    ciphertext = raw->execAndGet("SELECT ciphertext FROM secrets").getString();
  }
  REQUIRE(ciphertext.size() > 16);

  REQUIRE_OK(
      store->TransitionJob(Move("20000002.0", JobState::kPending, JobState::kRunning), 1100));
  REQUIRE_OK(
      store->TransitionJob(Move("20000002.0", JobState::kRunning, JobState::kSucceeded), 1200));
  // One job still pending: the invocation has not ended, the secrets stay.
  auto secrets = store->GetSecrets("20000002");
  REQUIRE_OK(secrets);
  REQUIRE(secrets->size() == 1);

  REQUIRE_OK(store->TransitionJob(Move("20000002.1", JobState::kPending, JobState::kFailed), 1300));
  secrets = store->GetSecrets("20000002");
  REQUIRE_OK(secrets);
  REQUIRE(secrets->empty());
  REQUIRE(CountRows(db, "secrets") == 0);

  Raw(db)->exec("PRAGMA wal_checkpoint(TRUNCATE)");
  const std::string bytes = DatabaseBytes(db);
  REQUIRE_FALSE(Contains(bytes, kCanary));
  // secure_delete: not even the ciphertext survives in free space.
  REQUIRE_FALSE(Contains(bytes, ciphertext));
}

TEST_CASE("Resuming after the end keeps resent secrets") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "20000003", 1000, "local", 1, {{"API_KEY", "first"}});
  REQUIRE_OK(store->TransitionJob(Move("20000003.0", JobState::kPending, JobState::kFailed), 1100));
  auto secrets = store->GetSecrets("20000003");
  REQUIRE_OK(secrets);
  REQUIRE(secrets->empty());
  REQUIRE_OK(store->PutSecrets("20000003", {{"API_KEY", "second"}}));
  REQUIRE_OK(store->TransitionJob(Move("20000003.0", JobState::kFailed, JobState::kPending), 1200));
  secrets = store->GetSecrets("20000003");
  REQUIRE_OK(secrets);
  REQUIRE(secrets->at("API_KEY") == "second");
}

TEST_CASE("A tampered ciphertext fails to open with DataLoss") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "20000004", 1000, "local", 1, {{"API_KEY", kCanary}});
  {
    auto raw = Raw(dir / "state/evald.db");
    std::string ct = raw->execAndGet("SELECT ciphertext FROM secrets").getString();
    ct[0] = static_cast<char>(ct[0] ^ 0x01);
    SQLite::Statement upd(*raw, "UPDATE secrets SET ciphertext = ?");
    upd.bind(1, ct.data(), static_cast<int>(ct.size()));
    upd.exec();
  }
  auto secrets = store->GetSecrets("20000004");
  REQUIRE_CODE(secrets, absl::StatusCode::kDataLoss);
  const std::string msg(secrets.status().message());
  REQUIRE(Contains(msg, "API_KEY"));
  REQUIRE(Contains(msg, "20000004"));
  REQUIRE_FALSE(Contains(msg, kCanary));
}

TEST_CASE("A ciphertext moved to another invocation does not open") {
  TempDir dir;
  auto store = OpenStore(dir);
  CreateSimple(*store, "20000005", 1000, "local", 1, {{"API_KEY", kCanary}});
  CreateSimple(*store, "20000006", 1000, "local", 1, {{"API_KEY", "other"}});
  Raw(dir / "state/evald.db")
      ->exec(
          "UPDATE secrets SET (nonce, ciphertext) = (SELECT nonce, ciphertext FROM secrets "
          "WHERE invocation_id = '20000005') WHERE invocation_id = '20000006'");
  REQUIRE_CODE(store->GetSecrets("20000006"), absl::StatusCode::kDataLoss);
}

TEST_CASE("Secrets cannot be read with a different key file") {
  TempDir dir;
  {
    auto store = OpenStore(dir);
    CreateSimple(*store, "20000007", 1000, "local", 1, {{"API_KEY", kCanary}});
  }
  std::filesystem::remove(dir / "state/secrets.key");
  auto store = OpenStore(dir);  // creates a new key
  REQUIRE_CODE(store->GetSecrets("20000007"), absl::StatusCode::kDataLoss);
  // Everything else still works.
  REQUIRE_OK(store->GetInvocation("20000007"));
}

TEST_CASE("An empty key path puts the key next to the database") {
  TempDir dir;
  StoreOptions o;
  o.db_path = dir / "db/evald.db";
  REQUIRE_OK(Store::Open(o));
  REQUIRE(std::filesystem::is_regular_file(dir / "db/secrets.key"));
  REQUIRE(ModeOf(dir / "db/secrets.key") == 0600);
}

}  // namespace
}  // namespace evald::storage
