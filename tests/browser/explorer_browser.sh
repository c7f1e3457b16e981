#!/usr/bin/env bash
# Browser tests of the explorer: Debian's chromium, headless, driven by playwright-core
# (npm), against `mechlens explore` on 127.0.0.1 with a small GPT-2-vocabulary model
# indexed on Moby-Dick and a short training run. Screenshots go to $ARTIFACTS.
set -u
BIN=${1:?usage: explorer_browser.sh path/to/mechlens}
SRC=$(cd "$(dirname "$0")/../.." && pwd)
ARTIFACTS=${ARTIFACTS:-$(dirname "$BIN")/test-artifacts/explorer}
T=$(mktemp -d)
SERVER=
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
export MECHLENS_THREADS=1
command -v chromium >/dev/null || { echo "FAIL: chromium is missing (make deps installs it)"; exit 1; }
[ -f "$SRC/third_party/npm/node_modules/playwright-core/package.json" ] || { echo "FAIL: playwright-core is missing (make deps)"; exit 1; }

"$BIN" init --preset gpt2-tiny --seed 1 --set d_mlp=128 --out "$T/model" >/dev/null || { echo "FAIL: init"; exit 1; }
"$BIN" scope build --model "$T/model" --corpus moby-dick --max-tokens 6400 --ctx 64 --top-k 8 --out "$T/index.db" >/dev/null 2>"$T/scope.log" \
  || { echo "FAIL: scope build"; cat "$T/scope.log"; exit 1; }
"$BIN" train induction --steps 40 --checkpoints 3 --out "$T/runs/induction" >/dev/null 2>&1 || { echo "FAIL: train"; exit 1; }
"$BIN" explore --model "$T/model" --index "$T/index.db" --runs "$T/runs" --port 0 --port-file "$T/port" >"$T/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 300); do [ -s "$T/port" ] && break; sleep 0.05; done
[ -s "$T/port" ] || { echo "FAIL: the explorer did not start"; cat "$T/server.log"; exit 1; }
mkdir -p "$ARTIFACTS"
PLAYWRIGHT_CORE="$SRC/third_party/npm/node_modules/playwright-core" BASE="http://127.0.0.1:$(cat "$T/port")" \
  ARTIFACTS="$ARTIFACTS" node "$SRC/tests/browser/explorer.cjs"
