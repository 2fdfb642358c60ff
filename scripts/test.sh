#!/usr/bin/env bash
# Runs every test: creates the pinned Python environment (numpy, pyarrow,
# zarr-python, dask, distributed, pytest, maturin), runs `cargo test`, builds the
# Python extension into that environment with the same dev profile (so the
# dependencies compile once), and runs the Python tests, which start a Dask
# scheduler and two workers on 127.0.0.1. Installs headless Chromium (apt) when no
# Chromium is on PATH, for the report's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=.venv/.requirements
if ! cmp -s fixtures/requirements.txt "$stamp" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r fixtures/requirements.txt
  cp fixtures/requirements.txt "$stamp"
fi
export BLOCKWISE_PYTHON="$PWD/.venv/bin/python"
# tests/test_report.rs opens reports in headless Chromium (Debian's package).
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null \
  && ! command -v google-chrome >/dev/null; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
cargo test --all-targets --no-fail-fast "$@"
rm -rf target/wheels
.venv/bin/maturin build --quiet --profile dev -m python/Cargo.toml -o target/wheels \
  -i .venv/bin/python
.venv/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps \
  target/wheels/blockwise-*.whl
(cd python/tests && ../../.venv/bin/python -m pytest -q -p no:cacheprovider .)
