// execution.runner (issue 10, "the runner on the cluster"): how a native task gets evalrun on the
// compute node. Each form parses ({path}, {image}, {upload: true}, and the defaults: upload for a
// remote cluster, evald's own --runner for one on this machine), anything else is refused naming
// the key, and a typo gets the schema's did-you-mean. run.sub runs the path, or evalrun in a pyxis
// step of the image with the task dir mounted at its own path, or the uploaded copy at
// <output_dir>/.evald-runner/evalrun-<first 16 hex of its sha256>. The copy itself
// (SlurmCluster::InstallFile) on a cluster on this machine: once, 0755, whole, not again when it is
// there with the right checksum, replaced when it is not.
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/config/schema.h"
#include "executors/registry.h"
#include "executors/slurm/run_sub.h"
#include "executors/slurm/slurm_cluster.h"
#include "executors/slurm/slurm_config.h"
#include "executors/slurm/slurm_executor.h"
#include "tests/core/config/test_util.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {
namespace {

namespace ct = config::testing;
namespace fs = std::filesystem;
using Kind = SlurmRunner::Kind;

// printf '#!/bin/sh\necho fake evalrun\n' | sha256sum
constexpr char kFakeRunner[] = "#!/bin/sh\necho fake evalrun\n";
constexpr char kFakeSha[] = "d7b3dcf69894f173189b1a6a0d79f62a6d35d254120cd4360937b508b95d807b";

struct TempDir {
  TempDir() {
    std::string tmpl = "/tmp/evald-slurm-runner-test-XXXXXX";
    path = mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The execution section of the reference's slurm example, composed as evald composes it.
YAML::Node Execution(std::vector<std::string> overrides = {}) {
  overrides.push_back("execution.hostname=login");
  overrides.push_back("execution.account=acct");
  overrides.push_back("execution.output_dir=/scratch/evals");
  absl::StatusOr<YAML::Node> composed = ct::ComposeText(
      ct::ReadText(ct::PeerExamplesDir() + "/slurm_no_deployment_llama_3_1_8b_instruct.yaml"),
      overrides, ct::FixedEnv({{"USER", "alice"}}));
  INFO(composed.status().ToString());
  REQUIRE(composed.ok());
  return YAML::Clone((*composed)["execution"]);
}

// ParseSlurmConfig's verdict on the example with execution.runner set to `runner` (YAML text).
absl::StatusOr<SlurmConfig> WithRunner(const std::string& runner,
                                       const std::string& hostname = "login") {
  YAML::Node e = Execution();
  e["hostname"] = hostname;
  e["runner"] = YAML::Load(runner);
  return ParseSlurmConfig(YAML::Dump(e));
}

std::string ErrorOf(const std::string& runner) {
  absl::StatusOr<SlurmConfig> c = WithRunner(runner);
  return c.ok() ? std::string("<ok>") : std::string(c.status().message());
}

JobSpec NativeSpec(const YAML::Node& execution) {
  JobSpec spec;
  spec.job_id = "inv00001.0";
  spec.invocation_id = "inv00001";
  spec.task = "ifeval";
  spec.task_dir = "/scratch/evals/20260101_000000-inv00001/ifeval";
  spec.native = true;
  spec.plan_yaml = "task: ifeval\n";
  spec.env_vars = {{"API_KEY", "API_KEY"}};
  spec.execution_yaml = YAML::Dump(execution);
  return spec;
}

// `bash -n` on the script: 0 when bash can parse it.
int BashSyntax(const std::string& script) {
  TempDir dir;
  const std::string path = dir.path + "/run.sub";
  std::ofstream(path) << script;
  return std::system(absl::StrCat("bash -n ", path, " 2>/dev/null").c_str());
}

TEST_CASE("execution.runner: path, image, upload and the defaults") {
  absl::StatusOr<SlurmConfig> c = ParseSlurmConfig(YAML::Dump(Execution()));
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kUpload);  // a remote cluster: evald copies its own evalrun
  CHECK(c->output_dir == "/scratch/evals");
  c = WithRunner("null", "");
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kOwn);  // this machine: evald's own --runner, as before

  c = WithRunner("{path: /opt/tools/evalrun}");
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kPath);
  CHECK(c->runner.value == "/opt/tools/evalrun");
  c = WithRunner("{image: 'nvcr.io/me/evalrun:1.2'}");
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kImage);
  CHECK(c->runner.value == "nvcr.io/me/evalrun:1.2");
  c = WithRunner("{upload: true}", "");
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kUpload);  // asked for, also on this machine
  c = WithRunner("{path: /opt/evalrun, upload: false}");
  REQUIRE(c.ok());
  CHECK(c->runner.kind == Kind::kPath);
}

