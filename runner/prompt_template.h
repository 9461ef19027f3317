// File: prompt_template.h
//
// `{{field}}` prompt templates for the tasks. A placeholder names a field of the dataset row
// (dotted paths reach into nested objects: `{{meta.subject}}`); whitespace inside the braces is
// ignored. Strings render as they are, numbers and booleans as JSON text, and a list renders as
// one lettered line per item ("A. first\nB. second"), which is how options are usually shown.
// Used by the built-in and user-defined tasks.
//
//   EVALD_ASSIGN_OR_RETURN(PromptTemplate t, PromptTemplate::Parse("Q: {{question}}\nA:"));
//   EVALD_ASSIGN_OR_RETURN(std::string text, t.Render(row));   // NotFound names the field
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace evald::runner {

class PromptTemplate {
 public:
  // InvalidArgument for an unclosed `{{` or an empty placeholder.
  static absl::StatusOr<PromptTemplate> Parse(const std::string& text);

  // NotFound when the row lacks a field the template names ("template field 'x' is not in the
  // row; the row has: a, b").
  absl::StatusOr<std::string> Render(const nlohmann::json& row) const;

  // The field names the template uses, in order of first use.
  std::vector<std::string> Fields() const;
  const std::string& text() const { return text_; }

 private:
  struct Part {
    bool is_field;
    std::string text;  // literal text or the dotted field path
  };
  std::string text_;
  std::vector<Part> parts_;
};

// Renders a JSON value the way templates show it (strings raw, lists as lettered lines).
std::string RenderValue(const nlohmann::json& value);
// "A", "B", ... for 0, 1, ...
char OptionLetter(size_t index);

}  // namespace evald::runner
