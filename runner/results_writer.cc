#include "runner/results_writer.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "runner/progress.h"

namespace evald::runner {

std::string DumpJson(const nlohmann::json& j, int indent) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

ScoreBook::ScoreBook(std::vector<std::string> score_names, size_t samples, int repeats)
    : names_(std::move(score_names)), repeats_(repeats) {
  for (const auto& n : names_) stats_[n];
  if (repeats_ > 1) {
    finished_.assign(samples, 0);
    correct_per_sample_.assign(samples, 0);
  }
}

void ScoreBook::Add(size_t sample, const Evaluation& e) {
  ++evaluations_;
  correct_ += e.correct;
  for (const auto& [name, value] : e.scores) stats_[name].Add(value);
  if (repeats_ > 1 && sample < finished_.size()) {
    ++finished_[sample];
    correct_per_sample_[sample] += e.correct;
  }
}

nlohmann::json ScoreBook::MetricsJson() const {
  nlohmann::json metrics = nlohmann::json::object();
  nlohmann::json scores = nlohmann::json::object();
  for (const auto& name : names_) {
    const ScoreStats& s = stats_.at(name);
    scores[name] = {{"value", s.mean()}, {"stats", s.ToJson()}};
  }
  metrics["accuracy"] = {{"scores", scores}};
  if (repeats_ > 1) {
    std::vector<int> ks;
    for (int k = 1; k < repeats_; k *= 2) ks.push_back(k);
    ks.push_back(repeats_);
    nlohmann::json pass = nlohmann::json::object();
    for (int k : ks) {
      ScoreStats s;
      for (size_t i = 0; i < finished_.size(); ++i) {
        if (finished_[i] != repeats_) continue;
        s.Add(PassAtK(repeats_, correct_per_sample_[i], k));
      }
      pass[absl::StrCat("pass@", k)] = {{"value", s.mean()}, {"stats", s.ToJson()}};
    }
    metrics["pass@k"] = {{"scores", pass}};
  }
  return metrics;
}

nlohmann::json BuildResults(const std::string& task, const ScoreBook& book, const Plan& plan,
                            const std::string& command) {
  nlohmann::json doc;
  doc["command"] = command;
  doc["config"] = plan.config;
  const char* git = std::getenv("CORE_EVALS_GIT_HASH");
  doc["git_hash"] = git != nullptr ? nlohmann::json(git) : nlohmann::json(nullptr);
  doc["results"]["tasks"][task]["metrics"] = book.MetricsJson();
  doc["target"] = plan.target;
  return doc;
}

nlohmann::json BuildRunConfig(const Plan& plan, const std::string& command) {
  return {{"command", command},
          {"framework_name", "evald-native"},
          {"pkg_name", "evalrun"},
          {"config", plan.config},
          {"target", plan.target}};
}

absl::Status WriteMetricsJson(const std::string& path, const nlohmann::json& updates) {
  nlohmann::json doc = nlohmann::json::object();
  std::ifstream in(path);
  if (in) {
    std::stringstream buf;
    buf << in.rdbuf();
    nlohmann::json old = nlohmann::json::parse(buf.str(), nullptr, false);
    if (!old.is_discarded() && old.is_object()) doc = std::move(old);
  }
  for (auto it = updates.begin(); it != updates.end(); ++it) doc[it.key()] = *it;
  return WriteFileAtomically(path, DumpJson(doc, 2) + "\n");
}

SamplesWriter::~SamplesWriter() { (void)Close(); }

absl::Status SamplesWriter::Open(const std::string& path) {
  path_ = path;
  file_ = std::fopen(path.c_str(), "w");
  if (file_ == nullptr) {
    return absl::DataLossError(absl::StrCat(path, ": cannot write: ", std::strerror(errno)));
  }
  std::setvbuf(file_, nullptr, _IOFBF, 1 << 16);
  return absl::OkStatus();
}

void SamplesWriter::Write(const nlohmann::json& sample) {
  if (file_ == nullptr) return;
  std::string line = DumpJson(sample);
  line += '\n';
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size()) failed_ = true;
}

void SamplesWriter::WriteLine(const std::string& line) {
  if (file_ == nullptr) return;
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
      std::fputc('\n', file_) == EOF) {
    failed_ = true;
  }
}

absl::Status SamplesWriter::Flush() {
  if (file_ == nullptr) return absl::OkStatus();
  if (std::fflush(file_) != 0) failed_ = true;
  if (failed_) return absl::DataLossError(absl::StrCat(path_, ": write failed"));
  return absl::OkStatus();
}

absl::Status SamplesWriter::Close() {
  if (file_ == nullptr) return absl::OkStatus();
  absl::Status s = Flush();
  if (std::fclose(file_) != 0 && s.ok())
    s = absl::DataLossError(absl::StrCat(path_, ": close failed"));
  file_ = nullptr;
  return s;
}

}  // namespace evald::runner
