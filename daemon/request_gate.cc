#include "daemon/request_gate.h"

#include <malloc.h>

#include "absl/strings/str_cat.h"

namespace evald::daemon {

RequestGate::Slot& RequestGate::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    gate_ = other.gate_;
    trim_ = other.trim_;
    other.gate_ = nullptr;
    other.trim_ = false;
  }
  return *this;
}

void RequestGate::Slot::Release() {
  if (gate_ == nullptr) return;
  {
    absl::MutexLock lock(&gate_->mu_);
    --gate_->in_use_;
  }
  gate_ = nullptr;
}

RequestGate::Slot::~Slot() {
  Release();
  if (trim_) malloc_trim(0);
}

absl::StatusOr<RequestGate::Slot> RequestGate::Acquire() {
  if (!mu_.LockWhenWithTimeout(absl::Condition(this, &RequestGate::HasFree), max_wait_)) {
    mu_.Unlock();
    return absl::ResourceExhaustedError(
        absl::StrCat("evald is busy: ", slots_,
                     " submitted configs are being parsed and planned already and "
                     "none finished within ",
                     absl::FormatDuration(max_wait_), "; retry shortly"));
  }
  ++in_use_;
  mu_.Unlock();
  return Slot(this);
}

int RequestGate::in_use() const {
  absl::MutexLock lock(&mu_);
  return in_use_;
}

}  // namespace evald::daemon
