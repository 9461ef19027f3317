#include "core/config/task_catalog.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/config/suggest.h"
#include "core/config/value.h"

// toml++ throws; exceptions stop in this file.
#include <toml++/toml.h>

namespace evald::config {

namespace {

constexpr const char* kReservedKeys[] = {"task", "harness", "container", "endpoint_type"};

struct Located {
  TaskDef def;
  std::string where;  // "file:line"
  uint32_t line = 0;
  uint32_t column = 0;
};

std::string Where(const std::string& source, const toml::source_region& region) {
  return absl::StrCat(source, ":", region.begin.line);
}

std::string Stringify(const toml::node& node) {
  if (auto s = node.value<std::string>()) return *s;
  std::ostringstream os;
  node.visit([&os](const auto& v) { os << v; });
  return os.str();
}

absl::Status LayoutError(const std::string& source, const toml::node& node,
                         const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat(Where(source, node.source()), ": ", what));
}

absl::StatusOr<std::vector<Located>> ParseMapping(const std::string& text,
                                                  const std::string& source) {
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.source().begin.line, ":",
                                                   e.source().begin.column, ": ",
                                                   std::string(e.description())));
  }
  std::vector<Located> out;
  for (auto&& [harness_key, harness_node] : root) {
    std::string harness(harness_key.str());
    const toml::table* harness_table = harness_node.as_table();
    if (harness_table == nullptr) {
      return LayoutError(
          source, harness_node,
          absl::StrCat("top-level key '", harness, "' must be a harness table ([", harness, "])"));
    }
    std::string container;
    if (const toml::node* c = harness_table->get("container")) {
      auto s = c->value<std::string>();
      if (!s) {
        return LayoutError(source, *c, absl::StrCat(harness, ".container must be a string"));
      }
      container = *s;
    }
    const toml::node* tasks_node = harness_table->get("tasks");
    if (tasks_node == nullptr) continue;
    const toml::table* tasks = tasks_node->as_table();
    if (tasks == nullptr) {
      return LayoutError(source, *tasks_node,
                         absl::StrCat(harness, ".tasks must be a table of endpoint types"));
    }
    for (auto&& [type_key, type_node] : *tasks) {
      std::string endpoint_type(type_key.str());
      const toml::table* by_type = type_node.as_table();
      if (by_type == nullptr) {
        return LayoutError(
            source, type_node,
            absl::StrCat(harness, ".tasks.", endpoint_type, " must be a table of tasks"));
      }
      for (auto&& [task_key, task_node] : *by_type) {
        std::string name(task_key.str());
        std::string qualified = absl::StrCat(harness, ".tasks.", endpoint_type, ".", name);
        const toml::table* task = task_node.as_table();
        if (task == nullptr) {
          return LayoutError(source, task_node, absl::StrCat("[", qualified, "] must be a table"));
        }
        Located loc;
        loc.def.name = name;
        loc.def.harness = harness;
        loc.def.container = container;
        loc.def.endpoint_type = endpoint_type;
        loc.where = Where(source, task_node.source());
        loc.line = task_node.source().begin.line;
        loc.column = task_node.source().begin.column;
        for (auto&& [field_key, field] : *task) {
          std::string field_name(field_key.str());
          for (const char* reserved : kReservedKeys) {
            if (field_name == reserved) {
              return LayoutError(
                  source, field,
                  absl::StrCat("'", field_name, "' is not allowed as key under [", qualified, "]"));
            }
          }
          if (field_name == "required_env_vars") {
            const toml::array* vars = field.as_array();
            if (vars == nullptr) {
              return LayoutError(source, field,
                                 absl::StrCat(qualified,
                                              ".required_env_vars must be an array of "
                                              "strings"));
            }
            for (const toml::node& var : *vars) {
              auto s = var.value<std::string>();
              if (!s) {
                return LayoutError(source, var,
                                   absl::StrCat(qualified,
                                                ".required_env_vars must be an array "
                                                "of strings"));
              }
              loc.def.required_env_vars.push_back(*s);
            }
          } else if (field_name == "description") {
            auto s = field.value<std::string>();
            if (!s) {
              return LayoutError(source, field,
                                 absl::StrCat(qualified, ".description must be a string"));
            }
            loc.def.description = *s;
          } else {
            loc.def.extra[field_name] = Stringify(field);
          }
        }
        out.push_back(std::move(loc));
      }
    }
  }
  // toml++ keeps tables sorted by key; the catalog keeps the file's order.
  std::stable_sort(out.begin(), out.end(), [](const Located& a, const Located& b) {
    return std::tie(a.line, a.column) < std::tie(b.line, b.column);
  });
  return out;
}

