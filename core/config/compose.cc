// Hydra-compatible composition: defaults lists, config groups on a search path, overrides,
// interpolation, the `???` check and path absolutization (see compose.h and
// docs/configuration.md).
#include "core/config/compose.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/config/interpolation.h"
#include "core/config/overrides.h"
#include "core/config/suggest.h"
#include "core/config/value.h"
#include "core/yaml_budget.h"

#ifndef EVALD_DEFAULT_CONFIGS_DIR
#define EVALD_DEFAULT_CONFIGS_DIR ""
#endif

namespace evald::config {

using internal::FormatPath;
using internal::Mark;
using internal::Override;
using internal::Path;
using internal::PathElem;
using internal::Value;

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

namespace {

namespace fs = std::filesystem;

constexpr int kMaxDefaultsDepth = 32;
constexpr size_t kMaxListedOptions = 2000;

// Nodes (keys included) and scalar bytes of `v` printed, as MeasureYaml counts them on read-back.
void CountPrinted(const Value& v, uint64_t* nodes, uint64_t* bytes) {
  ++*nodes;
  if (v.is_string()) {
    *bytes += v.s.size();
  } else if (!v.is_container()) {
    *bytes += internal::CanonicalScalar(v).size();
  }
  for (const Value& item : v.items) CountPrinted(item, nodes, bytes);
  for (const internal::MapEntry& e : v.entries) {
    ++*nodes;
    *bytes += e.key.size();
    CountPrinted(e.value, nodes, bytes);
  }
}

bool IsDir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool IsRegularFile(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

std::string JoinPath(const std::string& dir, const std::string& rel) {
  if (dir.empty()) return rel;
  return (fs::path(dir) / rel).lexically_normal().string();
}

bool IsUrl(const std::string& s) {
  return absl::StartsWith(s, "http://") || absl::StartsWith(s, "https://");
}

// Group and option names are relative paths inside a config dir: no "..", no empty parts.
bool ValidRelativeName(const std::string& name) {
  if (name.empty() || name.front() == '/' || name.back() == '/') return false;
  for (absl::string_view part : absl::StrSplit(name, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
    if (part.find('\0') != absl::string_view::npos) return false;
  }
  return true;
}

absl::Status CheckConfigDir(const std::string& dir, const std::string& what) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int err = errno;
    if (err == ENOENT || err == ENOTDIR) {
      return absl::NotFoundError(absl::StrCat(what, " '", dir, "' does not exist"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " '", dir, "': ", std::strerror(err)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(what, " '", dir, "' is not a directory"));
  }
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", what, " '", dir, "': ", std::strerror(errno)));
  }
  ::closedir(d);
  return absl::OkStatus();
}

// A loaded config file (or the primary text).
struct Loaded {
  std::string name;  // for messages
  Value body;        // a mapping, without `defaults`
  bool has_defaults = false;
  Value defaults;
  std::string package_header;  // from a leading "# @package X" comment
};

// Hydra reads `# @package X` from the comment lines at the top of a file.
std::string PackageHeader(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    if (!absl::ConsumePrefix(&line, "#")) break;
    line = absl::StripLeadingAsciiWhitespace(line);
    if (absl::ConsumePrefix(&line, "@package")) {
      return std::string(absl::StripAsciiWhitespace(line));
    }
  }
  return "";
}

absl::StatusOr<Loaded> LoadText(const std::string& text, const std::string& name) {
  auto node = ParseYaml(text, name);
  if (!node.ok()) return node.status();
  auto value = internal::ValueFromYaml(*node, std::make_shared<const std::string>(name));
  if (!value.ok()) return value.status();
  Loaded out;
  out.name = name;
  out.package_header = PackageHeader(text);
  if (value->is_null()) {
    out.body = Value::Map();
    return out;
  }
  if (!value->is_map()) {
    return absl::InvalidArgumentError(absl::StrCat(
        name, ": a config must be a mapping at the top level, not ", internal::KindName(*value)));
  }
  out.body = std::move(*value);
  if (Value* defaults = out.body.Get("defaults")) {
    if (!defaults->is_list() && !defaults->is_null()) {
      return absl::InvalidArgumentError(absl::StrCat(defaults->mark.ToString(),
                                                     ": 'defaults' must be a list, not ",
                                                     internal::KindName(*defaults)));
    }
    out.has_defaults = true;
    out.defaults = defaults->is_null() ? Value::List() : std::move(*defaults);
    out.body.Erase("defaults");
  }
  out.body.mark = Mark{std::make_shared<const std::string>(name), 0, 0};
  return out;
}

absl::StatusOr<Loaded> LoadFile(const std::string& path, const std::string& name) {
  auto text = internal::ReadSmallFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(absl::StrCat("config file '", name, "' does not exist"));
    }
    return absl::Status(text.status().code(),
                        absl::StrCat("config file '", name, "': ", text.status().message()));
  }
  return LoadText(*text, name);
}

