// Container tasks for real (issue 9): a catalog task whose harness image is a small local test
// image (tests/fixtures/harness_image: busybox and a stand-in nv_eval, imported from a tarball,
// no registry) runs under podman through the real evald, evalctl and run.sh. Checked: the
// results read back, env vars passed by name (the value inside, never in run.sh or the database),
// the /results mount and a read-only host dir mounted through extra_docker_args, a nonzero exit
// code, a kill that leaves no container, a docker without an engine passed over for podman when
// no runtime is configured, and dry runs (one task, and all 157 catalog tasks) on a host with no
// container runtime at all.
//
// podman's whole state (images, containers, its containers.conf and storage.conf) lives in the
// test's temp dir: CONTAINERS_CONF and CONTAINERS_STORAGE_CONF point at files written here, and
// evald passes them on to run.sh. The tests are skipped, saying why, only when podman cannot run a
// container on this machine at all.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "executors/local/local_executor.h"
#include "nlohmann/json.hpp"
#include "tests/integration/harness.h"

namespace evald::testing {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr char kImage[] = "localhost/evald-test-harness:1";

// A podman confined to a temp dir, with the test image imported.
class PodmanSandbox {
 public:
  explicit PodmanSandbox(const TempDir& dir) : root_(dir.path() + "/podman") {
    podman_ = executors::FindOnPath("podman");
    if (podman_.empty()) {
      unusable_ = "podman is not installed (scripts/setup installs it)";
      return;
    }
    fs::create_directories(root_ + "/tmp");
    Spit(root_ + "/storage.conf", absl::StrCat("[storage]\ndriver = \"vfs\"\ngraphroot = \"", root_,
                                               "/storage\"\nrunroot = \"", root_, "/run\"\n"));
    const std::string tar = root_ + "/image.tar";
    CommandResult built =
        Run({"bash", SourceDir() + "/tests/fixtures/harness_image/build_image.sh", tar});
    INFO(built.err);
    REQUIRE(built.exit_code == 0);
    // crun refuses hosts whose cgroup v2 hierarchy has controllers next to v1 ("hybrid"), where
    // runc works: take podman's default OCI runtime, else the first that runs the image.
    std::vector<std::string> errors;
    for (const std::string runtime : {"", "runc", "crun"}) {
      WriteContainersConf(runtime);
      if (!imported_) {
        CommandResult r = Podman({"import", "--quiet", tar, kImage});
        if (r.exit_code != 0) {
          errors.push_back(absl::StrCat("podman import: ", r.err));
          break;
        }
        imported_ = true;
      }
      CommandResult r = Podman({"run", "--rm", kImage, "true"});
      if (r.exit_code == 0) return;
      errors.push_back(absl::StrCat("podman run with runtime '",
                                    runtime.empty() ? "default" : runtime,
                                    "': ", absl::StripAsciiWhitespace(r.err)));
    }
    unusable_ = absl::StrCat("podman cannot run containers here: ", absl::StrJoin(errors, "; "));
  }

  ~PodmanSandbox() {
    if (imported_) Podman({"rm", "--all", "--force", "--time", "0"});
  }

  // Empty when podman runs the test image; otherwise why not.
  const std::string& unusable() const { return unusable_; }

  // What podman (and so evald, which passes its environment on to run.sh) needs to find this
  // sandbox.
  std::map<std::string, std::string> env() const {
    return {{"CONTAINERS_CONF", root_ + "/containers.conf"},
            {"CONTAINERS_STORAGE_CONF", root_ + "/storage.conf"}};
  }

  CommandResult Podman(std::vector<std::string> args) const {
    args.insert(args.begin(), podman_);
    return Run(args, env(), 60);
  }

  // The names of every container, running or not.
  std::vector<std::string> Containers() const {
    CommandResult r = Podman({"ps", "--all", "--format", "{{.Names}}"});
    INFO(r.err);
    REQUIRE(r.exit_code == 0);
    return absl::StrSplit(absl::StripAsciiWhitespace(r.out), '\n', absl::SkipEmpty());
  }

