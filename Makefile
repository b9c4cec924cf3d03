# The two commands of the README, and their parts.
#   make run    install what is missing, build release, start the server on :8080 with ./data
#   make test   install, build, run every test (unit, end-to-end, sanitizers, format)
# Other targets: build, debug, asan, bench, eval, format, clean.

PORT ?= 8080
DATA ?= ./data

.PHONY: all setup build run test debug asan bench eval format clean

all: build

setup:
	@scripts/setup.sh build

build: setup
	@cmake --preset release >/dev/null
	@cmake --build --preset release
	@ln -sf release/whisperer build/whisperer

run: build
	build/whisperer serve --port $(PORT) --data $(DATA)

test: build
	@scripts/setup.sh test
	@scripts/test.sh

debug: setup
	@cmake --preset debug >/dev/null
	@cmake --build --preset debug

asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build --preset asan

bench: build
	@scripts/setup.sh bench
	@bench/run.sh

# The models on the public datasets against scikit-learn and XGBoost: writes EVALUATION.md.
# The datasets folder is $WHISPERER_DATA, else ../shared/data.
eval: build
	@scripts/setup.sh eval
	@/usr/bin/python3 scripts/eval.py

format:
	@git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf build
