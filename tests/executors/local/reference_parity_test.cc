// Reference parity: the server command evald hands to an executor must be the one the reference
// launcher renders for the same config (peer-launcher §1.3 and §3.2: the SLURM executor passes
// the composed `deployment.command` to `srun ... <command> &`). The group files are the
// reference's own (testdata/, copied verbatim), composed by hand with the reference examples'
// values; evald's packaged trtllm/command groups are checked the same way.
#include <catch2/catch.hpp>
#include <string>

#include "core/deployment/deployment_spec.h"
#include "executors/local/local_launch.h"
#include "tests/core/deployment/hand_compose.h"

namespace evald::deployment {
namespace {

using testing::HandCompose;

const std::string kTestData = std::string(EVALD_SOURCE_DIR) + "/tests/core/deployment/testdata/";
const std::string kConfigs = std::string(EVALD_SOURCE_DIR) + "/configs/deployment/";

DeploymentSpec Composed(const std::string& group, const std::string& example) {
  auto spec = ParseDeploymentSpec(HandCompose(group, example), YAML::Node());
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return *spec;
}

// examples/slurm_llama_3_1_8b_instruct.yaml
constexpr char kSlurmExample[] = R"(
checkpoint_path: /some/filesystem/path/available/to/slurm/node
served_model_name: meta-llama/Llama-3.1-8B-Instruct
tensor_parallel_size: 1
data_parallel_size: 8
)";

// examples/slurm_llama_3_1_8b_instruct_hf.yaml
constexpr char kSlurmHfExample[] = R"(
checkpoint_path: null
hf_model_handle: meta-llama/Llama-3.1-8B-Instruct
served_model_name: meta-llama/Llama-3.1-8B-Instruct
tensor_parallel_size: 1
data_parallel_size: 8
)";

TEST_CASE("vllm command matches the reference (checkpoint example)", "[parity]") {
  DeploymentSpec spec = Composed(kTestData + "reference_vllm.yaml", kSlurmExample);
  // The folded YAML scalar ends in `${deployment.extra_args}` = "", hence the trailing space.
  CHECK(ReferenceCommand(spec) ==
        "vllm serve /checkpoint --tensor-parallel-size=1 --pipeline-parallel-size=1 "
        "--data-parallel-size=8 --port 8000 --trust-remote-code --served-model-name "
        "meta-llama/Llama-3.1-8B-Instruct --enforce-eager --gpu-memory-utilization 0.95 ");
  CHECK(spec.image == "vllm/vllm-openai:latest");
  CHECK(spec.port == 8000);
  CHECK(EndpointUrl(spec, spec.port, "chat") == "http://127.0.0.1:8000/v1/chat/completions");
  CHECK(HealthUrl(spec, spec.port) == "http://127.0.0.1:8000/health");
}

TEST_CASE("vllm command matches the reference (HF handle example)", "[parity]") {
  DeploymentSpec spec = Composed(kTestData + "reference_vllm.yaml", kSlurmHfExample);
  CHECK(ReferenceCommand(spec) ==
        "vllm serve meta-llama/Llama-3.1-8B-Instruct --tensor-parallel-size=1 "
        "--pipeline-parallel-size=1 --data-parallel-size=8 --port 8000 --trust-remote-code "
        "--served-model-name meta-llama/Llama-3.1-8B-Instruct --enforce-eager "
        "--gpu-memory-utilization 0.95 ");
  CHECK(spec.checkpoint_path.empty());
}

TEST_CASE("vllm extra_args land at the end (lepton example values)", "[parity]") {
  DeploymentSpec spec = Composed(kTestData + "reference_vllm.yaml", R"(
checkpoint_path: meta-llama/Llama-3.1-8B-Instruct
served_model_name: llama-3.1-8b-instruct
tensor_parallel_size: 1
pipeline_parallel_size: 1
data_parallel_size: 1
extra_args: "--gpu-memory-utilization 0.95 --trust-remote-code"
)");
  CHECK(ReferenceCommand(spec) ==
        "vllm serve /checkpoint --tensor-parallel-size=1 --pipeline-parallel-size=1 "
        "--data-parallel-size=1 --port 8000 --trust-remote-code --served-model-name "
        "llama-3.1-8b-instruct --enforce-eager --gpu-memory-utilization 0.95 "
        "--gpu-memory-utilization 0.95 --trust-remote-code");
}

TEST_CASE("sglang command matches the reference", "[parity]") {
  DeploymentSpec spec = Composed(kTestData + "reference_sglang.yaml", kSlurmExample);
  CHECK(ReferenceCommand(spec) ==
        "python3 -m sglang.launch_server --model-path /checkpoint --host 0.0.0.0 --port 8000 "
        "--served-model-name meta-llama/Llama-3.1-8B-Instruct --tp 1 --dp 8 ");
  CHECK(spec.image == "lmsysorg/sglang:latest");

  DeploymentSpec hf = Composed(kTestData + "reference_sglang.yaml", kSlurmHfExample);
  CHECK(ReferenceCommand(hf) ==
        "python3 -m sglang.launch_server --model-path meta-llama/Llama-3.1-8B-Instruct --host "
        "0.0.0.0 --port 8000 --served-model-name meta-llama/Llama-3.1-8B-Instruct --tp 1 --dp "
        "8 ");
}

