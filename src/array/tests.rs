//! The array layer against numpy: the same expressions evaluated by numpy on the
//! same arrays (written by numpy as `.npy` files), under several chunkings, and the
//! properties every chunking must keep.

use std::collections::BTreeMap;
use std::path::Path;

use super::eval::{evaluate, Value};
use super::graph::{regular_chunks, Array, Chunks};
use crate::convert::{compute_array, ComputedArray};
use crate::exec::{JobContext, JobOptions};
use crate::storage::array::DType;

/// The inputs numpy writes, by name: shape (7, 9, 5) and (9, 5) arrays of several
/// dtypes, with NaN and infinities in `w`.
const SETUP: &str = r#"
import json, sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(7)
arrays = {
    "a": rng.standard_normal((7, 9, 5)),
    "b": rng.integers(-50, 50, (7, 9, 5)).astype(np.int32),
    "c": rng.random((9, 5)) + 0.5,
    "f": rng.standard_normal((7, 9, 5)).astype(np.float32),
    "u": rng.integers(0, 255, (7, 9, 5)).astype(np.uint8),
    "i": rng.integers(-128, 127, (7, 9, 5)).astype(np.int8),
    "m": rng.random((7, 9, 5)) > 0.5,
    "p": rng.random((7, 9, 5)),
}
arrays["z"] = rng.standard_normal((7, 9, 5)) + 1j * rng.standard_normal((7, 9, 5))
arrays["y"] = (rng.standard_normal((9, 5)) + 1j * rng.standard_normal((9, 5))).astype(np.complex64)
w = rng.standard_normal((7, 9, 5))
w[0, 0, 0] = np.nan; w[3, 4, 2] = np.inf; w[6, 8, 4] = -np.inf; w[2, 2, 2] = np.nan
arrays["w"] = w
for k, v in arrays.items():
    np.save(f"{out}/{k}.npy", v)
ns = dict(vars(np)); ns.update(arrays); ns["abs"] = np.abs; ns["round"] = np.round
ns["min"] = np.min; ns["max"] = np.max; ns["sum"] = np.sum; ns["all"] = np.all; ns["any"] = np.any
def topk(a, k, axis=-1):
    # Dask's topk: the k largest in descending order, or the -k smallest ascending.
    s = np.sort(a, axis=axis)
    n = s.shape[axis]
    k = max(-n, min(k, n))  # more than the axis holds is all of it
    return np.take(s, np.arange(n - 1, n - 1 - k, -1) if k > 0 else np.arange(-k), axis=axis)
ns["topk"] = topk
import scipy.ndimage
ns["ndimage"] = scipy.ndimage
results = {}
import warnings
warnings.simplefilter("ignore")
for expr in json.loads(sys.argv[2]):
    try:
        r = np.asarray(eval(expr, ns))
        results[expr] = {"shape": list(r.shape), "dtype": str(r.dtype), "hex": r.tobytes().hex()}
    except Exception as e:
        results[expr] = {"error": type(e).__name__ + ": " + str(e)}
print(json.dumps(results))
"#;

