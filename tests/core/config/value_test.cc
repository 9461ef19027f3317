// The typed value layer: YAML 1.1 scalar typing as the reference's loader does it, Python str()
// rendering, Hydra's override value grammar and key paths.
#include "core/config/value.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "core/config/overrides.h"

namespace evald::config::internal {
namespace {

std::string Typed(const std::string& text) {
  Value v = TypePlainScalar(text);
  return KindName(v) + " " + PyRepr(v);
}

TEST_CASE("Plain YAML scalars are typed as PyYAML with OmegaConf's float rule types them") {
  CHECK(Typed("") == "null None");
  CHECK(Typed("~") == "null None");
  CHECK(Typed("NULL") == "null None");
  CHECK(Typed("nULL") == "a string 'nULL'");
  CHECK(Typed("yes") == "a boolean True");
  CHECK(Typed("Off") == "a boolean False");
  CHECK(Typed("tRue") == "a string 'tRue'");
  CHECK(Typed("y") == "a string 'y'");
  CHECK(Typed("0755") == "an integer 493");
  CHECK(Typed("0x1F") == "an integer 31");
  CHECK(Typed("0b101") == "an integer 5");
  CHECK(Typed("0o17") == "a string '0o17'");
  CHECK(Typed("08") == "a string '08'");
  CHECK(Typed("1_000") == "an integer 1000");
  CHECK(Typed("-0") == "an integer 0");
  CHECK(Typed("+12") == "an integer 12");
  CHECK(Typed("1:30") == "an integer 90");
  CHECK(Typed("1:60") == "a string '1:60'");
  CHECK(Typed("01:00:00") == "a string '01:00:00'");
  CHECK(Typed("9223372036854775807") == "an integer 9223372036854775807");
  CHECK(Typed("-9223372036854775808") == "an integer -9223372036854775808");
  CHECK(Typed("9223372036854775808") == "a string '9223372036854775808'");
  CHECK(Typed("1e5") == "a number 100000.0");
  CHECK(Typed("1e-5") == "a number 1e-05");
  CHECK(Typed("1.") == "a number 1.0");
  CHECK(Typed(".5") == "a number 0.5");
  CHECK(Typed("-.5") == "a string '-.5'");
  CHECK(Typed(".5e3") == "a string '.5e3'");
  CHECK(Typed(".5e+3") == "a number 500.0");
  CHECK(Typed("190:20:30.15") == "a number 685230.15");
  CHECK(Typed("-.inf") == "a number -inf");
  CHECK(Typed(".NaN") == "a number nan");
  CHECK(Typed("2024-01-01") == "a string '2024-01-01'");
  CHECK(Typed("._") == "a string '._'");
  CHECK(Typed("0b") == "a string '0b'");
}

TEST_CASE("Floats print as Python repr") {
  CHECK(PyFloatRepr(1e-5) == "1e-05");
  CHECK(PyFloatRepr(0.6) == "0.6");
  CHECK(PyFloatRepr(3600.0) == "3600.0");
  CHECK(PyFloatRepr(0.1 + 0.2) == "0.30000000000000004");
  CHECK(PyFloatRepr(1e16) == "1e+16");
  CHECK(PyFloatRepr(1234567890123456.0) == "1234567890123456.0");
  CHECK(PyFloatRepr(0.0001) == "0.0001");
  CHECK(PyFloatRepr(-0.0) == "-0.0");
  CHECK(PyFloatRepr(1.5e300) == "1.5e+300");
  CHECK(PyFloatRepr(5e-324) == "5e-324");
  CHECK(PyFloatRepr(std::numeric_limits<double>::infinity()) == "inf");
  CHECK(CanonicalScalar(Value::Float(-std::numeric_limits<double>::infinity())) == "-.inf");
  CHECK(CanonicalScalar(Value::Float(2.5)) == "2.5");
  CHECK(CanonicalScalar(Value::Bool(true)) == "true");
}

TEST_CASE("Floats print in YAML as PyYAML writes them, so YAML 1.1 readers get floats") {
  // PyYAML's float resolver needs a '.': "1e-05" would read back as a string.
  CHECK(YamlFloat(1e-5) == "1.0e-05");
  CHECK(CanonicalScalar(Value::Float(1e-5)) == "1.0e-05");
  CHECK(YamlFloat(1e16) == "1.0e+16");
  CHECK(YamlFloat(-2e-7) == "-2.0e-07");
  CHECK(YamlFloat(1.5e300) == "1.5e+300");
  CHECK(YamlFloat(5e-324) == "5.0e-324");
  CHECK(YamlFloat(0.6) == "0.6");
  CHECK(YamlFloat(3600.0) == "3600.0");
  CHECK(YamlFloat(std::numeric_limits<double>::infinity()) == ".inf");
  CHECK(YamlFloat(-std::numeric_limits<double>::infinity()) == "-.inf");
  CHECK(YamlFloat(std::nan("")) == ".nan");
  for (double v : {1e-5, 1e16, -2e-7, 1.5e300, 5e-324, 0.6, 3600.0, 0.1 + 0.2}) {
    Value back = TypePlainScalar(YamlFloat(v));
    CAPTURE(v, YamlFloat(v));
    CHECK(back.kind == Value::Kind::kFloat);
    CHECK(back.f == v);
  }
}

TEST_CASE("Strings that any YAML 1.1 or 1.2 reader would retype must be quoted") {
  // Space-separated, plus the empty string.
  std::vector<std::string> quoted = absl::StrSplit(
      "yes No on OFF y n Y N true null ~ 0x1f 1_000 0o17 0755 1:20 190:20:30.15 1e-5 1.0e-05 .inf "
      "-.5 .5e3 .NaN = << 2024-01-01 2001-12-14t21:59:43.10-05:00 9223372036854775808 +12 1. ._",
      ' ');
  quoted.push_back("");
  for (const std::string& s : quoted) {
    CAPTURE(s);
    CHECK(MustQuoteString(s));
  }
  std::vector<std::string> plain = absl::StrSplit(
      "chat 01:00:00 1:60 0b v1.2 1.2.3 http://h:8000/v1 nvidia/llama-3.1 v2024 e5 - .", ' ');
  plain.push_back("yes please");
  for (const std::string& s : plain) {
    CAPTURE(s);
    CHECK_FALSE(MustQuoteString(s));
  }
}

TEST_CASE("Scalar nodes are typed by the one rule, honouring quotes and tags") {
  YAML::Node doc = YAML::Load("[yes, 'yes', !!str 1, !!float 5, 0x1f, 1e-5, ~, 1:20]");
  CHECK(TypeYamlScalar(doc[0]).kind == Value::Kind::kBool);
  CHECK(TypeYamlScalar(doc[1]).kind == Value::Kind::kString);
  CHECK(TypeYamlScalar(doc[2]).kind == Value::Kind::kString);
  CHECK(TypeYamlScalar(doc[3]).kind == Value::Kind::kFloat);
  CHECK(TypeYamlScalar(doc[4]).i == 31);
  CHECK(TypeYamlScalar(doc[5]).f == 1e-5);
  CHECK(TypeYamlScalar(doc[6]).is_null());
  CHECK(TypeYamlScalar(doc[7]).i == 80);
}

TEST_CASE("Values print as Python str") {
  Value list = Value::List();
  list.items = {Value::Int(1), Value::String("a'b"), Value::Null(), Value::Bool(false)};
  CHECK(PyStr(list) == "[1, \"a'b\", None, False]");
  Value map = Value::Map();
  map.Put("k", Value::String("line\nbreak"));
  map.Put("f", Value::Float(0.5));
  CHECK(PyStr(map) == "{'k': 'line\\nbreak', 'f': 0.5}");
  CHECK(PyStr(Value::String("plain")) == "plain");
}

std::string Hydra(const std::string& text) {
  auto v = ParseOverrideValue(text);
  if (!v.ok()) return "error: " + std::string(v.status().message());
  return KindName(*v) + " " + PyRepr(*v);
}

TEST_CASE("Override values follow Hydra's grammar") {
  CHECK(Hydra("42") == "an integer 42");
  CHECK(Hydra(" 1_000 ") == "an integer 1000");
  CHECK(Hydra("0755") == "a string '0755'");
  CHECK(Hydra("3.5") == "a number 3.5");
  CHECK(Hydra("1e-5") == "a number 1e-05");
  CHECK(Hydra(".5") == "a number 0.5");
  CHECK(Hydra("-inf") == "a number -inf");
  CHECK(Hydra("True") == "a boolean True");
  CHECK(Hydra("yes") == "a string 'yes'");
  CHECK(Hydra("NuLL") == "null None");
  CHECK(Hydra("") == "a string ''");
  CHECK(Hydra("a b  c ") == "a string 'a b  c'");
  CHECK(Hydra("'quoted, with comma'") == "a string 'quoted, with comma'");
  CHECK(Hydra("\"it\\\"s\"") == "a string 'it\"s'");
  CHECK(Hydra("[1, [2, x], {a: b}]") == "a list [1, [2, 'x'], {'a': 'b'}]");
  CHECK(Hydra("{a: 1, 'b c': [true]}") == "a mapping {'a': 1, 'b c': [True]}");
  CHECK(Hydra("${oc.env:A,b}") == "a string '${oc.env:A,b}'");
  CHECK(Hydra("a\\,b\\ ") == "a string 'a,b '");
  CHECK(Hydra("http://h:8000/v1?x=1") == "a string 'http://h:8000/v1?x=1'");
  CHECK(Hydra("1,2") ==
        "error: a top-level ',' makes this a sweep; use [a,b] for a list or quote the value "
        "('a,b') for a string");
  CHECK(Hydra("'open") == "error: unterminated single-quoted string");
  CHECK(Hydra("{a}") == "error: a dict entry must look like key: value");
  CHECK(Hydra("'a'b") == "error: text after a quoted string; quote the whole value");
  CHECK(Hydra(std::string(100, '[')) == "error: value nested too deeply");
}

TEST_CASE("Override keys parse into paths") {
  auto o = ParseOverride("++a.b[2].c=1");
  REQUIRE(o.ok());
  CHECK(o->op == Override::Op::kForceAdd);
  CHECK(FormatPath(o->path) == "a.b[2].c");
  auto d = ParseOverride("~x.0");
  REQUIRE(d.ok());
  CHECK(d->op == Override::Op::kDelete);
  CHECK_FALSE(d->has_value);
  CHECK(d->path[1].index == 0);
  auto bad = ParseOverride("a..b=1");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.status().message() == "invalid override 'a..b=1': invalid key 'a..b': empty part");
  CHECK_FALSE(ParseOverride("=1").ok());
  CHECK_FALSE(ParseOverride("a[x]=1").ok());
  CHECK_FALSE(ParseOverride("a.=1").ok());
}

TEST_CASE("Merging follows OmegaConf") {
  auto parse = [](const std::string& y) {
    auto v = ValueFromYaml(YAML::Load(y), nullptr);
    REQUIRE(v.ok());
    return *v;
  };
  Value dst = parse("a: {x: 1, y: 2}\nb: [1, 2]\nc: 5\nd: {k: v}\n");
  Path path;
  REQUIRE(MergeValue(dst, parse("a: {y: 3, z: 4}\nb: [9]\nc: ???\nd: null\ne: new\n"), path).ok());
  CHECK(PyStr(dst) == "{'a': {'x': 1, 'y': 3, 'z': 4}, 'b': [9], 'c': 5, 'd': None, 'e': 'new'}");
  Value list = parse("a: [1]\n");
  auto st = MergeValue(list, parse("a: {x: 1}\n"), path);
  REQUIRE_FALSE(st.ok());
  CHECK(st.message() == "cannot merge a mapping into a list at 'a'");
}

}  // namespace
}  // namespace evald::config::internal
