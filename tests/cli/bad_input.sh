#!/usr/bin/env bash
# Bad input through the CLI: every case must exit with status 2, print exactly one
# line on stderr that names the problem (and the file, where there is one), and
# leave no --out file behind. Uses the built-in default model, so it needs no golden
# files.
set -u
BIN=${1:?usage: bad_input.sh path/to/mechlens}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export MECHLENS_HOME=$T/home
pass=0; fail=0

# Build the default model once (a mechlens checkpoint) and use it as a model folder.
"$BIN" run --prompt "hello" >/dev/null 2>&1 || { echo "FAIL: default model run"; exit 1; }
M=$MECHLENS_HOME/default-gpt2-tiny

expect_bad() {  # name, expected stderr substring, command...
  local name=$1 want=$2; shift 2
  rm -f "$T/out.safetensors"
  "$@" >"$T/stdout" 2>"$T/stderr" </dev/null
  local rc=$? lines
  lines=$(wc -l <"$T/stderr")
  if [ $rc -ne 2 ]; then echo "FAIL $name: exit $rc (want 2)"; cat "$T/stderr"; fail=$((fail+1)); return; fi
  if [ "$lines" -ne 1 ]; then echo "FAIL $name: $lines stderr lines (want 1)"; cat "$T/stderr"; fail=$((fail+1)); return; fi
  if ! grep -qF -- "$want" "$T/stderr"; then echo "FAIL $name: stderr lacks '$want': $(cat "$T/stderr")"; fail=$((fail+1)); return; fi
  if [ -e "$T/out.safetensors" ] || ls "$T"/out.safetensors.tmp.* >/dev/null 2>&1; then
    echo "FAIL $name: output was written"; fail=$((fail+1)); return; fi
  pass=$((pass+1))
}

echo '[[1, 2, 3]]' >"$T/ok.json"
echo '[[1, 2, 3], [4, 5]]' >"$T/ragged.json"
echo '[[1, 2, 3], []]' >"$T/empty_row.json"
echo '{"input_ids": [[1, 2, 3]], "attention_mask": [[1, 1]]}' >"$T/mask_short.json"
echo '{"input_ids": [[1, 2, 3]], "attention_mask": [[1, 2, 1]]}' >"$T/mask_value.json"
echo '[[1, 2, 50257]]' >"$T/oov.json"
echo '[[1, 2, -1]]' >"$T/neg.json"
echo '[[1, 2' >"$T/broken.json"
echo '{"a": 1}' >"$T/object.json"
python3 - "$T/long.json" <<'PY' 2>/dev/null || printf '[[%s0]]\n' "$(printf '1,%.0s' $(seq 1 300))" >"$T/long.json"
import sys, json; json.dump([[1] * 300], open(sys.argv[1], "w"))
PY

cache() { "$BIN" cache --model "$1" --tokens "$2" --out "$T/out.safetensors" "${@:3}"; }

expect_bad missing-model "$T/nope" cache "$T/nope" "$T/ok.json"
expect_bad missing-tokens "$T/none.json" cache "$M" "$T/none.json"
expect_bad broken-json "broken.json" cache "$M" "$T/broken.json"
expect_bad object-json "object.json" cache "$M" "$T/object.json"
# Ragged rows are padded (see below); what cannot be padded is an error.
expect_bad empty-row "empty_row.json" cache "$M" "$T/empty_row.json"
expect_bad padding-side "--padding-side" cache "$M" "$T/ragged.json" --padding-side middle
expect_bad pad-id "--pad-id" cache "$M" "$T/ragged.json" --pad-id 999999
expect_bad mask-length "mask_short.json" cache "$M" "$T/mask_short.json"
expect_bad mask-value "mask_value.json" cache "$M" "$T/mask_value.json"
expect_bad token-out-of-range "d_vocab" cache "$M" "$T/oov.json"
expect_bad token-negative "negative" cache "$M" "$T/neg.json"
expect_bad too-long "n_ctx" cache "$M" "$T/long.json"
expect_bad bad-processing "--processing" cache "$M" "$T/ok.json" --processing fold
expect_bad bad-regex "regex" cache "$M" "$T/ok.json" --names '(['
expect_bad unknown-option "--frobnicate" "$BIN" run --frobnicate
expect_bad no-subcommand "subcommand" "$BIN"