/// Expressions whose results must equal numpy's bit for bit.
const EXACT: &[&str] = &[
    "a + 1",
    "a * c",
    "a - c * 2.5",
    "a / c",
    "b + 1",
    "b * 3 - 7",
    "b // 7",
    "b % 7",
    "-b",
    "b / 4",
    "b ** 2",
    "b + a",
    "u + 1",
    "u * u",
    "u + i",
    "i * 3",
    "i // -3",
    "f + 1.5",
    "f * a",
    "f + b",
    "a // 0.3",
    "a % 0.3",
    "b > 0",
    "a <= c",
    "(a > 0) & m",
    "m | (b < 3)",
    "m ^ True",
    "~m",
    "~b",
    "b & 12",
    "b | u",
    "abs(a)",
    "abs(b)",
    "sign(a)",
    "floor(a)",
    "ceil(f)",
    "trunc(a)",
    "rint(a * 3)",
    "sqrt(c)",
    "isnan(w)",
    "isinf(w)",
    "isfinite(w)",
    "maximum(a, c)",
    "minimum(w, 0.5)",
    "where(m, a, b)",
    "where(a > 0, 1, 0)",
    "clip(a, -0.5, 0.5)",
    "a.astype('float32')",
    "a.astype('int16')",
    "b.astype('uint8')",
    "m.astype('int32') + 1",
    "a[::2, 1:-1, ::-1]",
    "a[3]",
    "a[:, 4]",
    "a[-1, ::-3, 2]",
    "a[..., 0]",
    "a[None, 2, :, None]",
    "a.T",
    "transpose(a, (1, 0, 2))",
    "(a + a.T.T)[1:, :3]",
    "c[None] + a",
    "swapaxes(a, 0, 2)",
    "moveaxis(a, 0, -1)",
    "moveaxis(a, (0, 1), (2, 0))",
    "expand_dims(c, (0, 2))",
    "squeeze(a[:, :1, 2:3])",
    "squeeze(a[:1], axis=0)",
    "broadcast_to(c, (7, 9, 5)) * 2",
    "b.sum(axis=0)",
    "b.sum()",
    "u.sum(axis=(0, 2))",
    "m.sum(axis=1)",
    "b.prod(axis=2)",
    "b.min(axis=0)",
    "b.max(axis=(1, 2))",
    "a.max()",
    "a.min(axis=1)",
    "w.max(axis=2)",
    "nanmax(w, axis=2)",
    "nanmin(w)",
    "m.any(axis=0)",
    "m.all(axis=2)",
    "(a > 3).any()",
    "b.sum(axis=1, keepdims=True)",
    "b[0] @ b[1].T",
    "z + 1",
    "conj(z)",
    "z.real - z.imag",
    "z == z.conj()",
    "where(m, z, 0)",
    "z + 2j",
    "(z + y)[::2, 1]",
    "b.cumsum(axis=0)",
    "a.argmin(axis=0)",
    "a.argmax(axis=2)",
    "argmax(a)",
    "argmin(b, axis=1)",
    "w.argmax(axis=1)",
    "argmin(w)",
    "m.argmax(axis=0)",
    "f.argmin(axis=2, keepdims=True)",
    "(a * 0).argmax(axis=1)",
    "cumsum(m, axis=2)",
    "u.cumprod(axis=1)",
    "i.cumsum(axis=-1)",
    "cumsum(arange(10))",
    "concatenate((b, u, i), axis=1)",
    "concatenate([b[:2], b[5:]])",
    "concatenate((a[:, :3], b[:, 3:] * 2), axis=1)",
    "stack((c, c * 2, c + 1), axis=1)",
    "meshgrid(arange(4), arange(3) * 2)[0] + meshgrid(arange(4), arange(3) * 2)[1]",
    "meshgrid(arange(4), arange(3), indexing='ij')[1] * 10",
    "stack([m[0], m[1]])",
    "concatenate((a, a.sum(axis=0, keepdims=True)), axis=0)[::2] > 0",
    "u[0].astype('int64') @ i[2].T",
    "arange(5) @ b[3].T",
    "a.reshape(7, 45)",
    "a.reshape((63, 5))",
    "reshape(a, (5, 9, 7))",
    "a.reshape(-1)",
    "ravel(b)",
    "b.reshape(3, -1, 7)",
    "c.reshape(5, 9)",
    "a[:, ::2].reshape(7, -1)",
    "b.sum(axis=0).reshape(-1)",
    "ravel(m)",
    "a.reshape(7, 9, 5, 1)",
    "a.reshape(1, 315)",
    "ravel(a.T)",
    "b.reshape(15, 21).T.reshape(3, 5, 21)[1]",
    "b.cumsum()",
    "sort(a)",
    "sort(a, axis=0)",
    "sort(w, axis=1)",
    "sort(b, axis=None)",
    "argsort(a, axis=1)",
    "argsort(b, axis=0, kind='stable')",
    "argsort(w)",
    "sort(z)",
    "sort(u)[..., ::-1]",
    "sort(m, axis=2)",
    "topk(a, 3)",
    "topk(a, -2, axis=0)",
    "topk(w, 4, axis=1)",
    "topk(ravel(b), 10)",
    "topk(f, -5)",
    "topk(a, 8)",
    "topk(b, -100, axis=0)",
    "pad(b, 2)",
    "pad(a, ((1, 2), (0, 3), (2, 0)), mode='edge')",
    "pad(b, ((3, 2), (4, 1), (1, 0)), mode='reflect')",
    "pad(b, ((7, 2), (9, 1), (5, 5)), mode='symmetric')",
    "pad(u, ((7, 7), (3, 9), (2, 5)), mode='wrap')",
    "pad(c, (1, 2), constant_values=7)",
    "pad(m, 1, mode='symmetric')",
    "diff(b)",
    "diff(a, axis=0)",
    "diff(b, n=3, axis=1)",
    "diff(m, axis=2)",
    "diff(u, axis=0)",
    "diff(b, prepend=0, axis=1)",
    "diff(c, append=c[:, :1], axis=1)",
    "gradient(a, axis=1)",
    "gradient(c, 0.5, axis=0)",
    "gradient(b, axis=2, edge_order=2)",
    "gradient(a, 2.0)[2]",
    "gradient(f, axis=0)",
    "convolve(b[0, 0], [1, 2, 1])",
    "convolve(b[0, :, 0], [1, -1], mode='same')",
    "correlate(b[1, 2], [3, 1])",
    "correlate(ravel(b), [1, 0, -1, 2], mode='same')",
    "convolve(ravel(b), [1, 0, 2, 5], mode='valid')",
    "tensordot(b, b, axes=([1, 2], [1, 2]))",
    "tensordot(b[0], b[1].T, 1)",
    "tensordot(u, i, axes=([0], [0]))",
    "einsum('ijk->kji', b)",
    "einsum('ijk->j', b)",
    "einsum('ijk,ijk->ij', b, b)",
    "einsum('ij,kj->ik', b[0], b[1])",
    "einsum('i,j->ij', b[0, 0], b[1, 1])",
    "einsum('ijk,ilk->ijl', b, b)",
    "einsum('ijk', b)",
    "einsum('ij,ij', b[0], b[1])",
    "einsum('ijk,k->ji', u, i[0, 0])",
    "array([[1, 2], [3, 4]]) * 2",
    "asarray([1.5, 2, 3]) + c[0, :3]",
    "array([True, False]) & True",
    "array([[1, 2, 3]], dtype='int8') * b[0, :, :3]",
    "histogram(a, bins=10, range=(-2, 2))[0]",
    "histogram(a, bins=10, range=(-2, 2))[1]",
    "histogram(b, bins=[-50, -10, 0, 3, 49])[0]",
    "histogram(b, bins=[-50, -10, 0, 3, 49])[1]",
    "histogram(w, bins=7, range=(-1, 1))[0]",
    "histogram(u, 3, range=(4, 4))[0]",
    "bincount(ravel(u), minlength=255)",
    "bincount(ravel(m), minlength=2)",
    "a[[0, 3, 3, -1]]",
    "a[:, [8, 0, 2]]",
    "b[1:, [4, 0], ::2]",
    "a[..., [1, 1, 0]]",
    "c[argsort(c[:, 0])]",
    "take(b, [5, 2, 2], axis=1)",
    "take(a, [7, 0, 44])",
    "a[[0, 3]][:, [1, 2]]",
    "b[2, [0, 8, 4]]",
    "(z * 0).any(axis=0)",
    "z.all()",
    // Integers are advanced indices too: apart from the array, its axis goes first.
    "b[2, :, [0, 3]]",
    "a[:, 1, :][[4, 0], 2]",
    // Boolean masks: the unknown length is known once run.
    "a[m]",
    "b[b > 0]",
    "a[a[:, 0, 0] > 0]",
    "a[:, m[0, :, 0]]",
    "b[:, :, [True, False, True, False, True]]",
    "a[:, m[0]]",
    "b[m[:, 0, 0], :, 2]",
    "b[:, m[0, :, 0], 2]",
    "b[2, :, m[0, 0, :]]",
    "a[1:, ::-2][a[1:, ::-2] > 0.5]",
    "z[z.real > 0]",
    "u[u > 100] + 1",
    "abs(b[b < 0]) * 2",
    "where(b[m] > 0, b[m], -1)",
    "b[m].astype('float32')",
    "b[m].sum()",
    "b[m].min()",
    "b[m].max()",
    "m[a > 0].sum()",
    "u[m].any()",
    "b[b[:, 0, 0] > 0].max(axis=0)",
    "b[b[:, 0, 0] > 0].sum(axis=(0, 1))",
    "b[b[:, 0, 0] > 0].sum(axis=2)",
    "a[a > 100]",
    "a[a > 100].sum()",
    "a[:, a[0, :, 0] > 100]",
    "b[b > 0] * a[b > 0] - b[b > 0]",
    // `True` and `False` index as masks of no axes.
    "b[True]",
    "b[False]",
    "b[:, True, 1]",
    "b[0][True].sum()",
    // One mask, values broadcasting along the axes after it.
    "b[m[:, 0, 0]] - b[m[:, 0, 0]].max(axis=1, keepdims=True)",
    "b[m[:, 0, 0]] + b[:, :1, :][m[:, 0, 0]]",
    // Operands of length 1 along the selected axis broadcast over it.
    "b[m[:, 0, 0]] * b[:1]",
    "a[:, m[0]] - a[:, :1, 0]",
    "b[m[:, 0, 0]] + b[0][None]",
    // Basic indices along a selection's known axes.
    "a[a[:, 0, 0] > 0][:, 2]",
    "a[a[:, 0, 0] > 0][..., 1:3]",
    "b[:, m[0, :, 0]][3]",
    "b[:, m[0, :, 0]][-1, :, ::2]",
    "b.round(2)",
    "round(a)",
    // numpy repeats periodic pads wider than their axis.
    "pad(b[0, 0], 12, mode='reflect')",
    "pad(b[0], ((0, 0), (11, 13)), mode='wrap')",
    "pad(b[:, 0, :2], (7, 9), mode='symmetric')",
    "pad(b[0, :3], 10, mode='edge')",
    "pad(b[0, :1], 3, mode='reflect')",
    "pad(b[0, :2], (5, 4), mode='reflect')",
    "pad(b[0], ((1, 2), (3, 1)), constant_values=((1, 2), (3, 4)))",
    "pad(b[0], 2, constant_values=(-1, 7))",
    "pad(u[0, 0], 3, constant_values=((9, 250),))",
    // Lists are arrays as operands; a second operand longer than the first.
    "convolve([1, 2, 3], [1, 2, 3, 4, 5])",
    "convolve([1, 2, 3], [1, 2, 3, 4, 5], mode='same')",
    "b[0] + [1, 2, 3, 4, 5]",
    "take(b, 3)",
    "take(b, -2, axis=1)",
    // scipy leaves bool results as raw casts of their sums (bytes 2, 3, 255):
    // compared as truth values.
    "ndimage.convolve(m[0], [[1, -1], [1, 1]]) != 0",
    "ndimage.correlate(m, ones((2, 2, 2)), mode='constant') != 0",
    "round(b, -1)",
    "around(u, -1)",
    "clip(u, -5, 5)",
    "clip(i, -300, 2)",
    "m ** 2",
    "m ** m",
    "nanargmax(w, axis=1)",
    "nanargmin(w, axis=0)",
    "nanargmax(w)",
    "nanargmin(b, axis=2)",
];