 private:
  void WriteContainersConf(const std::string& runtime) const {
    // cgroupfs and a file for events: no systemd here. Every path podman writes is in root_.
    std::string conf = absl::StrCat("[engine]\ncgroup_manager = \"cgroupfs\"\n",
                                    "events_logger = \"file\"\ntmp_dir = \"", root_, "/tmp\"\n");
    if (!runtime.empty()) absl::StrAppend(&conf, "runtime = \"", runtime, "\"\n");
    // Without a list of its own, podman raises the container's open-files limit past the
    // caller's hard limit, which root without CAP_SYS_RESOURCE (a sandbox, a CI container) may
    // not do; an empty list keeps the limits the job has.
    absl::StrAppend(&conf, "[containers]\ndefault_ulimits = []\n");
    absl::StrAppend(&conf, "[network]\nnetwork_config_dir = \"", root_, "/net\"\n");
    Spit(root_ + "/containers.conf", conf);
  }

  std::string root_;
  std::string podman_;
  std::string unusable_;
  bool imported_ = false;
};

// Catch2 v2 has no SKIP: the binary exits 77, which ctest reports as skipped
// (SKIP_RETURN_CODE in tests/integration/CMakeLists.txt), with the reason on stdout.
constexpr int kSkipped = 77;
#define SKIP_UNLESS_USABLE(sandbox, dir)                             \
  do {                                                               \
    if (!(sandbox).unusable().empty()) {                             \
      std::cout << "SKIPPED: " << (sandbox).unusable() << std::endl; \
      std::error_code ignored;                                       \
      fs::remove_all((dir).path(), ignored);                         \
      std::exit(kSkipped);                                           \
    }                                                                \
  } while (0)

// An evald whose local executor runs containers with podman, in the sandbox.
std::vector<std::string> EvaldFlags(const TempDir& dir, const std::string& server_yaml) {
  return {"--config",
          WriteConfig(dir, "evald.yaml", absl::StrCat("container_runtime: podman\n", server_yaml))};
}

// One catalog task (ifeval, lm-evaluation-harness) run in the test image, with the given
// env_vars (destination: source), asking `model` with the key in $MY_KEY.
std::string ContainerConfig(const TempDir& dir, const std::string& model_url,
                            const std::map<std::string, std::string>& env_vars,
                            const std::string& extra_docker_args = "") {
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: none\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(), "/out\n",
      // The model listens on the host's loopback.
      "  extra_docker_args: --network host", extra_docker_args,
      "\n"
      "target:\n  api_endpoint:\n    url: ",
      model_url, "\n    model_id: ref-model\n    api_key_name: MY_KEY\n",
      "evaluation:\n  tasks:\n    - name: ifeval\n      container: ", kImage, "\n");
  if (!env_vars.empty()) absl::StrAppend(&yaml, "      env_vars:\n");
  for (const auto& [dst, src] : env_vars) absl::StrAppend(&yaml, "        ", dst, ": ", src, "\n");
  return WriteConfig(dir, "run.yaml", yaml);
}

std::string Submit(const Evald& evald, const std::string& cfg,
                   const std::map<std::string, std::string>& env) {
  CommandResult r = evald.Ctl({"submit", cfg, "--json"}, env);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return Json::parse(r.out)["invocation_id"].get<std::string>();
}

// Every file of the state dir (database, WAL, ...) as one string.
std::string StateBytes(const Evald& evald) {
  std::string all;
  for (const fs::directory_entry& e : fs::directory_iterator(evald.state_dir())) {
    if (e.is_regular_file()) all += Slurp(e.path().string());
  }
  return all;
}

