//! Planning a rechunk in stages that each fit a memory budget.
//!
//! A stage copies an array from chunks `a` to chunks `b` in blocks: per axis, a
//! block is the least common multiple of the two chunk sizes (clipped to the axis),
//! so every block starts and ends on both grids. A task then reads whole source
//! chunks and writes whole target chunks, each exactly once: no read amplification
//! and no two writers on one chunk. When a block does not fit the budget (the
//! classic case: tall-skinny to short-fat), the copy goes through intermediate
//! chunk shapes between `a` and `b`, interpolated geometrically per axis as Pangeo's
//! rechunker does, with as few stages as fit.

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

/// Bytes a stage task holds at its peak: the block it reads plus the chunks it
/// writes out of it (at most the block again).
pub fn stage_task_bytes(shape: &[u64], a: &[u64], b: &[u64], item: u64) -> u64 {
    2 * stage_block(shape, a, b).iter().product::<u64>() * item
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
    if stage_task_bytes(shape, a, b, item) <= budget {
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
            .all(|w| stage_task_bytes(shape, &w[0], &w[1], item) <= budget)
        {
            return Some(path);
        }
    }
    None
}

/// The largest intermediate chunk shape (fewest tasks) for a two-stage plan whose
/// stages both fit `budget`. Per axis the candidates are the smaller chunk size
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
            let (lo, hi) = (x.min(y).max(1), x.max(y).min(len.max(1)));
            let mut c: Vec<u64> = std::iter::successors(Some(lo), |v| v.checked_mul(2))
                .take_while(|&v| v < hi)
                .collect();
            c.push(hi.max(lo));
            c
        })
        .collect();
    let extents: Vec<u64> = candidates.iter().map(|c| c.len() as u64).collect();
    super::indices_c_order(&extents)
        .map(|pick| {
            pick.iter()
                .enumerate()
                .map(|(axis, &i)| candidates[axis][i as usize])
                .collect::<Vec<u64>>()
        })
        .filter(|mid| {
            stage_task_bytes(shape, a, mid, item) <= budget
                && stage_task_bytes(shape, mid, b, item) <= budget
        })
        .max_by_key(|mid| mid.iter().product::<u64>())
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
        // Directly, a block is the whole 128 MB array.
        assert_eq!(stage_task_bytes(&shape, &a, &b, 8), 2 * 4000 * 4000 * 8);
        let budget = 32 << 20;
        let p = plan_stages(&shape, &a, &b, 8, budget).unwrap();
        assert!(p.len() >= 3, "{p:?}");
        assert_eq!(
            (p.first().unwrap().as_slice(), p.last().unwrap().as_slice()),
            (&a[..], &b[..])
        );
        for w in p.windows(2) {
            assert!(stage_task_bytes(&shape, &w[0], &w[1], 8) <= budget, "{p:?}");
        }
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
                stage_task_bytes(&[400, 400], &w[0], &w[1], 8) <= 64_000,
                "{p:?}"
            );
        }
    }
}
