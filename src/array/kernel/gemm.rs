//! Packed matrix products of float64 and float32 blocks: `c += a @ b` for row-major
//! slices on one thread, with an AVX-512 kernel where the CPU has one and
//! `matrixmultiply` elsewhere.
//!
//! The design is Goto's (as in BLIS and OpenBLAS). `k` is cut into slabs of `KC`, `m`
//! into blocks of `MC` rows and `n` into blocks of `NC` columns. A block of `a` is
//! copied ("packed") into micro-panels of `MR` rows stored column after column, and a
//! block of `b` into micro-panels of `NR` columns stored row after row, so that the
//! microkernel reads both as two contiguous, aligned streams. The microkernel keeps an
//! `MR x NR` tile of `c` (8 x 24 float64, 8 x 48 float32) in 24 of the 32 vector
//! registers across the whole slab, broadcasting one element of `a` and loading `NV`
//! vectors of `b` for each step of `k`, and adds the tile into `c` once at the end,
//! masked where the tile overhangs `c`. A last panel of one or two vectors' width
//! gets a kernel of that width rather than multiplying padding.
//!
//! The loops run slab, block of `a` (`MC x KC`, meant for L3), block of `b` (`KC x NC`,
//! meant for L2), micro-panel of `a` (`MR x KC`, meant for L1), then the micro-panels
//! of `b` it meets. With one `a` micro-panel held while the `b` ones pass, the tiles of
//! `c` the kernel walks through lie side by side in memory, and `b` streams from L2 at
//! 8 bytes a vector multiply-add. This order beat the classic one (`b` block in L3, `a`
//! block in L2) by 5-10% here. Block sizes and the tile shape were measured on an Intel
//! Xeon (Sapphire Rapids: 48 KiB L1d, 2 MiB L2) against OpenBLAS; within the noise of a
//! shared machine (about 5%), neighbouring sizes did as well.
//!
//! Pack buffers are kept per thread and per type between calls (at most 2.5 MiB for
//! float64, 2.2 MiB for float32): fresh ones above the allocator's mmap threshold
//! cost a page fault per 4 KiB on every call, nearly half the time of a 128 x 128
//! product.
//!
//! Two variants share the driver. `a @ bt.T` for a right operand given transposed
//! (row-major `n x k`) packs `b` from `bt`'s rows, as `a` is packed, instead of its
//! columns: the tiles and the loops are the same. The symmetric rank-k update
//! `a @ a.T` (BLAS's SYRK) is that product with `bt = a` in which tiles wholly below
//! the diagonal are skipped, whole blocks of `b` too, which halves the work; the
//! lower triangle is then copied from the upper, so the result is exactly symmetric
//! as numpy's is.
//!
//! This holds the float products alone: no threads, `alpha` or `beta`, and no
//! integer types (those stay in `matmul`).

// Only x86-64 has a packed kernel; elsewhere the driver, and the part of a product
// only it skips tiles by, are left unused.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_variables))]

use std::cell::RefCell;
use std::mem::{size_of, MaybeUninit};
use std::sync::OnceLock;
use std::thread::LocalKey;

/// Rows of `c` in a microkernel's tile: one broadcast of `a` each.
const MR: usize = 8;

/// Vector registers across a tile's row; the tile keeps `MR * NV` accumulators.
const NV: usize = 3;

/// Columns of a float64 tile: `NV` vectors of eight lanes.
const NR_F64: usize = 8 * NV;

/// Columns of a float32 tile: `NV` vectors of sixteen lanes.
const NR_F32: usize = 16 * NV;

/// Steps of `k` before the end of a slab at which a microkernel starts fetching its
/// tile of `c`: early enough to hide a miss to memory (~100 ns at ~12 cycles a
/// step), late enough that the tile is still in L1 when the sums arrive.
const C_PREFETCH_STEPS: usize = 24;

/// `c += a @ b` for row-major `a` (`m x k`), `b` (`k x n`) and `c` (`m x n`), on the
/// calling thread.
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::dgemm_acc;
///
/// // [[1, 2, 3], [4, 5, 6]] @ [[1, 0], [0, 1], [1, 1]], added to ones.
/// let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
/// let mut c = [1.0; 4];
/// dgemm_acc(2, 3, 2, &a, &b, &mut c);
/// assert_eq!(c, [5.0, 6.0, 11.0, 12.0]);
/// ```
pub fn dgemm_acc(m: usize, k: usize, n: usize, a: &[f64], b: &[f64], c: &mut [f64]) {
    let shape = Shape::checked(m, k, n, a.len(), b.len(), c.len());
    gemm_on(Backend::best(), shape, a, Right::Rows(b), Part::Whole, c);
}

/// `c += a @ b` in single precision: row-major `a` (`m x k`), `b` (`k x n`) and `c`
/// (`m x n`), on the calling thread.
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::sgemm_acc;
///
/// let a = [1.0f32, 2.0];
/// let b = [3.0f32, 4.0];
/// let mut c = [0.0f32];
/// sgemm_acc(1, 2, 1, &a, &b, &mut c);
/// assert_eq!(c, [11.0]);
/// ```
pub fn sgemm_acc(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    let shape = Shape::checked(m, k, n, a.len(), b.len(), c.len());
    gemm_on(Backend::best(), shape, a, Right::Rows(b), Part::Whole, c);
}

/// `c += a @ bt.T` for row-major `a` (`m x k`), `bt` (`n x k`: the right operand
/// transposed) and `c` (`m x n`), on the calling thread.
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::dgemm_nt_acc;
///
/// // [[1, 2, 3], [4, 5, 6]] @ [[1, 0, 1], [0, 1, 1]].T
/// let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
/// let bt = [1.0, 0.0, 1.0, 0.0, 1.0, 1.0];
/// let mut c = [0.0; 4];
/// dgemm_nt_acc(2, 3, 2, &a, &bt, &mut c);
/// assert_eq!(c, [4.0, 5.0, 10.0, 11.0]);
/// ```
pub fn dgemm_nt_acc(m: usize, k: usize, n: usize, a: &[f64], bt: &[f64], c: &mut [f64]) {
    let shape = Shape::checked(m, k, n, a.len(), bt.len(), c.len());
    gemm_on(
        Backend::best(),
        shape,
        a,
        Right::Transposed(bt),
        Part::Whole,
        c,
    );
}

