#include "storage/result_repository.h"

#include "absl/strings/str_cat.h"
#include "storage/row_codec.h"

namespace evald::storage {
namespace {

constexpr char kResultColumns[] =
    "r.job_id, r.invocation_id, r.task, r.metric, r.score, r.value, r.has_stats, r.count, r.mean, "
    "r.stderr, r.stddev, r.min, r.max, r.sum";

std::vector<ResultRecord> ReadAll(SQLite::Statement& s) {
  std::vector<ResultRecord> out;
  while (s.executeStep()) {
    ResultRecord r;
    r.job_id = s.getColumn(0).getString();
    r.invocation_id = s.getColumn(1).getString();
    r.task = s.getColumn(2).getString();
    r.metric = s.getColumn(3).getString();
    r.score = s.getColumn(4).getString();
    r.value = ColumnDouble(s, 5);
    r.has_stats = s.getColumn(6).getInt() != 0;
    r.count = s.getColumn(7).getInt64();
    r.mean = ColumnDouble(s, 8);
    r.stderr_ = ColumnDouble(s, 9);
    r.stddev = ColumnDouble(s, 10);
    r.min = ColumnDouble(s, 11);
    r.max = ColumnDouble(s, 12);
    r.sum = ColumnDouble(s, 13);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

absl::Status ResultRepository::ReplaceForJob(const std::string& job_id,
                                             const std::string& invocation_id,
                                             const std::vector<ResultRecord>& results) {
  return db_.Run(absl::StrCat("put results of ", job_id), [&]() -> absl::Status {
    {
      StatementRef del = db_.Prepare("DELETE FROM results WHERE job_id = ?");
      del->bind(1, job_id);
      del->exec();
    }
    StatementRef s = db_.Prepare(
        "INSERT INTO results (job_id, ord, invocation_id, task, metric, score, value, has_stats, "
        "count, mean, stderr, stddev, min, max, sum) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    for (size_t i = 0; i < results.size(); ++i) {
      const ResultRecord& r = results[i];
      s->bind(1, job_id);
      s->bind(2, static_cast<int64_t>(i));
      s->bind(3, invocation_id);
      s->bind(4, r.task);
      s->bind(5, r.metric);
      s->bind(6, r.score);
      BindDouble(*s, 7, r.value);
      s->bind(8, r.has_stats ? 1 : 0);
      s->bind(9, r.count);
      BindDouble(*s, 10, r.mean);
      BindDouble(*s, 11, r.stderr_);
      BindDouble(*s, 12, r.stddev);
      BindDouble(*s, 13, r.min);
      BindDouble(*s, 14, r.max);
      BindDouble(*s, 15, r.sum);
      s->exec();
      s->reset();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<ResultRecord>> ResultRepository::ListByJob(const std::string& job_id) {
  return db_.Run(
      absl::StrCat("read results of ", job_id), [&]() -> absl::StatusOr<std::vector<ResultRecord>> {
        StatementRef s = db_.Prepare(absl::StrCat(
            "SELECT ", kResultColumns, " FROM results r WHERE r.job_id = ? ORDER BY r.ord"));
        s->bind(1, job_id);
        return ReadAll(*s);
      });
}

absl::StatusOr<std::vector<ResultRecord>> ResultRepository::ListByInvocation(
    const std::string& invocation_id) {
  return db_.Run(absl::StrCat("read results of ", invocation_id),
                 [&]() -> absl::StatusOr<std::vector<ResultRecord>> {
                   StatementRef s = db_.Prepare(absl::StrCat(
                       "SELECT ", kResultColumns,
                       " FROM results r JOIN jobs j ON j.id = r.job_id WHERE r.invocation_id = ? "
                       "ORDER BY j.idx, r.ord"));
                   s->bind(1, invocation_id);
                   return ReadAll(*s);
                 });
}

}  // namespace evald::storage
