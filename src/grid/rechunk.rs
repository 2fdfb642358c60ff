//! Planning a rechunk in stages that each fit a memory budget.
//!
//! A stage copies an array from chunks `a` to chunks `b` in blocks: per axis, a
//! block is the least common multiple of the two chunk sizes (clipped to the axis),
//! so every block starts and ends on both grids. A task then reads whole source
//! chunks and writes whole target chunks, each exactly once: no read amplification
//! and no two writers on one chunk. When a block does not fit the budget (the
//! classic case: tall-skinny to short-fat), a task may copy a smaller block of
//! whole target chunks instead, decoding the source chunks it cuts more than once
//! (at most [`MAX_REREADS`] times each): decoding is several times cheaper than
//! the encode and the second pass an intermediate array costs. Only when that does
//! not fit either does the copy go through intermediate chunk shapes between `a`
//! and `b`, interpolated geometrically per axis as Pangeo's rechunker does, with as
//! few stages as fit.

/// How many times a one-pass stage may decode each source chunk before an
/// intermediate stage is preferred. An intermediate costs an encode and a decode
/// of the whole array; zstd decodes 3–5 times faster than it encodes, so up to four
/// decodes of the source still cost less.
pub const MAX_REREADS: u64 = 4;

/// Greatest common divisor.
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The block shape of a stage from chunks `a` to chunks `b` over `shape`.
pub fn stage_block(shape: &[u64], a: &[u64], b: &[u64]) -> Vec<u64> {
    shape
        .iter()
        .zip(a.iter().zip(b))
        .map(|(&len, (&x, &y))| {
            let lcm = (x / gcd(x, y)).saturating_mul(y);
            lcm.min(len.max(1))
        })
        .collect()
}

/// Bytes a stage task copying blocks of `block` holds at its peak: the block; a
/// source chunk's stored bytes, and the chunk decoded apart unless it is the whole
/// block; a target chunk's encoded bytes, and the chunk cut out of the block
/// unless it is the whole block.
pub fn block_task_bytes(shape: &[u64], block: &[u64], a: &[u64], b: &[u64], item: u64) -> u64 {
    let clipped = |c: &[u64]| -> u64 {
        c.iter()
            .zip(shape)
            .map(|(&n, &len)| n.min(len.max(1)))
            .product()
    };
    let (whole, source, target) = (clipped(block), clipped(a), clipped(b));
    let decoded = if whole == source { 0 } else { source };
    let cut = if whole == target { 0 } else { target };
    (whole + source + decoded + target + cut).saturating_mul(item)
}

/// Bytes a stage task holds at its peak copying whole blocks (see
/// [`block_task_bytes`]).
pub fn stage_task_bytes(shape: &[u64], a: &[u64], b: &[u64], item: u64) -> u64 {
    block_task_bytes(shape, &stage_block(shape, a, b), a, b, item)
}

/// How many times a task grid of `block` decodes a source chunk of `a`, at most.
fn rereads(shape: &[u64], block: &[u64], a: &[u64]) -> u64 {
    block
        .iter()
        .zip(a)
        .zip(shape)
        .map(|((&n, &x), &len)| {
            let (n, x) = (n.min(len.max(1)), x.min(len.max(1)));
            if n % x == 0 {
                1
            } else if n < x {
                // Cut into pieces of `n`; one more where the cuts do not line up.
                x.div_ceil(n) + u64::from(x % n != 0)
            } else {
                2
            }
        })
        .fold(1u64, u64::saturating_mul)
}

