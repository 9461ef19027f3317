#include "runner/dataset.h"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "runner/hashing.h"
#include "runner/plan.h"

namespace evald::runner {
namespace {

namespace fs = std::filesystem;

std::string TypeName(const nlohmann::json& v) {
  switch (v.type()) {
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    default:
      return "a number";
  }
}

absl::Status CheckRow(const nlohmann::json& v, const std::string& where) {
  if (!v.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": expected a JSON object, got ", TypeName(v)));
  }
  if (v.empty()) return absl::InvalidArgumentError(absl::StrCat(where, ": empty row {}"));
  return absl::OkStatus();
}

absl::Status ReadJsonl(std::istream& in, const std::string& name, const DatasetOptions& opt,
                       Dataset* ds) {
  std::string line;
  int64_t line_no = 0;
  int64_t blank_line = 0;  // first blank line not yet followed by content
  while (std::getline(in, line)) {
    ++line_no;
    if (line_no == 1 && absl::StartsWith(line, "\xEF\xBB\xBF")) line.erase(0, 3);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (absl::StripAsciiWhitespace(line).empty()) {
      if (blank_line == 0) blank_line = line_no;
      continue;
    }
    if (blank_line != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ":", blank_line, ": empty line (each line must hold one JSON object)"));
    }
    if (opt.limit && static_cast<int64_t>(ds->rows.size()) >= *opt.limit) break;
    const std::string where = absl::StrCat(name, ":", line_no);
    nlohmann::json v = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) {
      // Parse again with exceptions to get the parser's position message.
      std::string detail;
      try {
        nlohmann::json again = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        detail = e.what();
      }
      return absl::InvalidArgumentError(absl::StrCat(where, ": invalid JSON: ", detail));
    }
    EVALD_RETURN_IF_ERROR(CheckRow(v, where));
    ds->rows.push_back({std::move(v), line_no});
  }
  return absl::OkStatus();
}

absl::Status ReadJsonDocument(const std::string& text, const std::string& name,
                              const DatasetOptions& opt, Dataset* ds) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": invalid JSON: ", e.what()));
  }
  const nlohmann::json* array = nullptr;
  if (doc.is_array()) {
    array = &doc;
  } else if (doc.is_object()) {
    for (const char* key : {"rows", "data", "examples", "test", "train"}) {
      auto it = doc.find(key);
      if (it != doc.end() && it->is_array()) {
        array = &*it;
        break;
      }
    }
  }
  if (array == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        name,
        ": expected a JSON array of objects (or an object with a 'rows' or 'data' array), "
        "or JSONL with one object per line"));
  }
  ds->json_array = true;
  for (size_t i = 0; i < array->size(); ++i) {
    if (opt.limit && static_cast<int64_t>(ds->rows.size()) >= *opt.limit) break;
    const std::string where = absl::StrCat(name, ": element [", i, "]");
    EVALD_RETURN_IF_ERROR(CheckRow((*array)[i], where));
    ds->rows.push_back({std::move((*array)[i]), static_cast<int64_t>(i) + 1});
  }
  return absl::OkStatus();
}

absl::Status ReadFile(const std::string& path, const std::string& name, const DatasetOptions& opt,
                      Dataset* ds) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(name, ": dataset file not found"));
  }
  if (fs::is_directory(path, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": is a directory, expected a file"));
  }
  std::string ext = fs::path(path).extension().string();
  absl::AsciiStrToLower(&ext);
  if (ext == ".csv" || ext == ".parquet" || ext == ".tsv" || ext == ".arrow") {
    return absl::InvalidArgumentError(
        absl::StrCat(name, ": ", ext,
                     " datasets are not supported; convert the file to JSONL (one JSON "
                     "object per line), see docs/tasks.md"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(name, ": cannot open the dataset file"));
  if (ext == ".jsonl" || ext == ".ndjson") return ReadJsonl(in, name, opt, ds);
  // Other names: a JSON document when it starts with '[' or parses whole, else JSONL.
  char first = 0;
  while (in.get(first) && (std::isspace(static_cast<unsigned char>(first)) || first == '\xEF' ||
                           first == '\xBB' || first == '\xBF')) {
  }
  in.clear();
  in.seekg(0);
  if (first == '[') {
    std::stringstream buf;
    buf << in.rdbuf();
    return ReadJsonDocument(buf.str(), name, opt, ds);
  }
  if (ext == ".json") {
    std::stringstream buf;
    buf << in.rdbuf();
    std::string text = buf.str();
    nlohmann::json probe = nlohmann::json::parse(text, nullptr, false);
    if (!probe.is_discarded() && probe.is_object()) {
      for (const char* key : {"rows", "data", "examples", "test", "train"}) {
        if (probe.contains(key) && probe[key].is_array()) {
          return ReadJsonDocument(text, name, opt, ds);
        }
      }
    }
    std::istringstream lines(text);
    return ReadJsonl(lines, name, opt, ds);
  }
  return ReadJsonl(in, name, opt, ds);
}

size_t WriteToFile(char* data, size_t size, size_t nmemb, void* user) {
  return std::fwrite(data, size, nmemb, static_cast<FILE*>(user)) * size;
}

std::string SafeBaseName(const std::string& url) {
  std::string path = url;
  size_t q = path.find_first_of("?#");
  if (q != std::string::npos) path.resize(q);
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  std::string out;
  for (char c : base) {
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') ? c : '_';
  }
  if (out.empty() || out == "." || out == "..") out = "dataset";
  return out;
}

}  // namespace

