#!/usr/bin/env bash
# The side-by-side benchmark table of BENCHMARKS.md from one run: criterion timings of monkit
# and its peers (ratios within the run), then exact instruction counts under valgrind.
# Usage: scripts/benchmarks.sh   (about 3 minutes; a quiet machine gives steadier ratios)
set -euo pipefail
cd "$(dirname "$0")/.."

cargo bench -p monkit --bench overhead -- --noplot >/dev/null
cargo bench -p monkit --bench exported -- --noplot >/dev/null
python3 - <<'PY'
import json, os
base = "target/criterion"
def median(group, name):
    p = os.path.join(base, group, name, "new", "estimates.json")
    if not os.path.exists(p):
        return None
    return json.load(open(p))["median"]["point_estimate"]
rows = [
    ("empty sync fn vs the true floor", "sync_call", "monkit", "sync_call", "true_floor"),
    ("`Err` path vs the true floor", "err_call", "monkit", "err_call", "true_floor"),
    ("async, polled once, vs the true floor", "async_poll_once", "monkit", "async_poll_once", "true_floor"),
    ("async, polled three times, vs the true floor", "async_poll_thrice", "monkit", "sync_call", "true_floor"),
    ("empty sync fn vs shared-atomics bookkeeping", "sync_call", "monkit", "sync_call", "floor"),
    ("tagged fn (static tags)", "sync_call", "monkit_tagged", "sync_call", "monkit"),
    ("run-time tagged, handle kept", "sync_call", "monkit_func_with_kept", "sync_call", "monkit"),
    ("run-time tagged, looked up per call", "sync_call", "monkit_func_with_lookup", "sync_call", "monkit"),
    ("args recorded", "sync_call", "monkit_args", "sync_call", "monkit"),
    ("two span events a call, unrecorded", "sync_call", "monkit_events", "sync_call", "monkit"),
    ("the flight recorder on", "sync_call", "monkit_flight_recorder", "sync_call", "monkit"),
    ("`metrics` (counter+gauge+histogram) vs monkit", "sync_call", "metrics", "sync_call", "monkit"),
    ("`tracing` + Registry + timing layer vs monkit", "sync_call", "tracing", "sync_call", "monkit"),
    ("fastrace span vs monkit", "sync_call", "fastrace", "sync_call", "monkit"),
    ("2 threads, one hot fn vs 1 thread", "one_hot_fn", "monkit/2", "one_hot_fn", "monkit/1"),
    ("4 threads, one hot fn vs 4 threads uninstrumented", "one_hot_fn", "monkit/4", "one_hot_fn", "bare/4"),
    ("8 threads, one hot fn vs 8 threads uninstrumented", "one_hot_fn", "monkit/8", "one_hot_fn", "bare/8"),
    ("1 thread, one hot fn vs 1 thread uninstrumented", "one_hot_fn", "monkit/1", "one_hot_fn", "bare/1"),
    ("2 threads, one hot fn vs 2 threads uninstrumented", "one_hot_fn", "monkit/2", "one_hot_fn", "bare/2"),
    ("2 threads, every span sampled for export vs 1 thread", "one_hot_fn", "exported/2", "one_hot_fn", "exported/1"),
    ("2 threads taking turns (each call on the other thread), vs no instrumentation", "taking_turns", "monkit", "taking_turns", "bare"),
    ("2 threads taking turns, exact mode (one shared count), vs no instrumentation", "taking_turns", "monkit_exact", "taking_turns", "bare"),
    ("recorded span (flat) vs fastrace span", "capture", "recorded_span", "capture", "fastrace_span"),
    ("recorded span, chains 3 deep", "shapes", "monkit_nested3", "shapes", "fastrace_nested3"),
    ("recorded span, chains 8 deep", "shapes", "monkit_nested8", "shapes", "fastrace_nested8"),
    ("recorded span, wide fan-out (1+16+256)", "shapes", "monkit_wide", "shapes", "fastrace_wide"),
    ("recorded span, async over a 2-worker tokio runtime", "shapes", "monkit_async_fan_out", "shapes", "fastrace_async_fan_out"),
    ("every span exported, chains 3 deep, vs fastrace", "exported", "monkit_nested3", "exported", "fastrace_nested3"),
    ("every span exported, chains 8 deep, vs fastrace", "exported", "monkit_nested8", "exported", "fastrace_nested8"),
    ("every span exported, wide, vs fastrace", "exported", "monkit_wide", "exported", "fastrace_wide"),
    ("every span exported, a root per call, vs fastrace", "exported", "monkit_root_per_call", "exported", "fastrace_root_per_call"),
    ("every span exported, 1,000 calls under one root, vs fastrace", "exported", "monkit_thousand_under_one_root", "exported", "fastrace_thousand_under_one_root"),
    ("every span exported, chains 3 deep, vs the OpenTelemetry SDK", "exported", "monkit_nested3", "exported", "otel_sdk_nested3"),
    ("every span exported, chains 8 deep, vs the OpenTelemetry SDK", "exported", "monkit_nested8", "exported", "otel_sdk_nested8"),
    ("every span exported, wide, vs the OpenTelemetry SDK", "exported", "monkit_wide", "exported", "otel_sdk_wide"),
    ("OpenTelemetry SDK metrics (counter + up-down + histogram) vs monkit", "metrics_sdk", "otel_sdk", "metrics_sdk", "monkit"),
]
print("| case | this | against | ratio |")
print("|---|---|---|---|")
for label, g1, n1, g2, n2 in rows:
    a, b = median(g1, n1), median(g2, n2)
    if a is None or b is None:
        print(f"| {label} | - | - | - |")
        continue
    print(f"| {label} | {a:.1f} ns ({n1}) | {b:.1f} ns ({n2}) | {a / b:.2f}x |")

