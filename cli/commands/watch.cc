// watch: follows an invocation (or one job) until it ends. On a terminal, one progress bar per
// job redrawn in place with event lines printed above; elsewhere (CI), plain timestamped lines.
#include <map>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "cli/commands/commands.h"
#include "cli/format.h"
#include "cli/watch_model.h"

namespace evald::cli {
namespace {

// Plain mode prints a job's progress at most this often.
constexpr int64_t kPlainProgressIntervalMs = 5000;
// TTY mode redraws for progress alone at most this often (events always redraw).
constexpr int64_t kTtyRedrawIntervalMs = 100;

class WatchPrinter {
 public:
  WatchPrinter(const Context& ctx, std::ostream& os, bool tty, const WatchModel& model)
      : ctx_(ctx), os_(os), tty_(tty), model_(model) {}

  void OnMessage(const v1::WatchEvent& ev, const std::vector<std::string>& lines) {
    int64_t now = NowMs(ctx_);
    bool first_snapshot = ev.has_snapshot() && !header_printed_;
    if (first_snapshot) PrintHeader(now);
    if (tty_) {
      if (lines.empty() && !first_snapshot && now - last_redraw_ms_ < kTtyRedrawIntervalMs) return;
      Erase();
      for (const std::string& l : lines) os_ << Clock(now) << " " << l << "\n";
      Draw();
      last_redraw_ms_ = now;
    } else {
      int64_t at = ev.has_event() && ev.event().time_ms() > 0 ? ev.event().time_ms() : now;
      for (const std::string& l : lines) os_ << FormatLocalTime(at) << " " << l << "\n";
      if (ev.has_progress()) {
        int idx = model_.IndexOf(ev.progress().job_id());
        if (idx >= 0) MaybePrintProgress(model_.jobs()[idx], now, false);
      }
      if (ev.has_event() && !ev.event().job_id().empty()) {
        int idx = model_.IndexOf(ev.event().job_id());
        // A job's last progress is always shown when it ends.
        if (idx >= 0 && IsTerminal(model_.jobs()[idx].state)) {
          MaybePrintProgress(model_.jobs()[idx], now, true);
        }
      }
    }
    os_.flush();
  }

  // Shows the final state: redraws the bars (and leaves them) on a terminal, prints the last
  // progress of each job otherwise.
  void Finish() {
    if (tty_ && drawn_ > 0) {
      Erase();
      Draw();
      drawn_ = 0;
    } else if (!tty_) {
      for (const WatchJob& j : model_.jobs()) MaybePrintProgress(j, NowMs(ctx_), true);
    }
    os_.flush();
  }

 private:
  std::string Clock(int64_t ms) const {
    std::string t = FormatLocalTime(ms);
    return t.size() > 11 ? t.substr(11) : t;  // HH:MM:SS on a terminal
  }

  void PrintHeader(int64_t now) {
    header_printed_ = true;
    std::string head =
        absl::StrCat("watching invocation ", model_.invocation_id(), " (", model_.jobs().size(),
                     model_.jobs().size() == 1 ? " job" : " jobs",
                     "); Ctrl-C stops watching, the jobs keep running");
    if (tty_) {
      os_ << head << "\n";
      return;
    }
    os_ << FormatLocalTime(now) << " " << head << "\n";
    for (const WatchJob& j : model_.jobs()) {
      os_ << FormatLocalTime(now) << " " << j.job_id << " " << j.task << ": " << StateName(j.state)
          << "\n";
    }
  }

  void MaybePrintProgress(const WatchJob& job, int64_t now, bool force) {
    std::string text = RenderWatchProgressLine(job);
    auto& last = last_progress_[job.job_id];
    if (text == last.second) return;
    if (!force && last.first > 0 && now - last.first < kPlainProgressIntervalMs) return;
    if (job.progress.done() == 0 && job.progress.total() == 0) return;
    last = {now, text};
    os_ << FormatLocalTime(now) << " " << text << "\n";
  }