TEST_CASE("execution.runner: anything else is refused, naming the key") {
  const std::string forms =
      "expected {path: /abs/path/evalrun}, {image: <container image>} or {upload: true}";
  CHECK(ErrorOf("/opt/evalrun") == "execution.runner: " + forms + ", got '/opt/evalrun'");
  CHECK(ErrorOf("[a]") == "execution.runner: " + forms + ", got '<a list>'");
  CHECK(ErrorOf("{}") == "execution.runner: " + forms);
  CHECK(ErrorOf("{upload: false}") ==
        "execution.runner: " + forms + " (upload: false needs a path or an image)");
  CHECK(ErrorOf("{upload: sometimes}") == "execution.runner.upload: expected true or false");
  CHECK(ErrorOf("{paht: /opt/evalrun}") == "execution.runner.paht: unknown key; " + forms);
  CHECK(ErrorOf("{path: /opt/evalrun, image: 'img:1'}") ==
        "execution.runner: give path or image, not both (path runs evalrun on the node, image "
        "runs it in a container)");
  CHECK(ErrorOf("{path: /opt/evalrun, upload: true}") ==
        "execution.runner: give one of path, image or upload: true, not path and upload");
  CHECK(ErrorOf("{image: 'img:1', upload: true}") ==
        "execution.runner: give one of path, image or upload: true, not image and upload");
  CHECK(ErrorOf("{path: bin/evalrun}") ==
        "execution.runner.path: 'bin/evalrun' is not an absolute path (evalrun's path on the "
        "cluster's compute nodes)");
  CHECK(ErrorOf("{path: [a]}") == "execution.runner.path: expected a string");
  CHECK(ErrorOf("{image: ''}") == "execution.runner.image: must not be empty");
  // What run.sub cannot carry, as for the other keys.
  CHECK(absl::StartsWith(ErrorOf("{path: \"/opt/a\\nb\"}"),
                         "execution.runner.path: '/opt/a\\nb' holds a control character or a "
                         "backslash"));
  CHECK(absl::StartsWith(ErrorOf("{image: \"img\\\\1\"}"),
                         "execution.runner.image: 'img\\\\1' holds a control character or a "
                         "backslash"));
  CHECK(absl::StartsWith(ErrorOf("{path: \"/opt/a\\0b\"}"), "execution.runner.path "));
}

TEST_CASE("execution.runner is in the schema: a typo gets a did-you-mean") {
  const std::vector<config::ExecutorSchema> schemas = BuiltinSchemas();
  YAML::Node root;
  root["execution"] = Execution();
  root["execution"]["type"] = "slurm";
  root["execution"]["runner"]["upload"] = true;
  CHECK(config::CheckConfigSchema(root, "my.yaml", schemas).ok());
  root["execution"]["runner"] = YAML::Load("{paht: /opt/evalrun}");
  absl::Status typo = config::CheckConfigSchema(root, "my.yaml", schemas);
  INFO(typo.message());
  CHECK(absl::StrContains(typo.message(), "execution.runner.paht: unknown key"));
  CHECK(absl::StrContains(typo.message(), "did you mean 'path'?"));
  root["execution"]["runnr"] = YAML::Load("{upload: true}");
  root["execution"].remove("runner");
  CHECK(absl::StrContains(config::CheckConfigSchema(root, "my.yaml", schemas).message(),
                          "did you mean 'runner'?"));
  root["execution"].remove("runnr");
  root["execution"]["runner"] = YAML::Load("{upload: yes please}");
  CHECK(absl::StrContains(config::CheckConfigSchema(root, "my.yaml", schemas).message(),
                          "execution.runner.upload: "));
}

