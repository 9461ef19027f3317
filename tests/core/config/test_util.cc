#include "tests/core/config/test_util.h"

#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/config/value.h"

namespace evald::config::testing {

namespace fs = std::filesystem;
using internal::Value;

std::string SourcePath(const std::string& rel) { return std::string(EVALD_SOURCE_DIR) + "/" + rel; }
std::string PackagedDir() { return SourcePath("configs"); }
std::string PeerExamplesDir() { return SourcePath("tests/fixtures/peer-examples"); }

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::ordered_json ReadJson(const std::string& path) {
  return nlohmann::ordered_json::parse(ReadText(path));
}

EnvLookup FixedEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

EnvLookup GoldenEnv() {
  nlohmann::ordered_json golden = ReadJson(PeerExamplesDir() + "/golden/cases.json");
  std::map<std::string, std::string> vars;
  for (auto& [k, v] : golden["env"].items()) vars[k] = v.get<std::string>();
  return FixedEnv(vars);
}

TempDir::TempDir() {
  char tmpl[] = "/tmp/evald-config-test-XXXXXX";
  char* dir = ::mkdtemp(tmpl);
  path_ = dir != nullptr ? dir : "/tmp/evald-config-test-failed";
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path_, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path_, ec);
}

std::string TempDir::Write(const std::string& rel, const std::string& text) const {
  fs::path p = fs::path(path_) / rel;
  fs::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << text;
  return p.string();
}

namespace {

Value Typed(const YAML::Node& node) {
  auto v = internal::ValueFromYaml(node, nullptr);
  return v.ok() ? *v : Value::String("<unconvertible>");
}

void Diff(const Value& got, const nlohmann::ordered_json& want, const std::string& path,
          std::vector<std::string>* out) {
  auto fail = [&](const std::string& what) {
    out->push_back(absl::StrCat(path.empty() ? "<root>" : path, ": ", what));
  };
  if (want.is_object() && want.size() == 1 && want.contains("$float")) {
    std::string f = want["$float"].get<std::string>();
    bool ok = got.kind == Value::Kind::kFloat && ((f == "inf" && std::isinf(got.f) && got.f > 0) ||
                                                  (f == "-inf" && std::isinf(got.f) && got.f < 0) ||
                                                  (f == "nan" && std::isnan(got.f)));
    if (!ok) fail(absl::StrCat("want float ", f, ", got ", internal::PyRepr(got)));
    return;
  }
  if (want.is_null()) {
    if (!got.is_null()) fail(absl::StrCat("want null, got ", internal::PyRepr(got)));
  } else if (want.is_boolean()) {
    if (got.kind != Value::Kind::kBool || got.b != want.get<bool>()) {
      fail(absl::StrCat("want ", want.dump(), ", got ", internal::PyRepr(got)));
    }
  } else if (want.is_number_integer()) {
    if (got.kind != Value::Kind::kInt || got.i != want.get<int64_t>()) {
      fail(absl::StrCat("want int ", want.dump(), ", got ", internal::PyRepr(got)));
    }
  } else if (want.is_number_float()) {
    if (got.kind != Value::Kind::kFloat || got.f != want.get<double>()) {
      fail(absl::StrCat("want float ", want.dump(), ", got ", internal::PyRepr(got)));
    }
  } else if (want.is_string()) {
    if (!got.is_string() || got.s != want.get<std::string>()) {
      fail(absl::StrCat("want string ", want.dump(), ", got ", internal::PyRepr(got)));
    }
  } else if (want.is_array()) {
    if (!got.is_list() || got.items.size() != want.size()) {
      fail(absl::StrCat("want list of ", want.size(), ", got ", internal::PyRepr(got)));
      return;
    }
    for (size_t k = 0; k < want.size(); ++k) {
      Diff(got.items[k], want[k], absl::StrCat(path, "[", k, "]"), out);
    }
  } else if (want.is_object()) {
    if (!got.is_map()) {
      fail(absl::StrCat("want mapping, got ", internal::PyRepr(got)));
      return;
    }
    std::vector<std::string> want_keys, got_keys;
    for (auto& [k, v] : want.items()) want_keys.push_back(k);
    for (const auto& e : got.entries) got_keys.push_back(e.key);
    if (want_keys != got_keys) {
      fail(absl::StrCat("keys differ: want [", absl::StrJoin(want_keys, ", "), "], got [",
                        absl::StrJoin(got_keys, ", "), "]"));
    }
    for (auto& [k, v] : want.items()) {
      const Value* child = got.Get(k);
      if (child == nullptr) continue;
      Diff(*child, v, path.empty() ? k : absl::StrCat(path, ".", k), out);
    }
  }
}

}  // namespace

std::vector<std::string> DiffAgainstJson(const YAML::Node& node,
                                         const nlohmann::ordered_json& expected) {
  std::vector<std::string> out;
  Diff(Typed(node), expected, "", &out);
  return out;
}

absl::StatusOr<YAML::Node> ComposeText(const std::string& yaml, std::vector<std::string> overrides,
                                       EnvLookup env) {
  ComposeRequest req;
  req.primary_yaml = yaml;
  req.primary_name = "test.yaml";
  req.packaged_dir = PackagedDir();
  req.overrides = std::move(overrides);
  req.env = env ? env : FixedEnv({{"USER", "tester"}, {"HOME", "/home/tester"}});
  req.working_dir = "/submit/dir";
  return Compose(req);
}

YAML::Node At(const YAML::Node& root, const std::string& dotted) {
  // Const lookups: operator[] on a non-const node would insert the key.
  YAML::Node cur = root;
  std::vector<std::string> parts = absl::StrSplit(dotted, '.');
  for (const std::string& part : parts) {
    const YAML::Node& c = cur;
    if (!c.IsDefined() || c.IsNull()) return YAML::Node(YAML::NodeType::Undefined);
    if (c.IsSequence()) {
      size_t idx = std::stoul(part);
      if (idx >= c.size()) return YAML::Node(YAML::NodeType::Undefined);
      YAML::Node next = c[idx];
      cur.reset(next);
    } else if (c.IsMap()) {
      YAML::Node next = c[part];
      if (!next.IsDefined()) return YAML::Node(YAML::NodeType::Undefined);
      cur.reset(next);
    } else {
      return YAML::Node(YAML::NodeType::Undefined);
    }
  }
  return cur;
}

}  // namespace evald::config::testing