/// Expressions whose float results must equal numpy's to 1e-12 relative.
const CLOSE: &[&str] = &[
    "a.sum()",
    "a.sum(axis=0)",
    "a.sum(axis=(1, 2))",
    "a.mean()",
    "a.mean(axis=1)",
    "b.mean(axis=0)",
    "f.sum(axis=2)",
    "a.std()",
    "a.std(axis=0)",
    "a.var(axis=(0, 2), ddof=1)",
    "nansum(w[:, :, 1:])",
    "nanmean(w, axis=0)",
    "nanstd(w, axis=1)",
    "(a * 2 - c).mean(axis=2, keepdims=True)",
    "(arcsin(p) + arccos(p * 0.5)).sum(axis=(1, 2))",
    "exp(a).sum(axis=0)",
    "log(c) + log1p(c) - log2(c) * log10(c)",
    "sin(a) * cos(a) + tan(c)",
    "arctan(a) + sinh(c) - cosh(c) + tanh(a)",
    "expm1(a) + cbrt(a)",
    "arctan2(a, c) + hypot(a, c)",
    "a - a.mean(axis=0)",
    "(a - a.mean(axis=0)) / a.std(axis=0)",
    "a ** 2 + c ** 0.5",
    "prod(c, axis=0)",
    "a[0] @ a[1].T",
    "abs(z)",
    // numpy's complex products may fuse multiply-adds: the last bit may differ.
    "z * z - a",
    "z ** 2 + c",
    "y * 2 + y",
    "z / (z + 1)",
    "angle(z)",
    "sqrt(z) + exp(z)",
    "abs(y)",
    "a.cumsum(axis=1)",
    "cumsum(c * 2, axis=0)",
    "f.cumsum(axis=2)",
    "cumprod(c, axis=1)",
    "(a + 1).cumsum(axis=0)[::2, 3]",
    "(a - a.mean(axis=0)).cumsum(axis=1)",
    "c.T @ c",
    "a[0].T @ (c + 1)",
    "f[0] @ f[1].T",
    "c[0] @ c.T",
    "dot(a[2], a[3].T)",
    "a.cumsum()",
    "(a + 1).reshape(35, 9).sum(axis=0)",
    "convolve(a[0, 0], [0.25, 0.5, 0.25], mode='same')",
    "correlate(c[:, 1], c[:3, 2])",
    "ndimage.convolve(c, [[1, 2, 1], [0, 0, 0], [-1, -2, -1]])",
    "ndimage.correlate(a, [[[0.5, 1.5]], [[2.0, -1.0]]], mode='constant', cval=1.5)",
    "ndimage.convolve(a, ones((3, 3, 3)) / 27, mode='nearest')",
    "ndimage.convolve(c, [[1, 2], [3, 4]], mode='mirror')",
    "ndimage.correlate(c, [[1, 2, 3, 4]], mode='wrap', origin=(0, 1))",
    "ndimage.convolve(f, [[[1, -2, 1]]], mode='reflect')",
    "ndimage.convolve(p, [[[2.0]], [[1.0]]], origin=(-1, 0, 0))",
    "ndimage.correlate(z, array([[[1, 2]]]) * (1 + 2j))",
    "ndimage.convolve(z, array([[[1, 2]]]) * (1 + 2j), mode='wrap')",
    "tensordot(a, c, 2)",
    "einsum('ijk,jk->i', a, c)",
    "einsum('ijk,ijl->kl', a, a)",
    "einsum('ij,jk,kl->il', c, c.T, c)",
    "histogram(u, bins=5, range=(0, 255), weights=a)[0]",
    "histogram(p, 4, range=(0, 1), density=True)[0]",
    "bincount(ravel(b) + 50, weights=ravel(a), minlength=100)",
    "z.sum()",
    "z.sum(axis=(0, 2))",
    "y.mean(axis=0)",
    "z.var(axis=1, ddof=1)",
    "y.std()",
    "a[m].mean()",
    "a[m].std()",
    "a[m].var(ddof=1)",
    "f[m].mean()",
    "b[m].mean()",
    "z[m].var()",
    "nanmean(w[m])",
    "nanstd(w[m])",
    "w[m].min()",
    "w[m].max()",
    "a[a[:, 0, 0] > 0].mean(axis=0)",
    "a[a[:, 0, 0] > 0].std(axis=(0, 2))",
    "a[a[:, 0, 0] > 0].mean(axis=1)",
    "sqrt(p[m]) * 2",
    "a[m].sum(keepdims=True)",
    "a[a > 0].var(ddof=1000)",
    "nanvar(w[m], ddof=1000)",
    "nanvar(w[:, :2, 0], axis=0, ddof=8)",
    "nanstd(w[:, :, 0], axis=0, ddof=7)",
    "var(a[:2], axis=0, ddof=3)",
    "nanmax(w[isnan(w)])",
    "nanmin(a[m] * nan, axis=0)",
    "a[a[:, 0, 0] > 0] - a[a[:, 0, 0] > 0].mean(axis=(1, 2), keepdims=True)",
    "round(a, 2)",
    "f.round(3)",
    "around(a * 1000, -2)",
    "round(z, 1)",
    "correlate([1.0, 2, 3], c[:, 0], mode='same')",
    "convolve(c[:3, 0], c[:, 1], mode='valid')",
    "correlate(c[:2, 0], c[:, 1])",
    "correlate(z[0, 0, :2], z[0, :, 1], mode='same')",
    "convolve(z[0, 0, :2], z[0, :, 1], mode='same')",
];

fn context() -> JobContext {
    let options = JobOptions {
        threads: 2,
        memory_limit: 256 << 20,
        ..JobOptions::default()
    };
    JobContext::new(&options, crate::sys::CancelToken::new()).unwrap()
}

/// numpy's result of each expression, after writing the inputs into `dir`.
fn numpy_results(dir: &Path, exprs: &[&str]) -> serde_json::Value {
    let list = serde_json::to_string(exprs).unwrap();
    crate::reference::json(SETUP, &[&dir.display().to_string(), &list])
}

