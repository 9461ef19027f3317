#include "storage/event_repository.h"

#include "absl/strings/str_cat.h"

namespace evald::storage {
namespace {

constexpr char kEventColumns[] =
    "seq, time_ms, invocation_id, job_id, kind, from_state, to_state, message, actor";

}  // namespace

std::string EventRepository::ListSql(bool by_invocation) {
  return by_invocation ? absl::StrCat("SELECT ", kEventColumns,
                                      " FROM events WHERE seq > ? AND invocation_id = ? ORDER BY "
                                      "seq LIMIT ?")
                       : absl::StrCat("SELECT ", kEventColumns,
                                      " FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
}

absl::Status EventRepository::Append(EventRecord* event) {
  return db_.Run(absl::StrCat("append event ", event->kind), [&]() -> absl::Status {
    StatementRef s = db_.Prepare(
        "INSERT INTO events (time_ms, invocation_id, job_id, kind, from_state, to_state, "
        "message, actor) VALUES (?,?,?,?,?,?,?,?)");
    s->bind(1, event->time_ms);
    s->bind(2, event->invocation_id);
    s->bind(3, event->job_id);
    s->bind(4, event->kind);
    s->bind(5, event->from_state);
    s->bind(6, event->to_state);
    s->bind(7, event->message);
    s->bind(8, event->actor);
    s->exec();
    event->seq = db_.sqlite().getLastInsertRowid();
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<EventRecord>> EventRepository::List(const std::string& invocation_id,
                                                               int64_t after_seq, int limit) {
  return db_.Run("list events", [&]() -> absl::StatusOr<std::vector<EventRecord>> {
    StatementRef s = db_.Prepare(ListSql(!invocation_id.empty()));
    int i = 1;
    s->bind(i++, after_seq);
    if (!invocation_id.empty()) s->bind(i++, invocation_id);
    s->bind(i++, limit);
    std::vector<EventRecord> out;
    while (s->executeStep()) {
      EventRecord e;
      e.seq = s->getColumn(0).getInt64();
      e.time_ms = s->getColumn(1).getInt64();
      e.invocation_id = s->getColumn(2).getString();
      e.job_id = s->getColumn(3).getString();
      e.kind = s->getColumn(4).getString();
      e.from_state = s->getColumn(5).getString();
      e.to_state = s->getColumn(6).getString();
      e.message = s->getColumn(7).getString();
      e.actor = s->getColumn(8).getString();
      out.push_back(std::move(e));
    }
    return out;
  });
}

absl::StatusOr<int64_t> EventRepository::LastSeq() {
  return db_.Run("read last event seq", [&]() -> absl::StatusOr<int64_t> {
    StatementRef s = db_.Prepare("SELECT coalesce(max(seq), 0) FROM events");
    s->executeStep();
    return s->getColumn(0).getInt64();
  });
}

}  // namespace evald::storage
