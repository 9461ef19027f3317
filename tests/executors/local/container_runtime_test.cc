// Which container runtime the local executor picks (executors/local/container_runtime.h): a
// docker client without an engine is passed over for a podman that works, a configured runtime is
// taken as named, and a runtime whose `info` hangs is given up on.
#include "executors/local/container_runtime.h"

#include <stdlib.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>

#include "absl/time/clock.h"
#include "tests/executors/local/test_util.h"

namespace evald::executors {
namespace {

using evald::testing::Spit;
using evald::testing::TempDir;

// Puts `dir` alone on PATH for the life of the object.
class ScopedPath {
 public:
  explicit ScopedPath(const std::string& dir) : old_(getenv("PATH") ? getenv("PATH") : "") {
    setenv("PATH", dir.c_str(), 1);
  }
  ~ScopedPath() { setenv("PATH", old_.c_str(), 1); }

 private:
  std::string old_;
};

// A stand-in runtime: `info` exits with `info_exit` (or hangs when it is -1).
void Runtime(const std::string& bin, const std::string& name, int info_exit) {
  std::string info = info_exit < 0 ? "exec /bin/sleep 30" : "exit " + std::to_string(info_exit);
  Spit(bin + "/" + name, "#!/bin/sh\nif [ \"$1\" = info ]; then " + info + "; fi\nexit 0\n", true);
}

TEST_CASE("a docker that cannot run containers is passed over for podman") {
  TempDir dir;
  const std::string bin = dir.path() + "/bin";
  std::filesystem::create_directories(bin);
  Runtime(bin, "docker", 1);  // a client whose engine is not there
  Runtime(bin, "podman", 0);
  ScopedPath path(bin);
  CHECK(DetectContainerRuntime([](const std::string& p) { return RuntimeAnswersInfo(p); }) ==
        bin + "/podman");
  CHECK(PickContainerRuntime("") == bin + "/podman");
  // Configured: taken as named, without asking it anything.
  CHECK(PickContainerRuntime("docker") == bin + "/docker");
  CHECK(PickContainerRuntime("evald-no-such-runtime").empty());
}

TEST_CASE("a working docker comes first, and no working runtime is none") {
  TempDir dir;
  const std::string bin = dir.path() + "/bin";
  std::filesystem::create_directories(bin);
  Runtime(bin, "docker", 0);
  Runtime(bin, "podman", 0);
  ScopedPath path(bin);
  auto answers = [](const std::string& p) { return RuntimeAnswersInfo(p); };
  CHECK(DetectContainerRuntime(answers) == bin + "/docker");
  Runtime(bin, "docker", 1);
  Runtime(bin, "podman", 125);
  CHECK(DetectContainerRuntime(answers).empty());
}

TEST_CASE("a runtime whose info hangs is given up on after the timeout") {
  TempDir dir;
  Runtime(dir.path(), "docker", -1);
  absl::Time start = absl::Now();
  CHECK_FALSE(RuntimeAnswersInfo(dir.path() + "/docker", absl::Milliseconds(300)));
  CHECK(absl::Now() - start < absl::Seconds(5));
  CHECK_FALSE(RuntimeAnswersInfo(dir.path() + "/missing"));
}

}  // namespace
}  // namespace evald::executors