absl::Status AddAll(std::vector<Located> found, std::vector<TaskDef>* tasks,
                    std::map<std::pair<std::string, std::string>, std::string>* seen) {
  for (Located& loc : found) {
    auto key = std::make_pair(loc.def.harness, loc.def.name);
    auto [it, inserted] = seen->emplace(key, loc.where);
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat("task '", loc.def.qualified_name(),
                                                     "' is defined twice: at ", it->second,
                                                     " and at ", loc.where));
    }
    tasks->push_back(std::move(loc.def));
  }
  return absl::OkStatus();
}

std::string QuotedList(const std::vector<std::string>& names) {
  return absl::StrCat("['", absl::StrJoin(names, "', '"), "']");
}

}  // namespace

absl::StatusOr<TaskCatalog> TaskCatalog::FromToml(const std::string& text,
                                                  const std::string& source) {
  auto found = ParseMapping(text, source);
  if (!found.ok()) return found.status();
  TaskCatalog catalog;
  std::map<std::pair<std::string, std::string>, std::string> seen;
  absl::Status st = AddAll(std::move(*found), &catalog.tasks_, &seen);
  if (!st.ok()) return st;
  return catalog;
}

absl::StatusOr<TaskCatalog> TaskCatalog::LoadDir(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::exists(dir, ec)) {
      return absl::InvalidArgumentError(
          absl::StrCat("task catalog '", dir, "' is not a directory"));
    }
    return absl::NotFoundError(absl::StrCat("task catalog dir '", dir, "' does not exist"));
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().extension() == ".toml" && it->is_regular_file(ec)) {
      files.push_back(it->path().string());
    }
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read task catalog dir '", dir, "': ", ec.message()));
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat("task catalog dir '", dir, "' has no *.toml files"));
  }
  std::sort(files.begin(), files.end());
  TaskCatalog catalog;
  std::map<std::pair<std::string, std::string>, std::string> seen;
  for (const std::string& file : files) {
    auto text = internal::ReadSmallFile(file);
    if (!text.ok()) return text.status();
    auto found = ParseMapping(*text, file);
    if (!found.ok()) return found.status();
    absl::Status st = AddAll(std::move(*found), &catalog.tasks_, &seen);
    if (!st.ok()) return st;
  }
  return catalog;
}

absl::StatusOr<const TaskDef*> TaskCatalog::Find(const std::string& query) const {
  if (query.empty()) return absl::InvalidArgumentError("the task name is empty");
  const size_t dots = static_cast<size_t>(std::count(query.begin(), query.end(), '.'));
  if (dots > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "invalid task '", query, "': it must contain zero or one '.' (task or harness.task)"));
  }
  if (dots == 1) {
    for (const TaskDef& t : tasks_) {
      if (t.qualified_name() == query) return &t;
    }
    std::vector<std::string> qualified;
    for (const TaskDef& t : tasks_) qualified.push_back(t.qualified_name());
    return absl::InvalidArgumentError(
        absl::StrCat("harness.task '", query, "' does not exist in the catalog",
                     internal::DidYouMean(internal::Suggest(query, qualified))));
  }
  std::vector<const TaskDef*> matches;
  for (const TaskDef& t : tasks_) {
    if (t.name == query) matches.push_back(&t);
  }
  if (matches.size() == 1) return matches[0];
  if (matches.size() > 1) {
    std::vector<std::string> names;
    for (const TaskDef* t : matches) names.push_back(t->qualified_name());
    std::sort(names.begin(), names.end());
    return absl::InvalidArgumentError(absl::StrCat("there are multiple tasks named '", query,
                                                   "' in the catalog, please select one of ",
                                                   QuotedList(names)));
  }
  std::vector<std::string> bare;
  std::set<std::string> unique;
  for (const TaskDef& t : tasks_) {
    if (unique.insert(t.name).second) bare.push_back(t.name);
  }
  return absl::InvalidArgumentError(
      absl::StrCat("task '", query, "' does not exist in the catalog",
                   internal::DidYouMean(internal::Suggest(query, bare))));
}

}  // namespace evald::config