TEST_CASE("a container task runs under podman: env by name, the /results mount, results read") {
  TempDir dir;
  PodmanSandbox podman(dir);
  SKIP_UNLESS_USABLE(podman, dir);
  const std::string key = "key-" + fs::path(dir.path()).filename().string();
  const std::string secret = "hush-" + fs::path(dir.path()).filename().string();
  // The model answers only with the right key: an answer proves the key reached the container.
  RefEndpoint model(dir, {"--require-api-key", key, "--default-answer", "4"});
  Evald evald(dir, EvaldFlags(dir, ""), podman.env());
  // A host dir mounted read-only as a user would, through extra_docker_args.
  fs::create_directories(dir.path() + "/data");
  Spit(dir.path() + "/data/input.txt", "host data\n");
  std::string cfg = ContainerConfig(dir, model.chat_url(), {{"HARNESS_SECRET", "MY_SECRET"}},
                                    absl::StrCat(" --volume ", dir.path(), "/data:/data:ro"));

  const std::string inv = Submit(evald, cfg, {{"MY_KEY", key}, {"MY_SECRET", secret}});
  v1::Invocation done = evald.WaitTerminal(inv, 120);
  REQUIRE(done.jobs_size() == 1);
  const v1::Job& job = done.jobs(0);
  const std::string task_dir = job.output_dir();
  INFO("stderr.log: " << Slurp(task_dir + "/logs/stderr.log"));
  REQUIRE(job.state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(job.exit_code() == 0);
  CHECK(job.container() == kImage);
  CHECK(
      absl::StrContains(Slurp(task_dir + "/logs/stderr.log"), "Container completed successfully"));

  // What the harness saw inside: evald's command line, the value of the variable passed by
  // name, the job's artifacts dir mounted at /results, and the model's answer.
  const std::string art = task_dir + "/artifacts";
  std::string argv = Slurp(art + "/argv.txt");
  CHECK(absl::StrContains(argv, "eval_type=ifeval\n"));
  CHECK(absl::StrContains(argv, "model_url=" + model.chat_url() + "\n"));
  CHECK(absl::StrContains(argv, "api_key_name=API_KEY\n"));
  CHECK(Slurp(art + "/env.txt") == secret);
  CHECK(absl::StrContains(Slurp(art + "/mounts.txt"), " /results "));
  CHECK(Slurp(art + "/data_seen.txt") == "host data\n");
  CHECK_FALSE(fs::exists(art + "/data_writable.txt"));
  CHECK_FALSE(fs::exists(dir.path() + "/data/written"));
  CHECK(absl::StrContains(Slurp(art + "/answer.json"), "\"content\":\"4\""));

  // The results.yml the harness wrote into /results, read back by evald.
  CommandResult results = evald.Ctl({"results", inv, "--json"});
  INFO(results.out << results.err);
  REQUIRE(results.exit_code == 0);
  Json rows = Json::parse(results.out);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0]["metric"] == "answered");
  CHECK(rows[0]["value"].get<double>() == 1.0);

  // Values travel by name only: run.sh names the variables, the database holds neither value.
  std::string script = Slurp(task_dir + "/run.sh");
  CHECK(absl::StrContains(script, "podman run --rm"));
  CHECK(absl::StrContains(script, " -e HARNESS_SECRET -e API_KEY "));
  CHECK_FALSE(absl::StrContains(script, secret));
  CHECK_FALSE(absl::StrContains(script, key));
  std::string state = StateBytes(evald);
  CHECK_FALSE(absl::StrContains(state, secret));
  CHECK_FALSE(absl::StrContains(state, key));
  CHECK(podman.Containers().empty());  // --rm
}

TEST_CASE("with no container_runtime set, a docker without an engine is passed over for podman") {
  TempDir dir;
  PodmanSandbox podman(dir);
  SKIP_UNLESS_USABLE(podman, dir);
  // First on PATH: a docker client that cannot reach an engine, as `docker info` then fails.
  const std::string bin = dir.path() + "/bin";
  fs::create_directories(bin);
  Spit(bin + "/docker",
       "#!/bin/sh\necho \"$*\" >> \"$(dirname \"$0\")/docker-calls\"\n"
       "echo 'Cannot connect to the Docker daemon' >&2\nexit 1\n",
       true);
  std::map<std::string, std::string> env = podman.env();
  env["PATH"] = absl::StrCat(bin, ":", getenv("PATH"));
  RefEndpoint model(dir, {"--default-answer", "4"});
  Evald evald(dir, {}, env);
  std::string cfg = ContainerConfig(dir, model.chat_url(), {});

  const std::string inv = Submit(evald, cfg, {{"MY_KEY", "k"}});
  v1::Invocation done = evald.WaitTerminal(inv, 120);
  REQUIRE(done.jobs_size() == 1);
  INFO("message: " << done.jobs(0).message());
  CHECK(done.jobs(0).state() == v1::JOB_STATE_SUCCEEDED);
  CHECK(absl::StrContains(Slurp(done.jobs(0).output_dir() + "/run.sh"), "podman run --rm"));
  CHECK(Slurp(bin + "/docker-calls") == "info\n");  // asked once, never told to run anything
}

