"""Rechunk a 4000 x 4000 float64 Zarr array from (4000, 50) to (50, 4000) chunks with
--memory-limit 64MiB, the all-to-all case where array engines run out of memory.

Issue 3's bar: finish with peak RSS under 100 MB. Prints wall time, peak RSS (GNU time)
and blockwise's --stats line; checks the result against the numpy source.

    .venv/bin/python benches/compare/rechunk.py
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import zarr

BLOCKWISE = os.environ.get("BLOCKWISE", "target/release/blockwise")


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "a.npy")
        a = np.random.default_rng(0).standard_normal((4000, 4000))
        np.save(src, a)
        tall = os.path.join(d, "tall.zarr")
        subprocess.run([BLOCKWISE, "convert", src, tall, "--chunks", "4000,50", "--no-progress"], check=True)
        wide = os.path.join(d, "wide.zarr")
        timing = os.path.join(d, "time")
        cmd = ["/usr/bin/time", "-f", "%e %M", "-o", timing, BLOCKWISE, "convert", tall, wide,
               "--chunks", "50,4000", "--memory-limit", "64MiB", "--no-progress", "--stats"]
        run = subprocess.run(cmd, capture_output=True, text=True)
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        wall, rss_kb = open(timing).read().split()
        stats = json.loads(run.stderr.strip().splitlines()[-1])
        b = zarr.open_array(wide, mode="r")
        ok = b.chunks == (50, 4000) and np.array_equal(b[...], a)
        print(f"rechunk 4000x4000 f8 (4000,50)->(50,4000), --memory-limit 64MiB: "
              f"{float(wall):.2f} s, peak RSS {int(rss_kb) / 1024:.0f} MB, "
              f"{stats['tasks']} tasks, {stats['spilled_bytes'] / 1e6:.0f} MB through an intermediate, "
              f"result {'equal' if ok else 'DIFFERENT'}")
        return 0 if ok and int(rss_kb) < 100 * 1024 else 1


if __name__ == "__main__":
    sys.exit(main())
