"""Decodes an OTLP/HTTP logs request body with the official OpenTelemetry protobuf classes
(PyPI opentelemetry-proto) and prints every log record as JSON, with its resource and scope.

Usage: otlp_logs_decode.py [--gzip] < body
"""
import json
import sys

from otlp_common import read_request, value

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest


def main():
    req = read_request(ExportLogsServiceRequest)
    out = []
    for rl in req.resource_logs:
        resource = {kv.key: value(kv.value) for kv in rl.resource.attributes}
        for sl in rl.scope_logs:
            for r in sl.log_records:
                out.append({
                    "resource": resource,
                    "scope": sl.scope.name,
                    "time": r.time_unix_nano,
                    "severity_number": r.severity_number,
                    "severity_text": r.severity_text,
                    "body": value(r.body),
                    "attributes": {kv.key: value(kv.value) for kv in r.attributes},
                    "trace_id": r.trace_id.hex(),
                    "span_id": r.span_id.hex(),
                    "flags": r.flags,
                })
    json.dump(out, sys.stdout)


main()
