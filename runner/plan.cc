#include "runner/plan.h"

#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "runner/yaml_util.h"

namespace evald::runner {
namespace {

namespace fs = std::filesystem;

absl::Status CheckRange(const YamlDoc& doc, const YAML::Node& node, const std::string& path,
                        double v, double lo, double hi) {
  if (v < lo || v > hi) {
    return doc.Error(node, path, absl::StrCat("must be between ", lo, " and ", hi, ", got ", v));
  }
  return absl::OkStatus();
}

absl::Status ReadParams(const YamlDoc& doc, const YAML::Node& params, Params* p) {
  const std::string base = "config.params";
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(params, base));
  auto node = [&](const char* key) { return YamlDoc::Child(params, key); };
  auto path = [&](const char* key) { return absl::StrCat(base, ".", key); };

  EVALD_ASSIGN_OR_RETURN(p->limit_samples,
                         doc.OptInt(node("limit_samples"), path("limit_samples")));
  if (p->limit_samples && *p->limit_samples < 0) {
    return doc.Error(node("limit_samples"), path("limit_samples"), "must be >= 0 (or null)");
  }
  EVALD_ASSIGN_OR_RETURN(auto parallelism, doc.OptInt(node("parallelism"), path("parallelism")));
  if (parallelism) {
    EVALD_RETURN_IF_ERROR(CheckRange(doc, node("parallelism"), path("parallelism"),
                                     static_cast<double>(*parallelism), 1, 4096));
    p->parallelism = static_cast<int>(*parallelism);
  }
  EVALD_ASSIGN_OR_RETURN(p->temperature, doc.OptDouble(node("temperature"), path("temperature")));
  if (p->temperature) {
    EVALD_RETURN_IF_ERROR(
        CheckRange(doc, node("temperature"), path("temperature"), *p->temperature, 0, 100));
  }
  EVALD_ASSIGN_OR_RETURN(p->top_p, doc.OptDouble(node("top_p"), path("top_p")));
  if (p->top_p)
    EVALD_RETURN_IF_ERROR(CheckRange(doc, node("top_p"), path("top_p"), *p->top_p, 0, 1));
  EVALD_ASSIGN_OR_RETURN(p->max_new_tokens,
                         doc.OptInt(node("max_new_tokens"), path("max_new_tokens")));
  if (p->max_new_tokens && *p->max_new_tokens < 1) {
    return doc.Error(node("max_new_tokens"), path("max_new_tokens"), "must be >= 1 (or null)");
  }
  EVALD_ASSIGN_OR_RETURN(auto timeout,
                         doc.OptDouble(node("request_timeout"), path("request_timeout")));
  if (timeout) {
    EVALD_RETURN_IF_ERROR(
        CheckRange(doc, node("request_timeout"), path("request_timeout"), *timeout, 0.001, 86400));
    p->request_timeout_s = *timeout;
  }
  EVALD_ASSIGN_OR_RETURN(auto retries, doc.OptInt(node("max_retries"), path("max_retries")));
  if (retries) {
    EVALD_RETURN_IF_ERROR(CheckRange(doc, node("max_retries"), path("max_retries"),
                                     static_cast<double>(*retries), 0, 100));
    p->max_retries = static_cast<int>(*retries);
  }
  // `seed` is accepted at params level too (the issue lists it there); extra.seed wins.
  EVALD_ASSIGN_OR_RETURN(p->seed, doc.OptInt(node("seed"), path("seed")));