TEST_CASE("a harness exiting nonzero fails its container job with that exit code") {
  TempDir dir;
  PodmanSandbox podman(dir);
  SKIP_UNLESS_USABLE(podman, dir);
  RefEndpoint model(dir, {"--default-answer", "4"});
  Evald evald(dir, EvaldFlags(dir, ""), podman.env());
  std::string cfg = ContainerConfig(dir, model.chat_url(), {{"HARNESS_EXIT_CODE", "MY_EXIT"}});

  const std::string inv = Submit(evald, cfg, {{"MY_KEY", "k"}, {"MY_EXIT", "7"}});
  v1::Invocation done = evald.WaitTerminal(inv, 120);
  REQUIRE(done.jobs_size() == 1);
  const v1::Job& job = done.jobs(0);
  INFO("message: " << job.message());
  CHECK(done.state() == v1::JOB_STATE_FAILED);
  CHECK(job.state() == v1::JOB_STATE_FAILED);
  CHECK(job.exit_reason() == v1::EXIT_REASON_EXIT_CODE);
  CHECK(job.exit_code() == 7);
  CHECK(absl::StrContains(Slurp(job.output_dir() + "/logs/stage.exit"), " 7"));
  CHECK(absl::StrContains(Slurp(job.output_dir() + "/logs/stderr.log"),
                          "The evaluation container failed with exit code 7"));
  CHECK(podman.Containers().empty());
}

TEST_CASE("killing a running container job stops its container and leaves none behind") {
  TempDir dir;
  PodmanSandbox podman(dir);
  SKIP_UNLESS_USABLE(podman, dir);
  RefEndpoint model(dir, {"--default-answer", "4"});
  // A grace period shorter than podman's own stop timeout (10 s): evald SIGKILLs run.sh's process
  // group before `podman stop` is done, which must still stop and remove the container.
  Evald evald(dir, EvaldFlags(dir, "stop_grace_seconds: 2\n"), podman.env());
  std::string cfg = ContainerConfig(dir, model.chat_url(), {{"HARNESS_SLEEP_S", "MY_SLEEP"}});

  const std::string inv = Submit(evald, cfg, {{"MY_KEY", "k"}, {"MY_SLEEP", "300"}});
  std::string task_dir;
  REQUIRE(WaitFor(
      [&] {
        v1::Invocation now = evald.Get(inv);
        if (now.jobs_size() == 0) return false;
        task_dir = now.jobs(0).output_dir();
        return fs::exists(task_dir + "/artifacts/started.txt");
      },
      60));
  const std::string name = absl::StrCat("evald-", inv, ".0-ifeval");
  CHECK(podman.Containers() == std::vector<std::string>{name});

  absl::Time asked = absl::Now();
  CommandResult kill = evald.Ctl({"kill", inv});
  INFO(kill.out << kill.err);
  REQUIRE(kill.exit_code == 0);
  v1::Invocation done = evald.WaitTerminal(inv, 60);
  REQUIRE(done.jobs_size() == 1);
  CHECK(done.jobs(0).state() == v1::JOB_STATE_KILLED);
  CHECK(WaitFor([&] { return podman.Containers().empty(); }, 30));
  INFO("container gone " << absl::FormatDuration(absl::Now() - asked) << " after the kill");
  CHECK(podman.Containers().empty());
  CHECK_FALSE(fs::exists(task_dir + "/artifacts/results.yml"));
}

TEST_CASE("a dry run renders a container job on a host with no container runtime") {
  // Neither docker nor podman on evald's PATH; the job may be meant for another machine.
  for (const std::string configured : {"", "podman"}) {
    DYNAMIC_SECTION("container_runtime: " << (configured.empty() ? "unset" : configured)) {
      TempDir dir;
      fs::create_directories(dir.path() + "/empty-bin");
      std::vector<std::string> flags;
      if (!configured.empty()) {
        flags = {"--config",
                 WriteConfig(dir, "evald.yaml", absl::StrCat("container_runtime: ", configured))};
      }
      Evald evald(dir, flags, {{"PATH", dir.path() + "/empty-bin"}});
      std::string cfg = ContainerConfig(dir, "http://127.0.0.1:9/v1/chat/completions",
                                        {{"HARNESS_SECRET", "MY_SECRET"}});
      const std::map<std::string, std::string> env = {{"MY_KEY", "dry-key-value"},
                                                      {"MY_SECRET", "dry-secret-value"}};

      CommandResult dry = evald.Ctl({"submit", cfg, "--dry-run", "--json"}, env);
      INFO(dry.out << dry.err);
      REQUIRE(dry.exit_code == 0);
      Json j = Json::parse(dry.out);
      REQUIRE(j["jobs"].size() == 1);
      const std::string script = j["jobs"][0]["script"].get<std::string>();
      CHECK(absl::StrContains(
          script, absl::StrCat(configured.empty() ? "docker" : configured, " run --rm")));
      CHECK(absl::StrContains(script, kImage));
      CHECK(absl::StrContains(script, " -e HARNESS_SECRET -e API_KEY "));
      CHECK_FALSE(absl::StrContains(dry.out, "dry-secret-value"));
      CHECK_FALSE(absl::StrContains(dry.out, "dry-key-value"));
      CHECK(evald.Ctl({"status", "--json"}).out.find(j["invocation_id"].get<std::string>()) ==
            std::string::npos);  // nothing stored

      // A real submit is taken, and its job fails at start saying what is missing.
      const std::string inv = Submit(evald, cfg, env);
      v1::Invocation done = evald.WaitTerminal(inv, 30);
      REQUIRE(done.jobs_size() == 1);
      CHECK(done.jobs(0).state() == v1::JOB_STATE_FAILED);
      INFO(done.jobs(0).message());
      CHECK(absl::StrContains(done.jobs(0).message(),
                              configured.empty() ? "neither docker nor podman on PATH"
                                                 : "podman (container_runtime) is not on PATH"));
    }
  }
}