/// `c += a @ bt.T` in single precision (see [`dgemm_nt_acc`]).
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::sgemm_nt_acc;
///
/// let a = [1.0f32, 2.0];
/// let bt = [3.0f32, 4.0];
/// let mut c = [0.0f32];
/// sgemm_nt_acc(1, 2, 1, &a, &bt, &mut c);
/// assert_eq!(c, [11.0]);
/// ```
pub fn sgemm_nt_acc(m: usize, k: usize, n: usize, a: &[f32], bt: &[f32], c: &mut [f32]) {
    let shape = Shape::checked(m, k, n, a.len(), bt.len(), c.len());
    gemm_on(
        Backend::best(),
        shape,
        a,
        Right::Transposed(bt),
        Part::Whole,
        c,
    );
}

/// The symmetric rank-k update `c += a @ a.T` for row-major `a` (`m x k`) and `c`
/// (`m x m`), on the calling thread, in about half the work of the general
/// product: the upper triangle of `c` (with its diagonal) gains that of `a @ a.T`,
/// and the lower triangle becomes its mirror. `c` is symmetric after the call; its
/// lower triangle on entry is not read, so a symmetric `c` gains all of `a @ a.T`.
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::dsyrk_acc;
///
/// // [[1, 2], [3, 4]] @ [[1, 2], [3, 4]].T
/// let a = [1.0, 2.0, 3.0, 4.0];
/// let mut c = [0.0; 4];
/// dsyrk_acc(2, 2, &a, &mut c);
/// assert_eq!(c, [5.0, 11.0, 11.0, 25.0]);
/// ```
pub fn dsyrk_acc(m: usize, k: usize, a: &[f64], c: &mut [f64]) {
    syrk_acc(m, k, a, c);
}

/// The symmetric rank-k update `c += a @ a.T` in single precision (see
/// [`dsyrk_acc`]).
///
/// # Panics
///
/// If a slice's length is not the product of its dimensions.
///
/// # Examples
///
/// ```
/// use blockwise::array::kernel::gemm::ssyrk_acc;
///
/// let a = [1.0f32, 2.0, 3.0, 4.0];
/// let mut c = [1.0f32; 4];
/// ssyrk_acc(2, 2, &a, &mut c);
/// assert_eq!(c, [6.0, 12.0, 12.0, 26.0]);
/// ```
pub fn ssyrk_acc(m: usize, k: usize, a: &[f32], c: &mut [f32]) {
    syrk_acc(m, k, a, c);
}

/// `c += a @ a.T` on the upper triangle, then mirrored.
fn syrk_acc<T: Element>(m: usize, k: usize, a: &[T], c: &mut [T]) {
    let shape = Shape::checked(m, k, m, a.len(), a.len(), c.len());
    gemm_on(
        Backend::best(),
        shape,
        a,
        Right::Transposed(a),
        Part::Upper,
        c,
    );
    mirror_upper(m, c);
}

/// Copies the upper triangle of the `m x m` row-major `c` onto the lower one, in
/// squares, so that the column of the upper triangle read for a row of the lower is
/// read a few cache lines at a time rather than one line an element.
fn mirror_upper<T: Copy>(m: usize, c: &mut [T]) {
    const SQUARE: usize = 32;
    for r0 in (0..m).step_by(SQUARE) {
        for c0 in (0..=r0).step_by(SQUARE) {
            for r in r0..(r0 + SQUARE).min(m) {
                for col in c0..(c0 + SQUARE).min(r) {
                    c[r * m + col] = c[col * m + r];
                }
            }
        }
    }
}

/// The right operand of a product `(m x k) @ (k x n)`.
#[derive(Debug, Clone, Copy)]
enum Right<'a, T> {
    /// `b` itself, row-major `k x n`.
    Rows(&'a [T]),
    /// Its transpose, row-major `n x k`.
    Transposed(&'a [T]),
}

/// Which tiles of `c` a product computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    /// All of them.
    Whole,
    /// Those with an element on or above the diagonal (a square `c`); the others
    /// are left as they were. Backends without packed kernels compute them all.
    Upper,
}

/// The dimensions of a product `(m x k) @ (k x n)`.
#[derive(Debug, Clone, Copy)]
struct Shape {
    m: usize,
    k: usize,
    n: usize,
}

impl Shape {
    /// The shape, after checking the slices' lengths against it.
    fn checked(m: usize, k: usize, n: usize, a: usize, b: usize, c: usize) -> Shape {
        let fits = m.checked_mul(k) == Some(a)
            && k.checked_mul(n) == Some(b)
            && m.checked_mul(n) == Some(c);
        assert!(
            fits,
            "a matrix product of {m} x {k} by {k} x {n} was given slices of {a}, {b} and {c} elements"
        );
        Shape { m, k, n }
    }
}

/// Who computes a product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// `matrixmultiply`'s kernels, on any CPU.
    Matrixmultiply,
    /// The packed kernels of this module, compiled for AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

impl Backend {
    /// Every backend, worst first.
    const ALL: [Backend; 1 + cfg!(target_arch = "x86_64") as usize] = [
        Backend::Matrixmultiply,
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512,
    ];

    /// Whether this CPU runs `self`.
    fn supported(self) -> bool {
        match self {
            Backend::Matrixmultiply => true,
            #[cfg(target_arch = "x86_64")]
            Backend::Avx512 => is_x86_feature_detected!("avx512f"),
        }
    }