/// The inputs as arrays, cut into `chunks(shape)`.
fn inputs(dir: &Path, chunks: &dyn Fn(&[u64]) -> Chunks) -> BTreeMap<String, Array> {
    let mut names = BTreeMap::new();
    for name in ["a", "b", "c", "f", "u", "i", "m", "p", "w", "z", "y"] {
        let path = dir.join(format!("{name}.npy"));
        let whole = Array::open(&path, None).unwrap();
        let c = chunks(whole.shape());
        names.insert(name.to_string(), Array::open(&path, Some(c)).unwrap());
    }
    names
}

fn compute(expr: &str, names: &BTreeMap<String, Array>, ctx: &JobContext) -> ComputedArray {
    let value = evaluate(expr, names).unwrap_or_else(|e| panic!("{expr}: {e}"));
    match value {
        Value::Array(array) => compute_array(&array, ctx),
        Value::Selected(selection) => crate::convert::compute_selected(&selection, ctx),
        _ => panic!("{expr}: not an array"),
    }
    .unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn floats(dtype: DType, bytes: &[u8]) -> Vec<f64> {
    match dtype {
        DType::Float64 => bytes
            .chunks_exact(8)
            .map(|c| f64::from_ne_bytes(c.try_into().unwrap()))
            .collect(),
        DType::Float32 | DType::Complex64 => bytes
            .chunks_exact(4)
            .map(|c| f64::from(f32::from_ne_bytes(c.try_into().unwrap())))
            .collect(),
        // Complex values compare as their parts.
        DType::Complex128 => floats(DType::Float64, bytes),
        other => panic!("{other:?} is not a float dtype"),
    }
}

/// The chunkings every expression runs under: one chunk, irregular last chunks,
/// chunks of one along an axis.
/// How an input of a shape is cut.
type Chunking = Box<dyn Fn(&[u64]) -> Chunks>;

fn chunkings() -> Vec<(&'static str, Chunking)> {
    vec![
        (
            "one chunk",
            Box::new(|s: &[u64]| s.iter().map(|&n| vec![n]).collect()),
        ),
        (
            "irregular",
            Box::new(|s: &[u64]| {
                let c: Vec<u64> = s.iter().map(|&n| (n / 2).max(1)).collect();
                let mut chunks = regular_chunks(s, &c).unwrap();
                // A Dask-style irregular first axis.
                if s[0] == 7 {
                    chunks[0] = vec![1, 4, 2];
                }
                chunks
            }),
        ),
        (
            "ones",
            Box::new(|s: &[u64]| {
                let c: Vec<u64> = s
                    .iter()
                    .enumerate()
                    .map(|(k, &n)| if k + 1 == s.len() { 1 } else { n })
                    .collect();
                regular_chunks(s, &c).unwrap()
            }),
        ),
    ]
}

#[test]
fn expressions_equal_numpys_under_every_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&str> = EXACT.iter().chain(CLOSE).copied().collect();
    let want = numpy_results(dir.path(), &all);
    let ctx = context();
    for (label, chunking) in chunkings() {
        let names = inputs(dir.path(), chunking.as_ref());
        for expr in &all {
            let w = &want[*expr];
            assert!(w.get("error").is_none(), "numpy refused {expr}: {w}");
            let got = compute(expr, &names, &ctx);
            let shape: Vec<u64> = serde_json::from_value(w["shape"].clone()).unwrap();
            assert_eq!(got.shape, shape, "{expr} ({label}): shape");
            assert_eq!(
                got.dtype.name(),
                w["dtype"].as_str().unwrap(),
                "{expr} ({label}): dtype"
            );
            let want_hex = w["hex"].as_str().unwrap();
            if EXACT.contains(expr) {
                assert_eq!(hex(&got.bytes), want_hex, "{expr} ({label})");
            } else {
                let want_bytes: Vec<u8> = unhex(want_hex);
                let (g, w) = (
                    floats(got.dtype, &got.bytes),
                    floats(got.dtype, &want_bytes),
                );
                let tol = if matches!(got.dtype, DType::Float32 | DType::Complex64) {
                    1e-5
                } else {
                    1e-12
                };
                for (i, (x, y)) in g.iter().zip(&w).enumerate() {
                    let ok = (x.is_nan() && y.is_nan())
                        || x == y
                        || (x - y).abs() <= tol * x.abs().max(y.abs()).max(1e-300);
                    assert!(ok, "{expr} ({label}) element {i}: {x} vs numpy's {y}");
                }
            }
        }
    }
}

#[test]
fn random_arrays_do_not_depend_on_chunks_or_threads() {
    let one = |chunks: &str, threads: usize| {
        let options = JobOptions {
            threads,
            memory_limit: 256 << 20,
            ..JobOptions::default()
        };
        let ctx = JobContext::new(&options, crate::sys::CancelToken::new()).unwrap();
        let names = BTreeMap::new();
        let mut out = Vec::new();
        for dist in [
            "random.random",
            "random.normal(2.0, 3.0, ",
            "random.uniform(-1, 1, ",
            "random.integers(0, 1000, ",
        ] {
            let call = if dist.ends_with(' ') {
                format!("{dist}(30, 17, 3), chunks={chunks}, seed=5)")
            } else {
                format!("{dist}((30, 17, 3), chunks={chunks}, seed=5)")
            };
            out.push(compute(&call, &names, &ctx).bytes);
        }
        out
    };
    let reference = one("(30, 17, 3)", 1);
    for (chunks, threads) in [("(7, 5, 2)", 2), ("(1, 17, 1)", 2), ("(30, 1, 3)", 1)] {
        assert_eq!(one(chunks, threads), reference, "chunks {chunks}");
    }
    // And the uniform doubles are numpy's Philox stream.
    let want = crate::reference::json(
        "import json, numpy as np\n\
         print(json.dumps(np.random.Generator(np.random.Philox(key=5)).random((30, 17, 3)).tobytes().hex()))",
        &[],
    );
    assert_eq!(hex(&reference[0]), want.as_str().unwrap());
}

#[test]
fn errors_say_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let _ = numpy_results(dir.path(), &[]);
    let names = inputs(dir.path(), &|s: &[u64]| {
        s.iter().map(|&n| vec![n]).collect()
    });
    let message = |expr: &str| match evaluate(expr, &names) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{expr} evaluated"),
    };
    let m = message("a + zeros((3, 4))");
    assert!(
        m.contains("(7, 9, 5)") && m.contains("(3, 4)") && m.contains("column 1"),
        "{m}"
    );
    let m = message("arcsn(a)");
    assert!(m.contains("arcsin") && m.contains("column 1"), "{m}");
    let m = message("a.sum(axis=3)");
    assert!(m.contains("axis 3") && m.contains("dimension 3"), "{m}");
    let m = message("u + 300");
    assert!(m.contains("300") && m.contains("uint8"), "{m}");
    let m = message("a & b");
    assert!(m.contains("bitwise_and") && m.contains("float64"), "{m}");
    let m = message("a[::0]");
    assert!(m.contains("step cannot be zero"), "{m}");
    let m = message("a[7]");
    assert!(
        m.contains("index 7 is out of bounds for axis 0 with size 7"),
        "{m}"
    );
    let m = message("a.astype('float8')");
    assert!(m.contains("float8") && m.contains("float32"), "{m}");
    let m = message("sum(a, axis=1, bogus=2)");
    assert!(m.contains("bogus"), "{m}");
}

