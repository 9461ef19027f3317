// The SLURM executor's first piece: ParseSlurmConfig and RenderRunSub. run.sub for the reference's
// slurm_no_deployment_* examples carries the #SBATCH flags and srun step the reference renders
// (peer-launcher §3.2), passes `bash -n`, never holds a secret value, and keeps hostile values
// one word for both readers of the file: bash (the script) and sbatch (the #SBATCH lines).
#include "executors/slurm/run_sub.h"

#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/config/run_config.h"
#include "executors/slurm/slurm_config.h"
#include "executors/slurm/slurm_executor.h"
#include "tests/core/config/test_util.h"
#include "tests/core/deployment/hand_compose.h"
#include "yaml-cpp/yaml.h"

namespace evald::executors {
namespace {

namespace ct = config::testing;

// The execution section of a reference example, composed as evald composes it.
std::string ExampleExecution(const std::string& example, std::vector<std::string> overrides = {}) {
  overrides.push_back("execution.hostname=login");
  overrides.push_back("execution.account=acct");
  absl::StatusOr<YAML::Node> composed =
      ct::ComposeText(ct::ReadText(ct::PeerExamplesDir() + "/" + example), overrides,
                      ct::FixedEnv({{"USER", "alice"}}));
  INFO(composed.status().ToString());
  REQUIRE(composed.ok());
  return YAML::Dump((*composed)["execution"]);
}

std::vector<std::string> ExampleTasks(const std::string& example) {
  YAML::Node root = YAML::Load(ct::ReadText(ct::PeerExamplesDir() + "/" + example));
  std::vector<std::string> out;
  for (const YAML::Node& t : root["evaluation"]["tasks"]) out.push_back(t["name"].Scalar());
  return out;
}

JobSpec NativeSpec(const std::string& task, const std::string& execution_yaml) {
  JobSpec spec;
  spec.job_id = "inv00001.0";
  spec.invocation_id = "inv00001";
  spec.task = task;
  spec.task_dir = "/scratch/evald/20260101_000000-inv00001/" + task;
  spec.native = true;
  spec.plan_yaml = "task: " + task + "\n";
  spec.env_vars = {{"API_KEY", "API_KEY"}};
  spec.execution_yaml = execution_yaml;
  return spec;
}

JobSpec ContainerSpec(const std::string& task, const std::string& execution_yaml) {
  JobSpec spec = NativeSpec(task, execution_yaml);
  spec.native = false;
  spec.image = "nvcr.io/nvidia/eval-factory/simple-evals:25.08";
  spec.container_command = "nv_eval run_eval --output_dir /results --model_id 'm'";
  spec.env_vars = {{"API_KEY", "API_KEY"}, {"HF_TOKEN", "HF_TOKEN_FOR_GPQA_DIAMOND"}};
  return spec;
}

std::string Render(const JobSpec& spec) {
  absl::StatusOr<SlurmConfig> config = ParseSlurmConfig(spec.execution_yaml);
  INFO(config.status().ToString());
  REQUIRE(config.ok());
  absl::StatusOr<RenderedJob> job = RenderRunSub(spec, *config, {.runner_path = "evalrun"});
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  return job->script;
}

// sbatch's reading of one #SBATCH line (src/sbatch/opt.c, _get_argument): words split on blanks,
// '...' and "..." quote, a backslash escapes the next byte, an unquoted '#' ends the line.
std::vector<std::string> SbatchWords(const std::string& line) {
  std::vector<std::string> words;
  size_t i = std::string("#SBATCH").size();
  while (i < line.size()) {
    while (i < line.size() && isspace(static_cast<unsigned char>(line[i]))) ++i;
    if (i >= line.size() || line[i] == '#') break;
    std::string word;
    char quote = 0;
    bool escape = false;
    for (; i < line.size() && (quote || !isspace(static_cast<unsigned char>(line[i]))); ++i) {
      const char c = line[i];
      if (escape) {
        escape = false;
      } else if (c == '\\') {
        escape = true;
        continue;
      } else if (quote) {
        if (c == quote) {
          quote = 0;
          continue;
        }
      } else if (c == '"' || c == '\'') {
        quote = c;
        continue;
      } else if (c == '#') {
        break;
      }
      word += c;
    }
    words.push_back(word);
  }
  return words;
}

// flag -> value of every #SBATCH line ("" for a bare flag), in order.
std::vector<std::pair<std::string, std::string>> SbatchFlags(const std::string& script) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view line : absl::StrSplit(script, '\n')) {
    if (!absl::StartsWith(line, "#SBATCH")) continue;
    std::vector<std::string> words = SbatchWords(std::string(line));
    REQUIRE(!words.empty());
    REQUIRE(words.size() <= 2);
    out.emplace_back(words[0], words.size() == 2 ? words[1] : "");
  }
  return out;
}