std::string Dataset::Where(size_t index) const {
  std::string name = source == local_path ? source : absl::StrCat(source, " (", local_path, ")");
  if (index >= rows.size()) return name;
  if (json_array) return absl::StrCat(name, ": element [", rows[index].line - 1, "]");
  return absl::StrCat(name, ":", rows[index].line);
}

std::string DefaultDatasetCacheDir() {
  if (const char* d = std::getenv("EVALD_DATASET_CACHE"); d != nullptr && *d != '\0') return d;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x != nullptr && *x != '\0') {
    return (fs::path(x) / "evald" / "datasets").string();
  }
  const char* home = std::getenv("HOME");
  return (fs::path(home != nullptr && *home != '\0' ? home : "/tmp") / ".cache" / "evald" /
          "datasets")
      .string();
}

absl::StatusOr<std::string> FetchToCache(const std::string& url, const std::string& cache_dir,
                                         const std::string& bearer_token, double timeout_s) {
  std::error_code ec;
  fs::create_directories(cache_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset cache ", cache_dir, ": cannot create: ", ec.message()));
  }
  const std::string final_path =
      (fs::path(cache_dir) / (Sha256Hex(url).substr(0, 16) + "-" + SafeBaseName(url))).string();
  if (fs::exists(final_path, ec)) return final_path;

  const std::string tmp_path = absl::StrCat(final_path, ".part.", ::getpid());
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(tmp_path.c_str(), "wb"), &std::fclose);
  if (!file) {
    return absl::FailedPreconditionError(
        absl::StrCat("dataset cache ", cache_dir, ": cannot write ", tmp_path));
  }
  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  curl_slist* headers = nullptr;
  if (!bearer_token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + bearer_token).c_str());
  }
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl.get(), CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEFUNCTION, &WriteToFile);
  curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, file.get());
  curl_easy_setopt(curl.get(), CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl.get(), CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT_MS, static_cast<long>(timeout_s * 1000));
  curl_easy_setopt(curl.get(), CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "evalrun/0.1");
  CURLcode rc = curl_easy_perform(curl.get());
  long status = 0;
  curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  bool write_ok = std::fflush(file.get()) == 0;
  file.reset();
  auto fail = [&](const std::string& message) {
    fs::remove(tmp_path, ec);
    return absl::FailedPreconditionError(absl::StrCat("dataset ", url, ": ", message));
  };
  if (rc != CURLE_OK) {
    return fail(absl::StrCat("download failed: ", errbuf[0] ? errbuf : curl_easy_strerror(rc)));
  }
  if (status >= 400) {
    std::string hint;
    if (status == 401 || status == 403) {
      hint = bearer_token.empty() ? " (the dataset may be gated: set HF_TOKEN)"
                                  : " (check that HF_TOKEN has access to this dataset)";
    }
    return fail(absl::StrCat("download failed: HTTP ", status, hint));
  }
  if (!write_ok) return fail("cannot write the downloaded file");
  fs::rename(tmp_path, final_path, ec);
  if (ec) return fail(absl::StrCat("cannot move the download into the cache: ", ec.message()));
  return final_path;
}

absl::StatusOr<Dataset> LoadDataset(const std::string& path_or_url, const DatasetOptions& options) {
  Dataset ds;
  ds.source = path_or_url;
  if (IsUrl(path_or_url)) {
    std::string dir = options.cache_dir.empty() ? DefaultDatasetCacheDir() : options.cache_dir;
    EVALD_ASSIGN_OR_RETURN(ds.local_path,
                           FetchToCache(path_or_url, dir, options.hf_token, options.timeout_s));
  } else {
    ds.local_path = path_or_url;
  }
  const std::string name =
      ds.source == ds.local_path ? ds.source : absl::StrCat(ds.source, " (", ds.local_path, ")");
  EVALD_RETURN_IF_ERROR(ReadFile(ds.local_path, name, options, &ds));
  if (ds.rows.empty() && !(options.limit && *options.limit == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(name, ": the dataset has no rows"));
  }
  return ds;
}

}  // namespace evald::runner
