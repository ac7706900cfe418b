"""Decodes an OTLP/HTTP traces request body with the official OpenTelemetry protobuf classes
(PyPI opentelemetry-proto) and prints it as JSON: the resource's attributes and every span.

Usage: otlp_decode.py [--gzip] < body
"""
import json
import sys

from otlp_common import read_request, value

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def main():
    req = read_request(ExportTraceServiceRequest)
    out = []
    for rs in req.resource_spans:
        resource = {kv.key: value(kv.value) for kv in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "resource": resource,
                    "scope": ss.scope.name,
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": s.kind,
                    "start": s.start_time_unix_nano,
                    "end": s.end_time_unix_nano,
                    "status_code": s.status.code,
                    "status_message": s.status.message,
                    "flags": s.flags,
                    "attributes": {kv.key: value(kv.value) for kv in s.attributes},
                    "events": [
                        {
                            "name": e.name,
                            "time": e.time_unix_nano,
                            "attributes": {kv.key: value(kv.value) for kv in e.attributes},
                        }
                        for e in s.events
                    ],
                })
    json.dump(out, sys.stdout)


main()