#[test]
fn reductions_of_generated_arrays_agree_across_chunkings_and_with_numpy() {
    let ctx = context();
    let names = BTreeMap::new();
    let expr = |chunks: &str| {
        format!(
            "(arcsin(random.random((40, 30, 10), chunks={chunks}, seed=1)) + \
             arccos(random.random((40, 30, 10), chunks={chunks}, seed=2))).sum(axis=(1, 2))"
        )
    };
    let want = crate::reference::json(
        "import json, numpy as np\n\
         g = lambda s: np.random.Generator(np.random.Philox(key=s)).random((40, 30, 10))\n\
         print(json.dumps((np.arcsin(g(1)) + np.arccos(g(2))).sum(axis=(1, 2)).tolist()))",
        &[],
    );
    let want: Vec<f64> = serde_json::from_value(want).unwrap();
    for chunks in ["(40, 30, 10)", "(7, 6, 5)", "(1, 30, 1)", "(13, 1, 3)"] {
        let got = compute(&expr(chunks), &names, &ctx);
        let got = floats(got.dtype, &got.bytes);
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs(),
                "chunks {chunks}: {g} vs {w}"
            );
        }
    }
}

/// A context with `limit` bytes and the RSS thresholds off: the test process's own
/// allocations (the harness, other tests' threads) are not the job's.
fn budget(limit: u64) -> JobContext {
    let mut options = JobOptions {
        threads: 2,
        memory_limit: limit,
        ..JobOptions::default()
    };
    options.thresholds.spill = f64::INFINITY;
    options.thresholds.pause = f64::INFINITY;
    options.thresholds.terminate = f64::INFINITY;
    JobContext::new(&options, crate::sys::CancelToken::new()).unwrap()
}

#[test]
fn reductions_and_their_users_stay_under_a_quarter_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    // 8 MiB of float64, written by numpy; the budget is a quarter of it.
    let want = crate::reference::json(
        "import json, sys, numpy as np\n\
         x = np.random.default_rng(1).standard_normal((256, 4096))\n\
         np.save(sys.argv[1], x)\n\
         print(json.dumps({'centered': (x - x.mean(axis=0)).tobytes().hex(),\n\
                           'sums': x.sum(axis=1).tolist()}))",
        &[&src.display().to_string()],
    );
    let limit = 2 << 20;
    let x = Array::open(
        &src,
        Some(regular_chunks(&[256, 4096], &[8, 4096]).unwrap()),
    )
    .unwrap();
    let mut names = BTreeMap::new();
    names.insert("x".to_string(), x);

    let ctx = budget(limit);
    let sums = compute("x.sum(axis=1)", &names, &ctx);
    let want_sums: Vec<f64> = serde_json::from_value(want["sums"].clone()).unwrap();
    for (g, w) in floats(sums.dtype, &sums.bytes).iter().zip(&want_sums) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
    assert!(
        ctx.pool.peak_reserved() <= limit,
        "{}",
        ctx.pool.peak_reserved()
    );

    let ctx = budget(limit);
    let Value::Array(centered) = evaluate("x - x.mean(axis=0)", &names).unwrap() else {
        panic!()
    };
    let out = dir.path().join("out.npy");
    crate::convert::write_array(&centered, &out, &Default::default(), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak > 0 && peak <= limit, "peak reserved {peak} of {limit}");
    let got = std::fs::read(&out).unwrap();
    // A large .npy's data is page-aligned: the header's length is not always 128.
    let data_offset = crate::storage::npy::NpySource::open(&out)
        .unwrap()
        .header()
        .data_offset;
    let want_bytes = want["centered"].as_str().unwrap();
    let (g, w) = (floats(DType::Float64, &got[data_offset..]), {
        let b: Vec<u8> = unhex(want_bytes);
        floats(DType::Float64, &b)
    });
    assert_eq!(g.len(), w.len());
    for (a, b) in g.iter().zip(&w) {
        assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn a_chunking_that_cannot_fit_is_refused_with_one_that_would() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    crate::reference::json(
        "import json, sys, numpy as np\n\
         np.save(sys.argv[1], np.zeros((256, 4096)))\n\
         print(json.dumps(None))",
        &[&src.display().to_string()],
    );
    let ctx = budget(2 << 20);
    // One 8 MiB block against a 2 MiB limit.
    let x = Array::open(&src, Some(vec![vec![256], vec![4096]])).unwrap();
    let sums = x
        .reduce(super::kernel::reduce::Reducer::Sum, Some(&[1]), false, 0.0)
        .unwrap();
    match compute_array(&sums, &ctx) {
        Err(crate::Error::PlanTooLarge {
            projected,
            limit,
            suggested_unit_bytes,
            ..
        }) => {
            assert!(projected > limit / 2, "{projected}");
            assert!(suggested_unit_bytes > 0 && suggested_unit_bytes < 8 << 20);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_program_built_in_a_loop_stays_linear() {
    use super::kernel::ops::{BinaryOp, UnaryOp};
    use super::program::Distribution;
    let chunks = regular_chunks(&[6, 4], &[4, 4]).unwrap();
    let c = Array::random(&[6, 4], chunks.clone(), 1, Distribution::Random);
    let mut z = Array::random(&[6, 4], chunks, 2, Distribution::Random);
    let two = Array::scalar(
        super::program::Scalar::Float(2.0),
        DType::Float64,
        Some(super::promote::Operand::PyFloat(2.0)),
    );
    // z = where(abs(z) <= 2, z * z + c, z), 40 times: z is used three times a step.
    for _ in 0..40 {
        let inside = z
            .unary(UnaryOp::Absolute)
            .unwrap()
            .binary(BinaryOp::LessEqual, &two)
            .unwrap();
        let next = z
            .binary(BinaryOp::Multiply, &z)
            .unwrap()
            .binary(BinaryOp::Add, &c)
            .unwrap();
        z = Array::select(&inside, &next, &z).unwrap();
    }
    let nodes = z.program().0.nodes.len();
    assert!(nodes < 40 * 8, "{nodes} nodes");
    let ctx = context();
    let got = compute_array(&z, &ctx).unwrap();
    assert_eq!(got.shape, vec![6, 4]);
}

#[test]
fn a_matrix_product_stays_under_a_quarter_of_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    let want = crate::reference::json(
        "import json, sys, numpy as np\n\
         x = np.random.default_rng(2).standard_normal((512, 512))\n\
         np.save(sys.argv[1], x)\n\
         print(json.dumps((x @ x.T).tobytes().hex()))",
        &[&src.display().to_string()],
    );
    // 2 MiB of data, a 512 KiB budget: the contracted axis is split between tasks.
    let limit = 512 << 10;
    let ctx = budget(limit);
    let x = Array::open(&src, Some(regular_chunks(&[512, 512], &[64, 64]).unwrap())).unwrap();
    let product = x.matmul(&x.transpose(None).unwrap()).unwrap();
    let got = compute_array(&product, &ctx);
    // The result (2 MiB) is more than half the limit: compute refuses it, naming it.
    assert!(got.is_err());
    // Written in the product's own chunks, a Zarr array's.
    let out = dir.path().join("p.zarr");
    crate::convert::write_array(&product, &out, &Default::default(), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak > 0 && peak <= limit, "peak reserved {peak} of {limit}");
    let stored = crate::storage::open_array(&out, crate::storage::Format::Zarr).unwrap();
    let got = floats(
        DType::Float64,
        &stored
            .read(&crate::grid::Subset::full(&[512, 512]))
            .unwrap(),
    );
    let want_hex = want.as_str().unwrap();
    let want: Vec<u8> = unhex(want_hex);
    let want = floats(DType::Float64, &want);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-10 * w.abs().max(1.0), "{g} vs {w}");
    }
}

