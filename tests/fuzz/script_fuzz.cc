// libFuzzer target for generated shell text: random strings (control characters, quotes, $(),
// backticks, newlines, invalid UTF-8) go into every field the local executor renders into run.sh
// (job id, task name, task dir, runner path, image, env var names, extra_docker_args, and the
// container command's model id, URL, key name, eval type and overrides) and into a deployment's
// launch command (image, paths, mounts, env names, model names). Each rendering either refuses
// with InvalidArgument, or gives text that `bash -n` accepts and that, run in a sandbox, never
// executes anything a field smuggled in.
//
// The sandbox: a temp dir whose bin/ is the whole PATH (stubs for docker/podman, evalrun, nv_eval,
// vllm, chmod; links to the few real tools run.sh uses) and a BASH_ENV defining
// command_not_found_handle, so any stray word bash tries to run as a command leaves the sentinel
// file. So does a literal `touch SENTINEL` (the seeds and dictionary carry those). The stand-in
// docker runs the job's `bash -c <container command>` itself, so the container command is
// exercised too. Reproduce a finding with build-fuzz/bin/script_fuzz <file>.
#include <fcntl.h>
#include <fuzzer/FuzzedDataProvider.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/config/job_plan.h"
#include "core/config/run_config.h"
#include "executors/local/local_launch.h"
#include "executors/local/run_script.h"
#include "yaml-cpp/yaml.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;

struct Sandbox {
  std::string root;  // holds bin/, SENTINEL when the handler fired, w/ for one input
  std::string bin;
  std::string work;
  std::string sentinel;
};

void Write(const std::string& path, const std::string& text, bool executable) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  if (executable) fs::permissions(path, fs::perms::owner_all);
}

std::string Which(const char* name) {
  for (const char* dir : {"/usr/bin", "/bin", "/usr/local/bin"}) {
    std::string path = std::string(dir) + "/" + name;
    if (access(path.c_str(), X_OK) == 0) return path;
  }
  __builtin_trap();  // the sandbox needs these tools
}

const Sandbox& Box() {
  static const Sandbox* box = [] {
    auto* b = new Sandbox;
    std::string tmpl = (fs::temp_directory_path() / "evald-script-fuzz-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) __builtin_trap();
    b->root = tmpl;
    b->bin = b->root + "/bin";
    b->work = b->root + "/w";
    b->sentinel = b->root + "/SENTINEL";
    fs::create_directories(b->bin);
    for (const char* tool : {"bash", "date", "mkdir", "rm", "mv", "cat", "base64", "touch"}) {
      fs::create_symlink(Which(tool), b->bin + "/" + tool);
    }
    const std::string shebang = "#!" + Which("bash") + "\n";
    // The job's container: `... <image> bash -c <command>` runs <command>; anything else
    // (deployments, stop, rm) does nothing.
    const std::string runtime =
        shebang +
        "args=(\"$@\"); n=${#args[@]}\n"
        "if (( n >= 3 )) && [[ ${args[n-3]} == bash && ${args[n-2]} == -c ]]; "
        "then exec bash -c \"${args[n-1]}\"; fi\nexit 0\n";
    Write(b->bin + "/docker", runtime, true);
    Write(b->bin + "/podman", runtime, true);
    for (const char* stub : {"nv_eval", "vllm", "chmod"}) {
      Write(b->bin + "/" + stub, shebang + "exit 0\n", true);
    }
    Write(b->root + "/bash_env",
          "command_not_found_handle() { : > \"$EVALD_FUZZ_SENTINEL\"; return 127; }\n", false);
    setenv("PATH", b->bin.c_str(), 1);
    setenv("BASH_ENV", (b->root + "/bash_env").c_str(), 1);
    setenv("EVALD_FUZZ_SENTINEL", b->sentinel.c_str(), 1);
    setenv("LC_ALL", "C.UTF-8", 1);
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(Box().root, ec);
    });
    return b;
  }();
  return *box;
}