# Overheads: what instrumentation adds over the same code without it, async against sync.
def over(group, name, floor_group, floor_name):
    a, b = median(group, name), median(floor_group, floor_name)
    return None if a is None or b is None else a - b
sync = over("sync_call", "monkit", "sync_call", "bare")
for label, g in [("polled once", "async_poll_once"), ("polled three times", "async_poll_thrice")]:
    o = over(g, "monkit", g, "bare")
    if sync and o:
        print(f"async overhead, {label}: {o:.1f} ns against sync's {sync:.1f} ns: {o / sync:.2f}x")
PY
cargo bench -p monkit --bench instructions 2>/dev/null | grep -E "^(case|[a-z_0-9]+ +[0-9]|async over)"

# Memory at scale, each case in a process of its own with MONKIT_SHARDS set: bytes per
# function by shard count (1, 4, 16, 64), 64 threads over 2,000 functions at 64 shards, and
# 10,000 functions each called from 64 threads (the process's RSS).
cargo bench -p monkit --bench scale 2>/dev/null | grep "^|"

# The tower layers on an axum handler: monkit's ServerLayer beside tower-http's TraceLayer and a
# metrics middleware, timed, then counted exactly.
cargo bench -p monkit-tower --features axum --bench layers -- --noplot >/dev/null
python3 - <<'PY'
import json, os
base = "target/criterion/server_layer"
def median(name):
    p = os.path.join(base, name, "new", "estimates.json")
    return json.load(open(p))["median"]["point_estimate"] if os.path.exists(p) else None
none, floor = median("none"), median("pass_through")
print("| per request | time | over no layer | over a pass-through layer |")
print("|---|---|---|---|")
over = {}
for v in ["none", "pass_through", "monkit", "tower_http_trace", "metrics_middleware"]:
    t = median(v)
    if t is None or none is None:
        continue
    over[v] = t - none
    print(f"| {v} | {t:.0f} ns | {t - none:.0f} ns | {t - floor:.0f} ns |")
if over.get("monkit"):
    for peer in ["tower_http_trace", "metrics_middleware"]:
        if over.get(peer):
            print(f"monkit's overhead / {peer}'s: {over['monkit'] / over[peer]:.2f}x")
PY
cargo bench -p monkit-tower --features axum --bench layers -- --instructions 2>/dev/null | tail -6

# The metrics facade: monkit's recorder beside metrics-exporter-prometheus's.
cargo bench -p monkit-metrics --bench recorder -- --noplot 2>/dev/null | grep -E "^metrics_facade|time:"

# The OTLP exporter's thread: spans per second sent (gzip, 512-span batches), queue memory.
cargo bench -p monkit-otlp --bench throughput 2>/dev/null | grep -E "exporter thread|queue of"
