#include "core/redact.h"

#include <catch2/catch.hpp>

namespace evald {
namespace {

TEST_CASE("redact masks secret values, longest first, and unredact puts them back") {
  const std::map<std::string, std::string> secrets = {
      {"HF_TOKEN", "hf_abcdef"}, {"LONG", "hf_abcdef_longer"}, {"TINY", "ab"}};
  Redactor redact(secrets);
  const std::string text = "a: hf_abcdef\nb: hf_abcdef_longer\nc: ab\n";
  const std::string masked = redact(text);
  CHECK(masked == "a: <secret:HF_TOKEN>\nb: <secret:LONG>\nc: ab\n");
  CHECK(HasRedactions(masked));
  CHECK_FALSE(HasRedactions(text));
  CHECK(Unredact(masked, secrets) == text);
  // A marker whose secret is not known stays; so does other text.
  CHECK(Unredact("x: <secret:GONE>", secrets) == "x: <secret:GONE>");
  CHECK(Redactor()("unchanged") == "unchanged");
}

}  // namespace
}  // namespace evald
