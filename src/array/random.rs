//! Counter-based random numbers: an element's value depends on the seed and its
//! index in the array only, never on the chunking or on which thread made it.
//!
//! The generator is Philox4x64-10 (Salmon et al., "Parallel random numbers: as easy
//! as 1, 2, 3", SC 2011), as numpy's `Philox` bit generator runs it: the seed is
//! the key, and the `i`-th 64-bit output is word `i % 4` of the block of counter
//! `i / 4 + 1` (numpy advances the counter before it makes a block). So
//! `random(shape, seed=s)` is bit for bit what
//! `numpy.random.Generator(numpy.random.Philox(key=s)).random(shape)` returns, in C
//! order, and any chunk of it can be made alone from its elements' flat indices.
//!
//! Distributions whose numpy methods consume a varying number of words (the normal
//! ziggurat, bounded integers with rejection) are defined here from one block an
//! element instead, so that they stay index-based: their values are not numpy's,
//! their distributions are (see each function).
//!
//! The fills of numpy's stream (`fill_raw`, `fill_random_f64`, `fill_uniform`,
//! `fill_random_f32`) run 32 consecutive blocks' rounds at once in AVX-512
//! registers when the CPU has them (found at run time), else one block after
//! another in general registers. Every kernel gives the same bits.

use std::sync::OnceLock;

/// Philox4x64's multipliers and key increments (the paper's constants).
const M0: u64 = 0xD2E7_470E_E14C_6C93;
const M1: u64 = 0xCA5A_8263_9512_1157;
const W0: u64 = 0x9E37_79B9_7F4A_7C15;
const W1: u64 = 0xBB67_AE85_84CA_A73B;

/// Rounds of the bijection: 10, the count numpy uses and the paper recommends.
const ROUNDS: usize = 10;

/// `2^-53`: a 53-bit integer times this is a double in `[0, 1)`, every value
/// equally likely (numpy's `next_double`).
const DOUBLE_UNIT: f64 = 1.0 / 9_007_199_254_740_992.0;

/// `2^-24`: the same for `float32` from 24 bits.
const FLOAT_UNIT: f32 = 1.0 / 16_777_216.0;

/// A keyed Philox4x64-10 generator; cheap to copy, and every method is a pure
/// function of the key and an index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Philox {
    key: [u64; 2],
}

/// The key of each round (the seed's key advanced by the Weyl increments), made
/// once a fill rather than once a block.
type RoundKeys = [[u64; 2]; ROUNDS];

/// The high and low words of the 128-bit product `a * b`.
#[inline]
fn mul_hi_lo(a: u64, b: u64) -> (u64, u64) {
    let p = u128::from(a) * u128::from(b);
    ((p >> 64) as u64, p as u64)
}

impl Philox {
    /// The generator numpy's `Philox(key=seed)` is.
    pub fn new(seed: u64) -> Self {
        Philox { key: [seed, 0] }
    }

    /// The four words of the block at `counter` (the 256-bit counter's low word; the
    /// others are zero, which 2^64 blocks never exhaust).
    pub fn block(&self, counter: u64) -> [u64; 4] {
        self.block_in_stream(0, counter)
    }

    /// The `index`-th 64-bit output of numpy's stream (`Philox.random_raw`).
    pub fn raw(&self, index: u64) -> u64 {
        self.block(index / 4 + 1)[(index % 4) as usize]
    }

    /// Fills `out` with the raw outputs from `start` on.
    pub fn fill_raw(&self, start: u64, out: &mut [u64]) {
        self.fill_with(start, out, Word);
    }

    /// Doubles in `[0, 1)` for the elements `start..start + out.len()`: numpy's
    /// `Generator(Philox(key=seed)).random()` at those indices.
    pub fn fill_random_f64(&self, start: u64, out: &mut [f64]) {
        self.fill_with(start, out, UnitDouble);
    }