TEST_CASE("every catalog task renders as a container job in a dry run with no runtime on PATH") {
  TempDir dir;
  fs::create_directories(dir.path() + "/empty-bin");
  Evald evald(dir, {}, {{"PATH", dir.path() + "/empty-bin"}});
  CommandResult ls = evald.Ctl({"ls", "tasks", "--json"});
  INFO(ls.err);
  REQUIRE(ls.exit_code == 0);
  std::map<std::string, std::string> images;  // "harness.task" -> image
  const Json listed = Json::parse(ls.out);
  for (const Json& t : listed["tasks"]) {
    const std::string image = t.value("container", "");
    if (!image.empty()) {
      images[absl::StrCat(t["harness"].get<std::string>(), ".", t["task"].get<std::string>())] =
          image;
    }
  }
  REQUIRE(images.size() >= 157);
  // Every variable some task requires, from one host variable each.
  std::map<std::string, std::string> env = {{"MY_KEY", "catalog-key-value"}};
  std::string env_yaml;
  for (absl::string_view line :
       absl::StrSplit(Slurp(SourceDir() + "/configs/tasks/mapping.toml"), '\n')) {
    if (!absl::StartsWith(line, "required_env_vars")) continue;
    std::vector<std::string> parts = absl::StrSplit(line, '"');
    for (size_t i = 1; i < parts.size(); i += 2) {
      if (env.emplace("DRY_" + parts[i], "catalog-secret-" + parts[i]).second) {
        absl::StrAppend(&env_yaml, "    ", parts[i], ": DRY_", parts[i], "\n");
      }
    }
  }
  std::string yaml = absl::StrCat(
      "defaults:\n  - execution: local\n  - deployment: none\n  - _self_\n"
      "execution:\n  output_dir: ",
      dir.path(),
      "/out\ntarget:\n  api_endpoint:\n    url: http://127.0.0.1:9/v1/chat/completions\n"
      "    model_id: m\n    api_key_name: MY_KEY\nevaluation:\n  env_vars:\n",
      env_yaml, "  tasks:\n");
  for (const auto& [name, image] : images) absl::StrAppend(&yaml, "    - name: ", name, "\n");

  CommandResult dry =
      evald.Ctl({"submit", WriteConfig(dir, "all.yaml", yaml), "--dry-run", "--json"}, env);
  INFO(dry.err);
  REQUIRE(dry.exit_code == 0);
  Json jobs = Json::parse(dry.out)["jobs"];
  REQUIRE(jobs.size() == images.size());
  for (const Json& job : jobs) {
    const std::string script = job["script"].get<std::string>();
    INFO(job["task"].get<std::string>());
    CHECK(absl::StrContains(script, " run --rm --shm-size=100g --name "));
    CHECK(absl::StrContains(script, "bash -c"));
    CHECK(absl::StrContains(script, "nv_eval run_eval "));
    CHECK_FALSE(absl::StrContains(script, "catalog-"));  // no key or secret value
  }
  std::map<std::string, int> rendered;  // each image as often as it has tasks
  for (const auto& [name, image] : images) ++rendered[image];
  for (const auto& [image, count] : rendered) {
    int seen = 0;
    for (const Json& job : jobs) {
      seen += absl::StrContains(job["script"].get<std::string>(),
                                absl::StrCat(" ", image, " bash -c "));
    }
    CHECK(seen == count);
  }
}

}  // namespace
}  // namespace evald::testing
