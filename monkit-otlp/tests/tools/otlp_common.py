"""What both OTLP decoders share: reading a request body (gzip-compressed with --gzip) into one
of the official request classes, and an AnyValue as a plain value."""
import gzip
import sys


def read_request(cls):
    body = sys.stdin.buffer.read()
    if "--gzip" in sys.argv:
        body = gzip.decompress(body)
    req = cls()
    req.ParseFromString(body)
    return req


def value(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None