TEST_CASE("nim has no command: the container entrypoint serves", "[parity]") {
  // examples/lepton_nim_llama_3_1_8b_instruct.yaml
  DeploymentSpec spec = Composed(kTestData + "reference_nim.yaml", R"(
image: nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6
served_model_name: meta/llama-3.1-8b-instruct
)");
  CHECK(spec.type == DeploymentType::kNim);
  CHECK(ReferenceCommand(spec).empty());
  CHECK(spec.port == 8000);
  CHECK(EndpointUrl(spec, 8000, "completions") == "http://127.0.0.1:8000/v1/completions");
  CHECK(HealthUrl(spec, 8000) == "http://127.0.0.1:8000/health");
}

TEST_CASE("trtllm: evald's group renders the reference's (PR #278) command", "[parity]") {
  constexpr char kExample[] = R"(
checkpoint_path: /lustre/models/llama-3.1-8b-instruct
served_model_name: meta-llama/Llama-3.1-8B-Instruct
tensor_parallel_size: 8
)";
  const std::string expected =
      "mpirun --allow-run-as-root --oversubscribe trtllm-serve serve /checkpoint --tp_size=8 "
      "--pp_size=1 --host 0.0.0.0 --port 8000 --backend pytorch --trust_remote_code ";
  DeploymentSpec reference = Composed(kTestData + "reference_trtllm.yaml", kExample);
  DeploymentSpec ours = Composed(kConfigs + "trtllm.yaml", kExample);
  CHECK(ReferenceCommand(reference) == expected);
  CHECK(ReferenceCommand(ours) == expected);
  CHECK(ours.image == "nvcr.io/nvidia/tensorrt-llm/release:1.0.0");
  CHECK(ours.image == reference.image);
  CHECK(ours.endpoints == reference.endpoints);
  CHECK(ours.no_health_wait_s == 60);
  CHECK(ours.pipeline_parallel_size == 1);
}

TEST_CASE("the command group picks a free port through ${EVALD_PORT}", "[parity]") {
  DeploymentSpec spec = Composed(kConfigs + "command.yaml", R"(
command: ref-endpoint --host 127.0.0.1 --port ${deployment.port} --model ${deployment.served_model_name}
served_model_name: ref-model
)");
  CHECK(spec.type == DeploymentType::kCommand);
  CHECK(spec.port_auto);
  CHECK(ReferenceCommand(spec) ==
        "ref-endpoint --host 127.0.0.1 --port ${EVALD_PORT} --model ref-model");
  CHECK(spec.endpoints.at("health") == "/health");
  CHECK(spec.image.empty());

  LaunchEnvironment env;
  env.has_binary = [](const std::string& name) { return name == "ref-endpoint"; };
  auto launch = RenderLocalLaunch(spec, 43210, env, "evald-demo-d0");
  REQUIRE(launch.ok());
  CHECK(launch->shell_command == ReferenceCommand(spec));
  CHECK(launch->env.at("EVALD_PORT") == "43210");
  CHECK(HealthUrl(spec, 43210) == "http://127.0.0.1:43210/health");
}

TEST_CASE("the command group's ??? values must be set", "[parity]") {
  auto spec = ParseDeploymentSpec(HandCompose(kConfigs + "command.yaml", "{}"), YAML::Node());
  REQUIRE_FALSE(spec.ok());
  CHECK(spec.status().message() ==
        "deployment.served_model_name: missing mandatory value `???` (set it in the config or "
        "with -o)");
}

}  // namespace
}  // namespace evald::deployment

namespace evald::deployment {
namespace {

// The example a new user starts from must compose into a valid, locally launchable deployment.
TEST_CASE("examples/local_vllm.yaml serves its HF model on a picked port", "[parity]") {
  const YAML::Node example =
      YAML::LoadFile(std::string(EVALD_SOURCE_DIR) + "/examples/local_vllm.yaml");
  YAML::Emitter deployment;
  deployment << example["deployment"];
  DeploymentSpec spec = Composed(kConfigs + "vllm.yaml", deployment.c_str());
  CHECK(spec.port_auto);
  CHECK(spec.readiness_timeout_s == 1200);
  CHECK(ReferenceCommand(spec) ==
        "vllm serve Qwen/Qwen2.5-1.5B-Instruct --tensor-parallel-size=1 "
        "--pipeline-parallel-size=1 --data-parallel-size=1 --port ${EVALD_PORT} "
        "--trust-remote-code --served-model-name qwen2.5-1.5b-instruct --enforce-eager "
        "--gpu-memory-utilization 0.95 --max-model-len 8192");

  LaunchEnvironment env;
  env.has_binary = [](const std::string& name) { return name == "vllm"; };
  auto launch = RenderLocalLaunch(spec, 40001, env, "evald-x-d0");
  REQUIRE(launch.ok());
  CHECK_FALSE(launch->container);
  CHECK(launch->env.at("EVALD_PORT") == "40001");
}

}  // namespace
}  // namespace evald::deployment