    /// Singles in `[0, 1)`: numpy's `random(dtype=np.float32)`, which takes 32
    /// bits an element, the low half of a 64-bit output first.
    pub fn fill_random_f32(&self, start: u64, out: &mut [f32]) {
        let single = |half: u32| (half >> 8) as f32 * FLOAT_UNIT;
        // Element `n` is half of word `n / 2`: whole words come from `fill_raw`, a
        // buffer at a time, and an odd first element from its word alone.
        let odd = usize::from(!start.is_multiple_of(2)).min(out.len());
        let (head, out) = out.split_at_mut(odd);
        if let [first] = head {
            *first = single((self.raw(start / 2) >> 32) as u32);
        }
        let mut word = start.div_ceil(2);
        let mut words = [0u64; 512];
        for chunk in out.chunks_mut(2 * words.len()) {
            let words = &mut words[..chunk.len().div_ceil(2)];
            self.fill_raw(word, words);
            for (pair, w) in chunk.chunks_mut(2).zip(words.iter()) {
                pair[0] = single(*w as u32);
                if let Some(high) = pair.get_mut(1) {
                    *high = single((*w >> 32) as u32);
                }
            }
            word += words.len() as u64;
        }
    }

    /// Doubles uniform in `[low, high)`: `low + (high - low) * random()`, as numpy's
    /// `uniform`.
    pub fn fill_uniform(&self, start: u64, low: f64, high: f64, out: &mut [f64]) {
        let span = high - low;
        self.fill_with(start, out, UniformDouble { low, span });
    }

    /// Standard normal doubles, one block an element: the Box–Muller transform of
    /// two of its words, the block's counter offset past numpy's stream (the high
    /// counter word is 1) so that the same seed's `random` and `normal` are
    /// independent.
    pub fn fill_standard_normal(&self, start: u64, out: &mut [f64]) {
        for (i, v) in out.iter_mut().enumerate() {
            let block = self.block_in_stream(1, start + i as u64);
            // u1 in (0, 1]: never 0, whose logarithm is infinite.
            let u1 = ((block[0] >> 11) + 1) as f64 * DOUBLE_UNIT;
            let u2 = (block[1] >> 11) as f64 * DOUBLE_UNIT;
            *v = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
        }
    }

    /// Integers uniform in `[low, high)` (`high > low`), one block an element:
    /// Lemire's multiply-and-reject on its words, unbiased unless all four are
    /// rejected (a probability below `(range / 2^64)^4`), then the last product
    /// is taken. Counters in stream 2.
    pub fn fill_integers(&self, start: u64, low: i64, high: i64, out: &mut [i64]) {
        let range = high.wrapping_sub(low) as u64;
        // The rejection threshold: 2^64 mod range.
        let threshold = range.wrapping_neg() % range.max(1);
        for (i, v) in out.iter_mut().enumerate() {
            let block = self.block_in_stream(2, start + i as u64);
            let mut pick = 0;
            for w in block {
                let (hi, lo) = mul_hi_lo(w, range);
                pick = hi;
                if lo >= threshold {
                    break;
                }
            }
            *v = low.wrapping_add(pick as i64);
        }
    }

    /// The block of element `index` in stream `stream` (the counter's second word):
    /// streams never meet numpy's (stream 0) or each other.
    fn block_in_stream(&self, stream: u64, index: u64) -> [u64; 4] {
        let mut c = [index, stream, 0, 0];
        let mut k = self.key;
        for round in 0..ROUNDS {
            if round > 0 {
                k[0] = k[0].wrapping_add(W0);
                k[1] = k[1].wrapping_add(W1);
            }
            let (hi0, lo0) = mul_hi_lo(M0, c[0]);
            let (hi1, lo1) = mul_hi_lo(M1, c[2]);
            c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
        }
        c
    }

    /// The keys of the ten rounds.
    fn round_keys(&self) -> RoundKeys {
        let mut keys = [self.key; ROUNDS];
        for round in 1..ROUNDS {
            let [k0, k1] = keys[round - 1];
            keys[round] = [k0.wrapping_add(W0), k1.wrapping_add(W1)];
        }
        keys
    }

    /// `out[i] = map(raw(start + i))`, by the fastest kernel this CPU runs.
    fn fill_with<M: WordMap>(&self, start: u64, out: &mut [M::Out], map: M) {
        // SAFETY: `best` is a supported kernel.
        unsafe { self.fill_with_kernel(Kernel::best(), start, out, map) };
    }

