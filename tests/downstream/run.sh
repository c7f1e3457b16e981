#!/usr/bin/env bash
# Installs the built mechlens into a scratch prefix, builds tests/downstream against it
# with find_package, runs it on a model folder and checks its loss against the
# engine's own (the CLI's), then checks pkg-config sees the same library.
# usage: run.sh <build-dir> [<model-folder>]  (without one, or where it is absent, a
# random gpt2-tiny checkpoint made by the CLI)
set -euo pipefail
build=$1 model=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$model" ] || [ ! -d "$model" ]; then
  model="$tmp/model"
  "$build/mechlens" init --preset gpt2-tiny --out "$model" > /dev/null
fi
cmake --install "$build" --prefix "$tmp/prefix" > "$tmp/install.log"
test -f "$tmp/prefix/lib/cmake/mechlens/mechlensConfig.cmake"
test -f "$tmp/prefix/include/mechlens/mechlens.h"
test ! -e "$tmp/prefix/include/mechlens/cli"
cmake -S "$here" -B "$tmp/app" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$tmp/prefix" > "$tmp/configure.log"
cmake --build "$tmp/app" > "$tmp/build.log" || { cat "$tmp/build.log"; exit 1; }
out=$("$tmp/app/app" "$model")
echo "$out"
grep -q '^resid_pre1 \[1, 8, ' <<< "$out"
loss=$(sed -n 's/^loss //p' <<< "$out")
# The installed CLI computes the same loss on the same tokens.
echo '[[1, 2, 3, 4, 5, 6, 7, 8]]' > "$tmp/tokens.json"
want=$("$tmp/prefix/bin/mechlens" run --model "$model" --tokens "$tmp/tokens.json" --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["loss"])')
/usr/bin/python3 - "$loss" "$want" <<'PY'
import sys
got, want = float(sys.argv[1]), float(sys.argv[2])
assert abs(got - want) < 1e-4, f"downstream loss {got} != CLI loss {want}"
PY
# A missing folder: one line, exit 2.
set +e
"$tmp/app/app" "$tmp/no-such-model" 2> "$tmp/err"; rc=$?
set -e
test "$rc" = 2 && test "$(wc -l < "$tmp/err")" = 1 && grep -q no-such-model "$tmp/err"
# pkg-config finds the same library and headers.
PKG_CONFIG_PATH="$tmp/prefix/lib/pkgconfig" pkg-config --libs mechlens | grep -q -- -lmechlens
# The installed Python module imports from its own folder (not build/python).
PYTHONPATH="$tmp/prefix/lib/python3.11/dist-packages" /usr/bin/python3 -c \
  "import mechlens, sys; assert '$tmp' in mechlens.__file__; m = mechlens.HookedTransformer.from_pretrained(sys.argv[1]); print('python ok', m.cfg.n_layers)" "$model"
echo "downstream ok"
