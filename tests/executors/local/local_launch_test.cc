#include "executors/local/local_launch.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "yaml-cpp/yaml.h"

namespace evald::deployment {
namespace {

DeploymentSpec SpecOf(const std::string& yaml) {
  auto spec = ParseDeploymentSpec(YAML::Load(yaml), YAML::Node());
  INFO(spec.status().ToString());
  REQUIRE(spec.ok());
  return *spec;
}

const DeploymentSpec& Vllm() {
  static const DeploymentSpec spec = SpecOf(R"(
type: vllm
image: vllm/vllm-openai:latest
checkpoint_path: /models/llama 3
served_model_name: llama
port: 8000
command: vllm serve /checkpoint --port 8000 --served-model-name llama
env_vars: {VLLM_LOGGING_LEVEL: DEBUG, HF_TOKEN: '$host:MY_HF_TOKEN'}
)");
  return spec;
}

LaunchEnvironment Env(std::set<std::string> binaries, std::string runtime, bool gpus = true) {
  LaunchEnvironment env;
  env.has_binary = [binaries](const std::string& name) { return binaries.count(name) > 0; };
  env.container_runtime = std::move(runtime);
  env.gpus = gpus;
  return env;
}

absl::Status StatusOf(const absl::StatusOr<LocalLaunch>& launch) { return launch.status(); }

TEST_CASE("bare command when its program is on PATH", "[local_launch]") {
  auto launch = RenderLocalLaunch(Vllm(), 8000, Env({"vllm"}, "docker"), "evald-ab12-d0");
  REQUIRE(launch.ok());
  CHECK_FALSE(launch->container);
  // /checkpoint exists only in containers: a host launch reads checkpoint_path itself.
  CHECK(launch->shell_command ==
        "vllm serve '/models/llama 3' --port 8000 --served-model-name llama");
  CHECK(launch->env.at("EVALD_PORT") == "8000");
  CHECK(launch->env.at("VLLM_LOGGING_LEVEL") == "DEBUG");
  CHECK(launch->secret_env.at("HF_TOKEN") == "MY_HF_TOKEN");
  CHECK(launch->env.count("HF_TOKEN") == 0);
  CHECK(launch->stop_command.empty());
  CHECK(launch->kill_command.empty());
}

TEST_CASE("port auto: the command keeps ${EVALD_PORT}, the env carries the port",
          "[local_launch]") {
  DeploymentSpec spec = SpecOf(R"(
type: command
command: ref-endpoint --listen 127.0.0.1 --port ${EVALD_PORT}
port: auto
served_model_name: ref
)");
  auto launch = RenderLocalLaunch(spec, 41873, Env({"ref-endpoint"}, ""), "d");
  REQUIRE(launch.ok());
  CHECK(launch->shell_command == "ref-endpoint --listen 127.0.0.1 --port ${EVALD_PORT}");
  CHECK(launch->env.at("EVALD_PORT") == "41873");
  CHECK(launch->env.size() == 1);
}

TEST_CASE("fixed port must be the configured one, ports and names are checked", "[local_launch]") {
  auto other = RenderLocalLaunch(Vllm(), 8001, Env({"vllm"}, ""), "d");
  CHECK(other.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(other.status().message() ==
        "server port 8001 differs from deployment.port 8000 (the command already names its "
        "port; only `port: auto` takes a picked one)");
  CHECK(StatusOf(RenderLocalLaunch(Vllm(), 0, Env({"vllm"}, ""), "d")).message() ==
        "server port 0 is not in 1..65535");
  auto bad_name = RenderLocalLaunch(Vllm(), 8000, Env({"vllm"}, ""), "-x y");
  CHECK(bad_name.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad_name.status().message() ==
        "deployment name '-x y' is not a valid container name ([A-Za-z0-9][A-Za-z0-9_.-]*)");
  auto none = RenderLocalLaunch(DeploymentSpec(), 8000, Env({}, ""), "d");
  CHECK(none.status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("docker run when the program is missing and an image is set", "[local_launch]") {
  auto launch = RenderLocalLaunch(Vllm(), 8000, Env({}, "docker"), "evald-ab12-d0");
  REQUIRE(launch.ok());
  CHECK(launch->container);
  CHECK(launch->container_name == "evald-ab12-d0");
  CHECK(launch->shell_command ==
        "exec docker run --rm --init --name evald-ab12-d0 --network host --ipc host --gpus all "
        "-v '/models/llama 3:/checkpoint:ro' -e EVALD_PORT -e HF_TOKEN -e VLLM_LOGGING_LEVEL "
        "--entrypoint /bin/sh vllm/vllm-openai:latest "
        "-c 'exec vllm serve /checkpoint --port 8000 --served-model-name llama'");
  CHECK(launch->env.at("EVALD_PORT") == "8000");
  CHECK(launch->env.at("VLLM_LOGGING_LEVEL") == "DEBUG");
  CHECK(launch->secret_env.at("HF_TOKEN") == "MY_HF_TOKEN");
  CHECK(launch->stop_command == "docker stop --time 30 evald-ab12-d0");
  CHECK(launch->kill_command == "docker rm -f evald-ab12-d0");
}

TEST_CASE("podman uses CDI for GPUs, gpus can be off", "[local_launch]") {
  auto podman = RenderLocalLaunch(Vllm(), 8000, Env({}, "podman"), "d1");
  REQUIRE(podman.ok());
  CHECK(absl::StartsWith(podman->shell_command,
                         "exec podman run --rm --init --name d1 --network host --ipc host "
                         "--device nvidia.com/gpu=all -v "));
  CHECK(podman->stop_command == "podman stop --time 30 d1");
  CHECK(podman->kill_command == "podman rm -f d1");

  auto no_gpu = RenderLocalLaunch(Vllm(), 8000, Env({}, "docker", /*gpus=*/false), "d1");
  REQUIRE(no_gpu.ok());
  CHECK(no_gpu->shell_command.find("--gpus") == std::string::npos);
  CHECK(no_gpu->shell_command.find("nvidia.com/gpu") == std::string::npos);
}

TEST_CASE("the stop grace period reaches the stop command", "[local_launch]") {
  DeploymentSpec spec = Vllm();
  spec.stop_grace_s = 2.5;
  auto launch = RenderLocalLaunch(spec, 8000, Env({}, "docker"), "d");
  REQUIRE(launch.ok());
  CHECK(launch->stop_command == "docker stop --time 3 d");
}

TEST_CASE("neither the program nor a container: a clear error", "[local_launch]") {
  auto no_runtime = RenderLocalLaunch(Vllm(), 8000, Env({}, ""), "d");
  CHECK(no_runtime.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(no_runtime.status().message() ==
        "deployment type vllm needs `vllm` on PATH or docker/podman with deployment.image set; "
        "neither found (`vllm` is not on PATH; no docker or podman found)");

  DeploymentSpec no_image = Vllm();
  no_image.image.clear();
  auto missing_image = RenderLocalLaunch(no_image, 8000, Env({}, "podman"), "d");
  CHECK(missing_image.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(missing_image.status().message() ==
        "deployment type vllm needs `vllm` on PATH or docker/podman with deployment.image set; "
        "neither found (`vllm` is not on PATH; deployment.image is not set)");
}

TEST_CASE("local_launch host/container force one way", "[local_launch]") {
  DeploymentSpec host = Vllm();
  host.local_launch = LocalLaunchMode::kHost;
  auto forced_host = RenderLocalLaunch(host, 8000, Env({"vllm"}, "docker"), "d");
  REQUIRE(forced_host.ok());
  CHECK_FALSE(forced_host->container);
  CHECK(RenderLocalLaunch(host, 8000, Env({}, "docker"), "d").status().message() ==
        "deployment.local_launch is host, but `vllm` is not on PATH");

  DeploymentSpec container = Vllm();
  container.local_launch = LocalLaunchMode::kContainer;
  auto forced_container = RenderLocalLaunch(container, 8000, Env({"vllm"}, "docker"), "d");
  REQUIRE(forced_container.ok());
  CHECK(forced_container->container);
  CHECK(RenderLocalLaunch(container, 8000, Env({"vllm"}, ""), "d").status().message() ==
        "deployment.local_launch is container, but no docker or podman found");
}

TEST_CASE("python -m launches prefer a container when one is possible", "[local_launch]") {
  DeploymentSpec sglang = SpecOf(R"(
type: sglang
image: lmsysorg/sglang:latest
checkpoint_path: /models/m
served_model_name: m
port: 8000
command: python3 -m sglang.launch_server --model-path /checkpoint --host 0.0.0.0 --port 8000
)");
  auto with_docker = RenderLocalLaunch(sglang, 8000, Env({"python3"}, "docker"), "d");
  REQUIRE(with_docker.ok());
  CHECK(with_docker->container);
  CHECK(absl::EndsWith(with_docker->shell_command,
                       "--entrypoint /bin/sh lmsysorg/sglang:latest -c 'exec python3 -m "
                       "sglang.launch_server --model-path /checkpoint --host 0.0.0.0 --port "
                       "8000'"));

  auto without_runtime = RenderLocalLaunch(sglang, 8000, Env({"python3"}, ""), "d");
  REQUIRE(without_runtime.ok());
  CHECK_FALSE(without_runtime->container);
  CHECK(without_runtime->shell_command ==
        "python3 -m sglang.launch_server --model-path /models/m --host 0.0.0.0 --port 8000");

  sglang.local_launch = LocalLaunchMode::kHost;
  auto forced = RenderLocalLaunch(sglang, 8000, Env({"python3"}, "docker"), "d");
  REQUIRE(forced.ok());
  CHECK_FALSE(forced->container);
}

TEST_CASE("nim always runs its image with NIM_* settings by name", "[local_launch]") {
  DeploymentSpec nim = SpecOf(R"(
type: nim
image: nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6
served_model_name: meta/llama-3.1-8b-instruct
port: auto
cache_path: /var/cache/nim
env_vars: {NGC_API_KEY: '$host:NGC_API_KEY'}
)");
  auto launch = RenderLocalLaunch(nim, 45001, Env({"nim"}, "docker"), "evald-1-d0");
  REQUIRE(launch.ok());
  CHECK(launch->container);
  CHECK(launch->shell_command ==
        "exec docker run --rm --init --name evald-1-d0 --network host --ipc host --gpus all "
        "-v /var/cache/nim:/opt/nim/.cache -e EVALD_PORT -e NGC_API_KEY "
        "-e NIM_SERVED_MODEL_NAME -e NIM_SERVER_PORT nvcr.io/nim/meta/llama-3.1-8b-instruct:1.8.6");
  CHECK(launch->env.at("NIM_SERVED_MODEL_NAME") == "meta/llama-3.1-8b-instruct");
  CHECK(launch->env.at("NIM_SERVER_PORT") == "45001");
  CHECK(launch->env.at("EVALD_PORT") == "45001");
  CHECK(launch->env.count("NIM_MODEL_PATH") == 0);
  CHECK(launch->secret_env.at("NGC_API_KEY") == "NGC_API_KEY");

  nim.hf_model_handle = "meta-llama/Llama-3.1-8B-Instruct";
  auto hf = RenderLocalLaunch(nim, 45001, Env({}, "docker"), "d");
  REQUIRE(hf.ok());
  CHECK(hf->env.at("NIM_MODEL_PATH") == "hf://meta-llama/Llama-3.1-8B-Instruct");
  nim.checkpoint_path = "/models/llama";
  auto local = RenderLocalLaunch(nim, 45001, Env({}, "docker"), "d");
  REQUIRE(local.ok());
  CHECK(local->env.at("NIM_MODEL_PATH") == "/checkpoint");
  CHECK(local->shell_command.find("-v /models/llama:/checkpoint:ro") != std::string::npos);

  auto no_runtime = RenderLocalLaunch(nim, 45001, Env({"nim"}, ""), "d");
  CHECK(no_runtime.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(no_runtime.status().message() ==
        "deployment type nim runs only as its container image and needs docker or podman on "
        "PATH with deployment.image set; no docker or podman found");
  nim.local_launch = LocalLaunchMode::kHost;
  CHECK(RenderLocalLaunch(nim, 45001, Env({}, "docker"), "d").status().code() ==
        absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("a user's NIM_* env var wins over the derived one", "[local_launch]") {
  DeploymentSpec nim = SpecOf(
      "type: nim\nimage: img\nserved_model_name: m\nport: 8000\n"
      "env_vars: {NIM_SERVED_MODEL_NAME: other}\n");
  auto launch = RenderLocalLaunch(nim, 8000, Env({}, "docker"), "d");
  REQUIRE(launch.ok());
  CHECK(launch->env.at("NIM_SERVED_MODEL_NAME") == "other");
}

TEST_CASE("trtllm runs mpirun in its image", "[local_launch]") {
  DeploymentSpec trtllm = SpecOf(R"(
type: trtllm
image: nvcr.io/nvidia/tensorrt-llm/release:1.0.0
checkpoint_path: /ckpt
served_model_name: m
port: 8000
command: mpirun --allow-run-as-root --oversubscribe trtllm-serve serve /checkpoint --port 8000
)");
  auto launch = RenderLocalLaunch(trtllm, 8000, Env({}, "docker"), "d");
  REQUIRE(launch.ok());
  CHECK(absl::EndsWith(launch->shell_command,
                       "-v /ckpt:/checkpoint:ro -e EVALD_PORT --entrypoint /bin/sh "
                       "nvcr.io/nvidia/tensorrt-llm/release:1.0.0 -c 'exec mpirun "
                       "--allow-run-as-root --oversubscribe trtllm-serve serve /checkpoint "
                       "--port 8000'"));
}

TEST_CASE("compound commands run as written, builtins count as present", "[local_launch]") {
  DeploymentSpec spec = SpecOf(R"(
type: command
image: busybox
command: cd /srv && ./server --port ${EVALD_PORT}
port: auto
served_model_name: m
)");
  auto host = RenderLocalLaunch(spec, 40000, Env({}, ""), "d");
  REQUIRE(host.ok());
  CHECK(host->shell_command == "cd /srv && ./server --port ${EVALD_PORT}");

  spec.local_launch = LocalLaunchMode::kContainer;
  auto container = RenderLocalLaunch(spec, 40000, Env({}, "docker"), "d");
  REQUIRE(container.ok());
  // No `exec` in front of a list of commands; the port is expanded inside the container.
  CHECK(absl::EndsWith(container->shell_command,
                       "--entrypoint /bin/sh busybox -c 'cd /srv && ./server --port "
                       "${EVALD_PORT}'"));
}

TEST_CASE("leading assignments and exec are skipped to find the program", "[local_launch]") {
  DeploymentSpec spec = SpecOf(
      "type: command\ncommand: CUDA_VISIBLE_DEVICES=0 exec my-server --port 8000\n"
      "port: 8000\nserved_model_name: m\n");
  auto launch = RenderLocalLaunch(spec, 8000, Env({"my-server"}, ""), "d");
  REQUIRE(launch.ok());
  CHECK(launch->shell_command == "CUDA_VISIBLE_DEVICES=0 exec my-server --port 8000");
  CHECK(
      RenderLocalLaunch(spec, 8000, Env({"CUDA_VISIBLE_DEVICES=0"}, ""), "d").status().message() ==
      "deployment type command needs `my-server` on PATH or docker/podman with "
      "deployment.image set; neither found (`my-server` is not on PATH; no docker or podman "
      "found)");
}

TEST_CASE("/checkpoint: replaced as a path on the host, required when used", "[local_launch]") {
  DeploymentSpec spec = SpecOf(R"(
type: command
command: srv --model=/checkpoint/sub --tok /checkpoint --cache /checkpoints /checkpoint
checkpoint_path: /data/m
port: 8000
served_model_name: m
)");
  auto launch = RenderLocalLaunch(spec, 8000, Env({"srv"}, ""), "d");
  REQUIRE(launch.ok());
  CHECK(launch->shell_command ==
        "srv --model=/data/m/sub --tok /data/m --cache /checkpoints /data/m");

  spec.checkpoint_path.clear();
  auto missing = RenderLocalLaunch(spec, 8000, Env({"srv"}, ""), "d");
  CHECK(missing.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(missing.status().message() ==
        "deployment.command reads the model from /checkpoint but deployment.checkpoint_path is "
        "not set (set it, or set deployment.hf_model_handle)");
}

TEST_CASE("env values never appear on the command line", "[local_launch]") {
  DeploymentSpec spec = Vllm();
  spec.env_vars["LITERAL_SETTING"] = "value-that-must-not-leak";
  spec.mounts["/data"] = "/data:ro";
  for (const LaunchEnvironment& env : {Env({"vllm"}, ""), Env({}, "docker")}) {
    auto launch = RenderLocalLaunch(spec, 8000, env, "d");
    REQUIRE(launch.ok());
    INFO(launch->shell_command);
    CHECK(launch->shell_command.find("value-that-must-not-leak") == std::string::npos);
    CHECK(launch->shell_command.find("DEBUG") == std::string::npos);
    CHECK(launch->env.at("LITERAL_SETTING") == "value-that-must-not-leak");
    // Secrets are named only: the value comes from the executor, never from the spec.
    CHECK(launch->env.count("HF_TOKEN") == 0);
    CHECK(launch->secret_env.at("HF_TOKEN") == "MY_HF_TOKEN");
    if (launch->container) {
      CHECK(launch->shell_command.find("-e HF_TOKEN -e LITERAL_SETTING") != std::string::npos);
      CHECK(launch->shell_command.find("-v /data:/data:ro") != std::string::npos);
    }
  }
}

TEST_CASE("ShellQuote quotes only what needs it", "[local_launch]") {
  CHECK(ShellQuote("vllm/vllm-openai:latest") == "vllm/vllm-openai:latest");
  CHECK(ShellQuote("a b") == "'a b'");
  CHECK(ShellQuote("it's") == "'it'\\''s'");
  CHECK(ShellQuote("") == "''");
  CHECK(ShellQuote("${EVALD_PORT}") == "'${EVALD_PORT}'");
}

// Runs the rendered container command through a real bash with a fake `docker` that prints its
// arguments one per line, then its EVALD_PORT: what the runtime would receive.
TEST_CASE("the container command survives a real shell", "[local_launch]") {
  char dir_template[] = "/tmp/evald_launch_test_XXXXXX";
  const char* dir = mkdtemp(dir_template);
  REQUIRE(dir != nullptr);
  const std::string fake = absl::StrCat(dir, "/docker");
  {
    std::ofstream out(fake);
    out << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n"
           "printf 'EVALD_PORT=%s\\n' \"$EVALD_PORT\"\n";
  }
  REQUIRE(chmod(fake.c_str(), 0755) == 0);

  DeploymentSpec spec = SpecOf(R"(
type: command
image: "registry.example/srv:1"
checkpoint_path: "/models/it's here"
command: srv --model /checkpoint --name "a b" --port ${EVALD_PORT}
port: auto
served_model_name: m
)");
  auto launch = RenderLocalLaunch(spec, 40123, Env({}, "docker"), "evald-x");
  REQUIRE(launch.ok());
  const std::string shell =
      absl::StrCat("PATH=", dir, ":$PATH EVALD_PORT=", launch->env.at("EVALD_PORT"), " bash -c ",
                   ShellQuote(launch->shell_command));
  FILE* pipe = popen(shell.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  CHECK(pclose(pipe) == 0);
  unlink(fake.c_str());
  rmdir(dir);

  const std::vector<std::string> args = absl::StrSplit(output, '\n', absl::SkipEmpty());
  const std::vector<std::string> expected = {
      "run",
      "--rm",
      "--init",
      "--name",
      "evald-x",
      "--network",
      "host",
      "--ipc",
      "host",
      "--gpus",
      "all",
      "-v",
      "/models/it's here:/checkpoint:ro",
      "-e",
      "EVALD_PORT",
      "--entrypoint",
      "/bin/sh",
      "registry.example/srv:1",
      "-c",
      "exec srv --model /checkpoint --name \"a b\" --port ${EVALD_PORT}",
      "EVALD_PORT=40123"};
  CHECK(args == expected);
}

// Every deployment field that reaches the command line is data, whatever it holds: the fake
// docker must receive it verbatim, and nothing in it may run (`touch PWNED` in the cwd).
TEST_CASE("deployment fields with newlines, quotes and $() never run", "[local_launch]") {
  char dir_template[] = "/tmp/evald_launch_test_XXXXXX";
  const char* dir = mkdtemp(dir_template);
  REQUIRE(dir != nullptr);
  const std::string fake = absl::StrCat(dir, "/docker");
  std::ofstream(fake) << "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n";
  REQUIRE(chmod(fake.c_str(), 0755) == 0);

  DeploymentSpec spec = Vllm();
  spec.image = "img$(touch PWNED)`touch PWNED`";
  spec.checkpoint_path = "/m\ntouch PWNED #";
  spec.mounts = {{"/a b';touch PWNED;'", "/in"}};
  spec.env_vars = {{"LEVEL", "x\n$(touch PWNED)"}};
  auto launch = RenderLocalLaunch(spec, 8000, Env({}, "docker"), "evald-x");
  REQUIRE(launch.ok());
  CHECK(launch->shell_command.find('\n') == std::string::npos);
  const std::string shell = absl::StrCat("cd ", dir, " && PATH=", dir, ":$PATH bash -c ",
                                         ShellQuote(launch->shell_command));
  FILE* pipe = popen(shell.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[512];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  CHECK(pclose(pipe) == 0);
  const bool pwned = access(absl::StrCat(dir, "/PWNED").c_str(), F_OK) == 0;
  unlink(absl::StrCat(dir, "/PWNED").c_str());
  unlink(fake.c_str());
  rmdir(dir);
  CHECK_FALSE(pwned);
  CHECK(absl::StrContains(output, "\n/m\ntouch PWNED #:/checkpoint:ro\n"));
  CHECK(absl::StrContains(output, "\n/a b';touch PWNED;':/in\n"));
  CHECK(absl::StrContains(output, "\nimg$(touch PWNED)`touch PWNED`\n"));

  DeploymentSpec bad_name = Vllm();
  bad_name.env_vars = {{"LEVEL;touch PWNED", "x"}};
  auto refused = RenderLocalLaunch(bad_name, 8000, Env({}, "docker"), "evald-x");
  CHECK(refused.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(refused.status().message() ==
        "deployment.env_vars: 'LEVEL;touch PWNED' is not a valid environment variable name "
        "([A-Za-z_][A-Za-z0-9_]*)");
  DeploymentSpec nul = Vllm();
  nul.image = std::string("img\0x", 5);
  CHECK(RenderLocalLaunch(nul, 8000, Env({}, "docker"), "evald-x").status().message() ==
        "deployment.image contains a NUL byte, which a shell script cannot carry");
}

}  // namespace
}  // namespace evald::deployment
