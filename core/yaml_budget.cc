#include "core/yaml_budget.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace evald {
namespace {

struct Counts {
  uint64_t nodes = 0;
  uint64_t bytes = 0;
  int height = 0;  // levels of sequences and mappings below the node
};

// Thrown by the handler to end the parse at the first limit passed; the message is in status_.
struct LimitPassed {};

class Measurer : public YAML::EventHandler {
 public:
  Measurer(absl::string_view source, const YamlLimits& limits) : source_(source), limits_(limits) {}

  const YamlSize& size() const { return size_; }
  const absl::Status& status() const { return status_; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnAnchor(const YAML::Mark&, const std::string& name) override { names_.push_back(name); }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    Leaf(mark, anchor, Counts{1, 0, 0}, nullptr);
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                const std::string& value) override {
    Leaf(mark, anchor, Counts{1, value.size(), 0}, &value);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (anchor >= anchors_.size() || !anchors_[anchor].complete) {
      // yaml-cpp registers an anchor when its node starts, so `&a [*a]` is a cycle.
      std::string name = anchor >= 1 && anchor <= names_.size() ? names_[anchor - 1] : "";
      Fail(mark, absl::StrCat("alias *", name, " refers to the node that contains it"));
    }
    Leaf(mark, 0, anchors_[anchor].counts, nullptr);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor, /*is_map=*/false);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor, /*is_map=*/true);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    bool is_map = false;
    YAML::anchor_t anchor = 0;
    Counts counts;       // this node and the children read so far
    uint64_t items = 0;  // children read (a mapping's keys and values both count)
    std::string key;     // a mapping's last key, for the key path
  };
  struct Anchor {
    bool complete = false;
    Counts counts;
  };

  // Adds a node of `counts` at the current position (the root, a key, a value or an item).
  void Leaf(const YAML::Mark& mark, YAML::anchor_t anchor, const Counts& counts,
            const std::string* scalar) {
    Add(mark, counts);
    if (anchor != 0) SetAnchor(anchor, counts);
    ChildDone(counts, scalar);
  }

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor, bool is_map) {
    Add(mark, Counts{1, 0, 0});
    if (anchor != 0) {
      if (anchor >= anchors_.size()) anchors_.resize(anchor + 1);
      anchors_[anchor].complete = false;
    }
    Frame f;
    f.is_map = is_map;
    f.anchor = anchor;
    f.counts = Counts{1, 0, 0};
    stack_.push_back(std::move(f));
  }

  void Close() {
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    if (f.anchor != 0) SetAnchor(f.anchor, f.counts);
    ChildDone(f.counts, nullptr);
  }

  void SetAnchor(YAML::anchor_t anchor, const Counts& counts) {
    if (anchor >= anchors_.size()) anchors_.resize(anchor + 1);
    anchors_[anchor] = Anchor{true, counts};
  }

  // Counts a node (or an alias's expansion) in the total and checks the limits there.
  void Add(const YAML::Mark& mark, const Counts& counts) {
    // A node's level is the number of open frames around it (the root's is 0).
    int level = static_cast<int>(stack_.size());
    if (level + counts.height > limits_.max_depth) {
      Fail(mark, absl::StrCat("nested deeper than ", limits_.max_depth, " levels"));
    }
    size_.depth = std::max(size_.depth, level + counts.height);
    // Every count added is at most the limit it is checked against, so nothing overflows.
    size_.nodes += counts.nodes;
    if (size_.nodes > limits_.max_nodes) {
      Fail(mark,
           absl::StrCat("too many nodes after alias expansion (limit ", limits_.max_nodes, ")"));
    }
    size_.scalar_bytes += counts.bytes;
    if (size_.scalar_bytes > limits_.max_scalar_bytes) {
      Fail(mark, absl::StrCat("too much scalar text after alias expansion (limit ",
                              limits_.max_scalar_bytes, " bytes)"));
    }
  }

  // A node is complete: it adds to its parent, and moves the parent's key path along.
  void ChildDone(const Counts& counts, const std::string* scalar) {
    if (stack_.empty()) return;
    Frame& parent = stack_.back();
    // An open frame's own 1 was counted in Open; a leaf's counts were not yet in the parent.
    parent.counts.nodes += counts.nodes;
    parent.counts.bytes += counts.bytes;
    parent.counts.height = std::max(parent.counts.height, counts.height + 1);
    if (parent.is_map && parent.items % 2 == 0) parent.key = scalar != nullptr ? *scalar : "?";
    ++parent.items;
  }

  // "a.b[3].c": where the node being read sits.
  std::string Path() const {
    std::string path;
    for (const Frame& f : stack_) {
      if (!f.is_map) {
        absl::StrAppend(&path, "[", f.items, "]");
      } else if (f.items % 2 == 1) {
        absl::StrAppend(&path, path.empty() ? "" : ".", f.key);
      }
    }
    return path;
  }

  [[noreturn]] void Fail(const YAML::Mark& mark, const std::string& what) {
    std::string where(source_);
    if (mark.line >= 0) absl::StrAppend(&where, ":", mark.line + 1, ":", mark.column + 1);
    std::string path = Path();
    if (!path.empty()) absl::StrAppend(&where, ": ", path);
    status_ = absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
    throw LimitPassed();
  }

  absl::string_view source_;
  YamlLimits limits_;
  YamlSize size_;
  absl::Status status_;
  std::vector<Frame> stack_;
  std::vector<Anchor> anchors_;     // by yaml-cpp's anchor id (1, 2, ... in document order)
  std::vector<std::string> names_;  // anchor names, id - 1
};

}  // namespace

absl::StatusOr<YamlSize> MeasureYaml(absl::string_view text, absl::string_view source_name,
                                     const YamlLimits& limits) {
  std::istringstream in{std::string(text)};
  Measurer measurer(source_name, limits);
  try {
    YAML::Parser parser(in);
    parser.HandleNextDocument(measurer);
  } catch (const LimitPassed&) {
    return measurer.status();
  } catch (const YAML::Exception&) {
    // A syntax error: the caller's YAML::Load meets it at the same place and says so.
  }
  return measurer.size();
}

absl::Status CheckYamlLimits(absl::string_view text, absl::string_view source_name,
                             const YamlLimits& limits) {
  // Without an alias nothing expands, and the text bounds what yaml-cpp makes of it, with margin:
  // a character starts at most two nodes (a "?" is a null key and its null value; a "[" that
  // turns out to be a mapping's key starts that mapping too) and at most 3 bytes of scalar ("\L",
  // an invalid byte read as U+FFFD); a level of nesting takes one of [ { - : ?, at most two levels
  // share one, and a scalar may start one more mapping. (Fuzzed against MeasureYaml.)
  if (text.find('*') == absl::string_view::npos && 4 * text.size() + 1 <= limits.max_nodes &&
      4 * text.size() <= limits.max_scalar_bytes) {
    int64_t indicators = 0;
    for (char c : text) {
      indicators += c == '[' || c == '{' || c == '-' || c == ':' || c == '?';
    }
    if (2 * indicators + 1 <= limits.max_depth) return absl::OkStatus();
  }
  return MeasureYaml(text, source_name, limits).status();
}

}  // namespace evald
