// The typed value layer: YAML 1.1 scalar typing as the reference's loader does it, Python str()
// rendering, Hydra's override value grammar and key paths.
#include "core/config/value.h"

#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <string>

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