/// The values of a `.npy` file (float64 after its 128-byte header).
fn npy_floats(path: &Path) -> Vec<f64> {
    let bytes = std::fs::read(path).unwrap();
    let at = crate::storage::npy::NpySource::open(path)
        .unwrap()
        .header()
        .data_offset;
    floats(DType::Float64, &bytes[at..])
}

/// The hex text of numpy's bytes as floats.
fn hex_floats(text: &serde_json::Value) -> Vec<f64> {
    floats(DType::Float64, &unhex(text.as_str().unwrap()))
}

/// The bytes of hex text.
fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn stencils_sorts_reshapes_and_rechunks_stay_under_a_quarter_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    // 8 MiB of float64 written by numpy; each operation runs under 2 MiB.
    let want = crate::reference::json(
        "import json, sys, numpy as np, scipy.ndimage\n\
         x = np.random.default_rng(2).standard_normal((256, 4096))\n\
         np.save(sys.argv[1], x)\n\
         k = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], float)\n\
         print(json.dumps({\n\
           'blur': (scipy.ndimage.convolve(x, k, mode='reflect') / 16).tobytes().hex(),\n\
           'sort': np.sort(x, axis=1).tobytes().hex(),\n\
           'grad': np.gradient(x, axis=0).tobytes().hex(),\n\
           'reshaped': x.reshape(512, 2048).T.tobytes().hex()}))",
        &[&src.display().to_string()],
    );
    let limit = 2 << 20;
    let x = Array::open(
        &src,
        Some(regular_chunks(&[256, 4096], &[4, 1024]).unwrap()),
    )
    .unwrap();
    let mut names = BTreeMap::new();
    names.insert("x".to_string(), x);
    for (expr, key) in [
        (
            "ndimage.convolve(x, [[1, 2, 1], [2, 4, 2], [1, 2, 1]], mode='reflect') / 16",
            "blur",
        ),
        ("sort(x, axis=1)", "sort"),
        ("gradient(x, axis=0)", "grad"),
        // A transposed copy of the reshaped array (a plain reshape would be the
        // file's own bytes).
        ("x.reshape(512, 2048).T", "reshaped"),
    ] {
        let ctx = budget(limit);
        let Value::Array(a) = evaluate(expr, &names).unwrap() else {
            panic!("{expr}: not an array")
        };
        let out = dir.path().join(format!("{key}.npy"));
        crate::convert::write_array(&a, &out, &Default::default(), &ctx)
            .unwrap_or_else(|e| panic!("{expr}: {e}"));
        let peak = ctx.pool.peak_reserved();
        assert!(
            peak > 0 && peak <= limit,
            "{expr}: peak reserved {peak} of {limit}"
        );
        let (g, w) = (npy_floats(&out), hex_floats(&want[key]));
        assert_eq!(g.len(), w.len(), "{expr}");
        for (a, b) in g.iter().zip(&w) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{expr}: {a} vs {b}"
            );
        }
    }

    // A rechunk of the file written out goes through the staged rechunk, whose
    // stages fit the limit, rather than blocks each gathering 64 source chunks.
    let ctx = budget(limit);
    let Value::Array(a) = evaluate("x.rechunk((256, 16))", &names).unwrap() else {
        panic!()
    };
    let out = dir.path().join("rechunked.zarr");
    crate::convert::write_array(&a, &out, &Default::default(), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(
        peak > 0 && peak <= limit,
        "rechunk: peak reserved {peak} of {limit}"
    );
    let back = Array::open(&out, None).unwrap();
    assert_eq!(back.chunks()[1].len(), 256, "{:?}", back.chunks());
    let ctx = budget(64 << 20);
    let got = compute_array(&back, &ctx).unwrap();
    let want_x = npy_floats(&src);
    assert_eq!(floats(DType::Float64, &got.bytes), want_x);
}

#[test]
fn topk_trees_and_split_every_keep_the_answer() {
    let ctx = context();
    let names = BTreeMap::new();
    let value = |expr: &str| -> Vec<f64> {
        let got = compute(expr, &names, &ctx);
        floats(got.dtype, &got.bytes)
    };
    // 143 chunks along the axis: two levels of partial tops.
    let tree = value("topk(random.random((1000,), chunks=(7,), seed=3), 12)");
    let sorted = value("sort(random.random((1000,), chunks=(1000,), seed=3))[::-1][:12]");
    assert_eq!(tree, sorted);
    let low = value("topk(random.random((40, 1000), chunks=(9, 7), seed=4), -5, axis=1)");
    let want = value("sort(random.random((40, 1000), chunks=(40, 1000), seed=4), axis=1)[:, :5]");
    assert_eq!(low, want);
    // A stored input (a scan), whose blocks a reduction does not merge.
    let x = "cumsum(random.random((300, 50), chunks=(3, 50), seed=5), axis=1)";
    let a = value(&format!("{x}.sum(axis=0, split_every=2)"));
    let b = value(&format!("{x}.sum(axis=0)"));
    for (p, q) in a.iter().zip(&b) {
        assert!((p - q).abs() <= 1e-12 * q.abs(), "{p} vs {q}");
    }
    // The narrower tree has more combining tasks.
    let plan_tasks = |expr: &str| {
        let Value::Array(arr) = evaluate(expr, &names).unwrap() else {
            panic!()
        };
        let sizing = crate::convert::PlanSizing {
            memory_limit: 1 << 30,
            threads: 2,
        };
        crate::convert::plan_array_compute(&arr, sizing)
            .unwrap()
            .0
            .tasks
            .len()
    };
    assert!(
        plan_tasks(&format!("{x}.sum(axis=0, split_every=2)"))
            > plan_tasks(&format!("{x}.sum(axis=0)"))
    );
    let err = evaluate(&format!("{x}.sum(split_every=1)"), &names).unwrap_err();
    assert!(err.to_string().contains("at least 2"), "{err}");
}

/// Whether the plan computing `array` multiplies blocks as a symmetric product
/// (`a @ a.T`, half the blocks computed).
fn takes_the_symmetric_path(array: &Array) -> bool {
    let mut plan = crate::plan::Plan::new();
    super::lower::PlanBuilder::new(&mut plan)
        .add(array, &super::lower::Target::Store)
        .unwrap();
    plan.datasets
        .iter()
        .any(|d| d.meta["work"]["form"] == "gram")
}

