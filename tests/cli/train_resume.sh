#!/usr/bin/env bash
# The trainer survives kill -9: a grokking run killed at an arbitrary moment and resumed
# ends with exactly the weights of an uninterrupted run, with every step's metrics
# recorded once. Also: bad training arguments and states exit 2 with one stderr line.
set -u
BIN=${1:?usage: train_resume.sh path/to/mechlens}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MECHLENS_THREADS=2
ARGS=(train grokking --p 43 --frac-train 0.5 --epochs 120 --d-model 64 --d-mlp 128 --checkpoints 5 --save-every 3)
fail=0

"$BIN" "${ARGS[@]}" --out "$T/a" >/dev/null 2>"$T/a.log" || { echo "FAIL: uninterrupted run"; cat "$T/a.log"; exit 1; }

kills=0
for attempt in 1 2 3; do
  rm -rf "$T/b"
  "$BIN" "${ARGS[@]}" --out "$T/b" >/dev/null 2>"$T/b.log" &
  pid=$!
  # Wait for the first saved state, then kill at an arbitrary later moment.
  for _ in $(seq 1 400); do [ -f "$T/b/state.safetensors" ] && break; sleep 0.02; done
  sleep 0.$((RANDOM % 3))$((RANDOM % 10))
  if kill -9 $pid 2>/dev/null; then kills=1; fi
  wait $pid 2>/dev/null
  [ $kills -eq 1 ] && break
done
# Kill the resumed run once more, then let it finish.
if [ $kills -eq 1 ]; then
  "$BIN" train grokking --resume "$T/b" >/dev/null 2>>"$T/b.log" &
  pid=$!
  sleep 0.$((RANDOM % 5 + 3))
  kill -9 $pid 2>/dev/null && kills=2
  wait $pid 2>/dev/null
fi
"$BIN" train grokking --resume "$T/b" >/dev/null 2>>"$T/b.log" || { echo "FAIL: resume"; cat "$T/b.log"; exit 1; }
echo "killed $kills time(s)"
[ $kills -ge 1 ] || { echo "FAIL: the run finished before it could be killed (make it longer)"; fail=1; }

last=$(ls "$T/a/checkpoints" | tail -1)
[ "$last" = step_000000120 ] || { echo "FAIL: last checkpoint $last"; fail=1; }
if ! cmp -s "$T/a/checkpoints/$last/model.safetensors" "$T/b/checkpoints/$last/model.safetensors"; then
  echo "FAIL: final weights differ after kill -9 and resume"; fail=1
fi
if [ "$(ls "$T/a/checkpoints")" != "$(ls "$T/b/checkpoints")" ]; then echo "FAIL: checkpoint sets differ"; fail=1; fi
for ck in $(ls "$T/a/checkpoints"); do
  cmp -s "$T/a/checkpoints/$ck/model.safetensors" "$T/b/checkpoints/$ck/model.safetensors" || { echo "FAIL: $ck differs"; fail=1; }
done
# Every step's training metrics exactly once, equal to the uninterrupted run's.
if ! cmp -s "$T/a/metrics.jsonl" "$T/b/metrics.jsonl"; then echo "FAIL: metrics.jsonl differs"; diff "$T/a/metrics.jsonl" "$T/b/metrics.jsonl" | head -5; fail=1; fi
n=$(grep -c train_loss "$T/b/metrics.jsonl")
[ "$n" -eq 120 ] || { echo "FAIL: $n steps with train_loss (want 120)"; fail=1; }
for f in config.json summary.json report.html metrics.sqlite; do [ -s "$T/b/$f" ] || { echo "FAIL: $f missing"; fail=1; }; done

# Checkpoints load in the other commands.
echo '[[1, 2, 43]]' >"$T/abc.json"
"$BIN" run --model "$T/a/checkpoints/$last" --tokens "$T/abc.json" >/dev/null 2>"$T/run.log" || { echo "FAIL: run on a checkpoint"; cat "$T/run.log"; fail=1; }
"$BIN" heads --model "$T/a/checkpoints/$last" --tokens "$T/abc.json" >/dev/null 2>"$T/heads.log" || { echo "FAIL: heads on a checkpoint"; cat "$T/heads.log"; fail=1; }

expect_bad() {  # name, expected stderr substring, command...
  local name=$1 want=$2; shift 2
  "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
  local rc=$? lines
  lines=$(wc -l <"$T/stderr")
  if [ $rc -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -qF -- "$want" "$T/stderr"; then
    echo "FAIL $name: exit $rc, $lines lines: $(cat "$T/stderr")"; fail=1
  fi
}
expect_bad "p too small" "p must lie" "$BIN" train grokking --p 2 --out "$T/c"
[ -e "$T/c" ] && { echo "FAIL: a run folder was made for bad arguments"; fail=1; }
expect_bad "frac out of range" "frac_train" "$BIN" train grokking --frac-train 1.5 --out "$T/c"
expect_bad "no folder" "exactly one of --out" "$BIN" train grokking
expect_bad "resume nothing" "$T/nope" "$BIN" train grokking --resume "$T/nope"
expect_bad "out over a run" "already holds a run" "$BIN" train grokking --out "$T/a"
cp -r "$T/b" "$T/d"
head -c 100 "$T/b/state.safetensors" >"$T/d/state.safetensors"
expect_bad "truncated state" "state.safetensors" "$BIN" train grokking --resume "$T/d"
echo '{"recipe": "grokking", "p": "x"}' >"$T/d/config.json"
expect_bad "bad config" "config.json" "$BIN" train grokking --resume "$T/d"
expect_bad "analyze nothing" "$T/nope" "$BIN" analyze grokking "$T/nope"
expect_bad "lm corpus missing" "neither moby-dick" "$BIN" train lm --corpus "$T/nope.txt" --out "$T/e"
[ -e "$T/e" ] && { echo "FAIL: a run folder was made for a missing corpus"; fail=1; }
expect_bad "superposition sparsity" "sparsity" "$BIN" train superposition --sparsity 1.5 --out "$T/e"
expect_bad "induction layers" "layers" "$BIN" train induction --layers 0 --out "$T/e"
expect_bad "addition digits" "digits" "$BIN" train addition --digits 0 --out "$T/e"

[ $fail -eq 0 ] && echo "train_resume: all passed"
exit $fail
