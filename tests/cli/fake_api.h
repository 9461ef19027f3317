// File: fake_api.h
//
// A scriptable EvalApi for the command tests: canned responses or statuses per RPC, the requests
// it received, and scripted Watch/StreamLogs streams. No gRPC.
//
//   FakeApi api;
//   api.invocations["1a2b3c4d"] = MakeInvocation(...);
//   Harness h(&api);
//   REQUIRE(RunStatus(h.ctx, options) == 0);
#pragma once

#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands/commands.h"

namespace evald::cli::testing {

class FakeApi : public EvalApi {
 public:
  // Submit: submit_statuses are answered first, one per call, then submit_status.
  absl::Status submit_status;
  std::vector<absl::Status> submit_statuses;
  v1::SubmitResponse submit_response;
  std::vector<v1::SubmitRequest> submits;
  // GetInvocation: by invocation id; a job id finds its invocation.
  std::map<std::string, v1::Invocation> invocations;
  absl::Status get_status;  // when not OK, returned by every GetInvocation
  std::vector<v1::GetInvocationRequest> gets;
  // ListInvocations: pages returned in order, per state filter.
  std::map<int, std::vector<v1::ListInvocationsResponse>> list_pages;
  absl::Status list_status;
  std::vector<v1::ListInvocationsRequest> lists;
  // Kill / Resume
  absl::Status kill_status;
  v1::KillResponse kill_response;
  absl::Status resume_status;
  v1::ResumeResponse resume_response;
  std::vector<v1::ResumeRequest> resumes;
  // ListTasks / GetResults / GetServerInfo
  absl::Status tasks_status;
  v1::ListTasksResponse tasks_response;
  absl::Status results_status;
  v1::GetResultsResponse results_response;
  absl::Status info_status;
  v1::ServerInfo info_response;
  // Watch: messages sent in order, then watch_end.
  std::vector<v1::WatchEvent> watch_messages;
  absl::Status watch_end;
  std::vector<v1::WatchRequest> watches;
  // StreamLogs
  std::vector<v1::LogChunk> log_chunks;
  absl::Status logs_end;
  std::vector<v1::StreamLogsRequest> log_requests;

  int calls = 0;

  absl::Status Submit(const v1::SubmitRequest& req, v1::SubmitResponse* resp) override {
    ++calls;
    submits.push_back(req);
    if (submits.size() <= submit_statuses.size()) {
      const absl::Status& s = submit_statuses[submits.size() - 1];
      if (!s.ok()) return s;
    } else if (!submit_status.ok()) {
      return submit_status;
    }
    *resp = submit_response;
    return absl::OkStatus();
  }
  absl::Status GetInvocation(const v1::GetInvocationRequest& req, v1::Invocation* resp) override {
    ++calls;
    gets.push_back(req);
    if (!get_status.ok()) return get_status;
    std::string inv = req.id().substr(0, req.id().find('.'));
    auto it = invocations.find(inv);
    if (it == invocations.end()) return absl::NotFoundError("unknown id " + req.id());
    *resp = it->second;
    if (!req.include_config()) resp->clear_config_yaml();
    return absl::OkStatus();
  }
  absl::Status ListInvocations(const v1::ListInvocationsRequest& req,
                               v1::ListInvocationsResponse* resp) override {
    ++calls;
    lists.push_back(req);
    if (!list_status.ok()) return list_status;
    auto& pages = list_pages[static_cast<int>(req.state())];
    size_t page = 0;
    if (!req.page_token().empty()) page = std::stoul(req.page_token());
    if (page < pages.size()) *resp = pages[page];
    return absl::OkStatus();
  }
  absl::Status Kill(const v1::KillRequest&, v1::KillResponse* resp) override {
    ++calls;
    if (!kill_status.ok()) return kill_status;
    *resp = kill_response;
    return absl::OkStatus();
  }
  absl::Status Resume(const v1::ResumeRequest& req, v1::ResumeResponse* resp) override {
    ++calls;
    resumes.push_back(req);
    if (!resume_status.ok()) return resume_status;
    *resp = resume_response;
    return absl::OkStatus();
  }
  absl::Status ListTasks(const v1::ListTasksRequest&, v1::ListTasksResponse* resp) override {
    ++calls;
    if (!tasks_status.ok()) return tasks_status;
    *resp = tasks_response;
    return absl::OkStatus();
  }
  absl::Status GetResults(const v1::GetResultsRequest&, v1::GetResultsResponse* resp) override {
    ++calls;
    if (!results_status.ok()) return results_status;
    *resp = results_response;
    return absl::OkStatus();
  }
  absl::Status GetServerInfo(bool, v1::ServerInfo* resp) override {
    ++calls;
    if (!info_status.ok()) return info_status;
    *resp = info_response;
    return absl::OkStatus();
  }
  absl::Status Watch(const v1::WatchRequest& req,
                     const std::function<bool(const v1::WatchEvent&)>& on) override {
    ++calls;
    watches.push_back(req);
    for (const v1::WatchEvent& ev : watch_messages) {
      if (!on(ev)) return absl::OkStatus();
    }
    return watch_end;
  }
  absl::Status StreamLogs(const v1::StreamLogsRequest& req,
                          const std::function<bool(const v1::LogChunk&)>& on) override {
    ++calls;
    log_requests.push_back(req);
    for (const v1::LogChunk& c : log_chunks) {
      if (!on(c)) return absl::OkStatus();
    }
    return logs_end;
  }
};

// A Context writing to string streams, with a fixed clock, environment and working dir.
struct Harness {
  explicit Harness(EvalApi* api) {
    ctx.api = api;
    ctx.address.target = "unix:///tmp/evald-test/evald.sock";
    ctx.address.unix_path = "/tmp/evald-test/evald.sock";
    ctx.address.source = "--server";
    ctx.out = &out;
    ctx.err = &err;
    ctx.now_ms = [this] { return now; };
    ctx.env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env.find(name);
      if (it == env.end()) return std::nullopt;
      return it->second;
    };
    ctx.working_dir = "/work/dir";
    ctx.sleep_ms = [this](int64_t ms) { sleeps.push_back(ms); };
  }
  std::string all() const { return out.str() + err.str(); }

  Context ctx;
  std::ostringstream out;
  std::ostringstream err;
  int64_t now = 1767225600000;  // 2026-01-01T00:00:00Z
  std::map<std::string, std::string> env;
  std::vector<int64_t> sleeps;  // what the command slept, never really slept
};

inline v1::Job MakeJob(const std::string& id, const std::string& task, v1::JobState state) {
  v1::Job j;
  j.set_job_id(id);
  j.set_invocation_id(id.substr(0, id.find('.')));
  j.set_task(task);
  j.set_state(state);
  j.set_output_dir("/out/20260101_000000-" + j.invocation_id() + "/" + task);
  j.set_executor("local");
  j.set_attempt(1);
  return j;
}

inline v1::Invocation MakeInvocation(const std::string& id, v1::JobState state,
                                     const std::vector<v1::Job>& jobs) {
  v1::Invocation inv;
  inv.set_invocation_id(id);
  inv.set_state(state);
  inv.set_executor("local");
  inv.set_created_ms(1767225600000 - 5 * 60 * 1000);
  inv.set_run_dir("/out/20260101_000000-" + id);
  for (const v1::Job& j : jobs) {
    *inv.add_jobs() = j;
    inv.add_tasks(j.task());
  }
  inv.set_job_count(static_cast<int>(jobs.size()));
  return inv;
}

}  // namespace evald::cli::testing