/// The block a stage from `a` to `b` copies at a time within `budget`: the whole
/// aligned block when it fits; otherwise the largest block of whole target chunks
/// (a power-of-two count of them per axis) that fits and decodes each source chunk
/// at most [`MAX_REREADS`] times; `None` when none does.
pub fn fitting_block(
    shape: &[u64],
    a: &[u64],
    b: &[u64],
    item: u64,
    budget: u64,
) -> Option<Vec<u64>> {
    let full = stage_block(shape, a, b);
    if block_task_bytes(shape, &full, a, b, item) <= budget {
        return Some(full);
    }
    let candidates: Vec<Vec<u64>> = full
        .iter()
        .zip(b)
        .zip(shape)
        .map(|((&whole, &y), &len)| doublings(y.min(len.max(1)).max(1), whole))
        .collect();
    combinations(&candidates)
        .filter(|block| {
            rereads(shape, block, a) <= MAX_REREADS
                && block_task_bytes(shape, block, a, b, item) <= budget
        })
        .min_by_key(|block| {
            (
                rereads(shape, block, a),
                std::cmp::Reverse(block.iter().product::<u64>()),
            )
        })
}

/// The chunk shapes to go through, `a` first and `b` last, with as few stages as let
/// every stage's task fit `budget` bytes; `None` when no plan of up to eight stages
/// fits.
pub fn plan_stages(
    shape: &[u64],
    a: &[u64],
    b: &[u64],
    item: u64,
    budget: u64,
) -> Option<Vec<Vec<u64>>> {
    if fitting_block(shape, a, b, item, budget).is_some() {
        return Some(vec![a.to_vec(), b.to_vec()]);
    }
    if let Some(mid) = best_intermediate(shape, a, b, item, budget) {
        return Some(vec![a.to_vec(), mid, b.to_vec()]);
    }
    for stages in 3..=8u32 {
        let mut path = vec![a.to_vec()];
        for k in 1..stages {
            let t = k as f64 / stages as f64;
            let mid: Vec<u64> = a
                .iter()
                .zip(b)
                .zip(shape)
                .map(|((&x, &y), &len)| intermediate(x, y, t).clamp(1, len.max(1)))
                .collect();
            path.push(mid);
        }
        path.push(b.to_vec());
        path.dedup();
        if path.len() == 1 {
            // Same chunks on both sides: still one stage, a plain copy.
            path.push(b.to_vec());
        }
        if path
            .windows(2)
            .all(|w| fitting_block(shape, &w[0], &w[1], item, budget).is_some())
        {
            return Some(path);
        }
    }
    None
}

/// The intermediate chunk shape for a two-stage plan whose stages both fit
/// `budget`: the one whose stages decode their chunks fewest times, and of those
/// the largest (fewest tasks). Per axis the candidates are the smaller chunk size
/// times powers of two, up to the larger one; arrays have few axes, so trying every
/// combination is cheap (at most a few thousand for four axes).
fn best_intermediate(
    shape: &[u64],
    a: &[u64],
    b: &[u64],
    item: u64,
    budget: u64,
) -> Option<Vec<u64>> {
    let candidates: Vec<Vec<u64>> = a
        .iter()
        .zip(b)
        .zip(shape)
        .map(|((&x, &y), &len)| {
            let lo = x.min(y).max(1);
            doublings(lo, x.max(y).min(len.max(1)).max(lo))
        })
        .collect();
    combinations(&candidates)
        .filter_map(|mid| {
            // Decodes of the source and of the intermediate, over one each.
            let first = fitting_block(shape, a, &mid, item, budget)?;
            let second = fitting_block(shape, &mid, b, item, budget)?;
            let decodes = rereads(shape, &first, a) + rereads(shape, &second, &mid);
            Some((decodes, mid))
        })
        .min_by_key(|(decodes, mid)| (*decodes, std::cmp::Reverse(mid.iter().product::<u64>())))
        .map(|(_, mid)| mid)
}

/// `lo`, twice `lo`, four times, ... below `hi`, then `hi`: the sizes tried along
/// an axis.
fn doublings(lo: u64, hi: u64) -> Vec<u64> {
    let mut c: Vec<u64> = std::iter::successors(Some(lo), |v| v.checked_mul(2))
        .take_while(|&v| v < hi)
        .collect();
    c.push(hi);
    c
}