/// Products of an array and its own transpose, and products that look like them
/// but are not (another array, a reversed axis, a changed value): each equal to
/// numpy's under every chunking, and only the first kind on the symmetric path.
#[test]
fn products_with_the_own_transpose_equal_numpys_and_only_they_are_symmetric() {
    let symmetric = [
        "c @ c.T",
        "c.T @ c",
        "a[0] @ a[0].T",
        "a[2].T @ a[2]",
        "(c * 2 + 1) @ (c * 2 + 1).T",
        "f[1] @ f[1].T",
        "f[3].T @ f[3]",
        "b[2] @ b[2].T",
        "b[4].T @ b[4]",
        "u[1].astype('int64') @ u[1].astype('int64').T",
        "dot(c, c.T)",
        "c[:, 0] @ c[:, 0]",
    ];
    let general = [
        "a[0] @ a[1].T",
        "c[:, ::-1] @ c.T",
        "c @ c[::-1].T",
        "c @ (c + 0.5).T",
        "f[1] @ f[2].T",
        "b[2] @ b[3].T",
        "c[:, 1:] @ c[:, :-1].T",
        "c[:, 0] @ c[:, 1]",
        "c @ c[0]",
    ];
    let dir = tempfile::tempdir().unwrap();
    let all: Vec<&str> = symmetric.iter().chain(&general).copied().collect();
    let want = numpy_results(dir.path(), &all);
    let ctx = context();
    for (label, chunking) in chunkings() {
        let names = inputs(dir.path(), chunking.as_ref());
        for expr in &all {
            let Value::Array(array) = evaluate(expr, &names).unwrap() else {
                panic!("{expr}: not an array")
            };
            assert_eq!(
                takes_the_symmetric_path(&array),
                symmetric.contains(expr),
                "{expr} ({label}): the path taken"
            );
            let w = &want[*expr];
            let got = compute_array(&array, &ctx).unwrap_or_else(|e| panic!("{expr}: {e}"));
            let shape: Vec<u64> = serde_json::from_value(w["shape"].clone()).unwrap();
            assert_eq!(got.shape, shape, "{expr} ({label}): shape");
            assert_eq!(got.dtype.name(), w["dtype"].as_str().unwrap(), "{expr}");
            let want_hex = w["hex"].as_str().unwrap();
            if !matches!(got.dtype, DType::Float32 | DType::Float64) {
                assert_eq!(hex(&got.bytes), want_hex, "{expr} ({label})");
                continue;
            }
            let want_bytes: Vec<u8> = unhex(want_hex);
            let (g, w) = (
                floats(got.dtype, &got.bytes),
                floats(got.dtype, &want_bytes),
            );
            let tol = if got.dtype == DType::Float32 {
                1e-5
            } else {
                1e-12
            };
            for (i, (x, y)) in g.iter().zip(&w).enumerate() {
                assert!(
                    (x - y).abs() <= tol * x.abs().max(y.abs()).max(1.0),
                    "{expr} ({label}) element {i}: {x} vs numpy's {y}"
                );
            }
            if symmetric.contains(expr) && shape.len() == 2 {
                // Exactly symmetric, as numpy's own.
                let n = shape[0] as usize;
                for i in 0..n {
                    for j in 0..i {
                        assert_eq!(g[i * n + j], g[j * n + i], "{expr} ({label})");
                    }
                }
            }
        }
    }
}

#[test]
fn generated_arrays_spelled_twice_multiply_symmetrically() {
    // As the benchmark writes it: the same generator twice, one side transposed.
    let ctx = context();
    let names = BTreeMap::new();
    let x = |seed: u64| format!("random.random((45, 30), chunks=(7, 11), seed={seed})");
    let want = crate::reference::json(
        "import json, numpy as np\n\
         g = lambda s: np.random.Generator(np.random.Philox(key=s)).random((45, 30))\n\
         print(json.dumps({'same': (g(3) @ g(3).T).ravel().tolist(),\n\
                           'other': (g(3) @ g(4).T).ravel().tolist()}))",
        &[],
    );
    for (expr, key, symmetric) in [
        (format!("{} @ {}.T", x(3), x(3)), "same", true),
        (format!("{} @ {}.T", x(3), x(4)), "other", false),
    ] {
        let Value::Array(array) = evaluate(&expr, &names).unwrap() else {
            panic!("{expr}")
        };
        assert_eq!(takes_the_symmetric_path(&array), symmetric, "{expr}");
        let got = compute(&expr, &names, &ctx);
        let want: Vec<f64> = serde_json::from_value(want[key].clone()).unwrap();
        let got = floats(got.dtype, &got.bytes);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 1e-12 * w.abs().max(1.0),
                "{expr}: {g} vs {w}"
            );
        }
    }
}

#[test]
fn a_symmetric_product_stays_under_a_quarter_of_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    let want = crate::reference::json(
        "import json, sys, numpy as np\n\
         x = np.random.default_rng(3).standard_normal((512, 256))\n\
         np.save(sys.argv[1], x)\n\
         print(json.dumps({'rows': (x @ x.T).sum(axis=0).tolist(),\n\
                           'gram': (x.T @ x).tobytes().hex()}))",
        &[&src.display().to_string()],
    );
    // 1 MiB of data, a 256 KiB budget: the contracted axis is split between tasks,
    // and the product (2 MiB) passes through the store, spilled.
    let limit = 256 << 10;
    let x = Array::open(&src, Some(regular_chunks(&[512, 256], &[32, 32]).unwrap())).unwrap();
    let mut names = BTreeMap::new();
    names.insert("x".to_string(), x);

    let ctx = budget(limit);
    let Value::Array(rows) = evaluate("(x @ x.T).sum(axis=0)", &names).unwrap() else {
        panic!()
    };
    assert!(takes_the_symmetric_path(&rows));
    let got = compute_array(&rows, &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak > 0 && peak <= limit, "peak reserved {peak} of {limit}");
    let want_rows: Vec<f64> = serde_json::from_value(want["rows"].clone()).unwrap();
    for (g, w) in floats(got.dtype, &got.bytes).iter().zip(&want_rows) {
        assert!((g - w).abs() <= 1e-10 * w.abs().max(1.0), "{g} vs {w}");
    }

    // `x.T @ x` (512 KiB) written to a file in its chunks.
    let ctx = budget(limit);
    let Value::Array(gram) = evaluate("x.T @ x", &names).unwrap() else {
        panic!()
    };
    let out = dir.path().join("g.zarr");
    crate::convert::write_array(&gram, &out, &Default::default(), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak > 0 && peak <= limit, "peak reserved {peak} of {limit}");
    let stored = crate::storage::open_array(&out, crate::storage::Format::Zarr).unwrap();
    let got = floats(
        DType::Float64,
        &stored
            .read(&crate::grid::Subset::full(&[256, 256]))
            .unwrap(),
    );
    let want_hex = want["gram"].as_str().unwrap();
    let want: Vec<u8> = unhex(want_hex);
    let want = floats(DType::Float64, &want);
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-10 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn a_symmetric_product_runs_task_by_task_and_its_tasks_repeat_harmlessly() {
    use crate::convert::{directory_store, plan_array, registry, PlanSizing};
    use crate::exec::{run_task, Environment};
    use crate::plan::{Plan, Resources};

    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    let want = crate::reference::json(
        "import json, sys, numpy as np\n\
         x = np.random.default_rng(4).standard_normal((50, 40))\n\
         np.save(sys.argv[1], x)\n\
         print(json.dumps((x @ x.T).ravel().tolist()))",
        &[&src.display().to_string()],
    );
    let want: Vec<f64> = serde_json::from_value(want).unwrap();
    let x = Array::open(&src, Some(regular_chunks(&[50, 40], &[16, 9]).unwrap())).unwrap();
    let product = x.matmul(&x.transpose(None).unwrap()).unwrap();
    // Small enough a budget that the contracted axis is split (partial sums).
    let sizing = PlanSizing {
        threads: 2,
        memory_limit: 64 << 10,
    };
    let out = dir.path().join("p.npy");
    let plan = plan_array(&product, &out, &Default::default(), sizing).unwrap();
    assert!(plan
        .datasets
        .iter()
        .any(|d| d.meta["work"]["form"] == "gram"));
    assert!(plan
        .datasets
        .iter()
        .any(|d| d.meta["work"]["partial"] == true));
    // What a worker gets: the plan from its JSON, and a directory store.
    let plan = Plan::from_json(&plan.to_json().unwrap()).unwrap();
    let store = directory_store(&plan).unwrap();
    let ctx = budget(1 << 30);
    let cancel = crate::sys::CancelToken::new();
    let waves = plan.waves().unwrap();
    for (w, wave) in waves.iter().enumerate() {
        for &id in wave {
            let resources = Resources::default();
            let env = Environment::new(&store, &ctx.pool, &ctx.spill, &resources);
            run_task(&plan, registry(), id, &env, &cancel, &[]).unwrap();
            if w + 1 < waves.len() {
                // Once more past the executor's skip: a retried task.
                let task = &plan.tasks[id as usize];
                let op = registry().prepare_task(task).unwrap();
                op.run(task, &env.task_env(&plan, &cancel, 1, &[])).unwrap();
            }
        }
    }
    let stored = crate::storage::open_array(&out, crate::storage::Format::Npy).unwrap();
    let got = floats(
        DType::Float64,
        &stored.read(&crate::grid::Subset::full(&[50, 50])).unwrap(),
    );
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 1e-12 * w.abs().max(1.0), "{g} vs {w}");
    }
}

