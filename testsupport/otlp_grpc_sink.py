"""A loopback gRPC sink for the OTLP/gRPC tests: a grpcio server with the official OTLP
TraceService and MetricsService classes that stores what it is sent. Not a collector.

Usage: otlp_grpc_sink.py [--tls CERT KEY] [--client-ca CA] [--push-back SPEC]
  --tls CERT KEY   serve TLS with this certificate chain and key (PEM)
  --client-ca CA   require a client certificate signed by this CA (mutual TLS)
  --push-back SPEC answer the first calls with errors, in order: a comma-separated list of
                   `unavailable`, `exhausted` (RESOURCE_EXHAUSTED, no RetryInfo),
                   `exhausted:SECONDS` (with a google.rpc.RetryInfo of that delay),
                   `invalid` (INVALID_ARGUMENT)
Prints `listening PORT` once it listens, then one JSON line per call:
  {"signal": "traces"|"metrics", "t": <monotonic seconds>, "metadata": {...},
   "answer": "ok"|<the error answered>, "body": <base64 of the decoded request, re-encoded>}
"""

import argparse
import base64
import json
import sys
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

LOCK = threading.Lock()
PLAN = []


def out(**fields):
    with LOCK:
        print(json.dumps(fields), flush=True)


def next_answer():
    with LOCK:
        return PLAN.pop(0) if PLAN else "ok"


def handle(signal, request, context, response):
    answer = next_answer()
    out(
        signal=signal,
        t=time.monotonic(),
        metadata={k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")},
        answer=answer,
        body=base64.b64encode(request.SerializeToString()).decode(),
    )
    if answer == "ok":
        return response
    if answer == "unavailable":
        context.abort(grpc.StatusCode.UNAVAILABLE, "collector restarting")
    if answer == "invalid":
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad batch")
    if answer == "exhausted":
        context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "over quota")
    if answer.startswith("exhausted:"):
        info = error_details_pb2.RetryInfo(
            retry_delay=duration_pb2.Duration(seconds=int(answer.split(":")[1]))
        )
        detail = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="slow down")
        detail.details.add().Pack(info)
        context.abort_with_status(rpc_status.to_status(detail))
    raise ValueError(answer)


class Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def Export(self, request, context):
        return handle("traces", request, context, trace_service_pb2.ExportTraceServiceResponse())


class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def Export(self, request, context):
        return handle(
            "metrics", request, context, metrics_service_pb2.ExportMetricsServiceResponse()
        )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tls", nargs=2)
    p.add_argument("--client-ca")
    p.add_argument("--push-back", default="")
    a = p.parse_args()
    PLAN.extend(x for x in a.push_back.split(",") if x)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    if a.tls:
        cert, key = (open(f, "rb").read() for f in a.tls)
        ca = open(a.client_ca, "rb").read() if a.client_ca else None
        creds = grpc.ssl_server_credentials(
            [(key, cert)], root_certificates=ca, require_client_auth=ca is not None
        )
        port = server.add_secure_port("127.0.0.1:0", creds)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening {port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    sys.exit(main())
