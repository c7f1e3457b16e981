#!/usr/bin/env bash
# The neuron index build survives kill -9: a build killed mid-pass and rerun with the
# same command ends with exactly the index of an uninterrupted build. Also: bad
# arguments and bad index files exit 2 with one line on stderr naming the problem.
set -u
BIN=${1:?usage: scope_resume.sh path/to/mechlens}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MECHLENS_THREADS=1
fail=0
"$BIN" init --preset gpt2-tiny --seed 3 --set d_mlp=256 --out "$T/m" >/dev/null || { echo "FAIL: init"; exit 1; }
python3 - "$T/docs.json" <<'PY'
import json, random, sys
r = random.Random(5)
json.dump([[r.randrange(1000) for _ in range(32)] for _ in range(400)], open(sys.argv[1], "w"))
PY
ARGS=(scope build --model "$T/m" --tokens "$T/docs.json" --batch 1 --top-k 7 --save-every 5)
"$BIN" "${ARGS[@]}" --out "$T/a.db" >/dev/null 2>"$T/a.log" || { echo "FAIL: uninterrupted build"; cat "$T/a.log"; exit 1; }

kills=0
for attempt in 1 2 3; do
  rm -f "$T/b.db" "$T/b.db.partial"
  "$BIN" "${ARGS[@]}" --out "$T/b.db" >/dev/null 2>"$T/b.log" &
  pid=$!
  for _ in $(seq 1 400); do [ -f "$T/b.db.partial" ] && break; sleep 0.02; done
  sleep 0.$((RANDOM % 4 + 3))
  if kill -9 $pid 2>/dev/null; then kills=1; fi
  wait $pid 2>/dev/null
  [ $kills -eq 1 ] && break
done
[ -f "$T/b.db" ] && { echo "FAIL: a killed build left a finished-looking index"; fail=1; }
cp "$T/b.db.partial" "$T/unfinished.db" 2>/dev/null
"$BIN" "${ARGS[@]}" --out "$T/b.db" >/dev/null 2>>"$T/b.log" || { echo "FAIL: resume"; cat "$T/b.log"; exit 1; }
echo "killed $kills time(s); $(grep -c resuming "$T/b.log") resume(s)"
[ $kills -ge 1 ] || { echo "FAIL: the build finished before it could be killed (make it longer)"; fail=1; }
[ -f "$T/b.db.partial" ] && { echo "FAIL: partial file left behind"; fail=1; }

dump() {  # every result table, in a fixed order
  python3 - "$1" <<'PY'
import sqlite3, sys, hashlib
db = sqlite3.connect(sys.argv[1])
db.text_factory = bytes  # byte-level BPE pieces on their own need not be UTF-8
h = hashlib.sha256()
for t, k in [("neurons", "layer, neuron"), ("examples", "layer, neuron, rank"),
             ("logit_effects", "layer, neuron, kind, rank"), ("docs", "id"), ("vocab", "id")]:
    for row in db.execute(f"SELECT * FROM {t} ORDER BY {k}"):
        h.update(repr(row).encode())
print(h.hexdigest(), db.execute("SELECT count(*) FROM examples").fetchone()[0])
PY
}
a=$(dump "$T/a.db") && b=$(dump "$T/b.db") || { echo "FAIL: dump"; exit 1; }
[ -n "$a" ] && [ "$a" = "$b" ] || { echo "FAIL: resumed index differs: $a vs $b"; fail=1; }

# Bad input: exit 2, one line on stderr, naming the problem.
expect2() {  # expect2 WHAT PATTERN ARGS...
  local what=$1 pat=$2; shift 2
  "$BIN" "$@" >"$T/o" 2>"$T/e"; rc=$?
  if [ $rc -ne 2 ] || [ "$(wc -l <"$T/e")" -ne 1 ] || ! grep -q -- "$pat" "$T/e"; then
    echo "FAIL: $what: rc $rc, stderr: $(cat "$T/e")"; fail=1
  fi
}
expect2 "existing index" "already exists" "${ARGS[@]}" --out "$T/a.db"
expect2 "both sources" "exactly one" scope build --model "$T/m" --out "$T/c.db"
echo '[[1, 2, 3], [4, 5]]' >"$T/ragged.json"
expect2 "ragged tokens" "ragged.json" scope build --model "$T/m" --tokens "$T/ragged.json" --out "$T/c.db"
echo '[[1, 2, 99999]]' >"$T/big.json"
expect2 "token out of range" "99999" scope build --model "$T/m" --tokens "$T/big.json" --out "$T/c.db"
"$BIN" init --preset attn-only-1l --out "$T/ao" >/dev/null
expect2 "attention-only" "attention-only" scope build --model "$T/ao" --tokens "$T/docs.json" --out "$T/c.db"
[ -e "$T/c.db" ] || [ -e "$T/c.db.partial" ] && { echo "FAIL: a refused build left a file"; fail=1; }
expect2 "missing index" "nope.db" scope show --index "$T/nope.db" --layer 0 --neuron 0
head -c 5000 /dev/urandom >"$T/junk.db"
expect2 "corrupt index" "junk.db" scope show --index "$T/junk.db" --layer 0 --neuron 0
head -c 20000 "$T/a.db" >"$T/trunc.db"
expect2 "truncated index" "trunc.db" scope show --index "$T/trunc.db" --layer 0 --neuron 0
[ -f "$T/unfinished.db" ] && expect2 "unfinished index" "unfinished" scope show --index "$T/unfinished.db" --layer 0 --neuron 0
expect2 "layer out of range" "layer 9" scope show --index "$T/a.db" --layer 9 --neuron 0
expect2 "neuron out of range" "neuron 256" scope show --index "$T/a.db" --layer 0 --neuron 256
# The explorer refuses a bad index at start-up, before serving.
expect2 "explore: corrupt index" "junk.db" explore --model "$T/m" --index "$T/junk.db" --port 0
expect2 "explore: missing index" "nope.db" explore --index "$T/nope.db" --port 0
"$BIN" init --preset gpt2-tiny --seed 4 --set d_mlp=256 --out "$T/m2" >/dev/null
expect2 "explore: index of other weights" "another model" explore --model "$T/m2" --index "$T/a.db" --port 0
expect2 "explore: nothing to serve" "give --model" explore --port 0
expect2 "explore: missing runs folder" "nope" explore --runs "$T/nope" --port 0
"$BIN" scope show --index "$T/a.db" --layer 1 --neuron 3 --json >"$T/n.json" || { echo "FAIL: show"; fail=1; }
python3 -c "
import json,sys; j=json.load(open('$T/n.json'))
assert len(j['examples'])==7 and all(len(e['acts'])==32 for e in j['examples']), j.keys()
assert sum(j['histogram']['counts'])==400*32
" || { echo "FAIL: show json"; fail=1; }
[ $fail -eq 0 ] && echo "scope resume and bad input: OK"
exit $fail
