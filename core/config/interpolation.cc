#include "core/config/interpolation.h"

#include <optional>
#include <unordered_set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/overrides.h"
#include "core/config/suggest.h"
#include "core/yaml_budget.h"

namespace evald::config::internal {

namespace {

constexpr int kMaxDepth = 256;
// References that copy each other can grow exponentially ("b: [${a}, ${a}]", "c: [${b}, ${b}]",
// ...), and a list of "${s}" copies a long s once per item; these caps turn that into an error
// instead of exhausting memory. The totals are those a parsed YAML text may have after alias
// expansion (core/yaml_budget.h).
constexpr size_t kMaxCopiedValues = YamlLimits{}.max_nodes;
constexpr size_t kMaxProducedBytes = YamlLimits{}.max_scalar_bytes;
constexpr size_t kMaxStringBytes = 1 << 20;

// The text a value holds: its strings and its mappings' keys.
size_t TextBytes(const Value& v) {
  size_t n = v.s.size();
  for (const Value& item : v.items) n += TextBytes(item);
  for (const MapEntry& e : v.entries) n += e.key.size() + TextBytes(e.value);
  return n;
}

size_t CountValues(const Value& v) {
  size_t n = 1;
  for (const Value& item : v.items) n += CountValues(item);
  for (const MapEntry& e : v.entries) n += CountValues(e.value);
  return n;
}
constexpr char kPortPlaceholder[] = "${EVALD_PORT}";

bool IdStart(char c) { return absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IdChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string Where(const Path& path) {
  return path.empty() ? std::string("<root>") : FormatPath(path);
}

class Resolver {
 public:
  Resolver(Value& root, const EnvLookup& env, bool allow_missing)
      : root_(root), env_(env), allow_missing_(allow_missing) {}

  absl::Status Run() {
    Path path;
    return Ensure(&root_, path, 0);
  }

 private:
  // A cursor over the string being evaluated.
  struct Cur {
    const std::string& s;
    size_t p;
    bool done() const { return p >= s.size(); }
    char peek() const { return done() ? '\0' : s[p]; }
    void SkipWs() {
      while (!done() && (s[p] == ' ' || s[p] == '\t')) ++p;
    }
  };

  // Context of one string evaluation, for messages.
  struct Ctx {
    const std::string& text;
    const Path& where;
    int depth;
  };

  absl::Status Err(const Ctx& ctx, const std::string& msg) const {
    return absl::InvalidArgumentError(
        absl::StrCat("interpolation '", ctx.text, "' at '", Where(ctx.where), "': ", msg));
  }

  void MarkDone(const Value* v) {
    done_.insert(v);
    for (const Value& item : v->items) MarkDone(&item);
    for (const MapEntry& e : v->entries) MarkDone(&e.value);
  }

  absl::Status Ensure(Value* node, Path& path, int depth) {
    if (done_.count(node) != 0) return absl::OkStatus();
    if (depth > kMaxDepth) {
      return absl::InvalidArgumentError(absl::StrCat("interpolations at '", Where(path),
                                                     "' are nested or chained deeper than ",
                                                     kMaxDepth, " levels"));
    }
    if (in_progress_.count(node) != 0) {
      std::vector<std::string> chain;
      bool on = false;
      for (const auto& [v, p] : stack_) {
        if (v == node) on = true;
        if (on) chain.push_back(p);
      }
      chain.push_back(Where(path));
      return absl::InvalidArgumentError(
          absl::StrCat("interpolation cycle: ", absl::StrJoin(chain, " -> ")));
    }
    in_progress_.insert(node);
    // Only interpolating values appear in a cycle message.
    const bool traced = node->HasInterpolation();
    if (traced) stack_.emplace_back(node, Where(path));
    absl::Status st = absl::OkStatus();
    if (node->HasInterpolation()) {
      std::string text = node->s;
      auto v = EvalString(text, path, depth + 1);
      if (v.ok()) produced_bytes_ += TextBytes(*v);
      if (v.ok() && produced_bytes_ > kMaxProducedBytes) {
        st = absl::InvalidArgumentError(absl::StrCat(
            "interpolation '", text, "' at '", Where(path), "': interpolations produce more than ",
            kMaxProducedBytes, " bytes of text in all; do they copy a long string over and over?"));
      } else if (v.ok()) {
        Mark mark = node->mark;
        *node = std::move(*v);
        node->mark = std::move(mark);
        MarkDone(node);
      } else {
        st = v.status();
      }
    } else if (node->is_list()) {
      for (size_t k = 0; k < node->items.size() && st.ok(); ++k) {
        path.push_back(PathElem{absl::StrCat(k), static_cast<int64_t>(k)});
        st = Ensure(&node->items[k], path, depth + 1);
        path.pop_back();
      }
    } else if (node->is_map()) {
      for (size_t k = 0; k < node->entries.size() && st.ok(); ++k) {
        path.push_back(PathElem{node->entries[k].key, -1});
        st = Ensure(&node->entries[k].value, path, depth + 1);
        path.pop_back();
      }
    }
    if (traced) stack_.pop_back();
    in_progress_.erase(node);
    if (st.ok()) done_.insert(node);
    return st;
  }

  absl::StatusOr<Value> EvalString(const std::string& s, const Path& where, int depth) {
    Ctx ctx{s, where, depth};
    const int missing_before = missing_seen_;
    struct Part {
      bool interp;
      Value v;
      std::string text;
    };
    std::vector<Part> parts;
    std::string lit;
    size_t i = 0;
    auto flush = [&] {
      if (!lit.empty()) parts.push_back(Part{false, Value(), std::move(lit)});
      lit.clear();
    };
    while (i < s.size()) {
      if (s[i] == '\\') {
        size_t j = i;
        while (j < s.size() && s[j] == '\\') ++j;
        size_t n = j - i;
        if (s.compare(j, 2, "${") == 0) {
          lit.append(n / 2, '\\');
          if (n % 2 == 1) {
            lit += "${";
            i = j + 2;
            continue;
          }
          i = j;
        } else {
          lit.append(n, '\\');
          i = j;
          continue;
        }
      }
      if (s.compare(i, 2, "${") == 0) {
        flush();
        Cur c{s, i + 2};
        auto v = ParseInterpolation(c, ctx);
        if (!v.ok()) return v.status();
        parts.push_back(Part{true, std::move(*v), ""});
        i = c.p;
        continue;
      }
      lit += s[i++];
    }
    flush();
    // Only references made by this string count; nested evaluations restore the counter.
    const bool missing = missing_seen_ != missing_before;
    missing_seen_ = missing_before;
    if (missing) return Value::String("???");
    if (parts.size() == 1 && parts[0].interp) return std::move(parts[0].v);
    std::string out;
    for (const Part& part : parts) {
      out += part.interp ? PyStr(part.v) : part.text;
      if (out.size() > kMaxStringBytes) {
        return Err(ctx, absl::StrCat("the result is longer than ", kMaxStringBytes, " bytes"));
      }
    }
    return Value::String(std::move(out));
  }

  // After "${"; consumes through the closing '}'.
  absl::StatusOr<Value> ParseInterpolation(Cur& c, const Ctx& ctx) {
    if (ctx.depth > kMaxDepth) return Err(ctx, "nested too deeply");
    c.SkipWs();
    size_t save = c.p;
    std::string name;
    if (IdStart(c.peek())) {
      while (IdChar(c.peek())) name += c.s[c.p++];
      while (c.peek() == '.' && c.p + 1 < c.s.size() && IdStart(c.s[c.p + 1])) {
        name += c.s[c.p++];
        while (IdChar(c.peek())) name += c.s[c.p++];
      }
      c.SkipWs();
    }
    if (!name.empty() && c.peek() == ':') {
      ++c.p;
      std::vector<Value> args;
      c.SkipWs();
      if (c.peek() != '}') {
        while (true) {
          auto arg = ParseArg(c, ctx, /*in_list=*/false);
          if (!arg.ok()) return arg.status();
          args.push_back(std::move(*arg));
          c.SkipWs();
          if (c.peek() == ',') {
            ++c.p;
            continue;
          }
          break;
        }
      }
      if (c.peek() != '}') return Err(ctx, "missing '}' after the resolver arguments");
      ++c.p;
      return CallResolver(name, args, ctx);
    }
    c.p = save;
    // A node reference; nested interpolations build the key (`${a.${b}}`).
    std::string key;
    while (!c.done() && c.peek() != '}') {
      if (c.s.compare(c.p, 2, "${") == 0) {
        c.p += 2;
        Ctx inner{ctx.text, ctx.where, ctx.depth + 1};
        auto v = ParseInterpolation(c, inner);
        if (!v.ok()) return v.status();
        key += PyStr(*v);
        if (key.size() > kMaxStringBytes) return Err(ctx, "key too long");
        continue;
      }
      if (c.peek() == '{' || c.peek() == '\'' || c.peek() == '"') {
        return Err(ctx, absl::StrCat("unexpected '", std::string(1, c.peek()), "' in a key"));
      }
      key += c.s[c.p++];
    }
    if (c.done()) return Err(ctx, "missing '}'");
    ++c.p;
    key = std::string(absl::StripAsciiWhitespace(key));
    if (key.empty()) return Err(ctx, "empty key");
    return Select(key, ctx, /*select_mode=*/false, Value::Null());
  }

  absl::StatusOr<Value> ParseArg(Cur& c, const Ctx& ctx, bool in_list) {
    c.SkipWs();
    char ch = c.peek();
    if (ch == '\'' || ch == '"') {
      ++c.p;
      std::string out;
      while (!c.done() && c.peek() != ch) {
        if (c.peek() == '\\' && c.p + 1 < c.s.size() &&
            (c.s[c.p + 1] == ch || c.s[c.p + 1] == '\\')) {
          out += c.s[c.p + 1];
          c.p += 2;
          continue;
        }
        if (c.s.compare(c.p, 2, "${") == 0) {
          c.p += 2;
          Ctx inner{ctx.text, ctx.where, ctx.depth + 1};
          auto v = ParseInterpolation(c, inner);
          if (!v.ok()) return v.status();
          out += PyStr(*v);
          if (out.size() > kMaxStringBytes) return Err(ctx, "argument too long");
          continue;
        }
        out += c.s[c.p++];
      }
      if (c.done()) return Err(ctx, "unterminated quoted argument");
      ++c.p;
      return Value::String(std::move(out));
    }
    if (ch == '[') {
      ++c.p;
      Value list = Value::List();
      c.SkipWs();
      if (c.peek() == ']') {
        ++c.p;
        return list;
      }
      while (true) {
        auto item = ParseArg(c, ctx, /*in_list=*/true);
        if (!item.ok()) return item.status();
        list.items.push_back(std::move(*item));
        c.SkipWs();
        if (c.peek() == ',') {
          ++c.p;
          continue;
        }
        if (c.peek() == ']') {
          ++c.p;
          return list;
        }
        return Err(ctx, "missing ']' in a list argument");
      }
    }
    if (ch == '{') {
      ++c.p;
      Value map = Value::Map();
      c.SkipWs();
      if (c.peek() == '}') {
        ++c.p;
        return map;
      }
      while (true) {
        c.SkipWs();
        std::string key;
        while (!c.done() && c.peek() != ':' && c.peek() != '}' && c.peek() != ',') {
          key += c.s[c.p++];
        }
        key = std::string(absl::StripAsciiWhitespace(key));
        if (key.empty() || c.peek() != ':') return Err(ctx, "a dict argument needs key: value");
        ++c.p;
        auto v = ParseArg(c, ctx, /*in_list=*/true);
        if (!v.ok()) return v.status();
        map.Put(key, std::move(*v));
        c.SkipWs();
        if (c.peek() == ',') {
          ++c.p;
          continue;
        }
        if (c.peek() == '}') {
          ++c.p;
          return map;
        }
        return Err(ctx, "missing '}' in a dict argument");
      }
    }
    // Unquoted: text and nested interpolations up to ',' or the closing bracket.
    std::vector<std::pair<bool, Value>> pieces;  // (is_interp, value); text as strings
    std::string text;
    bool has_interp = false;
    while (!c.done()) {
      char d = c.peek();
      if (d == ',' || d == '}' || (in_list && d == ']')) break;
      if (c.s.compare(c.p, 2, "${") == 0) {
        if (!text.empty()) pieces.emplace_back(false, Value::String(std::move(text)));
        text.clear();
        c.p += 2;
        Ctx inner{ctx.text, ctx.where, ctx.depth + 1};
        auto v = ParseInterpolation(c, inner);
        if (!v.ok()) return v.status();
        pieces.emplace_back(true, std::move(*v));
        has_interp = true;
        continue;
      }
      if (d == '\\' && c.p + 1 < c.s.size()) {
        text += c.s[c.p + 1];
        c.p += 2;
        continue;
      }
      text += d;
      ++c.p;
    }
    if (!text.empty()) pieces.emplace_back(false, Value::String(std::move(text)));
    // Trim blanks at both ends of the literal text.
    if (!pieces.empty() && !pieces.front().first) {
      pieces.front().second.s =
          std::string(absl::StripLeadingAsciiWhitespace(pieces.front().second.s));
    }
    if (!pieces.empty() && !pieces.back().first) {
      pieces.back().second.s =
          std::string(absl::StripTrailingAsciiWhitespace(pieces.back().second.s));
    }
    std::vector<std::pair<bool, Value>> kept;
    for (auto& piece : pieces) {
      if (piece.first || !piece.second.s.empty()) kept.push_back(std::move(piece));
    }
    if (!has_interp) {
      return TypeHydraPrimitive(kept.empty() ? std::string() : kept[0].second.s);
    }
    if (kept.size() == 1) return std::move(kept[0].second);
    std::string out;
    for (const auto& piece : kept) {
      out += piece.first ? PyStr(piece.second) : piece.second.s;
      if (out.size() > kMaxStringBytes) return Err(ctx, "argument too long");
    }
    return Value::String(std::move(out));
  }

  absl::StatusOr<Value> CallResolver(const std::string& name, const std::vector<Value>& args,
                                     const Ctx& ctx) {
    if (name == "oc.env") {
      if (args.empty() || args.size() > 2) {
        return Err(ctx, "oc.env takes a variable name and an optional default");
      }
      std::string var = PyStr(args[0]);
      std::optional<std::string> value;
      if (env_) value = env_(var);
      if (value.has_value()) {
        if (!IsValidUtf8(*value)) {
          return Err(ctx, absl::StrCat("environment variable '", var, "' is not valid UTF-8"));
        }
        return Value::String(*value);
      }
      if (args.size() == 2) {
        if (args[1].is_null()) return Value::Null();
        return Value::String(PyStr(args[1]));
      }
      return Err(ctx, absl::StrCat("environment variable '", var,
                                   "' is not set; export it or give a default: ${oc.env:", var,
                                   ",default}"));
    }
    if (name == "oc.select") {
      if (args.empty() || args.size() > 2) {
        return Err(ctx, "oc.select takes a key and an optional default");
      }
      return Select(PyStr(args[0]), ctx, /*select_mode=*/true,
                    args.size() == 2 ? args[1] : Value::Null());
    }
    if (name == "oc.decode") {
      if (args.size() != 1) return Err(ctx, "oc.decode takes one string");
      if (args[0].is_null()) return Value::Null();
      if (!args[0].is_string()) return Err(ctx, "oc.decode takes a string");
      const std::string expr = args[0].s;
      Cur c{expr, 0};
      Ctx inner{ctx.text, ctx.where, ctx.depth + 1};
      auto v = ParseArg(c, inner, /*in_list=*/false);
      if (!v.ok()) return v.status();
      c.SkipWs();
      if (!c.done()) return Err(ctx, absl::StrCat("oc.decode cannot read '", expr, "'"));
      return v;
    }
    return Err(ctx, absl::StrCat("unsupported resolver '", name,
                                 "'; supported: oc.env, oc.select, oc.decode"));
  }

  // Finds `key` (absolute, or relative with leading dots) and returns its resolved value. In
  // select mode (oc.select) a missing key or a `???` value yields `fallback`.
  absl::StatusOr<Value> Select(const std::string& key, const Ctx& ctx, bool select_mode,
                               const Value& fallback) {
    size_t dots = 0;
    while (dots < key.size() && key[dots] == '.') ++dots;
    Path path;
    if (dots > 0) {
      if (ctx.where.empty() || dots - 1 > ctx.where.size() - 1) {
        return Err(ctx, absl::StrCat("'", key, "' goes above the root of the config"));
      }
      path.assign(ctx.where.begin(), ctx.where.end() - static_cast<long>(dots));
    }
    std::string rest = key.substr(dots);
    if (!rest.empty()) {
      auto rel = ParseKeyPath(rest);
      if (!rel.ok()) return Err(ctx, std::string(rel.status().message()));
      path.insert(path.end(), rel->begin(), rel->end());
    }
    Value* cur = &root_;
    Path walked;
    for (const PathElem& elem : path) {
      if (cur->HasInterpolation()) {
        absl::Status st = Ensure(cur, walked, ctx.depth + 1);
        if (!st.ok()) return st;
      }
      Value* next = nullptr;
      PathElem step = elem;
      if (cur->is_map()) {
        step.index = -1;
        next = cur->Get(elem.key);
      } else if (cur->is_list() && elem.is_index() &&
                 static_cast<size_t>(elem.index) < cur->items.size()) {
        next = &cur->items[static_cast<size_t>(elem.index)];
      }
      if (next == nullptr) {
        if (select_mode) return fallback;
        if (dots == 0 && key == "EVALD_PORT") return Value::String(kPortPlaceholder);
        std::string hint;
        if (cur->is_map()) {
          std::vector<std::string> keys;
          for (const MapEntry& e : cur->entries) keys.push_back(e.key);
          hint = DidYouMean(Suggest(elem.key, keys));
        }
        return Err(ctx, absl::StrCat("key '", FormatPath(path), "' not found", hint));
      }
      walked.push_back(step);
      cur = next;
    }
    absl::Status st = Ensure(cur, walked, ctx.depth + 1);
    if (!st.ok()) return st;
    if (IsPortNode(cur) && cur->is_string() && cur->s == "auto") {
      return Value::String(kPortPlaceholder);
    }
    if (cur->IsMissing()) {
      if (select_mode) return fallback;
      if (allow_missing_) {
        ++missing_seen_;
        return Value::String("???");
      }
      return absl::InvalidArgumentError(
          absl::StrCat("missing mandatory value at '", Where(walked), "' (needed by '", ctx.text,
                       "' at '", Where(ctx.where), "'); set it in the config or with -o"));
    }
    if (cur->is_container()) {
      copied_values_ += CountValues(*cur);
      if (copied_values_ > kMaxCopiedValues) {
        return Err(ctx, absl::StrCat("references copy more than ", kMaxCopiedValues,
                                     " values; do they reference each other over and over?"));
      }
    }
    Value out = *cur;
    return out;
  }

  bool IsPortNode(const Value* v) {
    Value* dep = root_.Get("deployment");
    return dep != nullptr && dep->is_map() && dep->Get("port") == v;
  }

  Value& root_;
  const EnvLookup& env_;
  bool allow_missing_;
  int missing_seen_ = 0;
  size_t copied_values_ = 0;
  size_t produced_bytes_ = 0;
  std::unordered_set<const Value*> done_;
  std::unordered_set<const Value*> in_progress_;
  std::vector<std::pair<const Value*, std::string>> stack_;
};

void CollectMissing(const Value& v, Path& path, std::vector<std::string>* out) {
  if (v.IsMissing()) {
    out->push_back(Where(path));
    return;
  }
  for (size_t k = 0; k < v.items.size(); ++k) {
    path.push_back(PathElem{absl::StrCat(k), static_cast<int64_t>(k)});
    CollectMissing(v.items[k], path, out);
    path.pop_back();
  }
  for (const MapEntry& e : v.entries) {
    path.push_back(PathElem{e.key, -1});
    CollectMissing(e.value, path, out);
    path.pop_back();
  }
}

}  // namespace

absl::Status ResolveInterpolations(Value& root, const EnvLookup& env, bool allow_missing) {
  Resolver resolver(root, env, allow_missing);
  return resolver.Run();
}

std::vector<std::string> FindMissing(const Value& root) {
  std::vector<std::string> out;
  Path path;
  CollectMissing(root, path, &out);
  return out;
}

}  // namespace evald::config::internal
