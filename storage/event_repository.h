// File: event_repository.h
//
// The `events` table: evald's append-only history (state changes, submits, kill requests). This
// class has no update or delete, and triggers in the schema refuse both. `seq` is assigned by
// SQLite (AUTOINCREMENT: never reused, strictly increasing), so a Watch can resume after any seq.
//
// Callers: Store only, holding its mutex, inside the transaction of the change the event records.
//
//   EventRepository events(db);
//   EVALD_RETURN_IF_ERROR(events.Append(&ev));  // ev.seq is set
//   EVALD_ASSIGN_OR_RETURN(auto page, events.List("3f9a0c1e", /*after_seq=*/ev.seq, 100));
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/model.h"
#include "storage/database.h"

namespace evald::storage {

class EventRepository {
 public:
  explicit EventRepository(Database& db) : db_(db) {}

  // Inserts *event and sets event->seq.
  absl::Status Append(EventRecord* event);
  // seq > after_seq, oldest first, at most `limit`; all invocations when invocation_id is empty.
  absl::StatusOr<std::vector<EventRecord>> List(const std::string& invocation_id, int64_t after_seq,
                                                int limit);
  // The highest seq ever assigned (0 when none).
  absl::StatusOr<int64_t> LastSeq();

  // The SELECT behind List (tests check its query plan).
  static std::string ListSql(bool by_invocation);

 private:
  Database& db_;
};

}  // namespace evald::storage
