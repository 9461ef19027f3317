// File: proto_convert.h
//
// Records (core/model.h) to API messages (evald.v1) and back for enums. The only place that
// knows both shapes; used by ServerCore.
#pragma once

#include "core/model.h"
#include "evald/v1/evald.pb.h"
#include "executors/registry.h"
#include "proto/state_enums.h"

namespace evald::daemon {

// The enums themselves map in proto/state_enums.h (shared with evalctl).
using ::evald::FromProto;
using ::evald::ToProto;

void ToProto(const JobRecord& job, const std::string& executor,
             const executors::ExecutorRegistry& registry, v1::Job* out);
void ToProto(const DeploymentRecord& d, const executors::ExecutorRegistry& registry,
             v1::Deployment* out);
void ToProto(const InvocationRecord& inv, v1::Invocation* out);  // without jobs
void ToProto(const EventRecord& e, v1::Event* out);
void ToProto(const ResultRecord& r, v1::Metric* out);

// Everything the executor says about a handle (backend id and details); empty when not started.
executors::HandleInfo Describe(const executors::ExecutorRegistry& registry,
                               const JobHandle& handle);

}  // namespace evald::daemon