  YAML::Node extra = node("extra");
  const std::string ebase = base + ".extra";
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(extra, ebase));
  auto enode = [&](const char* key) { return YamlDoc::Child(extra, key); };
  auto epath = [&](const char* key) { return absl::StrCat(ebase, ".", key); };
  EVALD_ASSIGN_OR_RETURN(auto n_samples, doc.OptInt(enode("n_samples"), epath("n_samples")));
  if (n_samples) {
    EVALD_RETURN_IF_ERROR(CheckRange(doc, enode("n_samples"), epath("n_samples"),
                                     static_cast<double>(*n_samples), 1, 1000));
    p->n_samples = static_cast<int>(*n_samples);
  }
  EVALD_ASSIGN_OR_RETURN(auto seed, doc.OptInt(enode("seed"), epath("seed")));
  if (seed) p->seed = seed;
  EVALD_ASSIGN_OR_RETURN(auto dataset, doc.OptString(enode("dataset"), epath("dataset")));
  if (dataset) p->dataset = *dataset;
  EVALD_ASSIGN_OR_RETURN(p->num_fewshot, doc.OptInt(enode("num_fewshot"), epath("num_fewshot")));
  if (p->num_fewshot && *p->num_fewshot < 0) {
    return doc.Error(enode("num_fewshot"), epath("num_fewshot"), "must be >= 0");
  }
  EVALD_ASSIGN_OR_RETURN(p->shuffle_choices,
                         doc.OptBool(enode("shuffle_choices"), epath("shuffle_choices")));
  EVALD_ASSIGN_OR_RETURN(auto base_delay,
                         doc.OptDouble(enode("retry_base_delay"), epath("retry_base_delay")));
  if (base_delay) {
    EVALD_RETURN_IF_ERROR(CheckRange(doc, enode("retry_base_delay"), epath("retry_base_delay"),
                                     *base_delay, 0, 3600));
    p->retry_base_delay_s = *base_delay;
  }
  EVALD_ASSIGN_OR_RETURN(auto max_delay,
                         doc.OptDouble(enode("retry_max_delay"), epath("retry_max_delay")));
  if (max_delay) {
    EVALD_RETURN_IF_ERROR(
        CheckRange(doc, enode("retry_max_delay"), epath("retry_max_delay"), *max_delay, 0, 3600));
    p->retry_max_delay_s = *max_delay;
  }
  EVALD_ASSIGN_OR_RETURN(auto failed,
                         doc.OptDouble(enode("max_failed_fraction"), epath("max_failed_fraction")));
  if (failed) {
    EVALD_RETURN_IF_ERROR(
        CheckRange(doc, enode("max_failed_fraction"), epath("max_failed_fraction"), *failed, 0, 1));
    p->max_failed_fraction = *failed;
  }
  return absl::OkStatus();
}

absl::Status ReadEndpoint(const YamlDoc& doc, const YAML::Node& ep, Endpoint* e) {
  const std::string base = "target.api_endpoint";
  if (!ep.IsDefined() || ep.IsNull()) {
    return doc.Error(ep, base, "missing: the plan must name the endpoint (url, model_id)");
  }
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(ep, base));
  EVALD_ASSIGN_OR_RETURN(auto url, doc.OptString(YamlDoc::Child(ep, "url"), base + ".url"));
  if (!url || url->empty()) return doc.Error(ep, base + ".url", "missing the endpoint URL");
  if (!absl::StartsWith(*url, "http://") && !absl::StartsWith(*url, "https://")) {
    return doc.Error(YamlDoc::Child(ep, "url"), base + ".url",
                     absl::StrCat("expected an http:// or https:// URL, got '", *url, "'"));
  }
  e->url = *url;
  EVALD_ASSIGN_OR_RETURN(auto model,
                         doc.OptString(YamlDoc::Child(ep, "model_id"), base + ".model_id"));
  if (!model || model->empty()) {
    return doc.Error(ep, base + ".model_id", "missing the model id sent in each request");
  }
  e->model_id = *model;
  EVALD_ASSIGN_OR_RETURN(auto type, doc.OptString(YamlDoc::Child(ep, "type"), base + ".type"));
  if (type) {
    e->type_given = true;
    if (*type == "chat") {
      e->type = EndpointType::kChat;
    } else if (*type == "completions") {
      e->type = EndpointType::kCompletions;
    } else {
      return doc.Error(YamlDoc::Child(ep, "type"), base + ".type",
                       absl::StrCat("expected chat or completions, got '", *type, "'"));
    }
  }
  // Absent: the reference default API_KEY; explicit null: no key.
  YAML::Node key = YamlDoc::Child(ep, "api_key");
  if (!key.IsDefined()) {
    e->api_key_env = "API_KEY";
  } else {
    EVALD_ASSIGN_OR_RETURN(auto name, doc.OptString(key, base + ".api_key"));
    e->api_key_env = name.value_or("");
  }
  return absl::OkStatus();
}

