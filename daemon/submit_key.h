// File: submit_key.h
//
// Submit's idempotency key (SubmitRequest.idempotency_key): the rules for a key, and the canonical
// form of "what a Submit asked" that the Store fingerprints next to the key, so a retry (same key,
// same request) gets the first invocation back and a reuse of the key for another request is
// refused (Store::CreateInvocation).
//
// Callers: ServerCore::Submit.
//
//   EVALD_RETURN_IF_ERROR(CheckIdempotencyKey(request.idempotency_key()));
//   storage::SubmitKey key{request.idempotency_key(), CanonicalSubmitRequest(request)};
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "evald/v1/evald.pb.h"

namespace evald::daemon {

inline constexpr size_t kMaxIdempotencyKeySize = 128;

// OK for "" (no key) and for 1 to 128 printable ASCII characters without spaces; else
// InvalidArgument saying so.
absl::Status CheckIdempotencyKey(absl::string_view key);

// The fields that define a submission (config_yaml, overrides, tasks, composed, environment,
// working_dir), each length-prefixed, maps sorted by key. Not compared: secrets (their values must
// not be fingerprinted), client, dry_run and the key itself. Stable across evald versions: a new
// SubmitRequest field is only added here if it changes what runs.
std::string CanonicalSubmitRequest(const v1::SubmitRequest& request);

}  // namespace evald::daemon