    /// `fill_with` by `kernel`.
    ///
    /// # Safety
    /// `kernel.supported()`.
    unsafe fn fill_with_kernel<M: WordMap>(
        &self,
        kernel: Kernel,
        start: u64,
        out: &mut [M::Out],
        map: M,
    ) {
        // The kernels start at a block's first word: the rest of the block `start`
        // falls in comes from that block alone, and so does the last block if it
        // is cut short.
        let head = ((start.wrapping_neg() % 4) as usize).min(out.len());
        let (head, body) = out.split_at_mut(head);
        self.fill_block_by_block(start, head, map);
        let start = start + head.len() as u64;
        let counter = start / 4 + 1;
        let keys = self.round_keys();
        let batched = match kernel {
            Kernel::Portable => 0,
            // SAFETY: the caller checked the kernel is supported: the CPU has the
            // features each of these needs.
            #[cfg(target_arch = "x86_64")]
            Kernel::Bmi2 => unsafe { x86::fill_bmi2(&keys, counter, body, map) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => unsafe { x86::fill_avx512(&keys, counter, body, map) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Ifma => unsafe { x86::fill_avx512_ifma(&keys, counter, body, map) },
        };
        let body = &mut body[batched..];
        let blocks = fill_portable(&keys, counter + batched as u64 / 4, body, map);
        let done = (batched + blocks) as u64;
        self.fill_block_by_block(start + done, &mut body[blocks..], map);
    }

    /// `fill_with` one block at a time, each computed once for its four words.
    fn fill_block_by_block<M: WordMap>(&self, start: u64, out: &mut [M::Out], map: M) {
        let mut index = start;
        let mut i = 0;
        while i < out.len() {
            let block = self.block(index / 4 + 1);
            let mut word = (index % 4) as usize;
            while word < 4 && i < out.len() {
                out[i] = map.element(block[word]);
                i += 1;
                word += 1;
                index += 1;
            }
        }
    }
}

/// What a fill makes of each 64-bit word of the stream.
trait WordMap: Copy {
    type Out: Copy;

    /// The element of `word`.
    fn element(self, word: u64) -> Self::Out;
}

/// The word itself: `fill_raw`.
#[derive(Clone, Copy)]
struct Word;

impl WordMap for Word {
    type Out = u64;

    #[inline(always)]
    fn element(self, word: u64) -> u64 {
        word
    }
}

/// numpy's `next_double`: the top 53 bits over `2^53`.
#[derive(Clone, Copy)]
struct UnitDouble;

impl WordMap for UnitDouble {
    type Out = f64;

    #[inline(always)]
    fn element(self, word: u64) -> f64 {
        (word >> 11) as f64 * DOUBLE_UNIT
    }
}

/// numpy's `uniform`: `low + span * next_double`.
#[derive(Clone, Copy)]
struct UniformDouble {
    low: f64,
    span: f64,
}

impl WordMap for UniformDouble {
    type Out = f64;

    #[inline(always)]
    fn element(self, word: u64) -> f64 {
        self.low + self.span * UnitDouble.element(word)
    }
}

/// How a fill computes its blocks. Every kernel gives the same bits; they differ in
/// the instructions they use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    /// One block at a time in general registers, on any CPU.
    Portable,
    /// `Portable` with BMI2's `mulx`, which takes its operands in any registers
    /// where `mul` needs `rax` and `rdx`: 10-15% faster. (An AVX2 kernel, four
    /// blocks a register, took 1.3-1.5 times as long as this: four 32-bit
    /// products and eleven other instructions a 64-bit product, on three ports,
    /// against one `mulx`.)
    #[cfg(target_arch = "x86_64")]
    Bmi2,
    /// Four sets of eight blocks, the 128-bit products from 32-bit ones.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// As `Avx512`, the products from 52-bit ones (AVX-512 IFMA): 12 instructions
    /// a product instead of 15, about 15% faster.
    #[cfg(target_arch = "x86_64")]
    Avx512Ifma,
}

impl Kernel {
    /// Every kernel, slowest first.
    const ALL: &[Kernel] = &[
        Kernel::Portable,
        #[cfg(target_arch = "x86_64")]
        Kernel::Bmi2,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Ifma,
    ];