// A config file of the search path, parsed once and shared while the file stays the same (device,
// inode, size, mtime, ctime): every Submit composes from the same few packaged files, and reading
// and parsing them again was ~8% of evald's CPU per Submit. Errors are not kept.
absl::StatusOr<std::shared_ptr<const Loaded>> LoadFileCached(const std::string& path) {
  struct Identity {
    struct stat st;
    bool operator==(const Identity& o) const {
      return st.st_dev == o.st.st_dev && st.st_ino == o.st.st_ino && st.st_size == o.st.st_size &&
             st.st_mtim.tv_sec == o.st.st_mtim.tv_sec &&
             st.st_mtim.tv_nsec == o.st.st_mtim.tv_nsec &&
             st.st_ctim.tv_sec == o.st.st_ctim.tv_sec && st.st_ctim.tv_nsec == o.st.st_ctim.tv_nsec;
    }
  };
  using Entry = std::pair<Identity, std::shared_ptr<const Loaded>>;
  static std::mutex mu;
  static auto* cache = new std::map<std::string, Entry>;
  Identity id{};
  const bool known = stat(path.c_str(), &id.st) == 0 && S_ISREG(id.st.st_mode);
  if (known) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(path);
    if (it != cache->end() && it->second.first == id) return it->second.second;
  }
  absl::StatusOr<Loaded> loaded = LoadFile(path, path);
  if (!loaded.ok()) return loaded.status();
  auto shared = std::make_shared<const Loaded>(*std::move(loaded));
  if (known) {
    std::lock_guard<std::mutex> lock(mu);
    if (cache->size() >= 256) cache->clear();
    (*cache)[path] = {id, shared};
  }
  return shared;
}

// One entry of a defaults list.
struct Entry {
  enum class Kind { kSelf, kGroup, kConfig };
  Kind kind = Kind::kSelf;
  std::string group;   // kGroup: full group path; kConfig: full config path (no extension)
  std::string option;  // kGroup
  bool option_null = false;
  bool optional = false;
  bool override_kw = false;
  bool has_package = false;
  std::string package;
  std::string origin;   // where it came from ("x.yaml:3:5" or "override 'execution=local'")
  std::string display;  // "execution: local" / "execution=local"
};

struct Choice {
  std::string option;
  bool option_null = false;
  bool used = false;
  bool external = true;
  bool force_add = false;
  std::string text;    // the override text, or the defaults entry for `override` keywords
  std::string origin;  // where to point in messages
};

struct Deletion {
  std::string option;
  bool has_option = false;
  bool used = false;
  std::string text;
};

std::string DottedPackage(const std::string& group) {
  return absl::StrReplaceAll(group, {{"/", "."}});
}

class Composer {
 public:
  explicit Composer(const ComposeRequest& req) : req_(req) {}

