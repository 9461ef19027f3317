#include "runner/json_text.h"

#include <catch2/catch.hpp>

#include "nlohmann/json.hpp"

namespace evald::runner {
namespace {

std::string Quote(const std::string& s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

TEST_CASE("json_text: strings round-trip through a JSON parser") {
  for (const std::string& s :
       {std::string("plain"), std::string("quote \" backslash \\ slash /"),
        std::string("lines\nand\ttabs\r\b\f"), std::string("ctl \x01\x1f end"),
        std::string("utf-8: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), std::string()}) {
    INFO(s);
    CHECK(nlohmann::json::parse(Quote(s)).get<std::string>() == s);
  }
  CHECK(Quote("a\"b") == "\"a\\\"b\"");
  CHECK(Quote(std::string("\x01", 1)) == "\"\\u0001\"");
}

TEST_CASE("json_text: invalid UTF-8 becomes U+FFFD, never invalid JSON") {
  for (const std::string& bad : {std::string("\xff"), std::string("a\xc3"),  // truncated
                                 std::string("\xc0\xaf"),                    // overlong
                                 std::string("\xed\xa0\x80"),                // surrogate
                                 std::string("\xf5\x80\x80\x80")}) {
    const std::string q = Quote(bad);
    auto parsed = nlohmann::json::parse(q, nullptr, false);
    REQUIRE_FALSE(parsed.is_discarded());
    CHECK(parsed.get<std::string>().find("\xef\xbf\xbd") != std::string::npos);
  }
}

TEST_CASE("json_text: numbers read back exactly") {
  for (double v : {0.0, 0.7, 1.0, -2.5, 1e-5, 123456789.125}) {
    std::string out;
    AppendJsonDouble(&out, v);
    INFO(out);
    CHECK(nlohmann::json::parse(out).get<double>() == v);
    CHECK(nlohmann::json::parse(out).is_number_float());
  }
  std::string inf;
  AppendJsonDouble(&inf, 1.0 / 0.0);
  CHECK(inf == "null");
  std::string i;
  AppendJsonInt(&i, -42);
  CHECK(i == "-42");
}

}  // namespace
}  // namespace evald::runner