absl::StatusOr<Plan> FromDoc(YamlDoc& doc, const std::string& base_dir,
                             const std::vector<std::string>& overrides) {
  EVALD_RETURN_IF_ERROR(ApplyOverrides(doc, overrides));
  const YAML::Node& root = doc.root();
  if (!root.IsMap()) return doc.Error(root, "(top level)", "expected a map with config and target");
  Plan plan;
  YAML::Node config = YamlDoc::Child(root, "config");
  if (!config.IsDefined() || !config.IsMap()) {
    return doc.Error(config, "config", "missing or not a map (needs type, output_dir, params)");
  }
  EVALD_ASSIGN_OR_RETURN(auto type, doc.OptString(YamlDoc::Child(config, "type"), "config.type"));
  if (!type || type->empty()) return doc.Error(config, "config.type", "missing the task name");
  plan.task = *type;
  EVALD_ASSIGN_OR_RETURN(auto out,
                         doc.OptString(YamlDoc::Child(config, "output_dir"), "config.output_dir"));
  if (!out || out->empty()) {
    return doc.Error(config, "config.output_dir", "missing the output (artifacts) directory");
  }
  plan.output_dir = ResolvePath(base_dir, *out);
  EVALD_ASSIGN_OR_RETURN(auto task_file,
                         doc.OptString(YamlDoc::Child(config, "task_file"), "config.task_file"));
  if (task_file && !task_file->empty()) plan.task_file = ResolvePath(base_dir, *task_file);
  EVALD_RETURN_IF_ERROR(ReadParams(doc, YamlDoc::Child(config, "params"), &plan.params));
  if (!plan.params.dataset.empty()) {
    plan.params.dataset = ResolvePath(base_dir, plan.params.dataset);
  }

  YAML::Node target = YamlDoc::Child(root, "target");
  EVALD_RETURN_IF_ERROR(doc.ExpectMap(target, "target"));
  YAML::Node ep = YamlDoc::Child(target, "api_endpoint");
  EVALD_RETURN_IF_ERROR(ReadEndpoint(doc, ep, &plan.endpoint));
  EVALD_ASSIGN_OR_RETURN(plan.adapter, ParseAdapterConfig(doc, YamlDoc::Child(ep, "adapter_config"),
                                                          "target.api_endpoint.adapter_config"));
  if (!plan.adapter.caching.dir.empty()) {
    plan.adapter.caching.dir = ResolvePath(base_dir, plan.adapter.caching.dir);
  } else {
    plan.adapter.caching.dir = (fs::path(plan.output_dir) / "cache").string();
  }
  plan.config = YamlToJson(config);
  plan.target = YamlToJson(target);
  return plan;
}

}  // namespace

const char* EndpointTypeName(EndpointType type) {
  return type == EndpointType::kChat ? "chat" : "completions";
}

bool IsUrl(const std::string& s) {
  return absl::StartsWith(s, "http://") || absl::StartsWith(s, "https://");
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || IsUrl(path)) return path;
  fs::path p(path);
  if (p.is_absolute()) return p.lexically_normal().string();
  return (fs::path(base_dir) / p).lexically_normal().string();
}

absl::StatusOr<Plan> LoadPlan(const std::string& path, const std::vector<std::string>& overrides) {
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec);
  if (ec) abs = path;
  EVALD_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::Load(abs.string()));
  EVALD_ASSIGN_OR_RETURN(Plan plan, FromDoc(doc, abs.parent_path().string(), overrides));
  plan.path = abs.string();
  return plan;
}

absl::StatusOr<Plan> ParsePlan(const std::string& text, const std::string& name,
                               const std::string& base_dir,
                               const std::vector<std::string>& overrides) {
  EVALD_ASSIGN_OR_RETURN(YamlDoc doc, YamlDoc::Parse(text, name));
  return FromDoc(doc, base_dir, overrides);
}

}  // namespace evald::runner