    /// The fastest backend this CPU runs, found once a process.
    fn best() -> Backend {
        static BEST: OnceLock<Backend> = OnceLock::new();
        *BEST.get_or_init(|| {
            let mut supported = Backend::ALL.into_iter().filter(|b| b.supported());
            supported.next_back().unwrap_or(Backend::Matrixmultiply)
        })
    }
}

/// How a product is cut into blocks; in elements.
#[derive(Debug, Clone, Copy)]
struct Blocking {
    /// Rows of a packed block of `a`.
    mc: usize,
    /// Depth of a slab: columns of `a`, rows of `b`.
    kc: usize,
    /// Columns of a packed block of `b`.
    nc: usize,
}

/// A microkernel: `c[..rows][..cols] += a_panel @ b_panel` over `kc` steps, for
/// packed panels `a` (`kc` groups of `MR`) and `b` (`kc` rows of the tile's width)
/// and a tile of `c` whose rows are `ldc` elements apart.
///
/// # Safety
/// The CPU has the kernel's features; `a` and `b` are readable for their whole
/// panels; `c` is readable and writable for `rows` rows of `cols` elements, `rows`
/// at most `MR`, `cols` at most the tile's width.
type Microkernel<T> = unsafe fn(usize, *const T, *const T, *mut T, usize, usize, usize);

/// A packer of `b`: `kc x nc` of `b` (rows `ldb` apart) into micro-panels `NR`
/// columns wide, each stored as `kc` rows of `NR`, columns past `nc` zero.
///
/// # Safety
/// The CPU has the packer's features; the output holds `nc` rounded up to `NR`,
/// times `kc`, elements.
type PackB<T> = unsafe fn(usize, usize, &[T], usize, &mut [MaybeUninit<T>]);

/// The machine code of a packed product.
struct Kernels<T: 'static> {
    /// `tiles[v]` computes the first `v + 1` of a panel's `NV` vectors.
    tiles: [Microkernel<T>; NV],
    /// Packs blocks of `b`.
    pack_b: PackB<T>,
}