    /// Whether this CPU has the instructions `self` uses.
    fn supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Bmi2 => is_x86_feature_detected!("bmi2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq")
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Ifma => {
                Kernel::Avx512.supported() && is_x86_feature_detected!("avx512ifma")
            }
        }
    }

    /// The fastest supported kernel, found once a process.
    fn best() -> Kernel {
        static BEST: OnceLock<Kernel> = OnceLock::new();
        *BEST.get_or_init(|| {
            let mut supported = Kernel::ALL.iter().filter(|k| k.supported());
            supported.next_back().copied().unwrap_or(Kernel::Portable)
        })
    }
}

/// Whole blocks from `counter` into `out`; returns how many elements it wrote.
#[inline(always)]
fn fill_portable<M: WordMap>(keys: &RoundKeys, counter: u64, out: &mut [M::Out], map: M) -> usize {
    let whole = out.len() / 4 * 4;
    let mut counter = counter;
    // One block at a time: consecutive blocks are independent, and the CPU
    // overlaps their rounds itself. Interleaving four in the source was 50%
    // slower on x86-64 (their state spills the sixteen registers), two 10%.
    // The words go through a buffer and `map` runs in a loop of its own: applied
    // as each block is made, LLVM vectorizes it together with the rounds' xors,
    // moving every word between general and vector registers, and the doubles
    // come out at less than half the speed.
    let mut blocks = [[0u64; 4]; 64];
    for chunk in out[..whole].chunks_mut(256) {
        let blocks = &mut blocks[..chunk.len() / 4];
        for block in blocks.iter_mut() {
            let mut c = [counter, 0, 0, 0];
            for k in keys {
                let (hi0, lo0) = mul_hi_lo(M0, c[0]);
                let (hi1, lo1) = mul_hi_lo(M1, c[2]);
                c = [hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0];
            }
            *block = c;
            counter += 1;
        }
        for (o, w) in chunk.iter_mut().zip(blocks.as_flattened()) {
            *o = map.element(*w);
        }
    }
    whole
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The x86-64 kernels. AVX-512: a batch holds one block a 64-bit lane, word
    //! `j` of every block in register `j`, and runs the rounds on whole registers;
    //! a transpose puts the words in element order at the end. There is no
    //! 64x64->128-bit vector multiply: it is built from 32-bit products
    //! (`vpmuludq`) or, with IFMA, from 52-bit ones (`vpmadd52luq`,
    //! `vpmadd52huq`). BMI2: the portable kernel, compiled with `mulx`.
    //!
    //! Helpers are `#[inline(always)]` without target features of their own: they
    //! compile inside the `#[target_feature]` entry points, whose callers checked
    //! the CPU. The scalar kernel stays out of the AVX-512 ones: rustc 1.95 (LLVM
    //! 22) miscompiled eight interleaved scalar blocks inside an AVX-512
    //! function, some of their words wrong.

    use super::{RoundKeys, WordMap, M0, M1};
    use std::arch::x86_64::*;

    // ---------------------------------------------------------------- AVX-512

    /// A constant multiplier split for `mul_512`: its bits below and above the
    /// split (32, or 52 with IFMA), broadcast.
    #[derive(Clone, Copy)]
    struct Split512 {
        lo: __m512i,
        hi: __m512i,
    }

    /// # Safety
    /// The CPU has AVX-512F.
    #[inline(always)]
    unsafe fn split_512<const IFMA: bool>(m: u64) -> Split512 {
        let at = if IFMA { 52 } else { 32 };
        Split512 {
            lo: _mm512_set1_epi64((m & ((1 << at) - 1)) as i64),
            hi: _mm512_set1_epi64((m >> at) as i64),
        }
    }

    /// The high and low words of `x * m` in each lane.
    ///
    /// # Safety
    /// The CPU has AVX-512F, and AVX-512 IFMA if `IFMA`.
    #[inline(always)]
    unsafe fn mul_512<const IFMA: bool>(x: __m512i, m: Split512) -> (__m512i, __m512i) {
        if IFMA {
            // With x = x0 + x1 2^52 and m = m0 + m1 2^52 (x1, m1 < 2^12), the
            // partial products' 52-bit halves fall at bits 0, 52 and 104, where
            // they sum: x m = a + b 2^52 + c 2^104, a < 2^52, b < 3 2^52. The IFMA
            // instructions read bits 0..52 of x: x0 needs no mask.
            let zero = _mm512_setzero_si512();
            let x1 = _mm512_srli_epi64::<52>(x);
            let b = _mm512_madd52lo_epu64(zero, x, m.hi);
            let b = _mm512_madd52lo_epu64(b, x1, m.lo);
            let b = _mm512_madd52hi_epu64(b, x, m.lo);
            let c = _mm512_madd52lo_epu64(zero, x1, m.hi);
            let c = _mm512_madd52hi_epu64(c, x, m.hi);
            let c = _mm512_madd52hi_epu64(c, x1, m.lo);
            let lo = _mm512_madd52lo_epu64(_mm512_slli_epi64::<52>(b), x, m.lo);
            let hi = _mm512_add_epi64(_mm512_srli_epi64::<12>(b), _mm512_slli_epi64::<40>(c));
            (hi, lo)
        } else {
            // Schoolbook on 32-bit halves: t and w gather the middle column
            // without overflowing 64 bits.
            let xh = _mm512_srli_epi64::<32>(x);
            let ll = _mm512_mul_epu32(x, m.lo);
            let lh = _mm512_mul_epu32(x, m.hi);
            let hl = _mm512_mul_epu32(xh, m.lo);
            let hh = _mm512_mul_epu32(xh, m.hi);
            let t = _mm512_add_epi64(hl, _mm512_srli_epi64::<32>(ll));
            let w = _mm512_add_epi64(lh, _mm512_maskz_mov_epi32(0x5555, t));
            let hi = _mm512_add_epi64(
                _mm512_add_epi64(hh, _mm512_srli_epi64::<32>(t)),
                _mm512_srli_epi64::<32>(w),
            );
            let lo = _mm512_mask_blend_epi32(0xAAAA, ll, _mm512_slli_epi64::<32>(w));
            (hi, lo)
        }
    }

    /// The words of `N` batches of eight blocks, batch `j` at counters
    /// `counter + 8 j ..`, in element order (32 a batch, in four registers).
    ///
    /// # Safety
    /// The CPU has AVX-512F, and AVX-512 IFMA if `IFMA`.
    #[inline(always)]
    unsafe fn batches_512<const N: usize, const IFMA: bool>(
        keys: &RoundKeys,
        counter: u64,
    ) -> [[__m512i; 4]; N] {
        let m0 = split_512::<IFMA>(M0);
        let m1 = split_512::<IFMA>(M1);
        let splat = |k: u64| _mm512_set1_epi64(k as i64);
        // Lane l holds block l / 2 + 4 (l % 2): the order that makes the transpose
        // two shuffles deep.
        let lanes = _mm512_setr_epi64(0, 4, 1, 5, 2, 6, 3, 7);
        let mut c = [[_mm512_setzero_si512(); 4]; N];
        // The first two rounds, from the counter and three zero words: round 1's
        // second product is 0, and round 2's first is the same in every lane.
        let (h, l) = super::mul_hi_lo(M0, keys[0][0]);
        for (j, c) in c.iter_mut().enumerate() {
            let ctr = _mm512_add_epi64(splat(counter + 8 * j as u64), lanes);
            let (hi0, lo0) = mul_512::<IFMA>(ctr, m0);
            let (hi1, lo1) = mul_512::<IFMA>(_mm512_xor_si512(hi0, splat(keys[0][1])), m1);
            *c = [
                _mm512_xor_si512(hi1, splat(keys[1][0])),
                lo1,
                _mm512_xor_si512(lo0, splat(h ^ keys[1][1])),
                splat(l),
            ];
        }
        for k in &keys[2..] {
            for c in &mut c {
                let (hi0, lo0) = mul_512::<IFMA>(c[0], m0);
                let (hi1, lo1) = mul_512::<IFMA>(c[2], m1);
                // 0x96: the three-way xor.
                *c = [
                    _mm512_ternarylogic_epi64::<0x96>(hi1, c[1], splat(k[0])),
                    lo1,
                    _mm512_ternarylogic_epi64::<0x96>(hi0, c[3], splat(k[1])),
                    lo0,
                ];
            }
        }
        let first = _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11);
        let second = _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15);
        for c in &mut c {
            let [c0, c1, c2, c3] = *c;
            // 128-bit lane i of t0 (t2): words 0-1 (2-3) of block i; of t1 and t3,
            // the same of block i + 4.
            let t0 = _mm512_unpacklo_epi64(c0, c1);
            let t1 = _mm512_unpackhi_epi64(c0, c1);
            let t2 = _mm512_unpacklo_epi64(c2, c3);
            let t3 = _mm512_unpackhi_epi64(c2, c3);
            *c = [
                _mm512_permutex2var_epi64(t0, first, t2),
                _mm512_permutex2var_epi64(t0, second, t2),
                _mm512_permutex2var_epi64(t1, first, t3),
                _mm512_permutex2var_epi64(t1, second, t3),
            ];
        }
        c
    }

    /// `map` of the words of `N` batches from `counter` into `out`, which holds
    /// `32 N` elements.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX-512DQ, and AVX-512 IFMA if `IFMA`.
    #[inline(always)]
    unsafe fn write_512<M: WordMap, const N: usize, const IFMA: bool>(
        keys: &RoundKeys,
        counter: u64,
        out: &mut [M::Out],
        map: M,
    ) {
        let batches = batches_512::<N, IFMA>(keys, counter);
        // Through a buffer, where LLVM vectorizes `map` (with AVX-512DQ's 64-bit
        // integer to double conversion); the loads are served from the stores.
        let mut words = [[[0u64; 8]; 4]; N];
        for (dst, v) in words
            .as_flattened_mut()
            .iter_mut()
            .zip(batches.as_flattened())
        {
            // SAFETY: `dst` is 64 bytes, one AVX-512 register.
            _mm512_storeu_si512(dst.as_mut_ptr().cast(), *v);
        }
        for (o, w) in out.iter_mut().zip(words.as_flattened().as_flattened()) {
            *o = map.element(*w);
        }
    }

    /// Whole batches of eight blocks from `counter` into `out`; returns how many
    /// elements it wrote.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX-512DQ, and AVX-512 IFMA if `IFMA`.
    #[inline(always)]
    unsafe fn fill_512<M: WordMap, const IFMA: bool>(
        keys: &RoundKeys,
        counter: u64,
        out: &mut [M::Out],
        map: M,
    ) -> usize {
        // Four batches at a time: a batch's rounds are a chain of dependent
        // multiplications longer than the CPU looks ahead, and four fill its
        // ports. The rest one batch at a time.
        let quads = out.len() / 128 * 128;
        let whole = out.len() / 32 * 32;
        let mut counter = counter;
        for quad in out[..quads].chunks_exact_mut(128) {
            write_512::<M, 4, IFMA>(keys, counter, quad, map);
            counter += 32;
        }
        for batch in out[quads..whole].chunks_exact_mut(32) {
            write_512::<M, 1, IFMA>(keys, counter, batch, map);
            counter += 8;
        }
        whole
    }

    /// `fill_512` with 32-bit partial products.
    ///
    /// # Safety
    /// The CPU has AVX-512F and AVX-512DQ.
    #[target_feature(enable = "avx512f,avx512dq")]
    pub(super) unsafe fn fill_avx512<M: WordMap>(
        keys: &RoundKeys,
        counter: u64,
        out: &mut [M::Out],
        map: M,
    ) -> usize {
        fill_512::<M, false>(keys, counter, out, map)
    }

    /// `fill_512` with 52-bit partial products.
    ///
    /// # Safety
    /// The CPU has AVX-512F, AVX-512DQ and AVX-512 IFMA.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    pub(super) unsafe fn fill_avx512_ifma<M: WordMap>(
        keys: &RoundKeys,
        counter: u64,
        out: &mut [M::Out],
        map: M,
    ) -> usize {
        fill_512::<M, true>(keys, counter, out, map)
    }

    // ------------------------------------------------------------------- BMI2

    /// `fill_portable` compiled with BMI2.
    ///
    /// # Safety
    /// The CPU has BMI2.
    #[target_feature(enable = "bmi2")]
    pub(super) unsafe fn fill_bmi2<M: WordMap>(
        keys: &RoundKeys,
        counter: u64,
        out: &mut [M::Out],
        map: M,
    ) -> usize {
        super::fill_portable(keys, counter, out, map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// numpy's answer to `code` (which prints JSON).
    fn numpy(code: &str) -> serde_json::Value {
        crate::reference::json(code, &[])
    }

    #[test]
    fn raw_outputs_are_numpys_philox() {
        let want = numpy(
            "import json, numpy as np\n\
             print(json.dumps({str(k): [int(v) for v in np.random.Philox(key=k).random_raw(11)]\n\
                               for k in [0, 1, 12345, 2**64 - 1]}))",
        );
        for (key, values) in want.as_object().unwrap() {
            let g = Philox::new(key.parse().unwrap());
            let mut raw = [0u64; 11];
            g.fill_raw(0, &mut raw);
            let want: Vec<u64> = values
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            assert_eq!(raw.to_vec(), want, "key {key}");
            assert_eq!(g.raw(10), want[10]);
        }
    }

    #[test]
    fn doubles_and_singles_are_numpys_from_any_offset() {
        let want = numpy(
            "import json, numpy as np\n\
             g = lambda: np.random.Generator(np.random.Philox(key=42))\n\
             print(json.dumps({'f64': g().random(1000).tolist(),\n\
                               'f32': g().random(1000, dtype=np.float32).tolist()}))",
        );
        let f64s: Vec<f64> = want["f64"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        let g = Philox::new(42);
        // Whole, and in pieces that start inside a block: the same values.
        let mut whole = vec![0.0; 1000];
        g.fill_random_f64(0, &mut whole);
        assert_eq!(whole, f64s);
        for (start, len) in [(1, 3), (537, 100), (999, 1), (4, 4), (3, 9)] {
            let mut part = vec![0.0; len];
            g.fill_random_f64(start as u64, &mut part);
            assert_eq!(part, f64s[start..start + len], "from {start}");
        }
        let f32s: Vec<f32> = want["f32"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let mut singles = vec![0.0f32; 1000];
        g.fill_random_f32(0, &mut singles);
        assert_eq!(singles, f32s);
        let mut part = vec![0.0f32; 7];
        g.fill_random_f32(333, &mut part);
        assert_eq!(part, f32s[333..340]);
    }

    /// Where the kernels' head, batches and tail meet: every start modulo 4, the
    /// lengths on either side of the batch sizes (4, 32, 128 elements), and
    /// counters near 2^60 and 2^62 (indices near 2^62 and 2^64).
    fn kernel_cases() -> Vec<(u64, usize)> {
        let starts = (0..8).chain([1001, (1 << 62) - 3, 1 << 62, u64::MAX - 6000]);
        let lens: Vec<usize> = (0..40)
            .chain([127, 128, 129, 160, 161, 1000, 4093, 5003])
            .collect();
        starts
            .flat_map(|s| lens.iter().map(move |&n| (s, n)))
            .collect()
    }

    #[test]
    fn every_kernel_is_the_block_by_block_stream() {
        let g = Philox::new(0x5EED_F00D);
        let kernels: Vec<Kernel> = Kernel::ALL
            .iter()
            .copied()
            .filter(|k| k.supported())
            .collect();
        assert!(kernels.contains(&Kernel::best()));
        let uniform = UniformDouble {
            low: -1.7,
            span: 3.3,
        };
        for (start, len) in kernel_cases() {
            let want: Vec<u64> = (start..start + len as u64).map(|i| g.raw(i)).collect();
            for &kernel in &kernels {
                let (mut raw, mut units, mut uniforms) =
                    (vec![0; len], vec![0.0; len], vec![0.0; len]);
                // SAFETY: `kernels` are the supported ones.
                unsafe {
                    g.fill_with_kernel(kernel, start, &mut raw, Word);
                    g.fill_with_kernel(kernel, start, &mut units, UnitDouble);
                    g.fill_with_kernel(kernel, start, &mut uniforms, uniform);
                }
                assert_eq!(raw, want, "{kernel:?} from {start}, {len} long");
                for (i, w) in want.iter().enumerate() {
                    let unit = (w >> 11) as f64 * DOUBLE_UNIT;
                    let at = || format!("{kernel:?} from {start}, {len} long, at {i}");
                    assert_eq!(units[i].to_bits(), unit.to_bits(), "{}", at());
                    let scaled = -1.7 + 3.3 * unit;
                    assert_eq!(uniforms[i].to_bits(), scaled.to_bits(), "{}", at());
                }
            }
        }
    }

    #[test]
    fn singles_are_halves_of_the_words_from_any_offset() {
        let g = Philox::new(9);
        for (start, len) in kernel_cases() {
            let mut got = vec![0.0f32; len];
            g.fill_random_f32(start, &mut got);
            for (i, v) in got.iter().enumerate() {
                let n = start + i as u64;
                let half = (g.raw(n / 2) >> (32 * (n % 2))) as u32;
                assert_eq!(*v, (half >> 8) as f32 * FLOAT_UNIT, "from {start}, at {i}");
            }
        }
    }

    #[test]
    fn normals_are_standard_and_index_based() {
        let g = Philox::new(7);
        let n = 200_000;
        let mut x = vec![0.0; n];
        g.fill_standard_normal(0, &mut x);
        let mean = x.iter().sum::<f64>() / n as f64;
        let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        // Standard errors: 1/sqrt(n) = 0.0022 for the mean, about 0.0032 for the
        // variance; five of them.
        assert!(mean.abs() < 0.011, "{mean}");
        assert!((var - 1.0).abs() < 0.016, "{var}");
        assert!(x.iter().all(|v| v.is_finite()));
        let mut part = vec![0.0; 10];
        g.fill_standard_normal(12_345, &mut part);
        assert_eq!(part, x[12_345..12_355]);
        // Not the uniform stream shifted: a different stream.
        let mut u = vec![0.0; 10];
        g.fill_random_f64(0, &mut u);
        assert!(u.iter().zip(&x).all(|(a, b)| a != b));
    }

    #[test]
    fn integers_cover_their_range_evenly() {
        let g = Philox::new(3);
        let n = 120_000;
        let mut x = vec![0i64; n];
        g.fill_integers(0, -3, 3, &mut x);
        let mut counts = [0usize; 6];
        for v in &x {
            assert!((-3..3).contains(v), "{v}");
            counts[(v + 3) as usize] += 1;
        }
        // 20,000 expected each, standard deviation 129: within five.
        for c in counts {
            assert!((c as i64 - 20_000).abs() < 650, "{counts:?}");
        }
        // The full range of i64 works and stays inside it.
        let mut wide = vec![0i64; 1000];
        g.fill_integers(0, i64::MIN, i64::MAX, &mut wide);
        assert!(wide.iter().all(|v| *v < i64::MAX));
        let mut part = vec![0i64; 5];
        g.fill_integers(77, -3, 3, &mut part);
        assert_eq!(part, x[77..82]);
    }

    #[test]
    fn uniform_is_random_scaled() {
        let g = Philox::new(11);
        let (mut u, mut r) = (vec![0.0; 50], vec![0.0; 50]);
        g.fill_uniform(5, -2.0, 6.0, &mut u);
        g.fill_random_f64(5, &mut r);
        for (a, b) in u.iter().zip(&r) {
            assert_eq!(*a, -2.0 + 8.0 * b);
            assert!((-2.0..6.0).contains(a));
        }
    }
}