TEST_CASE("run.sub runs the runner path, or evalrun in a pyxis step of the runner image") {
  JobSpec spec = NativeSpec(Execution());
  absl::StatusOr<SlurmConfig> config = ParseSlurmConfig(spec.execution_yaml);
  REQUIRE(config.ok());
  const std::string redirect =
      " >>\"$task_dir/logs/stdout.log\" 2>>\"$task_dir/logs/stderr.log\"\n";

  absl::StatusOr<RenderedJob> path =
      RenderRunSub(spec, *config, {.runner_path = "/opt/tools/evalrun"});
  REQUIRE(path.ok());
  CHECK(absl::StrContains(path->script,
                          "\nsrun --overlap --nodes 1 --ntasks 1 /opt/tools/evalrun --plan "
                          "\"$task_dir/plan.yaml\"" +
                              redirect));
  CHECK_FALSE(absl::StrContains(path->script, "--container"));

  absl::StatusOr<RenderedJob> image = RenderRunSub(
      spec, *config, {.runner_path = "evalrun", .runner_image = "nvcr.io/me/evalrun:1.2"});
  REQUIRE(image.ok());
  INFO(image->script);
  CHECK(absl::StrContains(
      image->script,
      "\nsrun --overlap --nodes 1 --ntasks 1 --container-image nvcr.io/me/evalrun:1.2 "
      "--container-env API_KEY --container-mounts "
      "/scratch/evals/20260101_000000-inv00001/ifeval:/scratch/evals/20260101_000000-inv00001/"
      "ifeval evalrun --plan \"$task_dir/plan.yaml\"" +
          redirect));
  CHECK(image->plan == spec.plan_yaml);
  CHECK(BashSyntax(image->script) == 0);

  // The evaluation's env, mounts and mount_home reach the image step as they reach a harness's.
  YAML::Node e = Execution();
  e["env_vars"]["evaluation"]["MODE"] = "fast";
  e["mounts"]["evaluation"]["/data/sets"] = "/datasets";
  e["mounts"]["mount_home"] = false;
  JobSpec extra = NativeSpec(e);
  absl::StatusOr<SlurmConfig> extra_config = ParseSlurmConfig(extra.execution_yaml);
  REQUIRE(extra_config.ok());
  absl::StatusOr<RenderedJob> mounted =
      RenderRunSub(extra, *extra_config, {.runner_path = "evalrun", .runner_image = "img:1"});
  REQUIRE(mounted.ok());
  CHECK(absl::StrContains(mounted->script,
                          "--container-image img:1 --container-env API_KEY,MODE "
                          "--no-container-mount-home --container-mounts "
                          "/scratch/evals/20260101_000000-inv00001/ifeval:/scratch/evals/"
                          "20260101_000000-inv00001/ifeval,/data/sets:/datasets evalrun "));

  // A task dir pyxis cannot mount is refused for the image form only.
  spec.task_dir = "/scratch/a:b/ifeval";
  CHECK(RenderRunSub(spec, *config, {.runner_path = "/opt/evalrun"}).ok());
  absl::StatusOr<RenderedJob> colon =
      RenderRunSub(spec, *config, {.runner_path = "evalrun", .runner_image = "img:1"});
  CHECK(absl::StrContains(colon.status().message(), "pyxis --container-mounts cannot carry"));
}

TEST_CASE("the executor renders the configured path, the image step and the upload path") {
  TempDir dir;
  const std::string own = dir.path + "/evalrun";
  std::ofstream(own) << kFakeRunner;
  SlurmExecutor executor(ExecutorContext{.runner_path = own});

  YAML::Node e = Execution();
  JobSpec spec = NativeSpec(e);
  // The default for a remote cluster: evald's evalrun, copied, named by its checksum.
  const std::string uploaded =
      absl::StrCat("/scratch/evals/.evald-runner/evalrun-", std::string(kFakeSha).substr(0, 16));
  absl::StatusOr<RenderedJob> job = executor.Render(spec);
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  CHECK(absl::StrContains(job->script, " --ntasks 1 " + uploaded + " --plan "));
  CHECK(executor.Validate(spec).ok());
  e["output_dir"] = "/scratch/evals/";  // a trailing slash changes nothing
  CHECK(absl::StrContains(executor.Render(NativeSpec(e))->script, " " + uploaded + " --plan "));

  e["runner"] = YAML::Load("{path: /opt/tools/evalrun}");
  CHECK(absl::StrContains(executor.Render(NativeSpec(e))->script,
                          " --ntasks 1 /opt/tools/evalrun --plan "));
  e["runner"] = YAML::Load("{image: 'nvcr.io/me/evalrun:1.2'}");
  CHECK(absl::StrContains(executor.Render(NativeSpec(e))->script,
                          "--container-image nvcr.io/me/evalrun:1.2 --container-env API_KEY "
                          "--container-mounts "));
  e["hostname"] = "";
  e.remove("runner");
  CHECK(absl::StrContains(executor.Render(NativeSpec(e))->script, " --ntasks 1 " + own + " "));

  // A rebuilt evalrun gets a new name, so jobs never run a stale copy.
  std::ofstream(own) << "other\n";
  fs::last_write_time(own, fs::last_write_time(own) + std::chrono::seconds(2));
  CHECK(absl::StrContains(executor.Render(spec)->script,
                          "/scratch/evals/.evald-runner/evalrun-7e4fa2eb8c7ac089 --plan "));

  // Upload without a file to copy, or without output_dir: refused at Validate (Submit).
  SlurmExecutor missing(ExecutorContext{.runner_path = dir.path + "/nope"});
  CHECK(missing.Validate(spec).message() ==
        absl::StrCat("execution.runner: upload: evald's evalrun '", dir.path,
                     "/nope' is not a file (set runner_path in the evald config), or give "
                     "execution.runner.path or execution.runner.image"));
  JobSpec container = spec;
  container.native = false;
  container.image = "nvcr.io/nvidia/eval-factory/simple-evals:25.08";
  container.container_command = "true";
  CHECK(missing.Validate(container).ok());  // a harness container needs no evalrun
  YAML::Node no_dir = Execution();
  no_dir.remove("output_dir");
  CHECK(executor.Validate(NativeSpec(no_dir)).message() ==
        "execution.runner: upload needs execution.output_dir, an absolute path on the cluster "
        "(evalrun goes to <output_dir>/.evald-runner/)");
}

