#include <unistd.h>

#include <chrono>
#include <climits>
#include <thread>

#include "cli/commands/commands.h"

namespace evald::cli {

int64_t NowMs(const Context& ctx) {
  if (ctx.now_ms) return ctx.now_ms();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SleepMs(const Context& ctx, int64_t ms) {
  if (ctx.sleep_ms) {
    ctx.sleep_ms(ms);
    return;
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

EnvLookup Env(const Context& ctx) { return ctx.env ? ctx.env : ProcessEnvLookup(); }

std::string WorkingDir(const Context& ctx) {
  if (!ctx.working_dir.empty()) return ctx.working_dir;
  char buf[PATH_MAX];
  if (::getcwd(buf, sizeof(buf)) == nullptr) return "";
  return buf;
}

}  // namespace evald::cli
