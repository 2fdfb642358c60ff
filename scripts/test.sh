#!/usr/bin/env bash
# Runs every test: creates the pinned Python environment the interop tests read
# and write with (numpy, pyarrow, zarr-python, dask), then `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! .venv/bin/python -c "import numpy, pyarrow, zarr, dask.array" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r fixtures/requirements.txt
fi
export BLOCKWISE_PYTHON="$PWD/.venv/bin/python"
cargo test --all-targets "$@"
