#include "executors/local/local_config.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "core/shell.h"
#include "core/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {

using config::SchemaKey;
using K = config::SchemaKinds;

namespace {

absl::Status BadDockerArgs(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("execution.extra_docker_args: ", why, " in '", absl::CHexEscape(text),
                   "'; run.sh passes these words to docker as plain arguments, without a shell"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> SplitDockerArgs(absl::string_view text) {
  EVALD_RETURN_IF_ERROR(CheckShellValue(text, "execution.extra_docker_args"));
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      continue;
    }
    in_word = true;
    if (c == '\\') {
      if (++i == text.size()) return BadDockerArgs(text, "a trailing backslash");
      if (text[i] != '\n') word += text[i];  // backslash-newline joins lines, as in bash
    } else if (c == '\'') {
      const size_t end = text.find('\'', i + 1);
      if (end == absl::string_view::npos) return BadDockerArgs(text, "an unterminated '");
      absl::StrAppend(&word, text.substr(i + 1, end - i - 1));
      i = end;
    } else if (c == '"') {
      for (++i;; ++i) {
        if (i == text.size()) return BadDockerArgs(text, "an unterminated \"");
        const char d = text[i];
        if (d == '"') break;
        if (d == '$' || d == '`') return BadDockerArgs(text, "an expansion ($ or `)");
        if (d == '\\' && i + 1 < text.size() &&
            absl::string_view("\"\\$`\n").find(text[i + 1]) != absl::string_view::npos) {
          if (text[++i] != '\n') word += text[i];
          continue;
        }
        word += d;
      }
    } else if (c == '$' || c == '`') {
      return BadDockerArgs(text, "an expansion ($ or `)");
    } else if (absl::string_view(";&|<>()").find(c) != absl::string_view::npos) {
      return BadDockerArgs(text, absl::StrCat("an unquoted '", std::string(1, c), "'"));
    } else {
      word += c;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

std::vector<config::SchemaRule> LocalExecutionKeys() {
  return {SchemaKey("execution.extra_docker_args", K::kStr | K::kNull)};
}

absl::StatusOr<LocalConfig> ParseLocalConfig(const std::string& execution_yaml) {
  LocalConfig config;
  if (execution_yaml.empty()) return config;
  YAML::Node execution;
  try {
    execution = YAML::Load(execution_yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("execution: not readable YAML: ", e.what()));
  }
  if (!execution.IsMap()) return config;
  YAML::Node args = execution["extra_docker_args"];
  if (args && !args.IsNull()) {
    if (!args.IsScalar()) {
      return absl::InvalidArgumentError(
          "execution.extra_docker_args: expected a string of docker arguments");
    }
    EVALD_ASSIGN_OR_RETURN(config.extra_docker_args, SplitDockerArgs(args.Scalar()));
  }
  return config;
}

}  // namespace evald::executors
