#include "runner/adapter_config.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/status_macros.h"

namespace evald::runner {
namespace {

// Interceptors that only make sense inside the reference's Python adapter server; accepted so
// that configs written for it still run.
constexpr const char* kIgnoredInterceptors[] = {"omni_info", "post_eval_report", "log_tokens",
                                                "nvcf"};

absl::Status ReadPayload(const YamlDoc& doc, const YAML::Node& cfg, const std::string& path,
                         AdapterConfig::PayloadModifier* out) {
  YAML::Node add = YamlDoc::Child(cfg, "params_to_add");
  if (add.IsDefined() && !add.IsNull()) {
    if (!add.IsMap()) return doc.Error(add, path + ".params_to_add", "expected a map");
    out->params_to_add = YamlToJson(add);
    out->enabled = true;
  }
  EVALD_ASSIGN_OR_RETURN(
      out->params_to_remove,
      doc.StringList(YamlDoc::Child(cfg, "params_to_remove"), path + ".params_to_remove"));
  if (!out->params_to_remove.empty()) out->enabled = true;
  YAML::Node rename = YamlDoc::Child(cfg, "params_to_rename");
  if (rename.IsDefined() && !rename.IsNull()) {
    if (!rename.IsMap()) return doc.Error(rename, path + ".params_to_rename", "expected a map");
    for (const auto& kv : rename) {
      if (!kv.second.IsScalar()) {
        return doc.Error(kv.second, path + ".params_to_rename." + kv.first.Scalar(),
                         "expected the new name (a string)");
      }
      out->params_to_rename.emplace_back(kv.first.Scalar(), kv.second.Scalar());
    }
    out->enabled = true;
  }
  return absl::OkStatus();
}

template <typename T>
void SetIf(const std::optional<T>& v, T* out) {
  if (v) *out = *v;
}

absl::Status ReadReasoning(const YamlDoc& doc, const YAML::Node& cfg, const std::string& path,
                           bool legacy, AdapterConfig::Reasoning* out) {
  const char* start_key = "start_reasoning_token";
  const char* end_key = "end_reasoning_token";
  const char* include_key =
      legacy ? "include_if_reasoning_not_finished" : "include_if_not_finished";
  const char* track_key = legacy ? "track_reasoning" : "enable_reasoning_tracking";
  EVALD_ASSIGN_OR_RETURN(auto start,
                         doc.OptString(YamlDoc::Child(cfg, start_key), path + "." + start_key));
  EVALD_ASSIGN_OR_RETURN(auto end,
                         doc.OptString(YamlDoc::Child(cfg, end_key), path + "." + end_key));
  EVALD_ASSIGN_OR_RETURN(auto include,
                         doc.OptBool(YamlDoc::Child(cfg, include_key), path + "." + include_key));
  EVALD_ASSIGN_OR_RETURN(auto track,
                         doc.OptBool(YamlDoc::Child(cfg, track_key), path + "." + track_key));
  SetIf(start, &out->start_token);
  SetIf(end, &out->end_token);
  SetIf(include, &out->include_if_not_finished);
  SetIf(track, &out->tracking);
  if (out->end_token.empty()) {
    return doc.Error(YamlDoc::Child(cfg, end_key), path + "." + end_key, "must not be empty");
  }
  return absl::OkStatus();
}

absl::Status ReadPositive(const YamlDoc& doc, const YAML::Node& cfg, const std::string& key,
                          const std::string& path, int64_t* out) {
  EVALD_ASSIGN_OR_RETURN(auto v, doc.OptInt(YamlDoc::Child(cfg, key), path + "." + key));
  if (v) {
    if (*v < 0) {
      return doc.Error(YamlDoc::Child(cfg, key), path + "." + key, "must be >= 0");
    }
    *out = *v;
  }
  return absl::OkStatus();
}

absl::StatusOr<AdapterConfig> FromLegacy(const YamlDoc& doc, const YAML::Node& node,
                                         const std::string& path) {
  AdapterConfig ac;
  auto flag = [&](const char* key) -> absl::StatusOr<std::optional<bool>> {
    return doc.OptBool(YamlDoc::Child(node, key), path + "." + key);
  };
  EVALD_ASSIGN_OR_RETURN(auto use_system_prompt, flag("use_system_prompt"));
  EVALD_ASSIGN_OR_RETURN(
      auto custom_prompt,
      doc.OptString(YamlDoc::Child(node, "custom_system_prompt"), path + ".custom_system_prompt"));
  if (use_system_prompt.value_or(false) && custom_prompt) ac.system_message = *custom_prompt;

  EVALD_RETURN_IF_ERROR(ReadPayload(doc, node, path, &ac.payload));

  EVALD_ASSIGN_OR_RETURN(auto use_request_logging, flag("use_request_logging"));
  ac.logging.requests = use_request_logging.value_or(false);
  EVALD_RETURN_IF_ERROR(
      ReadPositive(doc, node, "max_logged_requests", path, &ac.logging.max_requests));
  EVALD_ASSIGN_OR_RETURN(auto use_response_logging, flag("use_response_logging"));
  ac.logging.responses = use_response_logging.value_or(false);
  EVALD_RETURN_IF_ERROR(
      ReadPositive(doc, node, "max_logged_responses", path, &ac.logging.max_responses));
  EVALD_ASSIGN_OR_RETURN(auto log_failed, flag("log_failed_requests"));
  ac.logging.failed_requests = log_failed.value_or(false);

  EVALD_ASSIGN_OR_RETURN(auto use_caching, flag("use_caching"));
  ac.caching.enabled = use_caching.value_or(true);
  EVALD_ASSIGN_OR_RETURN(auto caching_dir,
                         doc.OptString(YamlDoc::Child(node, "caching_dir"), path + ".caching_dir"));
  SetIf(caching_dir, &ac.caching.dir);
  EVALD_ASSIGN_OR_RETURN(auto save_requests, flag("save_requests"));
  ac.caching.save_requests = save_requests.value_or(false);
  EVALD_ASSIGN_OR_RETURN(auto reuse, flag("reuse_cached_responses"));
  SetIf(reuse, &ac.caching.reuse_cached);

  EVALD_ASSIGN_OR_RETURN(auto tracking, flag("tracking_requests_stats"));
  ac.stats.enabled = tracking.value_or(true);

  EVALD_ASSIGN_OR_RETURN(auto use_reasoning, flag("use_reasoning"));
  ac.reasoning.enabled = use_reasoning.value_or(false);
  EVALD_RETURN_IF_ERROR(ReadReasoning(doc, node, path, /*legacy=*/true, &ac.reasoning));

  EVALD_ASSIGN_OR_RETURN(auto use_progress, flag("use_progress_tracking"));
  EVALD_ASSIGN_OR_RETURN(auto progress_url,
                         doc.OptString(YamlDoc::Child(node, "progress_tracking_url"),
                                       path + ".progress_tracking_url"));
  ac.progress.enabled = use_progress.value_or(false) && progress_url.has_value();
  SetIf(progress_url, &ac.progress.url);
  EVALD_RETURN_IF_ERROR(
      ReadPositive(doc, node, "progress_tracking_interval", path, &ac.progress.interval));

  EVALD_ASSIGN_OR_RETURN(auto use_omni, flag("use_omni_info"));
  if (use_omni.value_or(false)) ac.ignored.push_back("omni_info");
  EVALD_ASSIGN_OR_RETURN(auto use_nvcf, flag("use_nvcf"));
  if (use_nvcf.value_or(false)) {
    return doc.Error(YamlDoc::Child(node, "use_nvcf"), path + ".use_nvcf",
                     "NVCF endpoints are not supported by evalrun; use the endpoint's "
                     "OpenAI-compatible URL");
  }
  return ac;
}

absl::StatusOr<AdapterConfig> FromList(const YamlDoc& doc, const YAML::Node& list,
                                       const std::string& path) {
  AdapterConfig ac;
  // An explicit list replaces the defaults: only what it names runs.
  ac.caching.enabled = false;
  ac.stats.enabled = false;
  bool has_endpoint = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string item_path = absl::StrCat(path, "[", i, "]");
    std::string name;
    YAML::Node cfg(YAML::NodeType::Map);
    bool enabled = true;
    if (item.IsScalar()) {
      name = item.Scalar();
    } else if (item.IsMap()) {
      EVALD_ASSIGN_OR_RETURN(auto n,
                             doc.OptString(YamlDoc::Child(item, "name"), item_path + ".name"));
      if (!n) return doc.Error(item, item_path + ".name", "missing interceptor name");
      name = *n;
      EVALD_ASSIGN_OR_RETURN(auto en,
                             doc.OptBool(YamlDoc::Child(item, "enabled"), item_path + ".enabled"));
      enabled = en.value_or(true);
      YAML::Node c = YamlDoc::Child(item, "config");
      EVALD_RETURN_IF_ERROR(doc.ExpectMap(c, item_path + ".config"));
      if (c.IsDefined() && c.IsMap()) cfg.reset(c);
    } else {
      return doc.Error(item, item_path, "expected an interceptor name or {name, config}");
    }
    if (!enabled) continue;
    const std::string cpath = item_path + ".config";
    if (name == "endpoint") {
      has_endpoint = true;
    } else if (name == "system_message") {
      EVALD_ASSIGN_OR_RETURN(auto msg, doc.OptString(YamlDoc::Child(cfg, "system_message"),
                                                     cpath + ".system_message"));
      if (!msg) {
        return doc.Error(item, cpath + ".system_message", "missing the system message text");
      }
      ac.system_message = *msg;
    } else if (name == "payload_modifier") {
      EVALD_RETURN_IF_ERROR(ReadPayload(doc, cfg, cpath, &ac.payload));
      ac.payload.enabled = true;
    } else if (name == "reasoning") {
      ac.reasoning.enabled = true;
      EVALD_RETURN_IF_ERROR(ReadReasoning(doc, cfg, cpath, /*legacy=*/false, &ac.reasoning));
    } else if (name == "caching") {
      ac.caching.enabled = true;
      EVALD_ASSIGN_OR_RETURN(auto dir,
                             doc.OptString(YamlDoc::Child(cfg, "cache_dir"), cpath + ".cache_dir"));
      SetIf(dir, &ac.caching.dir);
      EVALD_ASSIGN_OR_RETURN(auto reuse, doc.OptBool(YamlDoc::Child(cfg, "reuse_cached_responses"),
                                                     cpath + ".reuse_cached_responses"));
      SetIf(reuse, &ac.caching.reuse_cached);
      EVALD_ASSIGN_OR_RETURN(auto save_req, doc.OptBool(YamlDoc::Child(cfg, "save_requests"),
                                                        cpath + ".save_requests"));
      SetIf(save_req, &ac.caching.save_requests);
    } else if (name == "request_logging") {
      ac.logging.requests = true;
      EVALD_RETURN_IF_ERROR(
          ReadPositive(doc, cfg, "max_requests", cpath, &ac.logging.max_requests));
    } else if (name == "response_logging") {
      ac.logging.responses = true;
      EVALD_RETURN_IF_ERROR(
          ReadPositive(doc, cfg, "max_responses", cpath, &ac.logging.max_responses));
    } else if (name == "response_stats") {
      ac.stats.enabled = true;
      EVALD_ASSIGN_OR_RETURN(auto tokens, doc.OptBool(YamlDoc::Child(cfg, "collect_token_stats"),
                                                      cpath + ".collect_token_stats"));
      SetIf(tokens, &ac.stats.collect_token_stats);
      EVALD_ASSIGN_OR_RETURN(auto reasons,
                             doc.OptBool(YamlDoc::Child(cfg, "collect_finish_reasons"),
                                         cpath + ".collect_finish_reasons"));
      SetIf(reasons, &ac.stats.collect_finish_reasons);
    } else if (name == "progress_tracking") {
      EVALD_ASSIGN_OR_RETURN(auto url, doc.OptString(YamlDoc::Child(cfg, "progress_tracking_url"),
                                                     cpath + ".progress_tracking_url"));
      ac.progress.enabled = url.has_value();
      SetIf(url, &ac.progress.url);
      EVALD_RETURN_IF_ERROR(
          ReadPositive(doc, cfg, "progress_tracking_interval", cpath, &ac.progress.interval));
    } else if (name == "raise_client_errors") {
      // Always on in evalrun: a 4xx other than 401/403/408/429 fails the sample.
    } else {
      bool ignored = false;
      for (const char* n : kIgnoredInterceptors) ignored = ignored || name == n;
      if (!ignored) {
        return doc.Error(item, item_path + ".name",
                         absl::StrCat("unknown interceptor '", name,
                                      "'; known: system_message, payload_modifier, reasoning, "
                                      "caching, endpoint, request_logging, response_logging, "
                                      "response_stats, progress_tracking, raise_client_errors"));
      }
      ac.ignored.push_back(name);
    }
  }
  if (!has_endpoint) {
    return doc.Error(list, path,
                     "the interceptors list must include 'endpoint' (the interceptor that sends "
                     "the request), as in the reference");
  }
  return ac;
}

}  // namespace

absl::StatusOr<AdapterConfig> ParseAdapterConfig(const YamlDoc& doc, const YAML::Node& node,
                                                 const std::string& path) {
  if (!node.IsDefined() || node.IsNull()) return AdapterConfig{};
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(node, path));
  YAML::Node list = YamlDoc::Child(node, "interceptors");
  if (list.IsDefined() && !list.IsNull()) {
    if (!list.IsSequence()) return doc.Error(list, path + ".interceptors", "expected a list");
    if (list.size() > 0) return FromList(doc, list, path + ".interceptors");
  }
  return FromLegacy(doc, node, path);
}

}  // namespace evald::runner
