# Revenge: `make run` starts the server, `make test` runs lint and the tests. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: run test lint format check-python clean help bench-scan bench-progress bench-transcode bench-ladder bench-chunks bench-cold-start bench-segments bench-proxy bench-art bench-memory bench-smart bench-search bench-subsonic bench-podcasts bench-loudness bench-idle bench-workers bench-footprint vendor-hlsjs

help:
	@echo "make run     start web, worker and beat on http://127.0.0.1:$${PORT:-8000} (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)"
	@echo "make test    ruff check, ruff format --check, mypy, pytest (PYTEST_ARGS='-m \"not slow\"' for the quick ones)"
	@echo "make format  apply ruff fixes and formatting"
	@echo "make bench-scan  scan benchmark (BENCH_FILES=2000)"
	@echo "make bench-progress  progress PUT under gunicorn: req/s, p99, server CPU per request; buffer flush (BENCH_CLIENTS=32, BENCH_SECONDS=15, BENCH_PROFILE=<folder>: py-spy)"
	@echo "make bench-idle      CPU ms per second of the whole stack of make run while nobody listens (BENCH_SECONDS=60)"
	@echo "make bench-workers   gunicorn worker models side by side: req/s, p99, CPU per request at 16 and 64 connections"
	@echo "make bench-footprint memory (RSS, PSS) of the whole stack, default and small profile, idle and after a scan + playback"
	@echo "make bench-transcode  transcode benchmark (10-minute track)"
	@echo "make bench-ladder     the fitted ladder against the full one on a 64 kbit/s AAC book (BENCH_BOOK_HOURS=10)"
	@echo "make bench-chunks     a 2-hour MP3 book in chunks on 1 and 2 worker processes, and its bad joins (BENCH_CHUNK_BOOK_HOURS=2)"
	@echo "make bench-loudness   the transcode with the loudness analysis branch against without it (10-minute track)"
	@echo "make bench-cold-start time to first audio on never-transcoded 30-minute FLACs, idle and with a bulk backlog (needs nginx)"
	@echo "make bench-segments   /hls/ segment throughput under gunicorn"
	@echo "make bench-art        the artwork task vs a bare Pillow loop, peak RSS on a bomb and a 20 MB JPEG"
	@echo "make bench-proxy      segments through nginx secure_link vs nginx static vs the Django view (needs nginx, wrk)"
	@echo "make bench-smart      smart playlists over a generated catalogue (BENCH_TRACKS=100000, BENCH_RUNS=30)"
	@echo "make bench-search     search (200 exact/prefix/typo/accent queries) over a generated catalogue (BENCH_TRACKS=100000)"
	@echo "make bench-memory     a web worker's memory while it streams a 1 GiB original itself (BENCH_MEMORY_MIB=1024)"
	@echo "make bench-podcasts   feed refreshes (500 x 300 episodes: all 304, all changed) and one episode download, vs bare HTTP and curl"
	@echo "make bench-subsonic   OpenSubsonic full sync by search3 vs the REST track list, getAlbumList2, stream first byte (BENCH_SONGS=2020)"
	@echo "make vendor-hlsjs     update the vendored hls.js (HLSJS_VERSION=$(HLSJS_VERSION)) from the npm registry"
	@echo "make clean   remove .venv (var/ with the embedded databases is kept)"

check-python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Revenge needs Python 3.11 or newer; set PYTHON=python3.x")'

$(STAMP): requirements.txt requirements-dev.txt | check-python
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

run: $(STAMP)
	$(BIN)/python -m revenge.launcher run

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python -m pytest $(PYTEST_ARGS)

bench-scan: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/scan.py $(if $(BENCH_FILES),--files $(BENCH_FILES))

bench-progress: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/progress.py

bench-idle: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/idle.py

bench-workers: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/workers.py

# Not under `launcher exec`: each stack starts its own embedded PostgreSQL and Redis, which count.
bench-footprint: $(STAMP)
	$(BIN)/python bench/footprint.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache

bench-transcode: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/transcode.py

bench-ladder: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/transcode.py --ladder

bench-chunks: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/transcode.py --chunks

bench-loudness: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/loudness.py

bench-cold-start: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/coldstart.py

bench-segments: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/segments.py

bench-art: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/art.py

bench-proxy: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/proxy.py

bench-memory: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/memory.py

bench-podcasts: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/podcasts.py

bench-smart: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/smart.py

bench-search: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/search.py

# hls.js for the web player, vendored from the npm registry (no CDN, no build step): the minified build,
# its licence and the version, under apps/web/static/web/vendor/hls.js/. Bump HLSJS_VERSION, run, commit.
# The source-map comment is dropped: the map is not vendored, and collectstatic's manifest storage fails
# on a reference to a file that does not exist.
bench-subsonic: $(STAMP)
	$(BIN)/python -m revenge.launcher exec -- $(BIN)/python bench/subsonic.py $(if $(BENCH_SONGS),--songs $(BENCH_SONGS))

HLSJS_VERSION ?= 1.7.4
HLSJS_DIR := apps/web/static/web/vendor/hls.js

vendor-hlsjs:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	(cd "$$tmp" && npm pack --silent hls.js@$(HLSJS_VERSION) >/dev/null && tar -xzf hls.js-$(HLSJS_VERSION).tgz) && \
	mkdir -p $(HLSJS_DIR) && \
	grep -v '^//# sourceMappingURL=' "$$tmp/package/dist/hls.min.js" > $(HLSJS_DIR)/hls.min.js && \
	cp "$$tmp/package/LICENSE" $(HLSJS_DIR)/LICENSE && \
	echo "$(HLSJS_VERSION)" > $(HLSJS_DIR)/VERSION && \
	echo "hls.js $(HLSJS_VERSION) -> $(HLSJS_DIR)"
