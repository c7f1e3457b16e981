# The README's two commands: `make run` and `make test`.
BUILD ?= build
JOBS ?= $(shell nproc)
MODEL ?=

.PHONY: deps build run test install bench bench-anchor clean

deps:
	@bash scripts/install-deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

# The main job: the explorer in the browser. On first run it trains the default toy
# language models and indexes them (a few minutes, cached in $$MECHLENS_HOME or
# ~/.cache/mechlens); MODEL=DIR serves your own model, indexed once on Moby-Dick.
run: build
	OMP_WAIT_POLICY=PASSIVE $(BUILD)/mechlens explore $(if $(MODEL),--model $(MODEL) --auto-index,--default) $(if $(PORT),--port $(PORT),)

test: build
	cd $(BUILD) && OMP_WAIT_POLICY=PASSIVE ctest --output-on-failure -j 2

# libmechlens, its headers, CMake package and pkg-config file, the CLI and the Python
# module under PREFIX (default /usr/local; Debian's python3 reads its dist-packages).
install: build
	cmake --install $(BUILD) $(if $(PREFIX),--prefix $(PREFIX),)

bench: build
	OMP_WAIT_POLICY=PASSIVE $(BUILD)/mechlens bench engine --config gpt2-small --batch 2 --seq 20 --json
	OMP_WAIT_POLICY=PASSIVE $(BUILD)/mechlens bench patching --config gpt2-small --batch 2 --seq 20 --site resid_pre --json

bench-anchor:
	@bash scripts/install-deps.sh --anchor
	OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/torch_anchor.py --batch 2 --seq 20

clean:
	rm -rf $(BUILD)