  void Erase() {
    // Cursor up over the bars, then clear to the end of the screen.
    if (drawn_ > 0) os_ << "\x1b[" << drawn_ << "A\r\x1b[J";
    drawn_ = 0;
  }

  void Draw() {
    size_t task_width = 0;
    for (const WatchJob& j : model_.jobs()) task_width = std::max(task_width, j.task.size());
    int width = ctx_.terminal_width > 20 ? ctx_.terminal_width - 1 : 79;
    for (const WatchJob& j : model_.jobs()) {
      os_ << RenderWatchBarLine(j, task_width, width) << "\n";
      ++drawn_;
    }
  }

  const Context& ctx_;
  std::ostream& os_;
  bool tty_;
  const WatchModel& model_;
  bool header_printed_ = false;
  int drawn_ = 0;
  int64_t last_redraw_ms_ = 0;
  std::map<std::string, std::pair<int64_t, std::string>> last_progress_;
};

}  // namespace

int RunWatch(Context& ctx, const WatchOptions& options) {
  InstallInterruptHandler();
  std::ostream& os = options.to_stderr ? *ctx.err : *ctx.out;
  bool tty = ctx.tty && !options.to_stderr;
  const std::string& id = options.id;
  WatchModel model(IsJobId(id) ? id : "");
  WatchPrinter printer(ctx, os, tty, model);

  v1::WatchRequest req;
  req.set_id(id);
  req.set_include_logs(options.logs);
  req.set_include_progress(true);
  int64_t received = 0;
  absl::Status s = ctx.api->Watch(req, [&](const v1::WatchEvent& ev) {
    ++received;
    std::vector<std::string> lines = model.Apply(ev);
    printer.OnMessage(ev, lines);
    return true;
  });
  if (s.code() == absl::StatusCode::kCancelled && Interrupted()) {
    printer.Finish();
    *ctx.err << "evalctl: stopped watching " << id << "; the jobs keep running (evalctl kill " << id
             << " stops them)\n";
    return kExitInterrupted;
  }
  if (!s.ok()) {
    printer.Finish();
    if (WentAway(s, received)) {
      *ctx.err << "evalctl: "
               << WentAwayMessage(absl::StrCat("watching ", id), s.message(),
                                  absl::StrCat("evalctl watch ", id))
               << "\n";
      return kExitUnreachable;
    }
    return ReportFailure(s, ctx.address, *ctx.err, id);
  }

  // One last look: the stream may end before the final progress and exit details arrive, or
  // end early (evald shutting down).
  v1::GetInvocationRequest greq;
  greq.set_id(id);
  v1::WatchEvent snap;
  absl::Status gs = ctx.api->GetInvocation(greq, snap.mutable_snapshot());
  if (gs.ok()) {
    // Once the stream saw every job end, a later resume must not turn this watch's answer.
    WatchModel fresh(IsJobId(id) ? id : "");
    fresh.Apply(snap);
    if (!model.AllTerminal() || fresh.AllTerminal()) model = fresh;
  }
  printer.Finish();
  if (!model.has_snapshot() || !model.AllTerminal()) {
    if (!gs.ok() && !WentAway(gs, received + 1)) {
      return ReportFailure(gs, ctx.address, *ctx.err, id);
    }
    if (!gs.ok()) {
      *ctx.err << "evalctl: "
               << WentAwayMessage(absl::StrCat("watching ", id), gs.message(),
                                  absl::StrCat("evalctl watch ", id))
               << "\n";
    } else {
      *ctx.err << "evalctl: evald closed the watch stream of " << id
               << " before it finished; the jobs keep running\n";
    }
    return kExitUnreachable;
  }

  os << (IsJobId(id) ? "job " : "invocation ") << id << " finished: " << model.Summary() << "\n";
  for (const WatchJob& j : model.jobs()) {
    if (j.state != v1::JOB_STATE_SUCCEEDED) {
      os << "  " << j.job_id << " " << j.task << " " << StateName(j.state) << ": see evalctl logs "
         << j.job_id << " --source all\n";
    }
  }
  os.flush();
  return model.ExitCode();
}

}  // namespace evald::cli
