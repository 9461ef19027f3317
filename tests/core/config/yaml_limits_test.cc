// Hostile YAML against the limits of ParseYaml and MeasureYaml: alias bombs ("billion laughs"),
// cycles, amplified text and deep nesting are refused with the file, line, key path and limit,
// and they are measured without expanding them.
#include <catch2/catch.hpp>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/compose.h"
#include "core/yaml_budget.h"

namespace evald::config {
namespace {

// `levels` lines "a: &a [x,x,...]", "b: &b [*a,*a,...]", ... each node `fanout` times its
// predecessor. 8 levels of 10 are 294 bytes that expand to 123,456,797 nodes.
std::string Laughs(int levels, int fanout = 10) {
  std::string text;
  for (int level = 0; level < levels; ++level) {
    char name = static_cast<char>('a' + level);
    absl::StrAppend(&text, std::string(1, name), ": &", std::string(1, name), " [");
    for (int k = 0; k < fanout; ++k) {
      if (k > 0) text += ",";
      text += level == 0 ? std::string("x") : absl::StrCat("*", std::string(1, name - 1));
    }
    text += "]\n";
  }
  return text;
}

TEST_CASE("an alias bomb is measured without being expanded") {
  const std::string bomb = Laughs(8);
  CHECK(bomb.size() == 294);
  // The whole expansion is counted: with the anchors' sizes remembered that is one pass over 291
  // bytes, where building it would take over 10 GB.
  YamlLimits unlimited{.max_nodes = uint64_t{1} << 40, .max_scalar_bytes = uint64_t{1} << 40};
  auto size = MeasureYaml(bomb, "laughs.yaml", unlimited);
  REQUIRE(size.ok());
  // The root, 8 keys, and per line k (1-based) a list of 1 + 10 + ... + 10^k nodes.
  CHECK(size->nodes == 1 + 8 + (123456789 - 1));
  CHECK(size->scalar_bytes == 8 + 111111110);  // the keys, and 10 + 100 + ... + 10^8 x's
  CHECK(size->depth == 9);
}

TEST_CASE("ParseYaml refuses an alias bomb at the node that passes the limit") {
  auto bomb = ParseYaml(Laughs(8), "laughs.yaml");
  REQUIRE_FALSE(bomb.ok());
  CHECK(bomb.status().code() == absl::StatusCode::kInvalidArgument);
  // The root and a..d hold 12,349 nodes, the key e and its list 2 more, and the first *d 11,111.
  CHECK(bomb.status().message() ==
        "laughs.yaml:5:8: e[0]: too many nodes after alias expansion (limit 20000)");

  // 5 levels (123,461 nodes) were accepted, and built, when the limit was a million values.
  auto five = ParseYaml(Laughs(5), "five.yaml");
  REQUIRE_FALSE(five.ok());
  CHECK(absl::StrContains(five.status().message(), "too many nodes after alias expansion"));
  CHECK(ParseYaml(Laughs(4), "four.yaml").ok());

  // Submit composes an uncomposed config the same way.
  ComposeRequest compose;
  compose.primary_yaml = Laughs(8);
  compose.primary_name = "<submitted config>";
  auto composed = Compose(compose);
  REQUIRE_FALSE(composed.ok());
  CHECK(composed.status().message() ==
        "<submitted config>:5:8: e[0]: too many nodes after alias expansion (limit 20000)");
}

TEST_CASE("amplified text, alias cycles and deep nesting get their own messages") {
  std::string big(1 << 20, 'y');
  std::string text = absl::StrCat("s: &s ", big, "\nl:\n");
  for (int k = 0; k < 5; ++k) absl::StrAppend(&text, "  - *s\n");
  auto amplified = ParseYaml(text, "text.yaml");
  REQUIRE_FALSE(amplified.ok());
  CHECK(amplified.status().message() ==
        "text.yaml:5:5: l[2]: too much scalar text after alias expansion (limit 4194304 bytes)");

  auto cycle = ParseYaml("a:\n  b: &x\n    c: [1, *x]\n", "cycle.yaml");
  REQUIRE_FALSE(cycle.ok());
  CHECK(cycle.status().message() ==
        "cycle.yaml:3:12: a.b.c[1]: alias *x refers to the node that contains it");

  // yaml-cpp alone said "bad file" at 500 levels.
  auto deep = ParseYaml(std::string(10000, '[') + std::string(10000, ']'), "deep.yaml");
  REQUIRE_FALSE(deep.ok());
  std::string path;
  for (int k = 0; k < 201; ++k) path += "[0]";
  CHECK(deep.status().message() ==
        absl::StrCat("deep.yaml:1:202: ", path, ": nested deeper than 200 levels"));
  auto deep_map = ParseYaml(std::string(300, '{') + "a: 1" + std::string(300, '}'), "m.yaml");
  REQUIRE_FALSE(deep_map.ok());
  CHECK(absl::StrContains(deep_map.status().message(), "nested deeper than 200 levels"));
  CHECK(ParseYaml(std::string(200, '[') + std::string(200, ']'), "ok.yaml").ok());

  // An alias can be deeper than the anchor it names.
  std::string anchor = "a: &a " + std::string(150, '[') + std::string(150, ']') + "\n";
  CHECK(ParseYaml(anchor, "ok.yaml").ok());
  auto via_alias = ParseYaml(
      anchor + "b: " + std::string(60, '[') + "*a" + std::string(60, ']') + "\n", "alias.yaml");
  REQUIRE_FALSE(via_alias.ok());
  CHECK(absl::StrContains(via_alias.status().message(), "nested deeper than 200 levels"));
}

TEST_CASE("interpolations that copy a long string over and over are refused") {
  // Within the parse limits, but each "${s}" is a copy: 20,000 of them would be 20 GB.
  ComposeRequest compose;
  compose.primary_yaml = absl::StrCat("s: ", std::string(1 << 20, 'y'), "\nl:\n");
  for (int k = 0; k < 6; ++k) compose.primary_yaml += "  - ${s}\n";
  compose.primary_name = "copies.yaml";
  auto composed = Compose(compose);
  REQUIRE_FALSE(composed.ok());
  CHECK(absl::StrContains(composed.status().message(),
                          "interpolation '${s}' at 'l[4]': interpolations produce more than "
                          "4194304 bytes of text in all; do they copy a long string over and "
                          "over?"));
  compose.primary_yaml =
      absl::StrCat("s: ", std::string(1 << 20, 'y'), "\nl:\n  - ${s}\n  - ${s}\n");
  auto two = Compose(compose);
  INFO(two.status().message());
  CHECK(two.ok());
}

TEST_CASE("a composed config over the limits is refused, since evald reads it back") {
  // Each file alone is within the limits; together (here by interpolation copies) they are not.
  ComposeRequest compose;
  compose.primary_yaml = "a: [";
  for (int k = 0; k < 4000; ++k) compose.primary_yaml += k > 0 ? ",0" : "0";
  compose.primary_yaml += "]\nb:\n";
  for (int k = 0; k < 4; ++k) compose.primary_yaml += "  - ${a}\n";
  compose.primary_name = "merged.yaml";
  auto composed = Compose(compose);
  REQUIRE_FALSE(composed.ok());
  CHECK(composed.status().message() ==
        "the composed config has 20009 nodes and 20002 bytes of text; a config may have at most "
        "20000 and 4194304 (it is stored and read back as YAML)");
  compose.primary_yaml.resize(compose.primary_yaml.size() - std::string("  - ${a}\n").size());
  auto fits = Compose(compose);
  REQUIRE(fits.ok());
  CHECK(ParseYaml(ToYaml(*fits), "read back").ok());
}

TEST_CASE("CheckYamlLimits skips the parse only for text that cannot pass a limit") {
  YamlLimits small{.max_nodes = 6, .max_scalar_bytes = 8, .max_depth = 2};
  CHECK(CheckYamlLimits("a: 1", "x", small).ok());
  // No alias, but more nodes, bytes or levels than the text length rules out: measured.
  CHECK(CheckYamlLimits("[1, 2, 3, 4, 5, 6]", "x", small).message() ==
        "x:1:17: [5]: too many nodes after alias expansion (limit 6)");
  CHECK(CheckYamlLimits("\"\\L\\L\\L\"", "x", small).message() ==
        "x:1:1: too much scalar text after alias expansion (limit 8 bytes)");
  CHECK(CheckYamlLimits("[[[1]]]", "x", small).message() ==
        "x:1:4: [0][0][0]: nested deeper than 2 levels");
  CHECK(CheckYamlLimits("[[1]]", "x", small).ok());
}

TEST_CASE("ordinary aliases, merge keys and syntax errors are unchanged") {
  auto merged = ParseYaml("base: &b {x: 1, y: [2, 3]}\nc:\n  <<: *b\n  z: *b\n", "ok.yaml");
  REQUIRE(merged.ok());
  CHECK((*merged)["c"]["z"]["y"][1].as<int>() == 3);
  auto size = MeasureYaml("base: &b {x: 1, y: [2, 3]}\nc:\n  <<: *b\n  z: *b\n", "ok.yaml");
  REQUIRE(size.ok());
  // root, base, {x: 1, y: [2, 3]} (7 nodes, keys included), c, {<<: *b, z: *b} (1 + 2 + 14)
  CHECK(size->nodes == 1 + 1 + 7 + 1 + 17);
  auto bad = ParseYaml("a: [oops\n", "bad.yaml");
  REQUIRE_FALSE(bad.ok());
  CHECK(absl::StartsWith(bad.status().message(), "bad.yaml:2:1: "));
}

}  // namespace
}  // namespace evald::config