// Exit status of `bash args...` run in `cwd`, -1 when it did not exit normally.
int Bash(std::vector<std::string> args, const std::string& cwd) {
  args.insert(args.begin(), "bash");
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = 0;
  int rc =
      posix_spawn(&pid, (Box().bin + "/bash").c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) __builtin_trap();
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void Fail(const char* what, const std::string& text) {
  fprintf(stderr, "script_fuzz: %s\n----\n%s\n----\n", what, text.c_str());
  __builtin_trap();
}

// A field as one file name: no '/', no NUL, not . or .., short enough for any file system.
std::string FileName(std::string s) {
  for (char& c : s) {
    if (c == '/' || c == '\0') c = '_';
  }
  if (s.size() > 100) s.resize(100);
  if (s.empty() || s == "." || s == "..") s += "_d";
  return s;
}

// The script must parse, and running it must not leave the sentinel anywhere.
void CheckScript(const std::string& script, const std::vector<std::string>& run_args) {
  const Sandbox& box = Box();
  const std::string path = box.work + "/script.sh";
  Write(path, script, false);
  if (Bash({"-n", path}, box.work) != 0) Fail("bash -n refused the script", script);
  std::vector<std::string> args = run_args;
  args.push_back(path);
  Bash(args, box.work);
  bool hit = fs::exists(box.sentinel);
  for (const auto& entry : fs::recursive_directory_iterator(box.work)) {
    hit = hit || (entry.path().filename() == "SENTINEL" && entry.is_regular_file());
  }
  if (hit) Fail("running the script executed a smuggled command", script);
}

// Mostly a random string; a fixed valid one otherwise, so that the fields checked strictly (env
// names, container names) do not get the whole rendering refused most of the time.
std::string RandomOr(FuzzedDataProvider& in, const char* fixed, size_t max_length) {
  return in.ConsumeBool() ? in.ConsumeRandomLengthString(max_length) : fixed;
}

void RefusedClearly(const absl::Status& status, const std::string& what) {
  if (status.code() != absl::StatusCode::kInvalidArgument) {
    Fail("rendering failed without InvalidArgument", what + ": " + status.ToString());
  }
}

void FuzzJob(FuzzedDataProvider& in) {
  const Sandbox& box = Box();
  evald::executors::JobSpec spec;
  spec.job_id = in.ConsumeRandomLengthString(64);
  spec.invocation_id = "0badf00d";
  spec.task = in.ConsumeRandomLengthString(64);
  spec.task_dir = box.work + "/t/" + FileName(in.ConsumeRandomLengthString(64));
  spec.native = in.ConsumeBool();
  spec.plan_yaml = "config: {type: fuzz}\n";
  const std::string env_name = RandomOr(in, "HF_TOKEN", 16);
  spec.env_vars = {{"API_KEY", "HOST_KEY"}, {env_name, "HOST_VAR"}};
  spec.image = in.ConsumeRandomLengthString(64);
  YAML::Emitter execution;
  execution << YAML::BeginMap << YAML::Key << "extra_docker_args" << YAML::Value
            << in.ConsumeRandomLengthString(64) << YAML::EndMap;
  spec.execution_yaml = execution.c_str();

  evald::config::TaskSpec task;
  task.def.name = in.ConsumeRandomLengthString(32);
  const std::string key = in.ConsumeRandomLengthString(32);
  task.overrides.emplace_back(key, YAML::Node(in.ConsumeRandomLengthString(64)));
  evald::config::EndpointSpec endpoint;
  endpoint.model_id = in.ConsumeRandomLengthString(64);
  endpoint.type = in.ConsumeRandomLengthString(16);
  endpoint.url = in.ConsumeRandomLengthString(64);
  endpoint.api_key_name = in.ConsumeRandomLengthString(16);
  spec.container_command = evald::config::BuildEvalFactoryCommand(task, endpoint);

  evald::executors::RunScriptOptions options;
  const std::string runner_dir = box.work + "/r/" + FileName(in.ConsumeRandomLengthString(32));
  options.runner_path = runner_dir + "/evalrun";
  options.runtime_name = in.ConsumeBool() ? "docker" : "podman";

  auto rendered = evald::executors::RenderRunScript(spec, options);
  if (!rendered.ok()) return RefusedClearly(rendered.status(), "run.sh");
  fs::create_directories(runner_dir);
  Write(options.runner_path, "#!" + box.bin + "/bash\nexit 0\n", true);
  CheckScript(rendered->script, {});
}

void FuzzDeployment(FuzzedDataProvider& in) {
  namespace dep = evald::deployment;
  dep::DeploymentSpec spec;
  spec.type = in.ConsumeBool() ? dep::DeploymentType::kNim : dep::DeploymentType::kVllm;
  spec.image = in.ConsumeRandomLengthString(64);
  spec.checkpoint_path = in.ConsumeRandomLengthString(64);
  spec.cache_path = in.ConsumeRandomLengthString(64);
  spec.served_model_name = in.ConsumeRandomLengthString(32);
  spec.hf_model_handle = in.ConsumeRandomLengthString(32);
  const std::string src = in.ConsumeRandomLengthString(32);
  spec.mounts[src] = in.ConsumeRandomLengthString(32);
  const std::string env_name = RandomOr(in, "LOG_LEVEL", 16);
  spec.env_vars[env_name] = in.ConsumeRandomLengthString(32);
  spec.secret_env_vars[RandomOr(in, "HF_TOKEN", 16)] = "HOST_TOKEN";
  spec.port = 8000;
  if (spec.type == dep::DeploymentType::kVllm) {
    spec.command = "vllm serve /checkpoint --port 8000";
  }
  spec.local_launch = in.PickValueInArray(
      {dep::LocalLaunchMode::kAuto, dep::LocalLaunchMode::kHost, dep::LocalLaunchMode::kContainer});
  dep::LaunchEnvironment environment;
  environment.has_binary = [](const std::string& name) { return name == "vllm"; };
  environment.container_runtime = in.ConsumeBool() ? "docker" : "podman";
  environment.gpus = in.ConsumeBool();
  const std::string name = RandomOr(in, "evald-fuzz.0", 32);

  auto launch = dep::RenderLocalLaunch(spec, 8000, environment, name);
  if (!launch.ok()) {
    // Preconditions (no checkpoint_path for /checkpoint, ...) are not about quoting.
    if (launch.status().code() == absl::StatusCode::kFailedPrecondition) return;
    return RefusedClearly(launch.status(), "deployment");
  }
  for (const std::string& command :
       {launch->shell_command, launch->stop_command, launch->kill_command}) {
    if (!command.empty()) CheckScript(command + "\n", {});
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Sandbox& box = Box();
  std::error_code ec;
  fs::remove_all(box.work, ec);
  fs::remove(box.sentinel, ec);
  fs::create_directories(box.work);
  FuzzedDataProvider in(data, size);
  if (in.ConsumeBool()) {
    FuzzJob(in);
  } else {
    FuzzDeployment(in);
  }
  return 0;
}
