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

/// The high and low words of the 128-bit product `a * b`.
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

    /// Fills `out` with the raw outputs from `start` on, a block computed once for
    /// its four words.
    pub fn fill_raw(&self, start: u64, out: &mut [u64]) {
        self.fill_with(start, out, |w| w);
    }

    /// Doubles in `[0, 1)` for the elements `start..start + out.len()`: numpy's
    /// `Generator(Philox(key=seed)).random()` at those indices.
    pub fn fill_random_f64(&self, start: u64, out: &mut [f64]) {
        self.fill_with(start, out, |w| (w >> 11) as f64 * DOUBLE_UNIT);
    }

    /// Singles in `[0, 1)`: numpy's `random(dtype=np.float32)`, which takes 32
    /// bits an element, the low half of a 64-bit output first.
    pub fn fill_random_f32(&self, start: u64, out: &mut [f32]) {
        for (i, v) in out.iter_mut().enumerate() {
            let n = start + i as u64;
            let word = self.raw(n / 2);
            let half = if n.is_multiple_of(2) {
                word as u32
            } else {
                (word >> 32) as u32
            };
            *v = (half >> 8) as f32 * FLOAT_UNIT;
        }
    }

    /// Doubles uniform in `[low, high)`: `low + (high - low) * random()`, as numpy's
    /// `uniform`.
    pub fn fill_uniform(&self, start: u64, low: f64, high: f64, out: &mut [f64]) {
        let span = high - low;
        self.fill_with(start, out, |w| {
            low + span * ((w >> 11) as f64 * DOUBLE_UNIT)
        });
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

    fn fill_with<T>(&self, start: u64, out: &mut [T], f: impl Fn(u64) -> T) {
        let mut index = start;
        let mut i = 0;
        while i < out.len() {
            let block = self.block(index / 4 + 1);
            let mut word = (index % 4) as usize;
            while word < 4 && i < out.len() {
                out[i] = f(block[word]);
                i += 1;
                word += 1;
                index += 1;
            }
        }
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