  absl::StatusOr<YAML::Node> Run() {
    absl::StatusOr<Loaded> primary;
    if (!req_.primary_path.empty()) {
      std::string open_path = req_.primary_path;
      if (!fs::path(open_path).is_absolute() && !req_.working_dir.empty()) {
        open_path = JoinPath(req_.working_dir, open_path);
      }
      std::error_code ec;
      fs::path abs = fs::absolute(open_path, ec);
      if (ec) abs = fs::path(open_path);
      primary_dir_ = abs.lexically_normal().parent_path().string();
      base_dir_ = primary_dir_;
      roots_.push_back(primary_dir_);
      primary = LoadFile(open_path, req_.primary_path);
    } else {
      base_dir_ = req_.working_dir;
      primary = LoadText(req_.primary_yaml, req_.primary_name);
    }
    for (const std::string& dir : req_.search_path) {
      absl::Status st = CheckConfigDir(dir, "config dir");
      if (!st.ok()) return st;
      AddRoot(dir);
    }
    if (!req_.packaged_dir.empty()) {
      absl::Status st = CheckConfigDir(req_.packaged_dir, "packaged config dir");
      if (!st.ok()) return st;
      AddRoot(req_.packaged_dir);
    }
    if (!primary.ok()) return primary.status();

    absl::Status st = ParseOverrides();
    if (!st.ok()) return st;
    st = Process(*primary, "", "", /*primary=*/true, 0);
    if (!st.ok()) return st;
    st = CheckChoicesUsed();
    if (!st.ok()) return st;
    for (const Override& o : config_overrides_) {
      st = internal::ApplyOverride(o, result_);
      if (!st.ok()) return st;
    }
    st = internal::ResolveInterpolations(result_, req_.env, req_.allow_missing);
    if (!st.ok()) return st;
    if (!req_.allow_missing) {
      std::vector<std::string> missing = internal::FindMissing(result_);
      if (missing.size() == 1) {
        return absl::InvalidArgumentError(absl::StrCat("missing mandatory value at '", missing[0],
                                                       "' (set it in the config or with -o)"));
      }
      if (!missing.empty()) {
        return absl::InvalidArgumentError(absl::StrCat("missing mandatory values at '",
                                                       absl::StrJoin(missing, "', '"),
                                                       "' (set them in the config or with -o)"));
      }
    }
    AbsolutizePaths();
    // evald stores the composed config and reads it back to plan jobs: it must be within the
    // limits of a YAML text, which files merged and interpolations copied may have passed.
    uint64_t nodes = 0;
    uint64_t bytes = 0;
    CountPrinted(result_, &nodes, &bytes);
    const YamlLimits limits;
    if (nodes > limits.max_nodes || bytes > limits.max_scalar_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the composed config has ", nodes, " nodes and ", bytes,
          " bytes of text; a config may have at most ", limits.max_nodes, " and ",
          limits.max_scalar_bytes, " (it is stored and read back as YAML)"));
    }
    return internal::ValueToYaml(result_);
  }

 private:
  void AddRoot(const std::string& dir) {
    std::string norm = fs::path(dir).lexically_normal().string();
    if (std::find(roots_.begin(), roots_.end(), norm) == roots_.end()) roots_.push_back(norm);
  }

  bool GroupExists(const std::string& group) const {
    if (!ValidRelativeName(group)) return false;
    for (const std::string& root : roots_) {
      if (IsDir(JoinPath(root, group))) return true;
    }
    return false;
  }

  std::string FindConfigFile(const std::string& rel) const {
    if (!ValidRelativeName(rel)) return "";
    for (const std::string& root : roots_) {
      std::string p = JoinPath(root, rel + ".yaml");
      if (IsRegularFile(p)) return p;
    }
    return "";
  }

  std::vector<std::string> GroupOptions(const std::string& group) const {
    std::set<std::string> names;
    for (const std::string& root : roots_) {
      std::string dir = JoinPath(root, group);
      if (!IsDir(dir)) continue;
      std::error_code ec;
      fs::recursive_directory_iterator it(dir, ec), end;
      size_t seen = 0;
      for (; !ec && it != end && seen < kMaxListedOptions; it.increment(ec), ++seen) {
        if (!it->is_regular_file(ec) || it->path().extension() != ".yaml") continue;
        fs::path rel = it->path().lexically_relative(dir);
        rel.replace_extension();
        names.insert(rel.generic_string());
      }
    }
    return {names.begin(), names.end()};
  }

  std::vector<std::string> AvailableGroups() const {
    std::set<std::string> names;
    for (const std::string& root : roots_) {
      std::error_code ec;
      for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
        if (!it->is_directory(ec)) continue;
        std::string name = it->path().filename().string();
        if (!GroupOptions(name).empty()) names.insert(name);
      }
    }
    return {names.begin(), names.end()};
  }

  absl::Status UnknownOption(const Entry& e) const {
    std::vector<std::string> options = GroupOptions(e.group);
    std::string hint;
    std::vector<std::string> close = internal::Suggest(e.option, options);
    if (!close.empty()) hint = absl::StrCat(" (did you mean '", close[0], "'?)");
    std::string prefix = absl::StartsWith(e.origin, "override") ? "" : e.origin + ": ";
    return absl::NotFoundError(absl::StrCat(
        prefix, "unknown option '", e.display, "' for group '", e.group, "'",
        absl::StartsWith(e.origin, "override") ? "" : " in the defaults list",
        "; available: ", options.empty() ? "none" : absl::StrJoin(options, ", "), hint));
  }

  absl::Status ParseOverrides() {
    for (const std::string& text : req_.overrides) {
      auto parsed = internal::ParseOverride(text);
      if (!parsed.ok()) return parsed.status();
      Override& o = *parsed;
      const bool single = o.path.size() == 1;
      std::string group = o.key;
      if (single && absl::StrContains(group, '@')) {
        std::string base = group.substr(0, group.find('@'));
        if (GroupExists(base)) {
          return absl::InvalidArgumentError(
              absl::StrCat("override '", text, "': choosing a package with '@' is not supported"));
        }
      }
      const bool is_group = single && GroupExists(group) && !(o.has_value && o.value.is_map());
      if (!is_group) {
        config_overrides_.push_back(std::move(o));
        continue;
      }
      if (o.op == Override::Op::kDelete) {
        Deletion d;
        d.text = text;
        if (o.has_value) {
          if (!o.value.is_string()) {
            return absl::InvalidArgumentError(
                absl::StrCat("override '", text, "': a group option must be a name"));
          }
          d.has_option = true;
          d.option = o.value.s;
        }
        deletions_[group] = d;
        continue;
      }
      if (o.value.is_list()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "override '", text, "': choosing several options of one group is not supported"));
      }
      if (!o.value.is_string() && !o.value.is_null()) {
        return absl::InvalidArgumentError(
            absl::StrCat("override '", text, "': the option of group '", group,
                         "' must be a name, not ", internal::KindName(o.value)));
      }
      if (o.op == Override::Op::kAdd) {
        Entry e;
        e.kind = Entry::Kind::kGroup;
        e.group = group;
        e.option = o.value.is_string() ? o.value.s : "";
        e.option_null = o.value.is_null();
        e.origin = absl::StrCat("override '", text, "'");
        e.display = absl::StrCat(group, "=", e.option);
        appends_.push_back(e);
        continue;
      }
      Choice c;
      c.option = o.value.is_string() ? o.value.s : "";
      c.option_null = o.value.is_null();
      c.text = text;
      c.origin = absl::StrCat("override '", text, "'");
      c.force_add = o.op == Override::Op::kForceAdd;
      choices_[group] = c;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Entry>> ParseDefaults(const Loaded& cfg, const std::string& base) {
    std::vector<Entry> entries;
    for (const Value& item : cfg.defaults.items) {
      Entry e;
      e.origin = item.mark.ToString();
      if (e.origin.empty()) e.origin = cfg.name;
      auto bad = [&](const std::string& why) {
        return absl::InvalidArgumentError(
            absl::StrCat(e.origin, ": invalid defaults list entry: ", why,
                         "; expected `- group: option`, `- config_name` or `- _self_`"));
      };
      if (item.is_string()) {
        if (item.s == "_self_") {
          e.kind = Entry::Kind::kSelf;
        } else {
          e.kind = Entry::Kind::kConfig;
          absl::string_view rel = item.s;
          if (absl::ConsumePrefix(&rel, "/")) {
            e.group = std::string(rel);
          } else {
            e.group = base.empty() ? std::string(rel) : absl::StrCat(base, "/", rel);
          }
          size_t at = e.group.find('@');
          if (at != std::string::npos) {
            e.has_package = true;
            e.package = e.group.substr(at + 1);
            e.group.resize(at);
          }
          if (!ValidRelativeName(e.group)) return bad(absl::StrCat("'", item.s, "'"));
          e.display = item.s;
        }
      } else if (item.is_map() && item.entries.size() == 1) {
        std::string key = item.entries[0].key;
        const Value& option = item.entries[0].value;
        std::vector<std::string> words =
            absl::StrSplit(key, absl::ByAnyChar(" \t"), absl::SkipEmpty());
        if (words.empty() || words.size() > 2) return bad(absl::StrCat("key '", key, "'"));
        if (words.size() == 2) {
          if (words[0] == "optional") {
            e.optional = true;
          } else if (words[0] == "override") {
            e.override_kw = true;
          } else {
            return bad(absl::StrCat("unknown keyword '", words[0], "'"));
          }
        }
        std::string group = words.back();
        size_t at = group.find('@');
        if (at != std::string::npos) {
          e.has_package = true;
          e.package = group.substr(at + 1);
          group.resize(at);
        }
        if (absl::StartsWith(group, "/")) {
          group.erase(0, 1);
          e.group = group;
        } else {
          e.group = base.empty() ? group : absl::StrCat(base, "/", group);
        }
        if (!ValidRelativeName(e.group)) return bad(absl::StrCat("group '", group, "'"));
        e.kind = Entry::Kind::kGroup;
        if (option.is_null()) {
          e.option_null = true;
        } else if (option.is_string()) {
          e.option = option.s;
        } else if (option.is_list()) {
          return bad("lists of options are not supported");
        } else {
          return bad(absl::StrCat("the option of group '", group, "' must be a name, not ",
                                  internal::KindName(option)));
        }
        e.display = absl::StrCat(group, ": ", e.option_null ? "null" : e.option);
      } else {
        return bad(absl::StrCat("got ", internal::KindName(item)));
      }
      entries.push_back(std::move(e));
    }
    return entries;
  }

  std::string ChildPackage(const Entry& e, const std::string& parent_package,
                           const std::string& header, const std::string& group_path) {
    if (!header.empty()) {
      if (header == "_global_") return "";
      if (header == "_group_") return DottedPackage(group_path);
      return header;
    }
    if (e.has_package) {
      if (e.package == "_global_") return "";
      if (e.package == "_here_") return parent_package;
      if (e.package == "_group_") return DottedPackage(group_path);
      return parent_package.empty() ? e.package : absl::StrCat(parent_package, ".", e.package);
    }
    return DottedPackage(group_path);
  }

  absl::Status MergeAt(const std::string& package, const Value& body) {
    Value wrapped = body;
    if (!package.empty()) {
      std::vector<std::string> parts = absl::StrSplit(package, '.');
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        Value outer = Value::Map();
        outer.entries.push_back(internal::MapEntry{*it, std::move(wrapped)});
        wrapped = std::move(outer);
      }
    }
    Path path;
    return internal::MergeValue(result_, wrapped, path);
  }

  absl::Status Process(const Loaded& cfg, const std::string& base, const std::string& package,
                       bool primary, int depth) {
    if (depth > kMaxDefaultsDepth) {
      return absl::InvalidArgumentError(
          absl::StrCat(cfg.name, ": defaults lists nested deeper than ", kMaxDefaultsDepth,
                       " levels (does a config include itself?)"));
    }
    auto parsed = ParseDefaults(cfg, base);
    if (!parsed.ok()) return parsed.status();
    std::vector<Entry> entries;
    for (Entry& e : *parsed) {
      if (!e.override_kw) {
        entries.push_back(std::move(e));
        continue;
      }
      if (choices_.count(e.group) == 0) {
        Choice c;
        c.option = e.option;
        c.option_null = e.option_null;
        c.external = false;
        c.text = absl::StrCat("override ", e.display);
        c.origin = e.origin;
        choices_[e.group] = c;
      }
    }
    bool has_self = std::any_of(entries.begin(), entries.end(),
                                [](const Entry& e) { return e.kind == Entry::Kind::kSelf; });
    // Hydra >= 1.1: without `_self_` the config's own body is merged after its defaults.
    if (!has_self) entries.push_back(Entry{});
    if (primary) {
      for (auto& [name, choice] : choices_) {
        if (!choice.force_add) continue;
        const std::string& group = name;
        bool present = std::any_of(entries.begin(), entries.end(), [&](const Entry& e) {
          return e.kind == Entry::Kind::kGroup && e.group == group;
        });
        if (present) continue;
        Entry e;
        e.kind = Entry::Kind::kGroup;
        e.group = group;
        e.option = choice.option;
        e.option_null = choice.option_null;
        e.origin = choice.origin;
        e.display = absl::StrCat(group, "=", choice.option);
        appends_.push_back(e);
        choice.used = true;
      }
      for (const Entry& a : appends_) {
        for (const Entry& e : entries) {
          if (e.kind == Entry::Kind::kGroup && e.group == a.group) {
            return absl::InvalidArgumentError(
                absl::StrCat("cannot add group '", a.group, "' with ", a.origin,
                             ": the defaults list already has it (", e.origin, "); use ", a.group,
                             "=", a.option, " to switch it"));
          }
        }
        entries.push_back(a);
      }
    }
    for (Entry& e : entries) {
      absl::Status st;
      switch (e.kind) {
        case Entry::Kind::kSelf:
          st = MergeAt(package, cfg.body);
          break;
        case Entry::Kind::kGroup:
          st = ProcessGroup(e, package, depth);
          break;
        case Entry::Kind::kConfig:
          st = ProcessConfig(e, package, depth);
          break;
      }
      if (!st.ok()) return st;
    }
    return absl::OkStatus();
  }

  absl::Status ProcessGroup(Entry& e, const std::string& package, int depth) {
    if (!GroupExists(e.group)) {
      std::vector<std::string> groups = AvailableGroups();
      return absl::NotFoundError(
          absl::StrCat(e.origin, ": unknown config group '", e.group,
                       "' in the defaults list; available groups: ",
                       groups.empty() ? "none" : absl::StrJoin(groups, ", "),
                       internal::DidYouMean(internal::Suggest(e.group, groups))));
    }
    if (auto d = deletions_.find(e.group); d != deletions_.end()) {
      if (!d->second.has_option || d->second.option == e.option) {
        d->second.used = true;
        return absl::OkStatus();
      }
    }
    if (e.origin.rfind("override", 0) != 0) {
      if (auto c = choices_.find(e.group); c != choices_.end()) {
        c->second.used = true;
        e.option = c->second.option;
        e.option_null = c->second.option_null;
        e.origin = c->second.origin;
        e.display =
            c->second.external ? c->second.text : absl::StrCat(e.group, ": ", c->second.option);
        if (c->second.external) e.origin = absl::StrCat("override '", c->second.text, "'");
      }
    }
    if (e.option_null) return absl::OkStatus();
    if (e.option == "???") {
      std::vector<std::string> options = GroupOptions(e.group);
      return absl::InvalidArgumentError(
          absl::StrCat(e.origin, ": choose an option for group '", e.group, "' (e.g. -o ", e.group,
                       "=", options.empty() ? "<option>" : options[0],
                       "); available: ", options.empty() ? "none" : absl::StrJoin(options, ", ")));
    }
    if (auto seen = seen_groups_.find(e.group); seen != seen_groups_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("group '", e.group, "' appears more than once in the defaults list (",
                       seen->second, " and ", e.origin, ")"));
    }
    seen_groups_[e.group] = e.origin;
    std::string file =
        ValidRelativeName(e.option) ? FindConfigFile(absl::StrCat(e.group, "/", e.option)) : "";
    if (file.empty()) {
      if (e.optional) return absl::OkStatus();
      return UnknownOption(e);
    }
    auto child = LoadFileCached(file);
    if (!child.ok()) return child.status();
    std::string child_package = ChildPackage(e, package, (*child)->package_header, e.group);
    return Process(**child, e.group, child_package, /*primary=*/false, depth + 1);
  }

  absl::Status ProcessConfig(const Entry& e, const std::string& package, int depth) {
    std::string file = FindConfigFile(e.group);
    if (file.empty()) {
      if (e.optional) return absl::OkStatus();
      return absl::NotFoundError(absl::StrCat(
          e.origin, ": config '", e.display, "' in the defaults list not found (looked for '",
          e.group, ".yaml' in ", absl::StrJoin(roots_, ", "), ")"));
    }
    auto child = LoadFileCached(file);
    if (!child.ok()) return child.status();
    std::string dir = fs::path(e.group).parent_path().generic_string();
    std::string child_package = ChildPackage(e, package, (*child)->package_header, dir);
    return Process(**child, dir, child_package, /*primary=*/false, depth + 1);
  }

  absl::Status CheckChoicesUsed() const {
    for (const auto& [group, c] : choices_) {
      if (c.used) continue;
      if (c.external) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot switch group '", group, "' with override '", c.text,
                         "': the defaults list has no '", group, "' entry; use +", group, "=",
                         c.option, " to add it"));
      }
      return absl::InvalidArgumentError(absl::StrCat(c.origin, ": '", c.text, "' matches no '",
                                                     group, "' entry in the defaults list"));
    }
    for (const auto& [group, d] : deletions_) {
      if (d.used) continue;
      return absl::InvalidArgumentError(
          absl::StrCat("cannot delete group '", group, "' with override '", d.text,
                       "': the defaults list has no matching '", group, "' entry"));
    }
    return absl::OkStatus();
  }

  std::string ExpandHome(const std::string& s) const {
    if (s != "~" && !absl::StartsWith(s, "~/")) return s;
    std::optional<std::string> home;
    if (req_.env) home = req_.env("HOME");
    if (!home.has_value() || home->empty()) return s;
    return s == "~" ? *home : JoinPath(*home, s.substr(2));
  }

  // Relative output_dir against the submitter's working dir; relative task files and datasets
  // against the primary config's folder.
  void AbsolutizePaths() {
    Value* execution = result_.Get("execution");
    if (execution != nullptr && execution->is_map()) {
      Value* out = execution->Get("output_dir");
      if (out != nullptr && out->is_string() && !out->s.empty() && !out->IsMissing()) {
        out->s = ExpandHome(out->s);
        if (!fs::path(out->s).is_absolute() && !IsUrl(out->s) && !req_.working_dir.empty()) {
          out->s = JoinPath(req_.working_dir, out->s);
        }
      }
    }
    Value* evaluation = result_.Get("evaluation");
    if (evaluation == nullptr || !evaluation->is_map()) return;
    Value* tasks = evaluation->Get("tasks");
    if (tasks == nullptr || !tasks->is_list()) return;
    for (Value& task : tasks->items) {
      if (!task.is_map()) continue;
      for (const char* key : {"task_file", "dataset", "dataset_dir"}) {
        Value* v = task.Get(key);
        if (v == nullptr || !v->is_string() || v->s.empty() || v->IsMissing()) continue;
        v->s = ExpandHome(v->s);
        if (fs::path(v->s).is_absolute() || IsUrl(v->s) || base_dir_.empty()) continue;
        v->s = JoinPath(base_dir_, v->s);
      }
    }
  }

  const ComposeRequest& req_;
  std::vector<std::string> roots_;
  std::string primary_dir_;
  std::string base_dir_;
  std::map<std::string, Choice> choices_;
  std::map<std::string, Deletion> deletions_;
  std::vector<Entry> appends_;
  std::vector<Override> config_overrides_;
  std::map<std::string, std::string> seen_groups_;
  Value result_ = Value::Map();
};

}  // namespace

absl::StatusOr<YAML::Node> Compose(const ComposeRequest& request) {
  if (request.primary_path.empty() == request.primary_yaml.empty()) {
    if (request.primary_path.empty()) {
      return absl::InvalidArgumentError(
          "no primary config: give a config file (primary_path) or its text (primary_yaml)");
    }
    return absl::InvalidArgumentError(
        "give the primary config as a file (primary_path) or as text (primary_yaml), not both");
  }
  try {
    Composer composer(request);
    return composer.Run();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("composing the config failed: ", e.what()));
  }
}

std::string PackagedConfigDir() {
  if (const char* env = std::getenv("EVALD_CONFIGS_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    buf[n] = '\0';
    std::string installed =
        (fs::path(buf).parent_path() / ".." / "share" / "evald" / "configs").lexically_normal();
    if (IsDir(installed)) return installed;
  }
  return EVALD_DEFAULT_CONFIGS_DIR;
}

}  // namespace evald::config