# Corrupt and truncated weights, mismatched config, unknown architecture.
mk() { rm -rf "$T/m"; cp -r "$M" "$T/m"; }
mk; head -c 100 /dev/urandom >"$T/m/model.safetensors"
expect_bad corrupt-weights "model.safetensors" cache "$T/m" "$T/ok.json"
mk; head -c 5000 "$M/model.safetensors" >"$T/m/model.safetensors"
expect_bad truncated-weights "model.safetensors" cache "$T/m" "$T/ok.json"
mk; printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >"$T/m/model.safetensors"
expect_bad huge-header "header length" cache "$T/m" "$T/ok.json"
mk; sed -i 's/"n_layers": 2/"n_layers": 3/' "$T/m/mechlens.json"
expect_bad config-mismatch "do not match" cache "$T/m" "$T/ok.json"
mk; echo '{not json' >"$T/m/mechlens.json"
expect_bad bad-config-json "mechlens.json" cache "$T/m" "$T/ok.json"
rm -rf "$T/hf"; mkdir "$T/hf"; echo '{"model_type": "bert", "architectures": ["BertModel"]}' >"$T/hf/config.json"
expect_bad unknown-architecture "unknown architecture" cache "$T/hf" "$T/ok.json"
echo '{"model_type": "gpt2", "n_embd": 64, "n_layer": 2, "n_head": 4, "vocab_size": 10, "n_positions": 8}' >"$T/hf/config.json"
expect_bad hf-no-weights "model.safetensors" cache "$T/hf" "$T/ok.json"

# Tokenizer inputs.
rm -rf "$T/tok"; mkdir "$T/tok"; head -c 300 /dev/urandom >"$T/tok/tokenizer.model"
expect_bad corrupt-spm "tokenizer.model" sh -c "echo hi | '$BIN' tokenize --model '$T/tok'"
rm -f "$T/tok/tokenizer.model"; echo '{"a": 0' >"$T/tok/vocab.json"; echo 'a b' >"$T/tok/merges.txt"
expect_bad corrupt-vocab "vocab.json" sh -c "echo hi | '$BIN' tokenize --model '$T/tok'"
expect_bad no-tokenizer "no tokenizer" sh -c "echo hi | '$BIN' tokenize --model '$T/hf'"
expect_bad invalid-utf8 "UTF-8" sh -c "printf 'a\\377b' | '$BIN' tokenize"

# Generation arguments.
expect_bad gen-past-ctx "n_ctx" "$BIN" generate --prompt hi --max-new-tokens 100000
expect_bad gen-top-p "top-p" "$BIN" generate --prompt hi --max-new-tokens 2 --top-p 2

# Analysis commands.
echo '[[1, 2, 3, 4]]' >"$T/four.json"
patch() { "$BIN" patch --model "$M" --clean-tokens "$T/ok.json" "$@" --out "$T/out.safetensors"; }
expect_bad patch-length-mismatch "token counts" patch --corrupt-tokens "$T/four.json" --answer-id 1 --wrong-id 2
expect_bad patch-unknown-site "unknown patching site" patch --corrupt-tokens "$T/ok.json" --answer-id 1 --wrong-id 2 --site nowhere
expect_bad patch-answer-range "out of range" patch --corrupt-tokens "$T/ok.json" --answer-id 99999999 --wrong-id 2
expect_bad patch-multi-token-answer "tokens" patch --corrupt-tokens "$T/ok.json" --answer " antidisestablishmentarianism" --wrong-id 2
expect_bad patch-bad-metric "metric" patch --corrupt-tokens "$T/ok.json" --answer-id 1 --wrong-id 2 --metric accuracy
expect_bad ablate-bad-head "ablation target" "$BIN" ablate --model "$M" --tokens "$T/ok.json" --answer-id 1 --wrong-id 2 --head x.y
expect_bad ablate-head-range "out of range" "$BIN" ablate --model "$M" --tokens "$T/ok.json" --answer-id 1 --wrong-id 2 --head 9.0
expect_bad heads-unknown "unknown detection pattern" "$BIN" heads --model "$M" --detect sideways
echo '[[1, 2], [3, 4]]' >"$T/two.json"
expect_bad heads-two-rows "exactly one sequence" "$BIN" heads --model "$M" --tokens "$T/two.json"
echo '[[1, 0]]' >"$T/pattern.json"
expect_bad heads-bad-pattern "pattern.json" "$BIN" heads --model "$M" --tokens "$T/ok.json" --pattern "$T/pattern.json"
expect_bad circuits-bad-head "out of range" "$BIN" circuits --model "$M" --head 7.7
expect_bad dla-no-answer "--answer" "$BIN" dla --model "$M" --tokens "$T/ok.json"

expect_bad init-unknown-field "unknown config field" "$BIN" init --out "$T/toy" --set frobs=3
expect_bad init-inconsistent "multiple" "$BIN" init --out "$T/toy" --set n_heads=3 --set n_key_value_heads=2

# The good path still works and writes the file.
if cache "$M" "$T/ok.json" >/dev/null 2>&1 && [ -s "$T/out.safetensors" ]; then pass=$((pass+1)); else echo "FAIL good-path cache"; fail=$((fail+1)); fi

if "$BIN" init --preset attn-only-2l --out "$T/toy" --set d_model=32 --set n_heads=4 --set d_head=8 >/dev/null 2>&1 &&
   "$BIN" cache --model "$T/toy" --tokens "$T/ok.json" --out "$T/out.safetensors" >/dev/null 2>&1 && [ -s "$T/out.safetensors" ]; then
  pass=$((pass+1)); else echo "FAIL good-path init + cache"; fail=$((fail+1)); fi

echo "bad_input: $pass passed, $fail failed"
[ $fail -eq 0 ]