std::map<std::string, std::string> FlagMap(const std::string& script) {
  std::map<std::string, std::string> m;
  for (const auto& [flag, value] : SbatchFlags(script)) m[flag] = value;
  return m;
}

// `bash -n` on the script: 0 when bash can parse it.
int BashSyntax(const std::string& script) {
  char path[] = "/tmp/evald-run-sub-XXXXXX";
  int fd = mkstemp(path);
  REQUIRE(fd >= 0);
  FILE* f = fdopen(fd, "w");
  fwrite(script.data(), 1, script.size(), f);
  fclose(f);
  int rc = std::system(absl::StrCat("bash -n ", path, " 2>/dev/null").c_str());
  std::remove(path);
  return rc;
}

const char* const kNoDeploymentExamples[] = {
    "slurm_no_deployment_llama_3_1_8b_instruct.yaml",
    "slurm_no_deployment_llama_nemotron_super_v1_nemotron_benchmarks.yaml"};

TEST_CASE("run.sub of the no-deployment examples carries the reference's SBATCH flags") {
  for (const char* example : kNoDeploymentExamples) {
    const std::string execution = ExampleExecution(example);
    for (const std::string& task : ExampleTasks(example)) {
      for (const JobSpec& spec : {NativeSpec(task, execution), ContainerSpec(task, execution)}) {
        INFO(example << " " << task << (spec.native ? " native" : " container"));
        const std::string script = Render(spec);
        INFO(script);
        CHECK(absl::StartsWith(script, "#!/bin/bash\n#SBATCH --time 02:00:00\n"));
        auto flags = FlagMap(script);
        // §3.2, in the example's values: walltime, account, partition, nodes, tasks per node,
        // gres (slurm/default's gpu:8: emitted whenever the key is set), no --gpus-per-node
        // (null), --exclusive, the output file under the task dir.
        CHECK(flags["--time"] == "02:00:00");
        CHECK(flags["--account"] == "acct");
        CHECK(flags["--partition"] == "cpu_short");
        CHECK(flags["--nodes"] == "1");
        CHECK(flags["--ntasks-per-node"] == "1");
        CHECK(flags["--gres"] == "gpu:8");
        CHECK(flags.count("--gpus-per-node") == 0);
        CHECK(flags.count("--exclusive") == 1);
        CHECK(flags["--exclusive"].empty());
        CHECK(flags["--output"] == spec.task_dir + "/logs/slurm-%A.out");
        // evald's additions: the job found again by name and comment; SLURM never requeues.
        CHECK(flags["--job-name"] == "evald-inv00001.0-a1");
        CHECK(flags["--comment"] == "evald job inv00001.0 attempt 1");
        CHECK(flags.count("--no-requeue") == 1);
        CHECK(BashSyntax(script) == 0);
        if (spec.native) {
          CHECK(absl::StrContains(
              script,
              "srun --overlap --nodes 1 --ntasks 1 evalrun --plan \"$task_dir/plan.yaml\""));
        } else {
          // The client step of §3.2: pyxis image, results mount, env names only.
          CHECK(
              absl::StrContains(script,
                                "srun --mpi pmix --overlap --nodes 1 --ntasks 1 --container-image "
                                "nvcr.io/nvidia/eval-factory/simple-evals:25.08 --container-env "
                                "API_KEY,HF_TOKEN --container-mounts " +
                                    spec.task_dir + "/artifacts:/results bash -c "));
          CHECK_FALSE(absl::StrContains(script, "--no-container-mount-home"));
        }
        // Stage files and the job's exit code are the evaluation's.
        CHECK(absl::StrContains(script, "\"$task_dir/logs/stage.running\""));
        CHECK(absl::StrContains(script, "\"$task_dir/logs/stage.exit\""));
        CHECK(absl::EndsWith(script, "finish \"$?\"\n"));
        // Secrets by name from the 0600 file; the host variable's name never matters here.
        CHECK(absl::StrContains(script, "set -a; source \"$task_dir/secrets.env\""));
        CHECK_FALSE(absl::StrContains(script, "HF_TOKEN_FOR_GPQA_DIAMOND"));
      }
    }
  }
}

