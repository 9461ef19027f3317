#include "cli/watch_model.h"

#include <algorithm>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "cli/format.h"

namespace evald::cli {
namespace {

std::string RateText(double rate) {
  if (!(rate > 0)) return "";
  return rate >= 10 ? absl::StrFormat("%.0f/s", rate) : absl::StrFormat("%.1f/s", rate);
}

}  // namespace

int WatchModel::IndexOf(const std::string& job_id) const {
  for (size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].job_id == job_id) return static_cast<int>(i);
  }
  return -1;
}

std::vector<std::string> WatchModel::Apply(const v1::WatchEvent& message) {
  std::vector<std::string> lines;
  switch (message.payload_case()) {
    case v1::WatchEvent::kSnapshot: {
      const v1::Invocation& inv = message.snapshot();
      has_snapshot_ = true;
      invocation_id_ = inv.invocation_id();
      jobs_.clear();
      for (const v1::Job& j : inv.jobs()) {
        if (!only_job_.empty() && j.job_id() != only_job_) continue;
        WatchJob w;
        w.job_id = j.job_id();
        w.task = j.task();
        w.state = j.state();
        w.progress = j.progress();
        if (IsTerminal(j.state())) w.exit = FormatExit(j);
        jobs_.push_back(std::move(w));
      }
      break;
    }
    case v1::WatchEvent::kEvent: {
      const v1::Event& ev = message.event();
      if (!ev.job_id().empty() && !only_job_.empty() && ev.job_id() != only_job_) break;
      int idx = ev.job_id().empty() ? -1 : IndexOf(ev.job_id());
      std::string subject = ev.job_id().empty() ? ev.invocation_id() : ev.job_id();
      if (idx >= 0) absl::StrAppend(&subject, " ", jobs_[idx].task);
      std::string line = absl::StrCat(subject, ":");
      if (ev.kind() == "job.starting") {
        // pending -> pending: the job is being handed to its executor; the message says which
        // attempt.
        absl::StrAppend(&line, " ", ev.message().empty() ? "starting" : ev.message());
        lines.push_back(std::move(line));
        break;
      }
      if (ev.kind() == "job.state" && idx >= 0) {
        // The typed state; a daemon that predates it sends the name only.
        std::optional<v1::JobState> to = ev.to_job_state() != v1::JOB_STATE_UNSPECIFIED
                                             ? std::optional(ev.to_job_state())
                                             : ParseStateName(ev.to_state());
        if (to) {
          jobs_[idx].state = *to;
          // Events carry no exit detail; a later snapshot fills it in.
          jobs_[idx].exit.clear();
        }
      } else {
        absl::StrAppend(&line, " ", ev.kind());
      }
      if (!ev.from_state().empty() || !ev.to_state().empty()) {
        absl::StrAppend(&line, " ", ev.from_state().empty() ? "?" : ev.from_state(), " -> ",
                        ev.to_state().empty() ? "?" : ev.to_state());
      }
      if (!ev.message().empty()) absl::StrAppend(&line, " (", ev.message(), ")");
      lines.push_back(std::move(line));
      break;
    }
    case v1::WatchEvent::kProgress: {
      const v1::JobProgress& p = message.progress();
      int idx = IndexOf(p.job_id());
      if (idx >= 0) jobs_[idx].progress = p.progress();
      break;
    }
    case v1::WatchEvent::kLog: {
      const v1::LogLine& log = message.log();
      if (!only_job_.empty() && log.job_id() != only_job_) break;
      std::string source = log.source().empty() ? "stdout" : log.source();
      lines.push_back(absl::StrCat(log.job_id(), " [", source, "] ", log.line()));
      break;
    }
    default:
      break;
  }
  return lines;
}

bool WatchModel::AllTerminal() const {
  return std::all_of(jobs_.begin(), jobs_.end(),
                     [](const WatchJob& j) { return IsTerminal(j.state); });
}

int WatchModel::ExitCode() const {
  if (jobs_.empty()) return 1;
  bool ok = std::all_of(jobs_.begin(), jobs_.end(),
                        [](const WatchJob& j) { return j.state == v1::JOB_STATE_SUCCEEDED; });
  return ok ? 0 : 1;
}

std::string WatchModel::Summary() const {
  // In state order, so the summary reads the same every time.
  std::map<int, int> counts;
  for (const WatchJob& j : jobs_) ++counts[static_cast<int>(j.state)];
  std::vector<std::string> parts;
  for (const auto& [state, n] : counts) {
    parts.push_back(absl::StrCat(n, " ", StateName(static_cast<v1::JobState>(state))));
  }
  return absl::StrCat(jobs_.size(), jobs_.size() == 1 ? " job: " : " jobs: ",
                      parts.empty() ? "none" : absl::StrJoin(parts, ", "));
}

std::string RenderWatchBarLine(const WatchJob& job, size_t task_width, int width) {
  std::string task = job.task;
  if (task.size() < task_width) task.append(task_width - task.size(), ' ');
  const v1::Progress& p = job.progress;
  std::string pct = "    ";
  if (p.total() > 0) {
    pct = absl::StrFormat("%3d%%", std::min<int64_t>(100, p.done() * 100 / p.total()));
  }
  std::string counts = p.total() > 0 ? absl::StrCat(p.done(), "/", p.total())
                                     : (p.done() > 0 ? absl::StrCat(p.done()) : "-");
  std::string state = StateName(job.state);
  if (!job.exit.empty() && job.state != v1::JOB_STATE_SUCCEEDED) {
    absl::StrAppend(&state, " (", job.exit, ")");
  }
  std::string tail = absl::StrCat("  ", pct, "  ", counts);
  std::string rate = IsTerminal(job.state) ? "" : RateText(p.rate());
  if (!rate.empty()) absl::StrAppend(&tail, "  ", rate);
  absl::StrAppend(&tail, "  ", state);
  std::string head = absl::StrCat(job.job_id, "  ", task, "  ");
  // The bar takes what is left, between 12 and 40 columns.
  int room = width - static_cast<int>(head.size() + tail.size());
  int bar_width = std::clamp(room, 12, 40);
  std::string line = absl::StrCat(head, RenderProgressBar(p.done(), p.total(), bar_width), tail);
  // Never wrap: a wrapped line would break the in-place redraw.
  if (width > 0 && line.size() > static_cast<size_t>(width)) line.resize(width);
  return line;
}

std::string RenderWatchProgressLine(const WatchJob& job) {
  std::string line =
      absl::StrCat(job.job_id, " ", job.task, ": progress ", FormatProgress(job.progress));
  std::string rate = RateText(job.progress.rate());
  if (!rate.empty()) absl::StrAppend(&line, ", ", rate);
  return line;
}

}  // namespace evald::cli
