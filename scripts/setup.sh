#!/usr/bin/env bash
# Installs what building and testing Whisperer needs, and nothing when it is all there already
# (a few dpkg queries, well under a second). Called by every make target; safe to run by hand.
#
#   scripts/setup.sh build    what building and running the server needs (make build, make run)
#   scripts/setup.sh [test]   also the test tools: clang-format, promtool, Node.js and the
#                             end-to-end npm packages (make test; the default)
#   scripts/setup.sh bench    also the benchmark tools (rocksdb-tools for db_bench, wrk)
#   scripts/setup.sh eval     also the evaluation's reference libraries (scikit-learn, XGBoost)
#
# Uses sudo only when not root. Debian 12 (bookworm) package names.
set -euo pipefail
cd "$(dirname "$0")/.."

# Why each package is here is in README.md ("Dependencies").
BUILD_PACKAGES=(
  g++ cmake ninja-build pkg-config make
  libboost-dev libsimdjson-dev librocksdb-dev libyaml-cpp-dev libcli11-dev libspdlog-dev
  libfmt-dev libabsl-dev zlib1g-dev libzstd-dev libgtest-dev libgmock-dev
  libre2-dev uap-core liblbfgs-dev libfasttext-dev libbenchmark-dev libgoogle-perftools-dev
)
TEST_PACKAGES=(clang-format prometheus nodejs)
BENCH_PACKAGES=(rocksdb-tools wrk curl)
# The reference libraries of the evaluation (scripts/eval.py runs them beside our models).
EVAL_PACKAGES=(python3 python3-numpy python3-scipy python3-sklearn python3-xgboost)

mode=${1:-test}
wanted=("${BUILD_PACKAGES[@]}")
if [[ $mode != build ]]; then wanted+=("${TEST_PACKAGES[@]}"); fi
if [[ $mode == bench ]]; then wanted+=("${BENCH_PACKAGES[@]}"); fi
if [[ $mode == eval ]]; then wanted+=("${EVAL_PACKAGES[@]}"); fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
# npm ships inside some nodejs builds; Debian's own nodejs needs the separate npm package.
if [[ $mode != build ]] && ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  # prometheus is only needed for promtool; keep its service from starting where that is possible.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# The end-to-end tests' npm packages (official Segment and RudderStack clients, Redocly CLI),
# installed from the lock file whenever it changed.
if [[ $mode != build && -f tests/e2e/package-lock.json ]]; then
  stamp=tests/e2e/node_modules/.whisperer-setup-stamp
  if [[ ! -f $stamp || tests/e2e/package-lock.json -nt $stamp ]]; then
    echo "setup: npm install in tests/e2e (versions from package-lock.json)"
    # Not `npm ci`: npm 11 writes other platforms' optional packages (msgpackr-extract-*)
    # without versions into the lock file and then refuses its own lock in `npm ci`.
    # `npm install --no-save` installs what the lock records and never rewrites it.
    (cd tests/e2e && npm install --no-save --no-audit --no-fund --loglevel=error)
    touch "$stamp"
  fi
fi
