#!/usr/bin/env python3
"""A stand-in evald for ci_usage_test.cc: EvalService over TLS on 127.0.0.1, answering Submit,
Watch and GetInvocation for one invocation that succeeds, only to calls that carry
`authorization: Bearer <token>`. It exists to test the Python example's TLS + token path on
grpcio's own server while evald's TLS listener is tested elsewhere.

usage: tls_fake_evald.py DIR TOKEN  (DIR holds server.pem and server.key; the port goes to
DIR/port; the `authorization` values seen are appended to DIR/seen)
"""
import os
import sys
from concurrent import futures

import grpc
from evald.v1 import evald_pb2 as pb
from evald.v1 import evald_pb2_grpc as pbg

DIR, TOKEN = sys.argv[1], sys.argv[2]
INV = "1a2b3c4d"


class Service(pbg.EvalServiceServicer):
    def _check(self, context):
        auth = dict(context.invocation_metadata()).get("authorization", "")
        with open(os.path.join(DIR, "seen"), "a", encoding="utf-8") as f:
            f.write(auth + "\n")
        if auth != "Bearer " + TOKEN:
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or unknown token")

    def Submit(self, request, context):
        self._check(context)
        return pb.SubmitResponse(invocation_id=INV,
                                 jobs=[pb.JobRef(job_id=INV + ".0", task="arith")])

    def Watch(self, request, context):
        self._check(context)
        yield pb.WatchEvent(event=pb.Event(
            invocation_id=INV, job_id=INV + ".0", kind="job.state",
            from_job_state=pb.JOB_STATE_RUNNING, to_job_state=pb.JOB_STATE_SUCCEEDED))

    def GetInvocation(self, request, context):
        self._check(context)
        return pb.Invocation(invocation_id=INV, state=pb.JOB_STATE_SUCCEEDED,
                             jobs=[pb.Job(job_id=INV + ".0", task="arith",
                                          state=pb.JOB_STATE_SUCCEEDED)])


def main():
    with open(os.path.join(DIR, "server.key"), "rb") as k, \
            open(os.path.join(DIR, "server.pem"), "rb") as c:
        creds = grpc.ssl_server_credentials([(k.read(), c.read())])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    pbg.add_EvalServiceServicer_to_server(Service(), server)
    port = server.add_secure_port("127.0.0.1:0", creds)
    server.start()
    with open(os.path.join(DIR, "port.tmp"), "w", encoding="utf-8") as f:
        f.write(str(port))
    os.rename(os.path.join(DIR, "port.tmp"), os.path.join(DIR, "port"))
    server.wait_for_termination()


if __name__ == "__main__":
    main()