#[test]
fn unique_values_and_counts_equal_numpys_under_every_chunking() {
    let dir = tempfile::tempdir().unwrap();
    let names_of = ["a", "b", "w", "m", "u", "z", "f"];
    let mut exprs: Vec<String> = Vec::new();
    for n in names_of {
        exprs.push(format!("unique({n})"));
        exprs.push(format!("unique({n}, return_counts=True)[1]"));
    }
    let refs: Vec<&str> = exprs.iter().map(String::as_str).collect();
    let want = numpy_results(dir.path(), &refs);
    let ctx = context();
    for (label, chunking) in chunkings() {
        let names = inputs(dir.path(), chunking.as_ref());
        for n in names_of {
            let expr = format!("unique({n}, return_counts=True)");
            let Value::Unique(array, true) = evaluate(&expr, &names).unwrap() else {
                panic!("{expr}: not a unique result")
            };
            let (values, counts) = crate::convert::compute_unique(&array, &ctx).unwrap();
            let w = &want[format!("unique({n})").as_str()];
            assert_eq!(
                hex(&values.bytes),
                w["hex"].as_str().unwrap(),
                "{expr} ({label})"
            );
            assert_eq!(values.dtype.name(), w["dtype"].as_str().unwrap(), "{expr}");
            let c: Vec<u8> = counts.iter().flat_map(|c| c.to_ne_bytes()).collect();
            let wc = &want[format!("unique({n}, return_counts=True)[1]").as_str()];
            assert_eq!(
                hex(&c),
                wc["hex"].as_str().unwrap(),
                "{expr} counts ({label})"
            );
        }
    }
}

#[test]
fn boolean_selections_stay_under_a_quarter_of_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    // 8 MiB of float64 written by numpy; the selection and its reductions run
    // under 2 MiB.
    let want = crate::reference::json(
        "import json, sys, numpy as np\n\
         x = np.random.default_rng(3).standard_normal((256, 4096))\n\
         np.save(sys.argv[1], x)\n\
         print(json.dumps({\n\
           'tail': x[x > 2.5].tobytes().hex(),\n\
           'std': np.array(x[x > 0].std()).tobytes().hex(),\n\
           'rows': x[x[:, 0] > 1.5, ::64].tobytes().hex()}))",
        &[&src.display().to_string()],
    );
    let limit = 2 << 20;
    let x = Array::open(
        &src,
        Some(regular_chunks(&[256, 4096], &[16, 1024]).unwrap()),
    )
    .unwrap();
    let mut names = BTreeMap::new();
    names.insert("x".to_string(), x);
    for (expr, key) in [
        ("x[x > 2.5]", "tail"),
        ("x[x > 0].std()", "std"),
        ("x[x[:, 0] > 1.5, ::64]", "rows"),
    ] {
        let ctx = budget(limit);
        let got = compute(expr, &names, &ctx);
        let peak = ctx.pool.peak_reserved();
        assert!(
            peak > 0 && peak <= limit,
            "{expr}: peak reserved {peak} of {limit}"
        );
        let (g, w) = (floats(DType::Float64, &got.bytes), hex_floats(&want[key]));
        assert!(!w.is_empty(), "{expr}: numpy selected nothing");
        assert_eq!(
            got.shape.iter().product::<u64>() as usize,
            w.len(),
            "{expr}"
        );
        assert_eq!(g.len(), w.len(), "{expr}");
        for (a, b) in g.iter().zip(&w) {
            assert!(
                (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                "{expr}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn a_selection_larger_than_memory_is_written_slab_by_slab() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("x.npy");
    crate::reference::json(
        "import json, sys, numpy as np\n\
         np.save(sys.argv[1], np.random.default_rng(4).standard_normal((256, 4096)))\n\
         print(json.dumps({}))",
        &[&src.display().to_string()],
    );
    // Nine tenths of the 8 MiB array are kept, under a 2 MiB limit: the slabs are
    // counted, then placed side by side in a staged file, never all in memory.
    let limit = 2 << 20;
    let x = Array::open(
        &src,
        Some(regular_chunks(&[256, 4096], &[16, 1024]).unwrap()),
    )
    .unwrap();
    let mut names = BTreeMap::new();
    names.insert("x".to_string(), x);
    let Value::Selected(selection) = evaluate("x[x > -1.28]", &names).unwrap() else {
        panic!("not a selection")
    };
    let ctx = budget(limit);
    let out = dir.path().join("kept.npy");
    crate::convert::write_selected(&selection, &out, &Default::default(), &ctx).unwrap();
    let peak = ctx.pool.peak_reserved();
    assert!(peak > 0 && peak <= limit, "peak reserved {peak} of {limit}");
    let want: Vec<f64> = npy_floats(&src)
        .into_iter()
        .filter(|&v| v > -1.28)
        .collect();
    assert!(want.len() > 7 << 17, "{} kept", want.len());
    assert_eq!(npy_floats(&out), want);
    // Nothing is left in the spill directory (but its lock).
    let left: Vec<_> = std::fs::read_dir(ctx.spill.disk().dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .filter(|n| n != ".lock")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left behind: {left:?}");
}
