#!/usr/bin/env python3
"""Zarr v3 write and read: blockwise vs zarr-python 3 and tensorstore on a 2 GiB float64 array.

    .venv/bin/python benches/compare/zarr_rw.py [--mmap] [--extra] [--baseline BIN] [--side 16384] [--regenerate]

Data: a (16384, 16384) float64 .npy (2 GiB): a sum of sines plus a little noise,
quantised to multiples of 2**-10 so zstd finds something to compress.
Chunks (1024, 1024) = 8 MiB each, zstd level 3, no shards.

(a) write: `blockwise convert src.npy out.zarr --chunks 1024,1024 --compression zstd:3`
    vs zarr-python: `zarr.create_array(..., chunks=(1024, 1024), compressors=ZstdCodec(level=3))`
    then `arr[r0:r1, :] = slab` for chunk-aligned 1024-row slabs (128 MiB) of the source.
    tensorstore: the `zarr3` driver with the same codecs (`bytes` little-endian +
    `zstd` level 3, no checksum), written slab by slab from a pread buffer, the read of
    the next slab overlapping the write of the previous one (one write in flight).
(b) read: `blockwise convert ref.zarr out.npy` vs zarr-python reading the same array
    slab by slab into an .npy created with `np.lib.format.open_memmap`, and
    tensorstore reading slab by slab (the next slab's read in flight while the
    previous one is written out).
    All read the same input (the array written by zarr-python in (a)), decode every
    chunk and write a raw 2 GiB .npy: a fair pairing.

The zarr-python peers move slabs with pread/pwrite on the .npy files by default, so
that their peak RSS counts the working set and not file pages mapped by a memmap
(a memmap of the 2 GiB file would show up to 2 GiB of RSS, mostly clean page cache).
--mmap makes them slice numpy memmaps instead (np.load(mmap_mode='r') for the source,
open_memmap for the output), literally as a typical script would.

Env: BLOCKWISE / BENCH_N / BENCH_DIR (see common.py); BENCH_SIDE overrides --side.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

CHUNK = 1024
SEED = 7


def generate(path: Path, side: int) -> None:
    import numpy as np

    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    tmp = path.with_name(path.name + ".tmp")
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype="<f8", shape=(side, side))
    x = np.linspace(0, 40 * np.pi, side)
    sx1, sx2 = np.sin(x), np.sin(3.7 * x + 0.5)
    for r0 in range(0, side, CHUNK):
        r1 = min(r0 + CHUNK, side)
        y = np.linspace(0, 40 * np.pi, side)[r0:r1, None]
        slab = 10 * np.sin(0.5 * y) * sx1 + 3 * np.cos(y) * sx2 + 0.05 * rng.standard_normal((r1 - r0, side))
        mm[r0:r1] = np.round(slab * 1024) / 1024
    mm.flush()
    del mm
    os.replace(tmp, path)
    print(f"generated {path} ({path.stat().st_size / 2**30:.2f} GiB, shape ({side}, {side})) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)


def zarr_write_code(src: Path, dst: Path, use_mmap: bool) -> list[str]:
    return common.python_cmd(f"""
        import os, numpy as np, zarr
        from zarr.codecs import ZstdCodec
        src, dst, C, use_mmap = {str(src)!r}, {str(dst)!r}, {CHUNK}, {use_mmap!r}
        if use_mmap:
            mm = np.load(src, mmap_mode="r")
            shape, dtype = mm.shape, mm.dtype
        else:
            hdr = np.load(src, mmap_mode="r")  # header only: no data page is touched
            shape, dtype, offset = hdr.shape, hdr.dtype, hdr.offset
            del hdr
            fd = os.open(src, os.O_RDONLY)
        arr = zarr.create_array(store=dst, shape=shape, chunks=(C, C), dtype=dtype,
                                compressors=ZstdCodec(level=3), zarr_format=3, overwrite=True)
        rowbytes = shape[1] * dtype.itemsize
        for r0 in range(0, shape[0], C):
            r1 = min(r0 + C, shape[0])
            if use_mmap:
                slab = mm[r0:r1]
            else:
                buf = bytearray((r1 - r0) * rowbytes)
                n = os.preadv(fd, [buf], offset + r0 * rowbytes)
                assert n == len(buf)
                slab = np.frombuffer(buf, dtype=dtype).reshape(r1 - r0, shape[1])
            arr[r0:r1, :] = slab
        """)


def zarr_read_code(src: Path, dst: Path, use_mmap: bool) -> list[str]:
    return common.python_cmd(f"""
        import os, numpy as np, zarr
        src, dst, C, use_mmap = {str(src)!r}, {str(dst)!r}, {CHUNK}, {use_mmap!r}
        arr = zarr.open_array(src, mode="r")
        out = np.lib.format.open_memmap(dst, mode="w+", dtype=arr.dtype, shape=arr.shape)
        if not use_mmap:
            offset = out.offset
            del out  # the file and its header exist; fill it with pwrite
            fd = os.open(dst, os.O_WRONLY)
        rowbytes = arr.shape[1] * arr.dtype.itemsize
        for r0 in range(0, arr.shape[0], C):
            r1 = min(r0 + C, arr.shape[0])
            slab = arr[r0:r1, :]
            if use_mmap:
                out[r0:r1] = slab
            else:
                n = os.pwrite(fd, np.ascontiguousarray(slab).data, offset + r0 * rowbytes)
                assert n == slab.nbytes
        if use_mmap:
            out.flush()
        else:
            os.close(fd)
        """)


def tensorstore_write_code(src: Path, dst: Path, use_mmap: bool) -> list[str]:
    return common.python_cmd(f"""
        import os, numpy as np, tensorstore as ts
        src, dst, C, use_mmap = {str(src)!r}, {str(dst)!r}, {CHUNK}, {use_mmap!r}
        if use_mmap:
            mm = np.load(src, mmap_mode="r")
            shape, dtype = mm.shape, mm.dtype
        else:
            hdr = np.load(src, mmap_mode="r")  # header only: no data page is touched
            shape, dtype, offset = hdr.shape, hdr.dtype, hdr.offset
            del hdr
            fd = os.open(src, os.O_RDONLY)
        codecs = [{{"name": "bytes", "configuration": {{"endian": "little"}}}},
                  {{"name": "zstd", "configuration": {{"level": 3, "checksum": False}}}}]
        arr = ts.open({{"driver": "zarr3", "kvstore": {{"driver": "file", "path": dst}},
                        "metadata": {{"shape": list(shape), "data_type": dtype.name,
                                      "chunk_grid": {{"name": "regular",
                                                     "configuration": {{"chunk_shape": [C, C]}}}},
                                      "codecs": codecs}}}},
                      create=True, delete_existing=True).result()
        rowbytes = shape[1] * dtype.itemsize
        pending = None
        for r0 in range(0, shape[0], C):
            r1 = min(r0 + C, shape[0])
            if use_mmap:
                slab = mm[r0:r1]
            else:
                buf = bytearray((r1 - r0) * rowbytes)
                n = os.preadv(fd, [buf], offset + r0 * rowbytes)
                assert n == len(buf)
                slab = np.frombuffer(buf, dtype=dtype).reshape(r1 - r0, shape[1])
            if pending is not None:
                pending.result()
            pending = arr[r0:r1, :].write(slab)
        if pending is not None:
            pending.result()
        """)


def tensorstore_read_code(src: Path, dst: Path, use_mmap: bool) -> list[str]:
    return common.python_cmd(f"""
        import os, numpy as np, tensorstore as ts
        src, dst, C, use_mmap = {str(src)!r}, {str(dst)!r}, {CHUNK}, {use_mmap!r}
        arr = ts.open({{"driver": "zarr3", "kvstore": {{"driver": "file", "path": src}}}},
                      open=True, read=True).result()
        shape, dtype = arr.shape, arr.dtype.numpy_dtype
        out = np.lib.format.open_memmap(dst, mode="w+", dtype=dtype, shape=shape)
        if not use_mmap:
            offset = out.offset
            del out  # the file and its header exist; fill it with pwrite
            fd = os.open(dst, os.O_WRONLY)
        rowbytes = shape[1] * dtype.itemsize
        starts = list(range(0, shape[0], C))
        pending = arr[0:min(C, shape[0]), :].read() if starts else None
        for i, r0 in enumerate(starts):
            slab = pending.result()
            if i + 1 < len(starts):
                n0 = starts[i + 1]
                pending = arr[n0:min(n0 + C, shape[0]), :].read()
            if use_mmap:
                out[r0:r0 + slab.shape[0]] = slab
            else:
                n = os.pwrite(fd, np.ascontiguousarray(slab).data, offset + r0 * rowbytes)
                assert n == slab.nbytes
        if use_mmap:
            out.flush()
        else:
            os.close(fd)
        """)


def compare(label: str, a, b, side: int, rng) -> bool:
    """Equal on a few random slabs, and equal checksums of a downsampled view."""
    import numpy as np

    ok = a.shape == b.shape and a.dtype == b.dtype
    for _ in range(4):
        r0, c0 = int(rng.integers(0, side - 700)), int(rng.integers(0, side - 700))
        h, w = int(rng.integers(1, 700)), int(rng.integers(1, 700))
        ok &= bool(np.array_equal(a[r0:r0 + h, c0:c0 + w], b[r0:r0 + h, c0:c0 + w]))
    ok &= bool(np.array_equal(a[-3:, -517:], b[-3:, -517:]))  # last edge
    step = 61  # not a divisor of the chunk size: touches every chunk at odd offsets
    da, db = np.asarray(a[::step, ::step]), np.asarray(b[::step, ::step])
    ca = hashlib.sha1(np.ascontiguousarray(da).tobytes()).hexdigest()[:12]
    cb = hashlib.sha1(np.ascontiguousarray(db).tobytes()).hexdigest()[:12]
    ok &= bool(np.array_equal(da, db)) and ca == cb
    print(f"verify {label}: shape {a.shape} vs {b.shape}, dtype {a.dtype} vs {b.dtype}, "
          f"sha1 of [::{step}, ::{step}] {ca} vs {cb} -> {'OK' if ok else 'MISMATCH'}", flush=True)
    return ok


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--side", type=int, default=int(os.environ.get("BENCH_SIDE", "16384")))
    ap.add_argument("--mmap", action="store_true", help="zarr-python peers slice numpy memmaps")
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--extra", action="store_true",
                    help="add diagnostic blockwise rows (--threads 1, --compression none)")
    ap.add_argument("--baseline", metavar="BIN",
                    help="another blockwise binary (e.g. a build of an older commit) as one more row")
    args = ap.parse_args()

    import numpy as np
    import zarr

    d = common.bench_dir() / "zarr_rw"
    d.mkdir(parents=True, exist_ok=True)
    src = d / f"src_{args.side}.npy"
    if args.regenerate or not src.exists():
        generate(src, args.side)
    bw = common.blockwise_bin()
    bw_zarr, zp_zarr, ts_zarr = d / "blockwise.zarr", d / "zarr_python.zarr", d / "tensorstore.zarr"
    bw_npy, zp_npy = d / "blockwise_read.npy", d / "zarr_python_read.npy"
    ts_npy = d / "tensorstore_read.npy"
    gib = src.stat().st_size / 2**30

    # (a) write
    bw_write = [bw, "convert", str(src), str(bw_zarr), "--chunks", f"{CHUNK},{CHUNK}",
                "--no-progress", "--overwrite", "--stats"]
    cases = [("blockwise", bw_write + ["--compression", "zstd:3"], lambda: common.remove(bw_zarr)),
             ("zarr-python", zarr_write_code(src, zp_zarr, args.mmap), lambda: common.remove(zp_zarr)),
             ("tensorstore", tensorstore_write_code(src, ts_zarr, args.mmap), lambda: common.remove(ts_zarr))]
    if args.extra:
        cases += [("blockwise --threads 1", bw_write + ["--compression", "zstd:3", "--threads", "1"],
                   lambda: common.remove(bw_zarr)),
                  ("blockwise --compression none", bw_write + ["--compression", "none"],
                   lambda: common.remove(bw_zarr))]
    if args.baseline:
        cases.append(("blockwise baseline", [args.baseline, *bw_write[1:], "--compression", "zstd:3"],
                      lambda: common.remove(bw_zarr)))
    write = common.bench(cases)
    if args.extra or args.baseline:  # the last run wrote another array: rewrite blockwise's for the checks
        common.bench([cases[0]], n=0)
    ok = all(r.ok for r in write)
    rng = np.random.default_rng(1)
    ref = np.load(src, mmap_mode="r")
    if zp_zarr.exists():
        ok &= compare("zarr-python write vs source", zarr.open_array(str(zp_zarr), mode="r"), ref, args.side, rng)
    if write[2].ok:
        ok &= compare("tensorstore write vs source", zarr.open_array(str(ts_zarr), mode="r"), ref, args.side, rng)
    if write[0].ok:
        z = zarr.open_array(str(bw_zarr), mode="r")
        print(f"blockwise zarr: chunks {z.chunks}, codecs {[type(c).__name__ for c in z.metadata.codecs]}, "
              f"{du(bw_zarr) / 2**20:.0f} MiB on disk; zarr-python: {du(zp_zarr) / 2**20:.0f} MiB", flush=True)
        ok &= compare("blockwise write vs source", z, ref, args.side, rng)

    # (b) read: both read the zarr-python array (fall back to blockwise's)
    rsrc = zp_zarr if write[1].ok else bw_zarr
    bw_read = [bw, "convert", str(rsrc), str(bw_npy), "--no-progress", "--overwrite", "--stats"]
    cases = [("blockwise", bw_read, lambda: common.remove(bw_npy)),
             ("zarr-python", zarr_read_code(rsrc, zp_npy, args.mmap), lambda: common.remove(zp_npy)),
             ("tensorstore", tensorstore_read_code(rsrc, ts_npy, args.mmap), lambda: common.remove(ts_npy))]
    if args.extra:
        cases.append(("blockwise --threads 1", bw_read + ["--threads", "1"], lambda: common.remove(bw_npy)))
    if args.baseline:
        cases.append(("blockwise baseline", [args.baseline, *bw_read[1:]], lambda: common.remove(bw_npy)))
    read = common.bench(cases)
    if args.baseline:  # the last run was the baseline's: check blockwise's own output
        common.bench([cases[0]], n=0)
    ok &= all(r.ok for r in read)
    if read[0].ok:
        ok &= compare("blockwise read vs source", np.load(bw_npy, mmap_mode="r"), ref, args.side, rng)
    if read[1].ok:
        ok &= compare("zarr-python read vs source", np.load(zp_npy, mmap_mode="r"), ref, args.side, rng)
    if read[2].ok:
        ok &= compare("tensorstore read vs source", np.load(ts_npy, mmap_mode="r"), ref, args.side, rng)
    if read[0].ok and read[1].ok:
        ok &= compare("blockwise read vs zarr-python read", np.load(bw_npy, mmap_mode="r"),
                      np.load(zp_npy, mmap_mode="r"), args.side, rng)
    for path in (bw_npy, zp_npy, ts_npy):  # 2 GiB each: do not leave them behind
        common.remove(path)

    peers = "memmap slices" if args.mmap else "pread/pwrite slabs"
    common.print_table(f"(a) write .npy -> Zarr v3, {gib:.1f} GiB float64, chunks {CHUNK}x{CHUNK}, zstd:3 "
                       f"(zarr-python: {peers})", write)
    common.print_table(f"(b) read Zarr v3 -> .npy, {rsrc.name} (zarr-python: {peers})", read)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
