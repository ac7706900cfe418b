"""Decodes an OTLP/HTTP metrics request body with the official OpenTelemetry protobuf classes
(PyPI opentelemetry-proto) and prints it as JSON: every metric with its data points.

Usage: otlp_metrics_decode.py [--gzip] < body
"""
import json
import sys

from otlp_common import read_request, value

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest


def attrs(p):
    return {kv.key: value(kv.value) for kv in p.attributes}


def main():
    req = read_request(ExportMetricsServiceRequest)
    out = []
    for rm in req.resource_metrics:
        resource = {kv.key: value(kv.value) for kv in rm.resource.attributes}
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                kind = m.WhichOneof("data")
                data = getattr(m, kind)
                points = []
                for p in data.data_points:
                    d = {"attributes": attrs(p), "start": p.start_time_unix_nano, "time": p.time_unix_nano}
                    if kind in ("sum", "gauge"):
                        d["value"] = p.as_double if p.WhichOneof("value") == "as_double" else p.as_int
                    else:
                        d.update({
                            "count": p.count, "sum": p.sum, "scale": p.scale,
                            "zero_count": p.zero_count,
                            "offset": p.positive.offset,
                            "bucket_counts": list(p.positive.bucket_counts),
                            "exemplars": [
                                {"trace_id": e.trace_id.hex(), "span_id": e.span_id.hex(), "value": e.as_double}
                                for e in p.exemplars
                            ],
                        })
                    points.append(d)
                out.append({
                    "resource": resource, "name": m.name, "unit": m.unit, "kind": kind,
                    "temporality": getattr(data, "aggregation_temporality", None),
                    "monotonic": getattr(data, "is_monotonic", None),
                    "points": points,
                })
    json.dump(out, sys.stdout)


main()
