#include "core/shell.h"

#include <stdio.h>

#include <catch2/catch.hpp>
#include <string>

namespace evald {
namespace {

// What bash makes of `printf %s <quoted>`.
std::string BashValue(const std::string& quoted) {
  std::string command = "bash -c " + ShellQuote("printf %s " + quoted);
  FILE* p = popen(command.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  CHECK(pclose(p) == 0);
  return out;
}

TEST_CASE("ShellQuote leaves safe words alone and quotes the rest") {
  CHECK(ShellQuote("vllm/vllm-openai:latest") == "vllm/vllm-openai:latest");
  CHECK(ShellQuote("--port=8000") == "--port=8000");
  CHECK(ShellQuote("a b") == "'a b'");
  CHECK(ShellQuote("it's") == "'it'\\''s'");
  CHECK(ShellQuote("") == "''");
  CHECK(ShellQuote("$(touch x)") == "'$(touch x)'");
  // In command position `X=1` would be an assignment, not the word.
  CHECK(ShellQuote("X=1") == "'X=1'");
}

TEST_CASE("ShellQuote keeps control characters on one line") {
  CHECK(ShellQuote("a\ntouch PWNED #") == "$'a\\ntouch PWNED #'");
  CHECK(ShellQuote(std::string("\x1b[31m'\\\r\t\x7f\xff", 11)) ==
        "$'\\x1b[31m\\'\\\\\\r\\t\\x7f\\xff'");
  for (const std::string& word :
       {std::string("a\nb"), std::string("it's\n`x`$(y)\\"), std::string("\xc3\n'\xe2\x82'"),
        std::string("\x01\x02 \x1f"), std::string("\xff\xfe"), std::string("plain text")}) {
    INFO(word);
    const std::string quoted = ShellQuote(word);
    CHECK(quoted.find('\n') == std::string::npos);
    CHECK(BashValue(quoted) == word);
  }
}

TEST_CASE("NUL bytes and bad env var names are refused with the field named") {
  CHECK(CheckShellValue("ok", "task name").ok());
  absl::Status nul = CheckShellValue(std::string("a\0b", 3), "task name");
  CHECK(nul.code() == absl::StatusCode::kInvalidArgument);
  CHECK(nul.message() == "task name contains a NUL byte, which a shell script cannot carry");

  for (const char* good : {"A", "_x", "API_KEY2"}) CHECK(CheckEnvName(good, "env_vars").ok());
  for (const char* bad : {"", "2A", "A-B", "A=B", "A B", "A;touch x", "A\nB"}) {
    INFO(bad);
    CHECK(CheckEnvName(bad, "env_vars").code() == absl::StatusCode::kInvalidArgument);
  }
  CHECK(CheckEnvName("A\nB", "deployment.env_vars").message() ==
        "deployment.env_vars: 'A\\nB' is not a valid environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)");
}

}  // namespace
}  // namespace evald
