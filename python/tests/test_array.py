"""Lazy arrays from Python: numpy's answers, numpy's protocols, Zarr that
zarr-python reads, and the tutorial example on a real Dask cluster."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

import blockwise as bw


def philox(seed: int, shape: tuple) -> np.ndarray:
    return np.random.Generator(np.random.Philox(key=seed)).random(shape)


def test_the_tutorial_example_is_numpys():
    x = bw.random.random((40, 30, 10), chunks=(7, 6, 5), seed=1)
    y = bw.random.random((40, 30, 10), chunks=(7, 6, 5), seed=2)
    r = (bw.arcsin(x) + bw.arccos(y)).sum(axis=(1, 2))
    assert r.shape == (40,) and r.dtype == np.float64
    assert r.chunks == ((7, 7, 7, 7, 7, 5),)
    want = (np.arcsin(philox(1, (40, 30, 10))) + np.arccos(philox(2, (40, 30, 10)))).sum(axis=(1, 2))
    got = r.compute(progress=False)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.flags.writeable


def test_numpy_protocols_and_methods():
    a = np.random.default_rng(3).standard_normal((10, 12))
    A = bw.from_array(a, chunks=(3, 5))
    assert A.chunks == ((3, 3, 3, 1), (5, 5, 2))
    cases = [
        (np.sin(A) * 2 + 1, np.sin(a) * 2 + 1),
        (np.maximum(A, 0.5), np.maximum(a, 0.5)),
        (np.sum(A, axis=1), a.sum(axis=1)),
        (np.mean(A), a.mean()),
        (A.std(axis=0, ddof=1), a.std(axis=0, ddof=1)),
        ((A - A.mean(axis=0))[::2, 3:], (a - a.mean(axis=0))[::2, 3:]),
        (A.T[2:4, ::-3], a.T[2:4, ::-3]),
        (np.where(A > 0, A, -1.0), np.where(a > 0, a, -1.0)),
        ((A > 0).astype("int16") * 3, (a > 0).astype("int16") * 3),
        (abs(-A) ** 2, abs(-a) ** 2),
        (A @ A.T, a @ a.T),
        (np.concatenate([A, A * 2], axis=1), np.concatenate([a, a * 2], axis=1)),
        (bw.stack((A, A + 1)), np.stack((a, a + 1))),
        (A.cumsum(axis=0), a.cumsum(axis=0)),
        (np.swapaxes(A, 0, 1), np.swapaxes(a, 0, 1)),
    ]
    for lazy, want in cases:
        got = lazy.compute(progress=False)
        assert got.shape == want.shape and got.dtype == want.dtype, lazy.expr
        np.testing.assert_allclose(got, want, rtol=1e-12, err_msg=lazy.expr)
    assert "tasks=" in repr(A) and "(3, 5)" in repr(A)


def test_shapes_orders_stencils_and_counts_through_numpys_api():
    import scipy.ndimage

    a = np.random.default_rng(5).standard_normal((12, 10))
    A = bw.from_array(a, chunks=(5, 4))
    b = np.random.default_rng(6).integers(0, 20, 60)
    B = bw.from_array(b, chunks=7)
    cases = [
        (A.reshape(6, 20), a.reshape(6, 20)),
        (np.reshape(A, (-1, 4)), np.reshape(a, (-1, 4))),
        (A.T.ravel(), a.T.ravel()),
        (np.sort(A, axis=0), np.sort(a, axis=0)),
        (np.argsort(A), np.argsort(a, kind="stable")),
        (bw.topk(A, 3), np.sort(a)[:, ::-1][:, :3]),
        (np.pad(A, ((1, 2), (3, 0)), mode="reflect"), np.pad(a, ((1, 2), (3, 0)), mode="reflect")),
        (np.diff(A, axis=0), np.diff(a, axis=0)),
        (np.gradient(A, 0.5, axis=1), np.gradient(a, 0.5, axis=1)),
        (np.gradient(A)[0], np.gradient(a)[0]),
        (np.convolve(A[0], [1.0, -2.0, 1.0], mode="same"), np.convolve(a[0], [1.0, -2.0, 1.0], mode="same")),
        (bw.ndimage.convolve(A, [[0, 1, 0], [1, -4, 1], [0, 1, 0]], mode="nearest"),
         scipy.ndimage.convolve(a, [[0, 1, 0], [1, -4, 1], [0, 1, 0]], mode="nearest")),
        (np.tensordot(A, A, axes=([0], [0])), np.tensordot(a, a, axes=([0], [0]))),
        (np.einsum("ij,ik->jk", A, A), np.einsum("ij,ik->jk", a, a)),
        (np.histogram(A, bins=8, range=(-2, 2))[0], np.histogram(a, bins=8, range=(-2, 2))[0]),
        (np.bincount(B, minlength=20), np.bincount(b, minlength=20)),
    ]
    for lazy, want in cases:
        got = lazy.compute(progress=False)
        assert got.shape == want.shape and got.dtype == want.dtype, lazy.expr
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=lazy.expr)
    values, counts = np.unique(B, return_counts=True).compute(progress=False)
    want_values, want_counts = np.unique(b, return_counts=True)
    assert values.tolist() == want_values.tolist() and counts.tolist() == want_counts.tolist()
    assert np.asarray(bw.unique(np.floor(A * 10))).tolist() == np.unique(np.floor(a * 10)).tolist()
    with pytest.raises(ValueError, match="range"):
        np.histogram(A, bins=8)
    with pytest.raises(ValueError, match="minlength"):
        np.bincount(B).compute(progress=False)


def test_persist_stores_once_and_complex_reductions_are_numpys():
    z = np.random.default_rng(8).standard_normal((30, 20)) + 1j * np.random.default_rng(9).standard_normal((30, 20))
    Z = bw.from_array(z, chunks=(7, 6))
    P = (Z * 2 + 1).persist(progress=False)
    assert P.chunks == Z.chunks and P.dtype == np.complex128
    store = P._keep[-1].name
    import os
    assert os.path.isdir(store)
    np.testing.assert_allclose(P.sum(axis=0).compute(progress=False), (z * 2 + 1).sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.var(P).compute(progress=False), np.var(z * 2 + 1), rtol=1e-12)
    np.testing.assert_allclose(P.mean().compute(progress=False), (z * 2 + 1).mean(), rtol=1e-12)
    del P
    import gc
    gc.collect()
    assert not os.path.exists(store)


def test_to_zarr_is_read_by_zarr_python(tmp_path):
    a = np.arange(600, dtype=np.int32).reshape(20, 30)
    src = tmp_path / "a.npy"
    np.save(src, a)
    x = bw.from_npy(src, chunks=(8, 30))
    out = tmp_path / "out.zarr"
    (x * 2 - 1).to_zarr(out, progress=False)
    z = zarr.open_array(out, mode="r")
    assert z.chunks == (8, 30)
    np.testing.assert_array_equal(z[...], a * 2 - 1)
    with pytest.raises(FileExistsError):
        x.to_zarr(out, progress=False)


def test_errors_name_the_shapes_and_the_place():
    x = bw.zeros((4, 5), chunks=2)
    with pytest.raises(ValueError, match=r"\(4, 5\) and \(3,\)"):
        (x + bw.ones((3,))).compute(progress=False)
    with pytest.raises(ValueError, match="out of bounds"):
        x.sum(axis=2).shape


def test_the_tutorial_example_on_dask_equals_the_local_run(cluster):
    x = bw.random.random((20, 30, 10), chunks=(5, 10, 5), seed=1)
    y = bw.random.random((20, 30, 10), chunks=(5, 10, 5), seed=2)
    r = (bw.arcsin(x) + bw.arccos(y)).sum(axis=(1, 2))
    local = r.compute(progress=False)
    remote = r.compute(executor=bw.DaskExecutor(cluster))
    np.testing.assert_array_equal(remote, local)


def test_what_numpy_would_not_ignore_is_not_ignored():
    a = np.arange(24.0).reshape(4, 6)
    x = bw.from_array(a, chunks=(2, 3))
    with pytest.raises(IndexError, match="integer"):
        x[[0.5, 2]]
    with pytest.raises(IndexError, match="only one array"):
        x[[0, 2], [1, 3]]
    with pytest.raises(TypeError):
        np.add(x, 1, dtype=np.float32)
    y = bw.from_array(np.arange(4, dtype=np.int8))
    # numpy scalars keep their dtype; Python numbers are weak.
    assert (y + np.float32(1.5)).dtype == np.float32
    assert (y * np.uint8(2)).dtype == np.int16
    assert (y + 1).dtype == np.int8
    np.testing.assert_array_equal(x.var(ddof=0, axis=0).compute(progress=False), a.var(axis=0))
    assert bw.from_array(np.float32(2.5)).compute(progress=False).shape == ()
    assert [r.compute(progress=False).tolist() for r in x] == a.tolist()


def test_an_iteration_written_in_a_loop_stays_small_and_equals_numpy():
    # The Mandelbrot iteration on the real axis: z is used three times a step, and
    # the expression stays linear in the steps (long parts are bound to names).
    c = bw.linspace(-1.5, 0.5, 200).rechunk(64)
    z = bw.zeros((200,), chunks=64)
    cn, zn = np.linspace(-1.5, 0.5, 200), np.zeros(200)
    for _ in range(30):
        z = bw.where(abs(z) <= 2, z * z + c, z)
        zn = np.where(abs(zn) <= 2, zn * zn + cn, zn)
    assert len(z.expr) < 300 and len(z._lets) < 100
    np.testing.assert_array_equal(z.compute(progress=False), zn)
    X, Y = bw.meshgrid(bw.linspace(-2, 1, 5), bw.linspace(-1, 1, 3))
    x, y = np.meshgrid(np.linspace(-2, 1, 5), np.linspace(-1, 1, 3))
    np.testing.assert_array_equal((X + 2 * Y).compute(progress=False), x + 2 * y)


def test_assignment_as_dask_allows_it():
    a = np.arange(48.0).reshape(6, 8)
    x = bw.from_array(a, chunks=(4, 3))
    want = a.copy()
    x[x > 20] = -1
    want[want > 20] = -1
    x[2:5, ::-3] = 7
    want[2:5, ::-3] = 7
    x[1] = 0
    want[1] = 0
    x[:, -1] = 9.5
    want[:, -1] = 9.5
    x[...] = x * 2
    want[...] = want * 2
    y = np.random.default_rng(4).standard_normal((3, 3))
    x[2:5, ::-3] = bw.from_array(y, chunks=2)
    want[2:5, ::-3] = y
    x[5, 1:7:2] = bw.from_array(np.array([3.0, 4.0, 5.0]), chunks=2)
    want[5, 1:7:2] = [3.0, 4.0, 5.0]
    x[:, 4] = bw.arange(6.0)
    want[:, 4] = np.arange(6.0)
    x[1:3] = bw.ones((8,)) * 2
    want[1:3] = np.ones(8) * 2
    np.testing.assert_array_equal(x.compute(progress=False), want)
    with pytest.raises(ValueError, match="could not broadcast"):
        x[2:4] = bw.ones((3, 8))


def test_boolean_masks_and_index_arrays_as_numpy_and_dask_give_them(tmp_path):
    a = np.random.default_rng(8).standard_normal((9, 7))
    x = bw.from_array(a, chunks=(4, 3))
    # A selection's length is known once computed: nan, as Dask says.
    s = x[x > 0.5]
    assert np.isnan(s.shape[0]) and s.ndim == 1 and s.dtype == np.float64
    assert "nan" in repr(s)
    with pytest.raises(ValueError, match="unknown length"):
        len(s)
    np.testing.assert_array_equal(s.compute(progress=False), a[a > 0.5])
    np.testing.assert_array_equal(np.asarray(x[a[:, 0] > 0]), a[a[:, 0] > 0])
    np.testing.assert_array_equal(np.asarray(x[:, [True, False] * 3 + [True]]),
                                  a[:, [True, False] * 3 + [True]])
    np.testing.assert_array_equal(np.asarray(x[[4, 0, 4], 1:]), a[[4, 0, 4], 1:])
    np.testing.assert_array_equal(np.asarray(x[:, np.array([6, 0])]), a[:, [6, 0]])
    # Reductions and elementwise work need no layout.
    assert np.isclose(float(s.sum().compute(progress=False)), a[a > 0.5].sum(), rtol=1e-12)
    assert np.isclose(float(np.std(s).compute(progress=False)), a[a > 0.5].std(), rtol=1e-12)
    np.testing.assert_allclose(x[a[:, 0] > 0].mean(axis=0).compute(progress=False),
                               a[a[:, 0] > 0].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(np.sqrt(s * 2).compute(progress=False), np.sqrt(a[a > 0.5] * 2),
                               rtol=1e-15)
    # Written, and known once persisted.
    s.to_zarr(tmp_path / "s.zarr", progress=False)
    np.testing.assert_array_equal(zarr.open_array(tmp_path / "s.zarr")[...], a[a > 0.5])
    known = s.compute_chunk_sizes()
    assert known.shape == a[a > 0.5].shape
    np.testing.assert_array_equal(known[::2].compute(progress=False), a[a > 0.5][::2])
    # Assignment under a mask of the leading axes, given as numpy's arrays.
    x[a[:, 0] > 0] = 0
    want = a.copy()
    want[a[:, 0] > 0] = 0
    np.testing.assert_array_equal(x.compute(progress=False), want)
    with pytest.raises(IndexError, match="boolean index did not match"):
        x[np.ones(4, bool)]


def test_numpy_operands_scalars_and_unseeded_randoms_as_numpy_users_expect():
    a = np.arange(12.0).reshape(3, 4)
    x = bw.from_array(a, chunks=2)
    np.testing.assert_array_equal(np.asarray(x + np.arange(4.0)), a + np.arange(4.0))
    np.testing.assert_array_equal(np.asarray(np.pad(x, np.int64(2))), np.pad(a, 2))
    np.testing.assert_array_equal(np.asarray(np.round(x / 7, np.int64(2))), np.round(a / 7, 2))
    with pytest.raises(IndexError, match="out of bounds"):
        x[[10]]
    with pytest.raises(IndexError, match="did not match"):
        x[np.array([True])] = 0
    with pytest.raises(TypeError, match="complex"):
        x[x > 0] = 1 + 2j
    want = a.copy()
    x[[2, 0]] = 9
    want[[2, 0]] = 9
    x[:, np.array([True, False, False, True])] = -1
    want[:, np.array([True, False, False, True])] = -1
    np.testing.assert_array_equal(np.asarray(x), want)
    # An unseeded random array is one array: the same at every compute, and
    # another from the next call.
    r = bw.random.random((3, 3), chunks=2)
    np.testing.assert_array_equal(np.asarray(r), np.asarray(r))
    assert np.asarray(r - bw.random.random((3, 3), chunks=2)).any()


def test_mandelbrot_as_numpy_users_write_it():
    # A complex128 grid from linspace and meshgrid, z = z**2 + c where |z| <= 2
    # (masked assignment), 20 iterations, and the count of steps each point stayed.
    def step(mod, z, c, n, masked_assign):
        for _ in range(20):
            inside = abs(z) <= 2
            masked_assign(z, inside, z ** 2 + c)
            n = n + inside
        return z, n

    x, y = np.meshgrid(np.linspace(-2, 1, 60), np.linspace(-1.5, 1.5, 40))
    c = x + 1j * y

    def np_assign(z, mask, value):
        z[mask] = value[mask]

    zn, nn = step(np, np.zeros_like(c), c, np.zeros(c.shape, dtype=np.int64), np_assign)

    X, Y = bw.meshgrid(bw.linspace(-2, 1, 60).rechunk(16), bw.linspace(-1.5, 1.5, 40).rechunk(16))
    C = X + 1j * Y

    def bw_assign(z, mask, value):
        z[mask] = value

    zb, nb = step(bw, bw.zeros_like(C), C, bw.zeros(C.shape, dtype="int64", chunks=16), bw_assign)
    np.testing.assert_array_equal(nb.compute(progress=False), nn)
    got = zb.compute(progress=False)
    finite = np.isfinite(zn)
    np.testing.assert_allclose(got[finite], zn[finite], rtol=1e-12)
    # One fused program: the expression stays small.
    assert len(zb._lets) < 100
