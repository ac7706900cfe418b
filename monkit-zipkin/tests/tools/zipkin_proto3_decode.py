"""Decodes a Zipkin proto3 body (stdin) with the official zipkin.proto and prints its spans as
JSON (proto field names). The .proto is compiled at run time with protoc into a descriptor set,
so no generated code goes into the repository.

Usage: zipkin_proto3_decode.py <dir with zipkin.proto> [--gzip] < body
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory


def main():
    proto_dir = sys.argv[1]
    body = sys.stdin.buffer.read()
    if "--gzip" in sys.argv:
        body = gzip.decompress(body)
    with tempfile.TemporaryDirectory() as tmp:
        desc = os.path.join(tmp, "zipkin.desc")
        subprocess.run(
            ["protoc", "-I", proto_dir, "--include_imports", "-o", desc, "zipkin.proto"],
            check=True,
        )
        fds = descriptor_pb2.FileDescriptorSet()
        with open(desc, "rb") as f:
            fds.ParseFromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    cls = message_factory.GetMessageClass(pool.FindMessageTypeByName("zipkin.proto3.ListOfSpans"))
    msg = cls()
    msg.ParseFromString(body)
    spans = []
    for s in msg.spans:
        d = json_format.MessageToDict(s, preserving_proto_field_name=True)
        # Bytes as hex (MessageToDict gives base64), as the JSON encoding writes ids.
        for k in ("trace_id", "parent_id", "id"):
            d[k] = getattr(s, k).hex()
        for e in ("local_endpoint", "remote_endpoint"):
            if s.HasField(e):
                ep = getattr(s, e)
                d[e]["ipv4"] = ".".join(str(b) for b in ep.ipv4) if ep.ipv4 else None
        d["timestamp"] = s.timestamp
        d["duration"] = s.duration
        spans.append(d)
    json.dump(spans, sys.stdout)


main()