TEST_CASE("execution keys of the slurm examples reach run.sub") {
  // slurm_llama_3_1_8b_instruct_hf: mount_home false drops the home mount from the client step.
  const std::string hf = ExampleExecution("slurm_llama_3_1_8b_instruct_hf.yaml");
  CHECK(absl::StrContains(Render(ContainerSpec("ifeval", hf)), " --no-container-mount-home "));
  CHECK(FlagMap(Render(NativeSpec("ifeval", hf)))["--time"] == "00:30:00");
  // The deployment's literal HF_TOKEN value is for the server, which this piece does not render.
  CHECK_FALSE(absl::StrContains(Render(ContainerSpec("ifeval", hf)), "hf_your_token"));

  YAML::Node e = YAML::Load(ExampleExecution(kNoDeploymentExamples[0]));
  e["gpus_per_node"] = 8;
  e["gres"] = YAML::Node(YAML::NodeType::Null);
  e["num_nodes"] = 2;
  e["sbatch_comment"] = "nightly run";
  e["sbatch_extra_flags"]["qos"] = "high";
  e["sbatch_extra_flags"]["exclusive"] = false;
  e["sbatch_extra_flags"]["overcommit"] = true;
  e["env_vars"]["evaluation"]["MODE"] = "a b";
  e["mounts"]["evaluation"]["/data/sets"] = "/datasets";
  const std::string execution = YAML::Dump(e);
  const std::string native = Render(NativeSpec("ifeval", execution));
  auto flags = FlagMap(native);
  CHECK(flags["--gpus-per-node"] == "8");
  CHECK(flags.count("--gres") == 0);
  CHECK(flags["--nodes"] == "2");
  CHECK(flags["--qos"] == "high");
  CHECK(flags.count("--exclusive") == 0);
  CHECK(flags.count("--overcommit") == 1);
  CHECK(flags["--comment"] == "evald job inv00001.0 attempt 1; nightly run");
  CHECK(absl::StrContains(native, "export MODE='a b'\n"));
  const std::string container = Render(ContainerSpec("ifeval", execution));
  CHECK(absl::StrContains(container, "--container-env API_KEY,HF_TOKEN,MODE "));
  CHECK(absl::StrContains(container, "/artifacts:/results,/data/sets:/datasets "));
  CHECK(BashSyntax(container) == 0);
}

TEST_CASE("the job name carries the job id and attempt and nothing else") {
  JobSpec spec = NativeSpec("ifeval", ExampleExecution(kNoDeploymentExamples[0]));
  spec.attempt = 3;
  CHECK(FlagMap(Render(spec))["--job-name"] == "evald-inv00001.0-a3");
  CHECK(SlurmJobName("a b/$(x)\n", 2) == "evald-a-b---x---a2");
}

