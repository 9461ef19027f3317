// What evald and evalrun write reads back with the same types in a YAML 1.1 reader: PyYAML's
// safe_load, the reference's loader. Needs python3 with PyYAML (Debian python3-yaml); without it
// the test warns and checks nothing.
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/config/compose.h"
#include "core/config/value.h"
#include "core/config/yaml_io.h"
#include "nlohmann/json.hpp"
#include "runner/yaml_util.h"
#include "tests/core/config/test_util.h"

namespace evald::config {
namespace {

using internal::Value;

bool HavePyYaml() { return std::system("python3 -c 'import yaml' >/dev/null 2>&1") == 0; }

// PyYAML's reading of a YAML file holding one mapping: for each entry, its key as JSON and
// "<type> <repr>" of its value ("float 1e-05", "str 'yes'").
nlohmann::json PyYamlReading(const std::string& path) {
  const std::string cmd =
      "python3 -c 'import json, sys, yaml\n"
      "d = yaml.safe_load(open(sys.argv[1], encoding=\"utf-8\"))\n"
      "print(json.dumps([[k, type(v).__name__ + \" \" + repr(v)] for k, v in d.items()]))' " +
      path;
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  REQUIRE(pclose(pipe) == 0);
  return nlohmann::json::parse(out);
}

std::string PyTypeName(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "NoneType";
    case Value::Kind::kBool:
      return "bool";
    case Value::Kind::kInt:
      return "int";
    case Value::Kind::kFloat:
      return "float";
    case Value::Kind::kString:
      return "str";
    case Value::Kind::kList:
      return "list";
    case Value::Kind::kMap:
      return "dict";
  }
  return "";
}

// Our own reading of the same text (the one scalar rule), in PyYamlReading's form.
nlohmann::json OurReading(const std::string& text) {
  auto node = ParseYaml(text, "printed");
  REQUIRE(node.ok());
  auto v = internal::ValueFromYaml(*node, nullptr);
  REQUIRE(v.ok());
  nlohmann::json out = nlohmann::json::array();
  for (const internal::MapEntry& e : v->entries) {
    out.push_back({e.key, PyTypeName(e.value) + " " + internal::PyRepr(e.value)});
  }
  return out;
}

void CheckPyYamlReadsAsWeDo(const std::string& text) {
  if (!HavePyYaml()) {
    WARN("python3 with PyYAML not found: YAML 1.1 compatibility not checked");
    return;
  }
  testing::TempDir dir;
  std::string path = dir.Write("printed.yaml", text);
  CAPTURE(text);
  nlohmann::json ours = OurReading(text);
  nlohmann::json theirs = PyYamlReading(path);
  REQUIRE(ours.size() == theirs.size());
  for (size_t i = 0; i < ours.size(); ++i) {
    CHECK(ours[i].dump() == theirs[i].dump());
  }
}

// Strings that a YAML 1.1 (or 1.2) reader would take for something else, and plain ones.
const std::vector<std::string>& TrickyStrings() {
  static const std::vector<std::string> kStrings = [] {
    // Space-separated, then the ones with spaces or newlines.
    std::vector<std::string> v = absl::StrSplit(
        "yes No on OFF y n Y N true null ~ 0x1f 1_000 0o17 0755 08 1:20 01:00:00 190:20:30.15 1e-5 "
        "1.0e-05 .inf -.5 .5e3 .NaN = << 2024-01-01 9223372036854775808 +12 1. ._ chat - x it's "
        "v1.2 http://h:8000/v1 ??? ${a}",
        ' ');
    for (const char* s : {"", "a: b", "- x", " lead", "line\nbreak", "2001-12-14 21:59:43.10 -5"}) {
      v.push_back(s);
    }
    return v;
  }();
  return kStrings;
}

TEST_CASE("Printed configs and plans read back in PyYAML with the types evald reads") {
  Value root = Value::Map();
  int k = 0;
  for (const std::string& s : TrickyStrings())
    root.Put("s" + std::to_string(k++), Value::String(s));
  const double inf = std::numeric_limits<double>::infinity();
  for (double f : {1e-5, 1e16, -2e-7, 0.6, 3600.0, 5e-324, 1.5e300, 0.1 + 0.2, inf, -inf}) {
    root.Put("f" + std::to_string(k++), Value::Float(f));
  }
  root.Put("nan", Value::Float(std::nan("")));
  root.Put("i", Value::Int(493));
  root.Put("min", Value::Int(std::numeric_limits<int64_t>::min()));
  root.Put("b", Value::Bool(false));
  root.Put("null", Value::Null());
  Value keys = Value::Map();
  for (const char* key : {"yes", "1e-5", "null", "0x1f", "2024-01-01", "y", "plain"}) {
    keys.Put(key, Value::Int(1));
  }
  root.Put("keys", keys);
  Value list = Value::List();
  list.items = {Value::Float(1e-5), Value::String("off"), Value::Int(-12)};
  root.Put("list", list);

  std::string text = ToYaml(internal::ValueToYaml(root));
  CHECK(text.find("1.0e-05") != std::string::npos);
  CheckPyYamlReadsAsWeDo(text);
}

TEST_CASE("A composed config's top_p 1e-5 prints as 1.0e-05, a float in PyYAML") {
  auto composed = testing::ComposeText(
      "evaluation:\n  config:\n    config:\n      params: {top_p: 1e-5, temperature: 0}\n");
  REQUIRE(composed.ok());
  std::string text = ToYaml(*composed);
  CHECK(text.find("top_p: 1.0e-05\n") != std::string::npos);
  // PyYAML reads the whole composed config; compare the evaluation section.
  auto node = ParseYaml(text, "printed");
  REQUIRE(node.ok());
  YAML::Node only(YAML::NodeType::Map);
  only["params"] = (*node)["evaluation"]["config"]["config"]["params"];
  CheckPyYamlReadsAsWeDo(ToYaml(only["params"]));
}

TEST_CASE("evalrun's results.yml and run_config.yml read back in PyYAML with the same types") {
  nlohmann::json j = nlohmann::json::object();
  int k = 0;
  for (const std::string& s : TrickyStrings()) j["s" + std::to_string(k++)] = s;
  j["score"] = 1e-5;
  j["big"] = 1e16;
  j["half"] = 0.5;
  j["count"] = 7;
  j["flag"] = true;
  j["none"] = nullptr;
  j["list"] = {1e-5, "yes", 3};
  std::string text = runner::EmitYaml(j);
  CHECK(text.find("score: 1.0e-05\n") != std::string::npos);
  CheckPyYamlReadsAsWeDo(text);
  // evalrun reads it back as it was.
  auto doc = runner::YamlDoc::Parse(text, "results.yml");
  REQUIRE(doc.ok());
  CHECK(runner::YamlToJson(doc->root()).dump() == j.dump());
}

}  // namespace
}  // namespace evald::config
