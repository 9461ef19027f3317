// File: response_cache.h
//
// The caching interceptor's store: an SQLite file (WAL) under artifacts/cache/ mapping the
// SHA-256 of a canonical request to the endpoint's raw response body. Because the runner looks
// every request up before sending it, rerunning a killed job sends only what is missing. Puts
// are batched in a transaction and committed by Flush() (the runner flushes every few tens of
// milliseconds), so a SIGKILL loses at most the last batch; SQLite itself stays consistent.
// The table is append-only and unindexed (a B-tree index over random hash keys costs four times
// the insert); the keys are indexed in memory when the cache is opened. Single-threaded: the
// runner's loop thread only.
//
//   EVALD_ASSIGN_OR_RETURN(auto cache, ResponseCache::Open({.dir = out + "/cache"}));
//   if (auto hit = cache->Get(key)) ...;
//   cache->Put(key, request_json, response_body);
//   EVALD_RETURN_IF_ERROR(cache->Flush());
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace SQLite {
class Database;
class Statement;
class Transaction;
}  // namespace SQLite

namespace evald::runner {

class ResponseCache {
 public:
  struct Options {
    std::string dir;             // created if missing; the file is <dir>/cache.sqlite3
    bool reuse = true;           // false: Get() always misses (the cache is only filled)
    bool save_requests = false;  // also store the request bodies
    int busy_timeout_ms = 5000;  // how long to wait for another process holding the cache
  };

  // FailedPrecondition when the folder cannot be created or the file is not an SQLite cache.
  static absl::StatusOr<std::unique_ptr<ResponseCache>> Open(const Options& options);
  ~ResponseCache();

  // An answer stored by an earlier run (Puts of this run are not looked up again).
  std::optional<std::string> Get(const std::string& key);
  void Put(const std::string& key, absl::string_view request, absl::string_view response);
  // Commits pending puts. Errors are returned once and the cache keeps working (a full disk
  // must not stop an evaluation).
  absl::Status Flush();
  int64_t pending() const { return pending_; }
  // Distinct keys stored.
  int64_t Count();
  std::string path() const { return path_; }

 private:
  ResponseCache() = default;
  Options options_;
  std::string path_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<SQLite::Statement> get_;
  std::unique_ptr<SQLite::Statement> put_;
  std::unique_ptr<SQLite::Statement> put_request_;
  bool in_transaction_ = false;
  // std::hash of each key stored before this run -> its rows.
  std::unordered_multimap<size_t, int64_t> index_;
  int64_t pending_ = 0;
  std::string last_error_;
};

}  // namespace evald::runner