TEST_CASE("InstallFile copies once, whole and 0755, and replaces a copy with another checksum") {
  TempDir dir;
  const std::string local = dir.path + "/evalrun";
  std::ofstream(local) << kFakeRunner;
  absl::StatusOr<std::string> sha = FileSha256(local);
  REQUIRE(sha.ok());
  CHECK(*sha == kFakeSha);
  CHECK(FileSha256(dir.path + "/nope").status().code() == absl::StatusCode::kFailedPrecondition);

  ClusterPool pool;
  SlurmCluster& cluster = pool.Get({});  // this machine: the same commands through bash
  const std::string remote = dir.path + "/out/.evald-runner/evalrun-d7b3dcf69894f173";
  absl::StatusOr<bool> copied = cluster.InstallFile(local, *sha, remote);
  INFO(copied.status().ToString());
  REQUIRE(copied.ok());
  CHECK(*copied);
  CHECK(Slurp(remote) == kFakeRunner);
  CHECK((fs::status(remote).permissions() & fs::perms::all) ==
        (fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
         fs::perms::others_read | fs::perms::others_exec));
  // Nothing left beside it (the temporary name was renamed).
  CHECK(std::distance(fs::directory_iterator(dir.path + "/out/.evald-runner"),
                      fs::directory_iterator()) == 1);

  // There with the right checksum: not copied again (a new executor's first check).
  struct stat before {};
  REQUIRE(stat(remote.c_str(), &before) == 0);
  copied = cluster.InstallFile(local, *sha, remote);
  REQUIRE(copied.ok());
  CHECK_FALSE(*copied);
  struct stat after {};
  REQUIRE(stat(remote.c_str(), &after) == 0);
  CHECK(after.st_ino == before.st_ino);
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);

  // A truncated or foreign file of that name is replaced.
  std::ofstream(remote) << "#!/bin/sh\n";
  copied = cluster.InstallFile(local, *sha, remote);
  REQUIRE(copied.ok());
  CHECK(*copied);
  CHECK(Slurp(remote) == kFakeRunner);

  // A checksum the copy does not have: refused on the cluster, nothing left behind.
  const std::string other = dir.path + "/out/.evald-runner/evalrun-7e4fa2eb8c7ac089";
  absl::StatusOr<bool> wrong = cluster.InstallFile(
      local, "7e4fa2eb8c7ac089739d5defc4489fad68a100d92082ca35c6b40a4524821f87", other);
  CHECK(wrong.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(absl::StrContains(wrong.status().message(), "the copy failed or its sha256 differs"));
  CHECK_FALSE(fs::exists(other));
  CHECK(std::distance(fs::directory_iterator(dir.path + "/out/.evald-runner"),
                      fs::directory_iterator()) == 1);
  CHECK(cluster.InstallFile(local, "not-hex; rm -rf /", other).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(cluster.InstallFile(dir.path + "/nope", *sha, other).status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace evald::executors
