#!/usr/bin/env bash
# The full test run: installs the real peers the tests drive (Debian/Ubuntu packages), then
# runs formatting and lint checks, every test including the long ones, with
# MONKIT_REQUIRE_PEERS=1 so a missing peer fails instead of skipping, and the loom models.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  graphviz                                # dot: renders /funcs/dot
  prometheus                              # promtool and a real scraping server
  prometheus-alertmanager                 # where the objectives' alerts arrive
  libxml2-utils librsvg2-bin              # xmllint, rsvg-convert: the trace SVG
  python3 python3-jsonschema python3-yaml # Zipkin JSON Schema validation
  python3-pip                             # opentelemetry-proto (PyPI), below
  golang-go golang-github-openzipkin-zipkin-go-dev  # Zipkin's own Go model
  valgrind                                # instruction counts
  graphite-carbon                         # a real carbon (and whisper-fetch) for the push
  protobuf-compiler                       # protoc: the official zipkin.proto, compiled in a test
  chromium chromium-driver                # the console, driven in a real headless browser
  default-jre-headless                    # Java for the W3C Nu HTML checker (vnu-jar, npm)
  nghttp2-client curl                     # h2load and curl --http2-prior-knowledge: HTTP/2
)

if [ "${MONKIT_SKIP_INSTALL:-0}" != 1 ]; then
  echo "test-all: installing the test peers with apt-get: ${PACKAGES[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}" >/dev/null
  # The official OpenTelemetry protobuf classes, to decode what the OTLP exporter sends.
  # grpcio and grpcio-tools: a real gRPC client, its stubs compiled from tavern's .proto, and
  # with the official OTLP service classes a gRPC collector sink; grpcio-status: google.rpc
  # statuses with RetryInfo, to push back as a collector does.
  # rotel: a real OTLP collector (traces, metrics, logs over HTTP and gRPC), `rotel-agent`.
  PIP_PACKAGES=(opentelemetry-proto protobuf aiohttp grpcio grpcio-tools grpcio-status prometheus-client rotel)
  echo "test-all: installing ${PIP_PACKAGES[*]} with pip"
  python3 -m pip install -q --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null \
    || python3 -m pip install -q --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
  # The W3C Nu HTML checker, from npm, into the build tree (the console test finds it there).
  if ! command -v npm >/dev/null; then
    $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "test-all: installing vnu-jar with npm into target/peers"
  mkdir -p target/peers
  npm install --silent --no-audit --no-fund --prefix target/peers vnu-jar@26 >/dev/null
fi

# A full disk fails a build halfway with a message far from its cause: say what there is first.
echo "test-all: disk before the builds: $(df -h --output=avail . | tail -1 | tr -d ' ') free"

echo "test-all: cargo fmt --check, clippy -D warnings"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings

echo "test-all: the docs build clean, every feature on"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

echo "test-all: every library crate packages and builds from its package alone"
# Cargo takes the packages it verifies for registry crates, which it never rebuilds for a
# change of source alone: what an earlier run of the same version left (unpacked, or built)
# would be used instead of this code. So they are made and built in a target of their own,
# emptied first, and cargo's unpackings of our own crates go too.
rm -rf target/package-check "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/monkit*-0.1.0 \
  "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/monkit*-0.1.0.crate
CARGO_TARGET_DIR="$PWD/target/package-check" \
  cargo package --workspace --exclude monkit-examples --allow-dirty
# That target is a second full build; nothing later reads it.
rm -rf target/package-check

echo "test-all: every test, long ones included, peers required"
MONKIT_REQUIRE_PEERS=1 cargo test --workspace -- --include-ignored
# The tower layers' own tests need their features (axum, grpc, reqwest), and OTLP/gRPC its.
MONKIT_REQUIRE_PEERS=1 cargo test -p monkit-tower --all-features -- --include-ignored
MONKIT_REQUIRE_PEERS=1 cargo test -p monkit-otlp --all-features -- --include-ignored

echo "test-all: instructions per call under valgrind, against their budgets"
MONKIT_REQUIRE_PEERS=1 cargo bench -p monkit --bench instructions

echo "test-all: disk after the tests: $(du -sh target | cut -f1) in target, $(df -h --output=avail . | tail -1 | tr -d ' ') free"

echo "test-all: loom models of the hot path's lock-free structures"
RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom cargo test -p monkit --release --lib loom_
