// File: dataset.h
//
// Dataset loading for the tasks: a local JSONL file (one JSON object per line), a JSON file
// (an array of objects, or an object holding one such array), or an http(s) URL of either,
// downloaded once into a cache folder (HF_TOKEN, when set, goes as a bearer token). Rows keep
// their line number so every later error can name "file:line". Called by the task builders.
//
//   DatasetOptions opts;  opts.limit = 100;
//   EVALD_ASSIGN_OR_RETURN(Dataset ds, LoadDataset("/data/gsm8k/test.jsonl", opts));
//   ds.rows[0].value["question"];  ds.Where(0)  // "/data/gsm8k/test.jsonl:1"
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace evald::runner {

struct DatasetRow {
  nlohmann::json value;  // always an object
  int64_t line = 0;      // 1-based line (JSONL) or element index + 1 (JSON array)
};

struct Dataset {
  std::string source;      // what the user gave (path or URL)
  std::string local_path;  // the file read (the cached download for a URL)
  bool json_array = false;
  std::vector<DatasetRow> rows;

  // "path:line" (JSONL) or "path: element [i]" (JSON), for error messages.
  std::string Where(size_t index) const;
};

struct DatasetOptions {
  std::optional<int64_t> limit;  // stop after this many rows (the first N, in file order)
  std::string cache_dir;         // for URLs; empty: DefaultDatasetCacheDir()
  std::string hf_token;          // bearer token for URLs; empty: none
  double timeout_s = 300;        // download timeout
};

// $EVALD_DATASET_CACHE, else $XDG_CACHE_HOME/evald/datasets, else ~/.cache/evald/datasets.
std::string DefaultDatasetCacheDir();

// Errors: NotFound for a missing file, InvalidArgument for a malformed or empty row (naming the
// file and line), an unsupported format or a failed download (naming the URL and the HTTP status).
absl::StatusOr<Dataset> LoadDataset(const std::string& path_or_url, const DatasetOptions& options);

// Downloads `url` into `cache_dir` unless a previous download is there; returns the local path.
absl::StatusOr<std::string> FetchToCache(const std::string& url, const std::string& cache_dir,
                                         const std::string& bearer_token, double timeout_s);

}  // namespace evald::runner
