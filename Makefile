# mreg developer commands. The first target run bootstraps .venv (idempotent:
# the stamp file is rebuilt only when pyproject.toml changes).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: venv mlserver-venv system-deps serve test lint typecheck pytest bench format clean grpc-proto

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,onnx,torch,keras,postgres,s3,mlflow]'
	touch $(STAMP) $(SERVE_STAMP)

# `make serve` needs only the package and its own dependencies (scikit-learn, skops,
# DVC, Litestar): a fresh clone answers in a few minutes, not after installing every
# extra. The ONNX, Torch and Keras examples answer 503 naming their extra until it is
# installed (`make serve SERVE_EXTRAS=onnx,torch`, or any `make test`).
SERVE_STAMP := $(VENV)/.installed-serve
SERVE_EXTRAS ?=
$(SERVE_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.$(if $(SERVE_EXTRAS),[$(SERVE_EXTRAS)],)'
	touch $(SERVE_STAMP)

# The real MLServer from PyPI in its own venv (.venv-mlserver, or $MREG_MLSERVER_VENV), with
# this checkout installed editable with the mlserver extra: built once, rebuilt when
# pyproject.toml changes. The MLServer tests and benchmarks run `mlserver` from it.
mlserver-venv: $(STAMP)
	$(BIN)/python -m tests.mlserver_venv

# Serves the example registry at HEAD and follows the checked-out branch, so
# a new commit (a registered version, a moved pointer) is served within POLL s.
BRANCH ?= $(shell git branch --show-current 2>/dev/null)
POLL ?= 2
# The version tags (iris@v3, ...) do not travel with every clone: `mreg tags --sync`
# makes the missing ones from the register commits. Once the server answers, one
# prediction is timed from the start of make (the install included) and printed.
SERVE_T0 := $(shell date +%s.%N)
serve: $(SERVE_STAMP)
	$(BIN)/mreg pull
	$(BIN)/mreg tags --sync >/dev/null
	@echo "mreg: serving the example registry at http://$(HOST):$(PORT)"
	@echo "try:  curl -s http://$(HOST):$(PORT)/v1/models"
	@(for i in $$(seq 1200); do 	    if $(BIN)/mreg invoke iris --url http://$(HOST):$(PORT) --data '[5.1, 3.5, 1.4, 0.2]' >/dev/null 2>&1; then 	      echo "mreg: first prediction $$(awk "BEGIN {printf \"%.1f\", $$(date +%s.%N) - $(SERVE_T0)}") s after make serve started"; 	      break; 	    fi; sleep 0.5; done) &
	$(BIN)/mreg serve --host $(HOST) --port $(PORT) $(if $(BRANCH),--follow $(BRANCH) --poll $(POLL),)

# Real components the tests start: a headless browser (the web page's tests) and
# PostgreSQL (the shared usage store). Installed from Debian's packages when
# missing; the tests fail, never skip, without them.
SUDO := $(shell test "$$(id -u)" = 0 || echo sudo)
system-deps:
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
	    || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "mreg: installing chromium, chromium-driver and postgresql (Debian packages)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    chromium chromium-driver postgresql >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps mlserver-venv
	$(BIN)/pytest -n 2

test: lint typecheck pytest

bench: $(STAMP) mlserver-venv
	$(BIN)/python -m bench $(if $(FULL),--full,)

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerates server/protocols/grpc/grpc_predict_v2_pb2.py from the vendored proto, with
# protobuf 6's generator (the code then runs on protobuf 6.31 and later, 7 included) in a
# throwaway venv, into a descriptor pool of its own: tritonclient's and MLServer's modules
# define the same `inference.*` names, and a process may import them beside mreg's.
PROTO := server/protocols/grpc/grpc_predict_v2.proto
grpc-proto:
	rm -rf .venv-protoc && $(PY) -m venv .venv-protoc
	.venv-protoc/bin/pip install -q "grpcio-tools>=1.71,<1.76" "protobuf>=6.31,<7"
	.venv-protoc/bin/python -m grpc_tools.protoc -I. --python_out=. $(PROTO)
	sed -i 's/_descriptor_pool.Default().AddSerializedFile/_descriptor_pool.DescriptorPool().AddSerializedFile/' $(PROTO:.proto=_pb2.py)
	rm -rf .venv-protoc

clean:
	rm -rf $(VENV) .venv-mlserver