/// Every shape that takes one of `candidates[axis]` along each axis.
fn combinations(candidates: &[Vec<u64>]) -> impl Iterator<Item = Vec<u64>> + '_ {
    let extents: Vec<u64> = candidates.iter().map(|c| c.len() as u64).collect();
    super::indices_c_order(&extents).map(move |pick| {
        pick.iter()
            .enumerate()
            .map(|(axis, &i)| candidates[axis][i as usize])
            .collect()
    })
}

/// A chunk size between `x` and `y` at fraction `t` (geometric), rounded to a
/// multiple of the smaller of the two so that least common multiples stay small.
fn intermediate(x: u64, y: u64, t: f64) -> u64 {
    let g = (x as f64).powf(1.0 - t) * (y as f64).powf(t);
    let unit = x.min(y).max(1);
    ((g / unit as f64).round() as u64).max(1) * unit
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_chunks_need_one_small_stage() {
        let shape = [4000, 4000];
        assert_eq!(stage_block(&shape, &[100, 100], &[200, 50]), vec![200, 100]);
        let p = plan_stages(&shape, &[100, 100], &[200, 50], 8, 1 << 20).unwrap();
        assert_eq!(p, vec![vec![100, 100], vec![200, 50]]);
    }

    #[test]
    fn tall_skinny_to_short_fat_goes_through_an_intermediate() {
        let shape = [4000, 4000];
        let (a, b) = ([4000, 50], [50, 4000]);
        // Directly, a block is the whole 128 MB array, and a block of whole target
        // chunks would decode each source chunk 80 times.
        assert_eq!(
            stage_task_bytes(&shape, &a, &b, 8),
            (4000 * 4000 + 4 * 4000 * 50) * 8
        );
        let budget = 32 << 20;
        assert!(fitting_block(&shape, &a, &b, 8, budget).is_none());
        let p = plan_stages(&shape, &a, &b, 8, budget).unwrap();
        assert!(p.len() >= 3, "{p:?}");
        assert_eq!(
            (p.first().unwrap().as_slice(), p.last().unwrap().as_slice()),
            (&a[..], &b[..])
        );
        for w in p.windows(2) {
            let block = fitting_block(&shape, &w[0], &w[1], 8, budget).unwrap();
            assert!(
                block_task_bytes(&shape, &block, &w[0], &w[1], 8) <= budget,
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_block_too_large_is_cut_into_whole_target_chunks_read_twice() {
        // Benchmark 5's tall step: (1024, 1024) to (16384, 64) chunks of a
        // (16384, 16384) float64 array; the aligned block is 128 MiB.
        let shape = [16384, 16384];
        let (a, b) = ([1024, 1024], [16384, 64]);
        let budget = 128 << 20;
        assert!(stage_task_bytes(&shape, &a, &b, 8) > budget);
        let block = fitting_block(&shape, &a, &b, 8, budget).unwrap();
        assert_eq!(block, vec![16384, 512]);
        assert_eq!(rereads(&shape, &block, &a), 2);
        assert_eq!(
            plan_stages(&shape, &a, &b, 8, budget).unwrap(),
            vec![a.to_vec(), b.to_vec()]
        );
    }

    #[test]
    fn an_impossible_budget_has_no_plan() {
        assert!(plan_stages(&[4000, 4000], &[4000, 50], &[50, 4000], 8, 1000).is_none());
    }
}

#[cfg(test)]
mod budget_tests {
    use super::*;

    #[test]
    fn a_tenth_of_the_data_is_enough_for_two_stages() {
        // 400 x 400 float64 = 1.28 MB; per-task budget 64 KB.
        let p = plan_stages(&[400, 400], &[400, 5], &[5, 400], 8, 64_000).unwrap();
        assert_eq!(p.len(), 3, "{p:?}");
        for w in p.windows(2) {
            assert!(
                fitting_block(&[400, 400], &w[0], &w[1], 8, 64_000).is_some(),
                "{p:?}"
            );
        }
    }
}