TEST_CASE("hostile values stay single words in bash and in sbatch") {
  const std::string hostile = "x$(touch /tmp/evald-pwned)`id` 'q' \"d\" #c;y";
  YAML::Node execution = YAML::Load(ExampleExecution(kNoDeploymentExamples[0]));
  execution["account"] = hostile;
  execution["partition"] = hostile;
  execution["sbatch_comment"] = hostile;
  JobSpec spec = ContainerSpec(hostile, YAML::Dump(execution));
  spec.job_id = hostile;
  spec.image = hostile;
  const std::string script = Render(spec);
  INFO(script);
  auto flags = SbatchFlags(script);  // REQUIREs one value per flag
  auto map = FlagMap(script);
  CHECK(map["--account"] == hostile);
  CHECK(map["--partition"] == hostile);
  CHECK(map["--comment"] == absl::StrCat("evald job ", hostile, " attempt 1; ", hostile));
  CHECK(map["--job-name"].find_first_of("$`'\" #;()") == std::string::npos);
  CHECK(BashSyntax(script) == 0);
  // Run the script with a stand-in srun that records its words: nothing expands, the image is
  // one argument, and the exit code is the step's.
  char dir[] = "/tmp/evald-slurm-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string bin = absl::StrCat(dir, "/bin");
  spec.task_dir = absl::StrCat(dir, "/task");
  const std::string run = Render(spec);
  REQUIRE(std::system(absl::StrCat("mkdir -p ", bin, " ", spec.task_dir).c_str()) == 0);
  {
    std::ofstream(spec.task_dir + "/secrets.env") << "API_KEY=sekrit\nHF_TOKEN=hf\n";
    std::ofstream(spec.task_dir + "/run.sub") << run;
    std::ofstream(bin + "/srun") << "#!/bin/bash\nprintf '%s\\n' \"$@\" > " << dir
                                 << "/srun.args\necho \"$API_KEY\" > " << dir
                                 << "/srun.env\nexit 7\n";
  }
  REQUIRE(std::system(absl::StrCat("chmod +x ", bin, "/srun").c_str()) == 0);
  int rc = std::system(absl::StrCat("cd ", dir, " && env PATH=", bin, ":/usr/bin:/bin bash ",
                                    spec.task_dir, "/run.sub >/dev/null 2>&1")
                           .c_str());
  CHECK(WIFEXITED(rc));
  CHECK(WEXITSTATUS(rc) == 7);
  CHECK_FALSE(std::ifstream("/tmp/evald-pwned").good());
  std::string args = ct::ReadText(absl::StrCat(dir, "/srun.args"));
  CHECK(absl::StrContains(args, "\n--container-image\n" + hostile + "\n"));
  CHECK(ct::ReadText(absl::StrCat(dir, "/srun.env")) == "sekrit\n");
  CHECK(absl::StrContains(ct::ReadText(spec.task_dir + "/logs/stage.exit"), " 7"));
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

TEST_CASE("values an #SBATCH line cannot carry are refused, naming the key") {
  YAML::Node execution = YAML::Load(ExampleExecution(kNoDeploymentExamples[0]));
  auto error = [&](const char* key, const std::string& value) {
    YAML::Node e = YAML::Clone(execution);
    e[key] = value;
    absl::StatusOr<SlurmConfig> c = ParseSlurmConfig(YAML::Dump(e));
    return c.ok() ? std::string("<ok>") : std::string(c.status().message());
  };
  CHECK(absl::StartsWith(error("account", "a\nb"), "execution.account: "));
  CHECK(absl::StartsWith(error("partition", "p\\q"), "execution.partition: "));
  CHECK(absl::StartsWith(error("walltime", "1h"), "execution.walltime: '1h' is not a SLURM time"));
  CHECK(absl::StartsWith(error("max_walltime", "forever"), "execution.max_walltime: "));
  CHECK(absl::StartsWith(error("num_nodes", "zero"), "execution.num_nodes: expected an integer"));
  CHECK(absl::StartsWith(error("poll_interval", "-1"), "execution.poll_interval: "));
  CHECK(absl::StartsWith(error("max_resumes", "-2"), "execution.max_resumes: "));
  CHECK(absl::StartsWith(error("account", ""), "execution.account: missing"));

  YAML::Node flags = YAML::Clone(execution);
  flags["sbatch_extra_flags"]["bad flag"] = "x";
  CHECK(absl::StartsWith(std::string(ParseSlurmConfig(YAML::Dump(flags)).status().message()),
                         "execution.sbatch_extra_flags.bad flag: "));
  YAML::Node mounts = YAML::Clone(execution);
  mounts["mounts"]["evaluation"]["/a,b"] = "/c";
  CHECK(absl::StartsWith(std::string(ParseSlurmConfig(YAML::Dump(mounts)).status().message()),
                         "execution.mounts.evaluation: "));

  absl::StatusOr<SlurmConfig> ok = ParseSlurmConfig(YAML::Dump(execution));
  REQUIRE(ok.ok());
  CHECK(ok->max_resumes == 0);
  CHECK(ok->poll_interval_s == 30);
  CHECK(ok->username == "alice");
  CHECK(ok->hostname == "login");
}

TEST_CASE("the executor renders, and Start writes the job dir and reports an unreachable cluster") {
  SlurmExecutor executor(ExecutorContext{.runner_path = "/opt/evald/bin/own-evalrun"});
  YAML::Node execution = YAML::Load(ExampleExecution(kNoDeploymentExamples[0]));
  execution["runner"]["path"] = "/opt/evald/bin/evalrun";  // (slurm_runner_test.cc: the others)
  JobSpec spec = NativeSpec("ifeval", YAML::Dump(execution));
  CHECK(executor.Validate(spec).ok());
  absl::StatusOr<RenderedJob> job = executor.Render(spec);
  REQUIRE(job.ok());
  CHECK(absl::StrContains(job->script, " /opt/evald/bin/evalrun --plan "));
  CHECK(job->plan == spec.plan_yaml);
  char tmpl[] = "/tmp/evald-slurm-start-XXXXXX";
  REQUIRE(mkdtemp(tmpl) != nullptr);
  spec.task_dir = std::string(tmpl) + "/task";
  absl::StatusOr<JobHandle> started = executor.Start(spec, {{"API_KEY", "sekrit"}});
  CHECK(started.status().code() == absl::StatusCode::kUnavailable);
  CHECK(absl::StrContains(started.status().message(), "cannot copy the job files to login:"));
  CHECK_FALSE(absl::StrContains(started.status().message(), "sekrit"));
  std::ifstream in(spec.task_dir + "/run.sub");
  std::string script((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(absl::StartsWith(script, "#!/bin/bash\n#SBATCH "));
  CHECK_FALSE(absl::StrContains(script, "sekrit"));
  std::system((std::string("rm -rf ") + tmpl).c_str());
  CHECK(executor.Poll({JobRef{.job_id = spec.job_id}}).empty());
  // The model server runs inside each job, not as a deployment of its own.
  CHECK(executor.deployments() == nullptr);
  CHECK(executor.DeploysInJob());

  HandleInfo info = executor.Describe(
      EncodeSlurmHandle({.hostname = "login", .slurm_job_id = "4242", .task_dir = "/t"}));
  CHECK(info.backend_id == "slurm 4242");
  CHECK(info.details ==
        std::vector<std::pair<std::string, std::string>>{{"cluster", "login"}, {"task dir", "/t"}});
  // No job polled yet: no cluster asked.
  CHECK(executor.Describe(JobHandle{.executor = "local", .state = "{}"}).backend_id.empty());

  spec.execution_yaml = "account: a\nwalltime: soon\n";
  CHECK(executor.Validate(spec).message() ==
        "execution.walltime: 'soon' is not a SLURM time (minutes, HH:MM:SS or D-HH:MM:SS)");
}

// The reference's vllm group with an example's deployment values (slurm_llama_3_1_8b_instruct*).
deployment::DeploymentSpec Vllm(const std::string& example_values) {
  auto spec = deployment::ParseDeploymentSpec(
      deployment::testing::HandCompose(
          std::string(EVALD_SOURCE_DIR) + "/tests/core/deployment/testdata/reference_vllm.yaml",
          example_values),
      YAML::Node());
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return *spec;
}

std::string RenderWith(const JobSpec& spec, const deployment::DeploymentSpec& d) {
  absl::StatusOr<SlurmConfig> config = ParseSlurmConfig(spec.execution_yaml);
  REQUIRE(config.ok());
  absl::StatusOr<RenderedJob> job =
      RenderRunSub(spec, *config, {.runner_path = "evalrun", .deployment = &d});
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  return job->script;
}

TEST_CASE("a deployment runs as an srun step in the job with the reference's container flags") {
  deployment::DeploymentSpec d = Vllm(R"(
checkpoint_path: /some/filesystem/path/available/to/slurm/node
served_model_name: meta-llama/Llama-3.1-8B-Instruct
tensor_parallel_size: 1
data_parallel_size: 8
)");
  const std::string execution = ExampleExecution("slurm_llama_3_1_8b_instruct.yaml");
  const std::string script = RenderWith(ContainerSpec("ifeval", execution), d);
  INFO(script);
  // §3.2: srun --mpi pmix --overlap --container-image <image> --container-mounts
  // <checkpoint>:/checkpoint:ro --output <task_dir>/logs/server-%A.out <command> &
  CHECK(absl::StrContains(
      script,
      "srun --mpi pmix --overlap --nodes 1 --ntasks 1 --container-image vllm/vllm-openai:latest "
      "--container-mounts /some/filesystem/path/available/to/slurm/node:/checkpoint:ro "
      "--output \"$task_dir/logs/server-%A.out\" bash -c 'vllm serve /checkpoint "
      "--tensor-parallel-size=1 --pipeline-parallel-size=1 --data-parallel-size=8 --port 8000 "));
  CHECK(absl::StrContains(script, "' &\nserver_pid=$!\n"));
  // The health loop of §3.2 (curl for 200, fail when the server step died), plus a timeout.
  CHECK(absl::StrContains(script,
                          "curl -s -o /dev/null -m 10 -w '%{http_code}' "
                          "http://127.0.0.1:8000/health)\" = 200 ]"));
  CHECK(absl::StrContains(script, "deadline=$((SECONDS + 600))"));
  CHECK(absl::StrContains(script, "model server exited before it became healthy"));
  // Server before the evaluation, stopped after it; the job's code is the evaluation's.
  CHECK(script.find("server_pid=$!") < script.find("--container-image nvcr.io"));
  CHECK(absl::EndsWith(script, "code=$?\nstop_server\nfinish \"$code\"\n"));
  CHECK(BashSyntax(script) == 0);

  // The HF example: no checkpoint mount, no home mount, server env by name.
  deployment::DeploymentSpec hf = Vllm(R"(
checkpoint_path: null
hf_model_handle: meta-llama/Llama-3.1-8B-Instruct
served_model_name: meta-llama/Llama-3.1-8B-Instruct
tensor_parallel_size: 1
data_parallel_size: 8
)");
  hf.env_vars = {{"HF_HOME", "/cache/hf"}};
  hf.secret_env_vars = {{"HF_TOKEN", "MY_HF_TOKEN"}};
  const std::string hf_script =
      RenderWith(NativeSpec("ifeval", ExampleExecution("slurm_llama_3_1_8b_instruct_hf.yaml")), hf);
  INFO(hf_script);
  CHECK(absl::StrContains(hf_script,
                          "--container-image vllm/vllm-openai:latest "
                          "--no-container-mount-home --container-env HF_HOME,HF_TOKEN "
                          "--output "));
  CHECK(absl::StrContains(hf_script, "export HF_HOME=/cache/hf\n"));
  CHECK_FALSE(absl::StrContains(hf_script, "MY_HF_TOKEN"));
  CHECK(BashSyntax(hf_script) == 0);

  d.port_auto = true;
  absl::StatusOr<SlurmConfig> config = ParseSlurmConfig(execution);
  REQUIRE(config.ok());
  CHECK(RenderRunSub(NativeSpec("ifeval", execution), *config, {.deployment = &d})
            .status()
            .message() ==
        "deployment.port: `auto` is not supported by the slurm executor (the server runs inside "
        "the job, and the evaluation's endpoint URL is fixed at submission); set a fixed port");
}

TEST_CASE("the executor renders the server of JobSpec::deployment_yaml, and refuses shared names") {
  SlurmExecutor executor(ExecutorContext{.runner_path = "evalrun"});
  JobSpec spec = NativeSpec("ifeval", ExampleExecution(kNoDeploymentExamples[0],
                                                       {"+execution.runner.path=/opt/evalrun"}));
  spec.deployment_yaml =
      "type: command\ncommand: my-server --port 8123\nport: 8123\nserved_model_name: m\n"
      "env_vars:\n  SERVER_TOKEN: $host:MY_SERVER_TOKEN\n  MODE: fast\n"
      "endpoints:\n  chat: /v1/chat/completions\n  health: /health\n"
      "endpoint_readiness_timeout: 7\n";
  absl::StatusOr<RenderedJob> job = executor.Render(spec);
  INFO(job.status().ToString());
  REQUIRE(job.ok());
  const std::string& script = job->script;
  INFO(script);
  // A bare command (no image): an srun step with no container flags and no PMIx.
  CHECK(absl::StrContains(script,
                          "srun --overlap --nodes 1 --ntasks 1 --output "
                          "\"$task_dir/logs/server-%A.out\" bash -c 'my-server --port 8123' &\n"));
  CHECK(absl::StrContains(script, "http://127.0.0.1:8123/health"));
  CHECK(absl::StrContains(script, "deadline=$((SECONDS + 7))"));
  CHECK(absl::StrContains(script, "export MODE=fast\n"));
  CHECK_FALSE(absl::StrContains(script, "MY_SERVER_TOKEN"));  // its value comes from secrets.env
  CHECK(executor.Validate(spec).ok());

  // The server and the evaluation share the job's environment: one name, one source.
  JobSpec clash = spec;
  clash.env_vars = {{"SERVER_TOKEN", "OTHER_TOKEN"}};
  CHECK(executor.Validate(clash).message() ==
        "deployment env var SERVER_TOKEN (from MY_SERVER_TOKEN) and the evaluation's SERVER_TOKEN "
        "(from OTHER_TOKEN) would be one variable in the SLURM job's environment; give both the "
        "same value or rename one");
  clash.env_vars = {{"SERVER_TOKEN", "MY_SERVER_TOKEN"}};  // the same secret: fine
  CHECK(executor.Validate(clash).ok());

  spec.deployment_yaml =
      "type: command\ncommand: s --port ${EVALD_PORT}\nport: auto\nserved_model_name: m\n";
  CHECK(absl::StartsWith(executor.Validate(spec).message(), "deployment.port: `auto` is not"));
  spec.deployment_yaml = "type: none\n";
  REQUIRE(executor.Render(spec).ok());
  CHECK_FALSE(absl::StrContains(executor.Render(spec)->script, "server_pid"));
}

TEST_CASE("the in-job health wait fails the job with a message, and a healthy server is stopped") {
  deployment::DeploymentSpec d = Vllm("served_model_name: m\ncheckpoint_path: /ckpt\n");
  d.readiness_timeout_s = 2;
  d.readiness_interval_s = 0.2;
  char dir[] = "/tmp/evald-slurm-XXXXXX";
  REQUIRE(mkdtemp(dir) != nullptr);
  const std::string bin = absl::StrCat(dir, "/bin");
  JobSpec spec = NativeSpec("ifeval", ExampleExecution(kNoDeploymentExamples[0]));
  spec.env_vars.clear();
  spec.task_dir = absl::StrCat(dir, "/task");
  const std::string script = RenderWith(spec, d);
  REQUIRE(std::system(absl::StrCat("mkdir -p ", bin, " ", spec.task_dir).c_str()) == 0);
  {
    std::ofstream(spec.task_dir + "/run.sub") << script;
    // Server step: runs for SERVER_S seconds (touching a file when stopped); evaluation: exit 5.
    std::ofstream(bin + "/srun")
        << "#!/bin/bash\ncase \"$*\" in *server-*) trap 'kill $!; touch " << dir
        << "/stopped; exit 0' TERM; sleep \"$SERVER_S\" & wait; exit 3;; esac\nexit 5\n";
    std::ofstream(bin + "/curl") << "#!/bin/bash\necho -n \"$HEALTH\"\n";
  }
  REQUIRE(std::system(absl::StrCat("chmod +x ", bin, "/srun ", bin, "/curl").c_str()) == 0);
  auto run = [&](const std::string& server_s, const std::string& health) {
    std::remove(absl::StrCat(dir, "/stopped").c_str());
    int rc = std::system(absl::StrCat("env PATH=", bin, ":/usr/bin:/bin SERVER_S=", server_s,
                                      " HEALTH=", health, " bash ", spec.task_dir,
                                      "/run.sub >/dev/null 2>", dir, "/err")
                             .c_str());
    REQUIRE(WIFEXITED(rc));
    return WEXITSTATUS(rc);
  };
  SECTION("healthy: the evaluation's code, the server stopped") {
    CHECK(run("30", "200") == 5);
    CHECK(std::ifstream(absl::StrCat(dir, "/stopped")).good());
  }
  SECTION("the server dies while starting") {
    CHECK(run("0", "000") == 1);
    CHECK(absl::StrContains(ct::ReadText(absl::StrCat(dir, "/err")),
                            "model server exited before it became healthy"));
    // The reason, one line, for evald's job message.
    CHECK(absl::StartsWith(ct::ReadText(spec.task_dir + "/logs/stage.error"),
                           "model server exited before it became healthy; see logs/server-"));
  }
  SECTION("never healthy: the readiness timeout ends the job and stops the server") {
    CHECK(run("30", "503") == 1);
    CHECK(absl::StrContains(ct::ReadText(absl::StrCat(dir, "/err")),
                            "model server not healthy at http://127.0.0.1:8000/health after 2 s"));
    CHECK(ct::ReadText(spec.task_dir + "/logs/stage.error") ==
          "model server not healthy at http://127.0.0.1:8000/health after 2 s "
          "(endpoint_readiness_timeout)\n");
    CHECK(std::ifstream(absl::StrCat(dir, "/stopped")).good());
  }
  CHECK(absl::StrContains(ct::ReadText(spec.task_dir + "/logs/stage.exit"), " "));
  std::system(absl::StrCat("rm -rf ", dir).c_str());
}

}  // namespace
}  // namespace evald::executors