/// A float type the packed kernels multiply.
trait Element: Copy + Default + 'static {
    /// How products of this type are cut into blocks.
    const BLOCKING: Blocking;

    /// This thread's pack buffer for this type.
    fn pack_space() -> &'static LocalKey<RefCell<Vec<MaybeUninit<Self>>>>;

    /// `c += a @ b` by `matrixmultiply`, all of `c`.
    fn matrixmultiply(shape: Shape, a: &[Self], b: Right<'_, Self>, c: &mut [Self]);

    /// `c += a @ b` by the packed AVX-512 kernels, on the tiles of `part`.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[cfg(target_arch = "x86_64")]
    unsafe fn avx512(shape: Shape, a: &[Self], b: Right<'_, Self>, part: Part, c: &mut [Self]);
}

thread_local! {
    static PACK_F64: RefCell<Vec<MaybeUninit<f64>>> = const { RefCell::new(Vec::new()) };
    static PACK_F32: RefCell<Vec<MaybeUninit<f32>>> = const { RefCell::new(Vec::new()) };
}

impl Element for f64 {
    // KC: 256 steps make a kernel call ~3000 cycles, which amortizes the update of
    // its tile of `c`; the `a` micro-panel (16 KiB) then shares L1 with the `b` one
    // streaming past. NC: the `b` block (480 KiB) sits in a quarter of L2. MC: the `a`
    // block (2 MiB) comes from L3 a micro-panel at a time, and bounds the buffer.
    const BLOCKING: Blocking = Blocking {
        mc: 1024,
        kc: 256,
        nc: 240,
    };

    fn pack_space() -> &'static LocalKey<RefCell<Vec<MaybeUninit<f64>>>> {
        &PACK_F64
    }

    fn matrixmultiply(s: Shape, a: &[f64], b: Right<'_, f64>, c: &mut [f64]) {
        let (k, n) = (s.k as isize, s.n as isize);
        let (b, rsb, csb) = match b {
            Right::Rows(b) => (b, n, 1),
            Right::Transposed(bt) => (bt, 1, k),
        };
        // SAFETY: `Shape::checked` matched the lengths with m, k and n, so the
        // row-major strides (k and n elements a row, 1 a column; `k` a column of a
        // transposed `b`) stay inside each slice; `c` is borrowed mutably, so it
        // aliases neither `a` nor `b`.
        unsafe {
            matrixmultiply::dgemm(
                s.m,
                s.k,
                s.n,
                1.0,
                a.as_ptr(),
                k,
                1,
                b.as_ptr(),
                rsb,
                csb,
                1.0,
                c.as_mut_ptr(),
                n,
                1,
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn avx512(shape: Shape, a: &[f64], b: Right<'_, f64>, part: Part, c: &mut [f64]) {
        // SAFETY: the caller checked AVX-512F, all the kernels need.
        unsafe { packed::<f64, NR_F64>(&avx512::F64_KERNELS, f64::BLOCKING, shape, a, b, part, c) }
    }
}

impl Element for f32 {
    // Half the bytes an element: a deeper slab (384) keeps the kernel's `a`
    // micro-panel at 12 KiB and its calls long; the `b` block is 720 KiB.
    const BLOCKING: Blocking = Blocking {
        mc: 1024,
        kc: 384,
        nc: 480,
    };

    fn pack_space() -> &'static LocalKey<RefCell<Vec<MaybeUninit<f32>>>> {
        &PACK_F32
    }

    fn matrixmultiply(s: Shape, a: &[f32], b: Right<'_, f32>, c: &mut [f32]) {
        let (k, n) = (s.k as isize, s.n as isize);
        let (b, rsb, csb) = match b {
            Right::Rows(b) => (b, n, 1),
            Right::Transposed(bt) => (bt, 1, k),
        };
        // SAFETY: as for float64.
        unsafe {
            matrixmultiply::sgemm(
                s.m,
                s.k,
                s.n,
                1.0,
                a.as_ptr(),
                k,
                1,
                b.as_ptr(),
                rsb,
                csb,
                1.0,
                c.as_mut_ptr(),
                n,
                1,
            );
        }
    }

    #[cfg(target_arch = "x86_64")]
    unsafe fn avx512(shape: Shape, a: &[f32], b: Right<'_, f32>, part: Part, c: &mut [f32]) {
        // SAFETY: the caller checked AVX-512F, all the kernels need.
        unsafe { packed::<f32, NR_F32>(&avx512::F32_KERNELS, f32::BLOCKING, shape, a, b, part, c) }
    }
}

/// `c += a @ b` on `backend`, on the tiles of `part` (or more), for checked
/// lengths.
///
/// # Panics
///
/// If this CPU does not run `backend`.
fn gemm_on<T: Element>(
    backend: Backend,
    shape: Shape,
    a: &[T],
    b: Right<'_, T>,
    part: Part,
    c: &mut [T],
) {
    assert!(backend.supported(), "this CPU does not run {backend:?}");
    if shape.m == 0 || shape.n == 0 || shape.k == 0 {
        return;
    }
    match backend {
        Backend::Matrixmultiply => T::matrixmultiply(shape, a, b, c),
        // SAFETY: `supported` detected AVX-512F above.
        #[cfg(target_arch = "x86_64")]
        Backend::Avx512 => unsafe { T::avx512(shape, a, b, part, c) },
    }
}

/// `c += a @ b` by packing blocks of `a` and `b` and running `kernels` over them,
/// with micro-panels of `b` `NR` wide; for [`Part::Upper`], only tiles with an
/// element on or above the diagonal.
///
/// # Safety
/// The `kernels` run on this CPU.
unsafe fn packed<T: Element, const NR: usize>(
    kernels: &Kernels<T>,
    blocking: Blocking,
    s: Shape,
    a: &[T],
    b: Right<'_, T>,
    part: Part,
    c: &mut [T],
) {
    let upper = part == Part::Upper;
    // Equal slabs no deeper than `kc`, so the last is not a sliver.
    let slabs = s.k.div_ceil(blocking.kc);
    let kc_max = s.k.div_ceil(slabs);
    let a_len = blocking.mc.min(s.m).next_multiple_of(MR) * kc_max;
    let b_len = blocking.nc.min(s.n).next_multiple_of(NR) * kc_max;
    with_pack_space::<T, _>(a_len, b_len, |a_pack, b_pack| {
        for pc in (0..s.k).step_by(kc_max) {
            let kc = kc_max.min(s.k - pc);
            for ic in (0..s.m).step_by(blocking.mc) {
                let mc = blocking.mc.min(s.m - ic);
                pack_panels::<T, MR>(mc, kc, &a[ic * s.k + pc..], s.k, a_pack);
                for jc in (0..s.n).step_by(blocking.nc) {
                    let nc = blocking.nc.min(s.n - jc);
                    // Every column of this block of `b` lies left of the first row
                    // of the block of `a`: every tile is below the diagonal.
                    if upper && jc + nc <= ic {
                        continue;
                    }
                    match b {
                        // SAFETY: the caller checked that the packer runs here;
                        // `b_pack` holds `nc` rounded up to `NR`, times `kc`.
                        Right::Rows(b) => unsafe {
                            (kernels.pack_b)(kc, nc, &b[pc * s.n + jc..], s.n, b_pack)
                        },
                        // The rows of `bt` are the columns of `b`: its micro-panels
                        // are packed as those of `a` are, `NR` rows at a time.
                        Right::Transposed(bt) => {
                            pack_panels::<T, NR>(nc, kc, &bt[jc * s.k + pc..], s.k, b_pack)
                        }
                    }
                    for ir in (0..mc).step_by(MR) {
                        let rows = MR.min(mc - ir);
                        let a_panel = &a_pack[ir * kc..(ir + MR) * kc];
                        for jr in (0..nc).step_by(NR) {
                            let cols = NR.min(nc - jr);
                            // A tile whose last column is left of its first row.
                            if upper && jc + jr + cols <= ic + ir {
                                continue;
                            }
                            let tile = kernels.tiles[cols.div_ceil(NR / NV) - 1];
                            let b_panel = &b_pack[jr * kc..(jr + NR) * kc];
                            let corner = (ic + ir) * s.n + jc + jr;
                            let c_tile = &mut c[corner..corner + (rows - 1) * s.n + cols];
                            // SAFETY: the caller checked that `tile` runs here, and
                            // it is wide enough for `cols`. The packers wrote the
                            // whole panels (`MR * kc` and `NR * kc` elements),
                            // padding with zeros, and the slices above hold them.
                            // `c_tile` holds `rows` rows of `cols` elements, `s.n`
                            // apart, and is borrowed mutably.
                            unsafe {
                                tile(
                                    kc,
                                    a_panel.as_ptr().cast::<T>(),
                                    b_panel.as_ptr().cast::<T>(),
                                    c_tile.as_mut_ptr(),
                                    s.n,
                                    rows,
                                    cols,
                                );
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Runs `f` on two pack buffers of `a_len` and `b_len` elements from this thread's
/// pack space, each starting on a cache line.
fn with_pack_space<T: Element, R>(
    a_len: usize,
    b_len: usize,
    f: impl FnOnce(&mut [MaybeUninit<T>], &mut [MaybeUninit<T>]) -> R,
) -> R {
    let line = 64 / size_of::<T>();
    let a_room = a_len.next_multiple_of(line);
    T::pack_space().with_borrow_mut(|space| {
        if space.len() < a_room + b_len + line {
            space.resize(a_room + b_len + line, MaybeUninit::uninit());
        }
        // Alignment only saves split loads: the kernels load unaligned.
        let start = space.as_ptr().align_offset(64).min(line);
        let (a_pack, rest) = space[start..].split_at_mut(a_room);
        f(&mut a_pack[..a_len], &mut rest[..b_len])
    })
}

/// Packs `mc x kc` of `a` (rows `lda` apart) into micro-panels of `R` rows, each
/// stored `kc` groups of `R` (one group a column), rows past `mc` zero: the blocks
/// of `a` (`R = MR`), and those of a `b` given transposed (`R = NR`).
fn pack_panels<T: Copy + Default, const R: usize>(
    mc: usize,
    kc: usize,
    a: &[T],
    lda: usize,
    out: &mut [MaybeUninit<T>],
) {
    // Whole micro-panels move in 8-column squares: each row is read in runs, and
    // bounds are checked once a run rather than once an element.
    const W: usize = 8;
    for (panel, ir) in (0..mc).step_by(R).enumerate() {
        let out = &mut out[panel * R * kc..(panel + 1) * R * kc];
        let rows = R.min(mc - ir);
        if rows < R {
            for (p, group) in out.chunks_exact_mut(R).enumerate() {
                for (i, x) in group.iter_mut().enumerate() {
                    let row = (i < rows).then(|| a[(ir + i) * lda + p]);
                    *x = MaybeUninit::new(row.unwrap_or_default());
                }
            }
            continue;
        }
        let src: [&[T]; R] = std::array::from_fn(|i| &a[(ir + i) * lda..][..kc]);
        let squares = kc / W * W;
        for p in (0..squares).step_by(W) {
            let square: [[T; W]; R] =
                std::array::from_fn(|i| std::array::from_fn(|j| src[i][p + j]));
            let groups = &mut out[p * R..(p + W) * R];
            for j in 0..W {
                for i in 0..R {
                    groups[j * R + i] = MaybeUninit::new(square[i][j]);
                }
            }
        }
        for p in squares..kc {
            for i in 0..R {
                out[p * R + i] = MaybeUninit::new(src[i][p]);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The AVX-512F microkernel and packer of `b`, one of each for both float types
    //! through `Lanes`.
    //!
    //! `Lanes` methods are `#[inline(always)]` without target features of their
    //! own: they compile inside `tile` and `pack_b`, the `#[target_feature]`
    //! functions, whose callers checked the CPU. Nothing scalar beyond pointer,
    //! index and mask arithmetic runs inside those (see `random`'s note on rustc
    //! 1.95 and AVX-512 functions); the packer of `a`, a scalar copy, stays outside.

    use super::{Kernels, C_PREFETCH_STEPS, MR, NV};
    use std::arch::x86_64::*;
    use std::mem::size_of;
    use std::mem::MaybeUninit;

    /// A vector register of floats.
    pub(super) trait Lanes: Copy {
        /// The element type.
        type Elem;
        /// Elements a vector.
        const WIDTH: usize;

        /// All zeros.
        ///
        /// # Safety
        /// The CPU has AVX-512F.
        unsafe fn zero() -> Self;

        /// `WIDTH` elements from `p`.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `p` is readable for `WIDTH` elements.
        unsafe fn load(p: *const Self::Elem) -> Self;

        /// The first `n` (`1..WIDTH`) elements from `p`, zeros after them.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `p` is readable for `n` elements.
        unsafe fn load_first(p: *const Self::Elem, n: usize) -> Self;

        /// Stores all lanes to `p`.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `p` is writable for `WIDTH` elements.
        unsafe fn store(self, p: *mut Self::Elem);

        /// `*p` in every lane.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `p` is readable.
        unsafe fn splat(p: *const Self::Elem) -> Self;

        /// `a * b + c`, rounded once.
        ///
        /// # Safety
        /// The CPU has AVX-512F.
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self;

        /// Adds the first `n` lanes (`1..=WIDTH`) into `p[..n]`.
        ///
        /// # Safety
        /// The CPU has AVX-512F; `p` is readable and writable for `n` elements.
        unsafe fn add_into(self, p: *mut Self::Elem, n: usize);
    }

    /// The float64 kernels: tiles one to three vectors wide, and their packer.
    pub(super) const F64_KERNELS: Kernels<f64> = Kernels {
        tiles: [tile::<__m512d, 1>, tile::<__m512d, 2>, tile::<__m512d, 3>],
        pack_b: pack_b::<__m512d>,
    };

    /// The float32 kernels.
    pub(super) const F32_KERNELS: Kernels<f32> = Kernels {
        tiles: [tile::<__m512, 1>, tile::<__m512, 2>, tile::<__m512, 3>],
        pack_b: pack_b::<__m512>,
    };

    impl Lanes for __m512d {
        type Elem = f64;
        const WIDTH: usize = 8;

        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: the caller checked AVX-512F.
            unsafe { _mm512_setzero_pd() }
        }

        #[inline(always)]
        unsafe fn load(p: *const f64) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` holds 8 elements.
            unsafe { _mm512_loadu_pd(p) }
        }

        #[inline(always)]
        unsafe fn load_first(p: *const f64, n: usize) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` holds `n` elements; the
            // masked load touches no lane past `n`.
            unsafe { _mm512_maskz_loadu_pd(u8::MAX >> (8 - n), p) }
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f64) {
            // SAFETY: the caller checked AVX-512F and that `p` holds 8 elements.
            unsafe { _mm512_storeu_pd(p, self) }
        }

        #[inline(always)]
        unsafe fn splat(p: *const f64) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` is readable.
            unsafe { _mm512_set1_pd(*p) }
        }

        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the caller checked AVX-512F.
            unsafe { _mm512_fmadd_pd(a, b, c) }
        }

        #[inline(always)]
        unsafe fn add_into(self, p: *mut f64, n: usize) {
            let mask: __mmask8 = u8::MAX >> (8 - n);
            // SAFETY: the caller checked AVX-512F and that `p` holds `n` elements; the
            // masked load and store touch no lane past `n`.
            unsafe {
                let sum = _mm512_add_pd(_mm512_maskz_loadu_pd(mask, p), self);
                _mm512_mask_storeu_pd(p, mask, sum);
            }
        }
    }

    impl Lanes for __m512 {
        type Elem = f32;
        const WIDTH: usize = 16;

        #[inline(always)]
        unsafe fn zero() -> Self {
            // SAFETY: the caller checked AVX-512F.
            unsafe { _mm512_setzero_ps() }
        }

        #[inline(always)]
        unsafe fn load(p: *const f32) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` holds 16 elements.
            unsafe { _mm512_loadu_ps(p) }
        }

        #[inline(always)]
        unsafe fn load_first(p: *const f32, n: usize) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` holds `n` elements; the
            // masked load touches no lane past `n`.
            unsafe { _mm512_maskz_loadu_ps(u16::MAX >> (16 - n), p) }
        }

        #[inline(always)]
        unsafe fn store(self, p: *mut f32) {
            // SAFETY: the caller checked AVX-512F and that `p` holds 16 elements.
            unsafe { _mm512_storeu_ps(p, self) }
        }

        #[inline(always)]
        unsafe fn splat(p: *const f32) -> Self {
            // SAFETY: the caller checked AVX-512F and that `p` is readable.
            unsafe { _mm512_set1_ps(*p) }
        }

        #[inline(always)]
        unsafe fn mul_add(a: Self, b: Self, c: Self) -> Self {
            // SAFETY: the caller checked AVX-512F.
            unsafe { _mm512_fmadd_ps(a, b, c) }
        }

        #[inline(always)]
        unsafe fn add_into(self, p: *mut f32, n: usize) {
            let mask: __mmask16 = u16::MAX >> (16 - n);
            // SAFETY: the caller checked AVX-512F and that `p` holds `n` elements; the
            // masked load and store touch no lane past `n`.
            unsafe {
                let sum = _mm512_add_ps(_mm512_maskz_loadu_ps(mask, p), self);
                _mm512_mask_storeu_ps(p, mask, sum);
            }
        }
    }

    /// A packer of `b` (see `super::PackB`) for micro-panels `NV` vectors wide: whole
    /// vectors move as they are, the last of a row masked, zeros past it.
    ///
    /// # Safety
    /// As for `super::PackB`, the CPU having AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pack_b<V: Lanes>(
        kc: usize,
        nc: usize,
        b: &[V::Elem],
        ldb: usize,
        out: &mut [MaybeUninit<V::Elem>],
    ) {
        let width = NV * V::WIDTH;
        for (panel, jr) in (0..nc).step_by(width).enumerate() {
            let out = &mut out[panel * width * kc..(panel + 1) * width * kc];
            let cols = width.min(nc - jr);
            for (p, row) in out.chunks_exact_mut(width).enumerate() {
                let src = &b[p * ldb + jr..][..cols];
                for v in 0..NV {
                    let lanes = cols.saturating_sub(v * V::WIDTH).min(V::WIDTH);
                    let from = src.as_ptr().wrapping_add(v * V::WIDTH);
                    // SAFETY: the caller checked AVX-512F; `src` holds `lanes`
                    // elements from `from`, and `row` `WIDTH` from lane `v * WIDTH`.
                    unsafe {
                        let x = match lanes {
                            0 => V::zero(),
                            _ if lanes == V::WIDTH => V::load(from),
                            _ => V::load_first(from, lanes),
                        };
                        x.store(row.as_mut_ptr().add(v * V::WIDTH).cast());
                    }
                }
            }
        }
    }

    /// One step of `k`: the tile plus `a`'s column (`MR` elements) times the first
    /// `VECS` vectors of `b`'s row.
    ///
    /// # Safety
    /// The CPU has AVX-512F; `a` holds `MR` elements and `b` `VECS * WIDTH`.
    #[inline(always)]
    unsafe fn step<V: Lanes, const VECS: usize>(
        acc: &mut [[V; VECS]; MR],
        a: *const V::Elem,
        b: *const V::Elem,
    ) {
        // SAFETY: the caller's promises, pointer offsets within them.
        unsafe {
            let mut row = [V::zero(); VECS];
            for (v, y) in row.iter_mut().enumerate() {
                *y = V::load(b.add(v * V::WIDTH));
            }
            for (i, sums) in acc.iter_mut().enumerate() {
                let x = V::splat(a.add(i));
                for (sum, &y) in sums.iter_mut().zip(&row) {
                    *sum = V::mul_add(x, y, *sum);
                }
            }
        }
    }

    /// The microkernel (see `super::Microkernel`) for an `MR x VECS * WIDTH` tile of
    /// panels `NV * WIDTH` wide: `VECS` below `NV` serves a partial last panel
    /// without multiplying its zero padding.
    ///
    /// # Safety
    /// As for `super::Microkernel`, the CPU having AVX-512F and `cols` being at most
    /// `VECS * WIDTH`.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile<V: Lanes, const VECS: usize>(
        kc: usize,
        mut a: *const V::Elem,
        mut b: *const V::Elem,
        c: *mut V::Elem,
        ldc: usize,
        rows: usize,
        cols: usize,
    ) {
        let mut acc = [[V::zero(); VECS]; MR];
        let (a_step, b_step) = (MR, NV * V::WIDTH);
        let early = kc.saturating_sub(C_PREFETCH_STEPS);
        for _ in 0..early {
            // SAFETY: the panels hold `kc` steps; this is one of the first `early`.
            unsafe {
                step(&mut acc, a, b);
                a = a.add(a_step);
                b = b.add(b_step);
            }
        }
        // Bring the tile of `c` to L1 while the last steps run. A row that starts
        // mid-line ends on one more line, hence its last byte too; prefetches never
        // fault, so touching past `c` is harmless.
        let row_bytes = cols * size_of::<V::Elem>();
        for i in 0..rows {
            let row = c.wrapping_add(i * ldc).cast::<i8>();
            for offset in (0..row_bytes).step_by(64).chain([row_bytes - 1]) {
                _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(offset));
            }
        }
        for _ in early..kc {
            // SAFETY: as above, for the last steps.
            unsafe {
                step(&mut acc, a, b);
                a = a.add(a_step);
                b = b.add(b_step);
            }
        }
        for (i, sums) in acc.iter().enumerate().take(rows) {
            for (v, sum) in sums.iter().enumerate() {
                let lanes = cols.saturating_sub(v * V::WIDTH).min(V::WIDTH);
                if lanes > 0 {
                    // SAFETY: row `i < rows` of the tile holds `cols` elements, so
                    // `lanes` of them from lane `v * WIDTH`.
                    unsafe { sum.add_into(c.add(i * ldc + v * V::WIDTH), lanes) };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A float the tests fill and compare.
    trait Sample: Element + std::fmt::Debug + PartialEq {
        /// The largest error relative to `sum |a| |b| + |c|` accepted.
        const TOLERANCE: f64;
        fn from_f64(x: f64) -> Self;
        fn to_f64(self) -> f64;
    }

    impl Sample for f64 {
        const TOLERANCE: f64 = 1e-12;
        fn from_f64(x: f64) -> Self {
            x
        }
        fn to_f64(self) -> f64 {
            self
        }
    }

    impl Sample for f32 {
        const TOLERANCE: f64 = 1e-4;
        fn from_f64(x: f64) -> Self {
            x as f32
        }
        fn to_f64(self) -> f64 {
            self as f64
        }
    }

    /// `len` values in [-1, 1) from a linear congruential generator seeded with `seed`.
    fn filled<T: Sample>(len: usize, seed: u64) -> Vec<T> {
        let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                T::from_f64((state >> 11) as f64 / (1u64 << 52) as f64 - 1.0)
            })
            .collect()
    }

    /// Checks `run(c)` against a triple loop in float64, for `c` starting non-zero.
    fn check<T: Sample>(s: Shape, run: impl FnOnce(&[T], &[T], &mut [T])) {
        let a = filled::<T>(s.m * s.k, 1);
        let b = filled::<T>(s.k * s.n, 2);
        let start = filled::<T>(s.m * s.n, 3);
        let mut c = start.clone();
        run(&a, &b, &mut c);
        for i in 0..s.m {
            for j in 0..s.n {
                let x0 = start[i * s.n + j].to_f64();
                let (mut want, mut scale) = (x0, x0.abs());
                for p in 0..s.k {
                    let term = a[i * s.k + p].to_f64() * b[p * s.n + j].to_f64();
                    want += term;
                    scale += term.abs();
                }
                let got = c[i * s.n + j].to_f64();
                assert!(
                    (got - want).abs() <= T::TOLERANCE * scale.max(f64::MIN_POSITIVE),
                    "{s:?}: c[{i}][{j}] is {got}, not {want}"
                );
            }
        }
    }

    /// The transpose of the row-major `rows x cols` matrix `x`.
    fn transposed<T: Copy>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
        (0..cols)
            .flat_map(|j| (0..rows).map(move |i| x[i * cols + j]))
            .collect()
    }

    /// Checks `run(bt, c)`, a product with `b` given transposed, as `check` does.
    fn check_nt<T: Sample>(s: Shape, run: impl FnOnce(&[T], &[T], &mut [T])) {
        check::<T>(s, |a, b, c| run(a, &transposed(b, s.k, s.n), c));
    }

    /// Checks `run(a, c)`, a symmetric rank-k update of an `m x m` `c` that starts
    /// symmetric, against a triple loop, and that the result is exactly symmetric.
    fn check_syrk<T: Sample>(m: usize, k: usize, run: impl FnOnce(&[T], &mut [T])) {
        let a = filled::<T>(m * k, 4);
        let noise = filled::<T>(m * m, 5);
        let start: Vec<T> = (0..m * m)
            .map(|x| noise[(x % m).min(x / m) * m + (x % m).max(x / m)])
            .collect();
        let mut c = start.clone();
        run(&a, &mut c);
        for i in 0..m {
            for j in 0..m {
                let x0 = start[i * m + j].to_f64();
                let (mut want, mut scale) = (x0, x0.abs());
                for p in 0..k {
                    let term = a[i * k + p].to_f64() * a[j * k + p].to_f64();
                    want += term;
                    scale += term.abs();
                }
                let got = c[i * m + j].to_f64();
                assert!(
                    (got - want).abs() <= T::TOLERANCE * scale.max(f64::MIN_POSITIVE),
                    "{m} x {k}: c[{i}][{j}] is {got}, not {want}"
                );
                assert_eq!(c[i * m + j], c[j * m + i], "{m} x {k}: c[{i}][{j}]");
            }
        }
    }

    fn shape(m: usize, k: usize, n: usize) -> Shape {
        Shape { m, k, n }
    }

    /// Small and odd shapes: empty and unit dimensions, and sizes that leave partial
    /// tiles in every direction.
    fn shapes() -> Vec<Shape> {
        let mut shapes = Vec::new();
        for m in [0, 1, 2, 7, 8, 9] {
            for k in [0, 1, 5] {
                for n in [0, 1, 3, 24, 49] {
                    shapes.push(shape(m, k, n));
                }
            }
        }
        for m in (1..40).step_by(2) {
            for n in (1..40).step_by(3) {
                shapes.push(shape(m, 2 * n % 37 + 1, n));
            }
        }
        shapes
    }

    fn backends() -> impl Iterator<Item = Backend> {
        Backend::ALL.into_iter().filter(|b| b.supported())
    }

    #[test]
    fn every_backend_matches_a_triple_loop() {
        for backend in backends() {
            for s in shapes() {
                check::<f64>(s, |a, b, c| {
                    gemm_on(backend, s, a, Right::Rows(b), Part::Whole, c)
                });
                check::<f32>(s, |a, b, c| {
                    gemm_on(backend, s, a, Right::Rows(b), Part::Whole, c)
                });
            }
        }
    }

    #[test]
    fn every_backend_matches_across_several_blocks() {
        // With the default blocking: two slabs and two blocks of `b` in float64, then
        // more slabs than one and more blocks of `a` than one in both types.
        for s in [shape(300, 257, 311), shape(9, 800, 53), shape(1030, 9, 50)] {
            for backend in backends() {
                check::<f64>(s, |a, b, c| {
                    gemm_on(backend, s, a, Right::Rows(b), Part::Whole, c)
                });
                check::<f32>(s, |a, b, c| {
                    gemm_on(backend, s, a, Right::Rows(b), Part::Whole, c)
                });
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn blocks_of_every_size_meet_at_their_edges() {
        if !Backend::Avx512.supported() {
            return;
        }
        // Blocks that are not multiples of the tile, so that every block ends in a
        // partial micro-panel, and slabs of one and two steps.
        for (mc, kc, nc) in [(13, 5, 29), (9, 1, 50), (16, 2, 24)] {
            let blocking = Blocking { mc, kc, nc };
            for s in [shape(41, 11, 77), shape(17, 3, 100)] {
                // SAFETY: AVX-512F was detected above.
                check::<f64>(s, |a, b, c| unsafe {
                    packed::<f64, NR_F64>(
                        &avx512::F64_KERNELS,
                        blocking,
                        s,
                        a,
                        Right::Rows(b),
                        Part::Whole,
                        c,
                    )
                });
                // SAFETY: as for float64.
                check::<f32>(s, |a, b, c| unsafe {
                    packed::<f32, NR_F32>(
                        &avx512::F32_KERNELS,
                        blocking,
                        s,
                        a,
                        Right::Rows(b),
                        Part::Whole,
                        c,
                    )
                });
            }
        }
    }

    #[test]
    fn transposed_right_operands_match_a_triple_loop_on_every_backend() {
        let mut all = shapes();
        all.extend([shape(300, 257, 311), shape(1030, 9, 50)]);
        for backend in backends() {
            for &s in &all {
                check_nt::<f64>(s, |a, bt, c| {
                    gemm_on(backend, s, a, Right::Transposed(bt), Part::Whole, c)
                });
                check_nt::<f32>(s, |a, bt, c| {
                    gemm_on(backend, s, a, Right::Transposed(bt), Part::Whole, c)
                });
            }
        }
    }

    #[test]
    fn symmetric_updates_match_a_triple_loop() {
        // Partial tiles, two slabs and (float64) two blocks of `a` and several of `b`.
        for (m, k) in [
            (0, 3),
            (1, 0),
            (1, 1),
            (2, 5),
            (7, 3),
            (9, 1),
            (25, 11),
            (49, 7),
        ] {
            check_syrk::<f64>(m, k, |a, c| dsyrk_acc(m, k, a, c));
            check_syrk::<f32>(m, k, |a, c| ssyrk_acc(m, k, a, c));
        }
        check_syrk::<f64>(1030, 20, |a, c| dsyrk_acc(1030, 20, a, c));
        check_syrk::<f64>(60, 300, |a, c| dsyrk_acc(60, 300, a, c));
        check_syrk::<f32>(100, 400, |a, c| ssyrk_acc(100, 400, a, c));
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn symmetric_updates_skip_only_tiles_below_the_diagonal() {
        if !Backend::Avx512.supported() {
            return;
        }
        // Blocks of `a` and `b` that do not line up with each other or with the
        // tiles, so that blocks are skipped whole, in part, or not at all.
        for (mc, kc, nc) in [(13, 5, 29), (9, 1, 50), (16, 2, 24), (40, 3, 17)] {
            let blocking = Blocking { mc, kc, nc };
            for (m, k) in [(41, 11), (100, 3), (8, 4)] {
                let s = shape(m, k, m);
                // SAFETY: AVX-512F was detected above.
                check_syrk::<f64>(m, k, |a, c| unsafe {
                    let b = Right::Transposed(a);
                    packed::<f64, NR_F64>(&avx512::F64_KERNELS, blocking, s, a, b, Part::Upper, c);
                    mirror_upper(m, c);
                });
                // SAFETY: as for float64.
                check_syrk::<f32>(m, k, |a, c| unsafe {
                    let b = Right::Transposed(a);
                    packed::<f32, NR_F32>(&avx512::F32_KERNELS, blocking, s, a, b, Part::Upper, c);
                    mirror_upper(m, c);
                });
                // SAFETY: as above; the transposed operand alone, every tile.
                check_nt::<f64>(s, |a, bt, c| unsafe {
                    let b = Right::Transposed(bt);
                    packed::<f64, NR_F64>(&avx512::F64_KERNELS, blocking, s, a, b, Part::Whole, c)
                });
            }
        }
    }

    #[test]
    fn the_public_functions_accumulate() {
        let a = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let b = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let mut c = [0.0; 4];
        dgemm_acc(2, 3, 2, &a, &b, &mut c);
        dgemm_acc(2, 3, 2, &a, &b, &mut c);
        assert_eq!(c, [8.0, 10.0, 20.0, 22.0]);
        let (a, b) = (a.map(|x| x as f32), b.map(|x| x as f32));
        let mut c = [1.0f32; 4];
        sgemm_acc(2, 3, 2, &a, &b, &mut c);
        assert_eq!(c, [5.0, 6.0, 11.0, 12.0]);
    }

    #[test]
    #[should_panic(expected = "2 x 3 by 3 x 2 was given slices of 6, 6 and 5 elements")]
    fn mismatched_lengths_panic_with_them() {
        dgemm_acc(2, 3, 2, &[0.0; 6], &[0.0; 6], &mut [0.0; 5]);
    }
}
