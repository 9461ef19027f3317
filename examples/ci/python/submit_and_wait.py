#!/usr/bin/env python3
"""Submit an evaluation to evald and wait for its outcome, on grpcio (Debian: python3-grpcio).

The evald.v1 stubs are generated from proto/evald/v1/evald.proto with grpc_tools (Debian:
python3-grpc-tools), into a directory on PYTHONPATH:

    python3 -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen \
        proto/evald/v1/evald.proto
    PYTHONPATH=gen python3 examples/ci/python/submit_and_wait.py run.yaml

Connection, like evalctl's: --server or $EVALD_ADDR (unix:///path.sock, /path.sock or host:port,
default: the user's evald socket). host:port uses TLS with --ca-file / $EVALD_CA_FILE (else the
system's roots) unless --insecure. The token comes from $EVALD_TOKEN only (a flag would show in
`ps`) and is sent as `authorization: Bearer <token>` metadata on every call; it is never printed.

Exit codes, like `evalctl submit --wait`: 0 every job succeeded, 1 a job failed, was killed or
lost, 2 bad input (config, arguments, refused by evald), 3 evald not reachable.
"""

import argparse
import os
import sys
import uuid

import grpc

try:
    from evald.v1 import evald_pb2, evald_pb2_grpc
except ImportError as e:  # the stubs are generated, not shipped
    sys.exit(f"submit_and_wait: cannot import the evald.v1 stubs ({e}); generate them with "
             "grpc_tools.protoc (see the top of this file) and put them on PYTHONPATH")

TERMINAL = {evald_pb2.JOB_STATE_SUCCEEDED, evald_pb2.JOB_STATE_FAILED,
            evald_pb2.JOB_STATE_KILLED, evald_pb2.JOB_STATE_LOST}


def state_name(state):
    return evald_pb2.JobState.Name(state).replace("JOB_STATE_", "").lower()


def default_address():
    state_home = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return f"unix://{state_home}/evald/evald.sock"


def open_channel(args):
    address = args.server or os.environ.get("EVALD_ADDR") or default_address()
    if address.startswith("/"):
        address = "unix://" + address
    if address.startswith("unix:") or args.insecure:
        return address, grpc.insecure_channel(address)
    ca_file = args.ca_file or os.environ.get("EVALD_CA_FILE")
    root_certs = None  # grpc's default roots
    if ca_file:
        with open(ca_file, "rb") as f:
            root_certs = f.read()
    return address, grpc.secure_channel(address, grpc.ssl_channel_credentials(root_certs))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="config YAML (a `defaults:` list is composed by evald)")
    parser.add_argument("--server", help="evald address (default: $EVALD_ADDR, then the socket)")
    parser.add_argument("--ca-file", help="PEM CA of evald's certificate (default: $EVALD_CA_FILE)")
    parser.add_argument("--insecure", action="store_true", help="host:port without TLS")
    parser.add_argument("--secret", action="append", default=[], metavar="NAME",
                        help="send this environment variable as a secret (api_key_name, ...)")
    parser.add_argument("--idempotency-key",
                        help="CI: e.g. $CI_PIPELINE_ID-$CI_JOB_ID, so a retried step submits once")
    args = parser.parse_args()

    try:
        with open(args.config, encoding="utf-8") as f:
            config_yaml = f.read()
    except OSError as e:
        print(f"submit_and_wait: cannot read {args.config}: {e.strerror}", file=sys.stderr)
        return 2
    secrets = {}
    for name in args.secret:
        if name not in os.environ:
            print(f"submit_and_wait: --secret {name}: the variable is not set", file=sys.stderr)
            return 2
        secrets[name] = os.environ[name]

    token = os.environ.get("EVALD_TOKEN", "").strip()
    metadata = [("authorization", f"Bearer {token}")] if token else []
    address, channel = open_channel(args)
    stub = evald_pb2_grpc.EvalServiceStub(channel)
    request = evald_pb2.SubmitRequest(
        config_yaml=config_yaml,
        secrets=secrets,
        working_dir=os.path.dirname(os.path.abspath(args.config)),
        client="examples/ci/python/submit_and_wait.py",
        idempotency_key=args.idempotency_key or uuid.uuid4().hex)
    try:
        submitted = stub.Submit(request, metadata=metadata, timeout=30)
        inv_id = submitted.invocation_id
        print(f"submitted {inv_id}: {len(submitted.jobs)} job(s)", flush=True)
        for job in submitted.jobs:
            print(f"  {job.job_id} {job.task}", flush=True)

        # Watch: a snapshot, then events until every job has ended.
        watch = evald_pb2.WatchRequest(id=inv_id, include_progress=False)
        for message in stub.Watch(watch, metadata=metadata):
            kind = message.WhichOneof("payload")
            if kind == "event" and message.event.kind == "job.state":
                ev = message.event
                print(f"  {ev.job_id}: {state_name(ev.from_job_state)} -> "
                      f"{state_name(ev.to_job_state)}", flush=True)

        final = stub.GetInvocation(evald_pb2.GetInvocationRequest(id=inv_id),
                                   metadata=metadata, timeout=30)
    except grpc.RpcError as e:
        code = e.code()
        print(f"submit_and_wait: evald at {address}: {code.name}: {e.details()}", file=sys.stderr)
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return 3
        return 2 if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED,
                             grpc.StatusCode.PERMISSION_DENIED) else 1

    if not all(job.state in TERMINAL for job in final.jobs):
        print(f"submit_and_wait: the watch of {inv_id} ended before its jobs did",
              file=sys.stderr)
        return 3
    failed = [job for job in final.jobs if job.state != evald_pb2.JOB_STATE_SUCCEEDED]
    print(f"invocation {inv_id} finished: {state_name(final.state)}")
    for job in failed:
        print(f"  {job.job_id} {job.task} {state_name(job.state)}: {job.message}")
    return 1 if failed or not final.jobs else 0


if __name__ == "__main__":
    sys.exit(main())
