#!/usr/bin/env python3
"""Validates a Zipkin v2 POST body (stdin) against a schema file (argv[1]): either the
repository's JSON Schema (.json) or the official OpenAPI spec (.yaml), whose ListOfSpans is
used with unknown keys forbidden on Span, Endpoint and Annotation. Exit 0 when valid."""
import json
import sys

import jsonschema

path = sys.argv[1]
if path.endswith(".json"):
    with open(path) as f:
        schema = json.load(f)
else:
    import yaml

    with open(path) as f:
        spec = yaml.safe_load(f)
    defs = spec["definitions"]
    for name in ("Span", "Endpoint", "Annotation"):
        defs[name]["additionalProperties"] = False
    schema = {"$ref": "#/definitions/ListOfSpans", "definitions": defs}
body = json.load(sys.stdin)
validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
for e in errors:
    print(f"{list(e.path)}: {e.message}")
if not body:
    print("empty list")
    sys.exit(1)
sys.exit(1 if errors else 0)
