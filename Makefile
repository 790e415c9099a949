# Set-up and everyday commands. Every target creates the virtual environment first if needed.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SHARED_DATA ?= $(or $(QF_SHARED_DATA),../shared/data)
RECORDING ?=
LIVE ?=
ESG_PORT ?= 8502
LIVE_PORT ?= 8503
API_PORT ?= 8000
TORCH ?= 2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: run live test lint bench clean

$(BIN)/quantumflow: pyproject.toml operators/_book_kernel.c dataflows/_native_lines.c
	@$(PYTHON) -c 'import sys; assert (3, 11) <= sys.version_info[:2] <= (3, 12), "QuantumFlow needs Python 3.11 or 3.12 (Bytewax has no wheels for newer ones); set PYTHON=python3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# Torch's CPU build first, so that nothing later pulls the CUDA wheels: a local CPU wheel if pip
	# knows of one, else PyTorch's CPU index (PyPI's Linux wheels are CUDA builds of several GB)
	$(BIN)/pip install --quiet --only-binary=:all: torch==$(TORCH)+cpu 2>/dev/null || \
		$(BIN)/pip install --quiet torch==$(TORCH) --index-url $(TORCH_INDEX)
	rm -f operators/*.so dataflows/*.so  # a C pass that no longer compiles must not leave its old build in use
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

# the main job: the API on $(API_PORT) beside the flow, which replays RECORDING (default: a simulated
# one, with small models trained on it the first time) into SQLite with predictions; then the live dashboard
# on $(LIVE_PORT) (from the start, so it shows the store filling) and the ESG dashboard, until Ctrl-C stops all
run: $(BIN)/quantumflow
	$(BIN)/quantumflow api --port $(API_PORT) & api=$$!; \
	$(BIN)/quantumflow dashboard live --port $(LIVE_PORT) & live=$$!; \
	trap 'kill $$api $$live 2>/dev/null' EXIT INT TERM; \
	$(BIN)/quantumflow run $(RECORDING) && \
	echo "API: http://127.0.0.1:$(API_PORT)/docs" && \
	echo "Live dashboard: http://localhost:$(LIVE_PORT)/" && \
	$(BIN)/quantumflow dashboard esg --port $(ESG_PORT)

# the second way to run it: LIVE instruments (VENUE:SYMBOL,...) read from their venues into the flow, with
# the API and the live dashboard beside it, what the venues send kept in $QF_DATA_DIR/live/ (data/live/), until Ctrl-C
live: $(BIN)/quantumflow
	@test -n "$(LIVE)" || { echo "give the instruments: make live LIVE=binance:BTCUSDT,coinbase:BTC-USD"; exit 2; }
	$(BIN)/quantumflow api --port $(API_PORT) & api=$$!; \
	$(BIN)/quantumflow dashboard live --port $(LIVE_PORT) & live=$$!; \
	trap 'kill $$api $$live 2>/dev/null' EXIT INT TERM; \
	echo "API: http://127.0.0.1:$(API_PORT)/docs  Live dashboard: http://localhost:$(LIVE_PORT)/"; \
	$(BIN)/quantumflow run --live $(LIVE) --record "$${QF_DATA_DIR:-data}/live"

test: $(BIN)/quantumflow  ## lint, then the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q

lint: $(BIN)/quantumflow
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(BIN)/quantumflow  ## throughput, the models' cost per event, the flow through Kafka, the ingester's overhead, the API under load, the live dashboard's latency, how long a run without models takes to start, file -> synced book beside hftbacktest, and live latency paced at 1x and 10x, on the real recordings
	$(BIN)/quantumflow bench $(SHARED_DATA)/binance/usdm_btcusdt_20240808.gz
	$(BIN)/python -m bench.kafka $(SHARED_DATA)/binance/spot_btcusdt_20240808.gz
	$(BIN)/python -m bench.ingest $(SHARED_DATA)/binance/spot_btcusdt_20240808.gz
	$(BIN)/python -m bench.api --recording $(SHARED_DATA)/binance/spot_btcusdt_20240808.gz
	$(BIN)/python -m bench.live_dashboard
	$(BIN)/python -m bench.startup $(SHARED_DATA)/binance/spot_btcusdt_20240808.gz
	$(BIN)/python -m bench.hft_books $(SHARED_DATA)/binance/usdm_btcusdt_20240808.gz
	$(BIN)/python -m bench.hft_books $(SHARED_DATA)/binance/cm_btcusd_perp_20240808.gz
	$(BIN)/python -m bench.live $(SHARED_DATA)/binance/spot_btcusdt_20240808.gz

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache .hypothesis build *.egg-info
	rm -f operators/*.so dataflows/*.so
