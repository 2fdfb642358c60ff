//! Block products of a matrix product: `c += a @ b` for row-major blocks, and the
//! two forms of a product `a @ a.T` (`c += a @ bt.T` off the diagonal, the symmetric
//! `c += a @ a.T` on it); floats on the packed kernels of [`super::gemm`], integers
//! (int64, wrapping as numpy's do) on loops the compiler vectorizes.

use super::values::Values;
use crate::error::{Error, Result};

/// `c += a @ b`, with `a` of `m × k`, `b` of `k × n` and `c` of `m × n`, all row-major
/// and of one physical type (float32, float64 or int64).
///
/// # Errors
/// [`Error::Bug`] for other types or lengths that do not match the dimensions.
pub fn accumulate(
    a: &Values,
    b: &Values,
    c: &mut Values,
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    if a.len() != m * k || b.len() != k * n || c.len() != m * n {
        return Err(Error::bug(
            "a block product of mismatched blocks",
            format!("{} x {} by {} x {} into {}", m, k, k, n, c.len()),
        ));
    }
    if m == 0 || n == 0 || k == 0 {
        return Ok(());
    }
    match (a, b, c) {
        // Packed AVX-512 kernels where the CPU has them (`gemm`), matrixmultiply's
        // elsewhere.
        (Values::F64(a), Values::F64(b), Values::F64(c)) => {
            super::gemm::dgemm_acc(m, k, n, a, b, c)
        }
        (Values::F32(a), Values::F32(b), Values::F32(c)) => {
            super::gemm::sgemm_acc(m, k, n, a, b, c)
        }
        (Values::I64(a), Values::I64(b), Values::I64(c)) => {
            // i-k-j order: the inner loop runs along rows of `b` and `c`.
            for i in 0..m {
                let row = &mut c[i * n..(i + 1) * n];
                for p in 0..k {
                    let x = a[i * k + p];
                    for (out, &y) in row.iter_mut().zip(&b[p * n..(p + 1) * n]) {
                        *out = out.wrapping_add(x.wrapping_mul(y));
                    }
                }
            }
        }
        (a, _, _) => return Err(uncast(a)),
    }
    Ok(())
}

/// `c += a @ bt.T`, with `a` of `m × k`, `bt` of `n × k` (the right operand
/// transposed) and `c` of `m × n`, all row-major and of one physical type (float32,
/// float64 or int64).
///
/// # Errors
/// [`Error::Bug`] for other types or lengths that do not match the dimensions.
pub fn accumulate_nt(
    a: &Values,
    bt: &Values,
    c: &mut Values,
    m: usize,
    k: usize,
    n: usize,
) -> Result<()> {
    if a.len() != m * k || bt.len() != n * k || c.len() != m * n {
        return Err(Error::bug(
            "a block product of mismatched blocks",
            format!("{m} x {k} by ({n} x {k}).T into {}", c.len()),
        ));
    }
    if m == 0 || n == 0 || k == 0 {
        return Ok(());
    }
    match (a, bt, c) {
        (Values::F64(a), Values::F64(bt), Values::F64(c)) => {
            super::gemm::dgemm_nt_acc(m, k, n, a, bt, c)
        }
        (Values::F32(a), Values::F32(bt), Values::F32(c)) => {
            super::gemm::sgemm_nt_acc(m, k, n, a, bt, c)
        }
        (Values::I64(a), Values::I64(bt), Values::I64(c)) => {
            // Both operands walk along their rows: a dot product an element.
            for (i, row) in c.chunks_exact_mut(n).enumerate() {
                let x = &a[i * k..(i + 1) * k];
                for (out, y) in row.iter_mut().zip(bt.chunks_exact(k)) {
                    *out = out.wrapping_add(dot_i64(x, y));
                }
            }
        }
        (a, _, _) => return Err(uncast(a)),
    }
    Ok(())
}

/// `c += a @ a.T` for `a` of `m × k` and a symmetric `c` of `m × m`, row-major and
/// of one physical type, in about half the work of [`accumulate`]: the upper
/// triangle is computed and mirrored (only it is read from `c`).
///
/// # Errors
/// [`Error::Bug`] for other types or lengths that do not match the dimensions.
pub fn accumulate_gram(a: &Values, c: &mut Values, m: usize, k: usize) -> Result<()> {
    if a.len() != m * k || c.len() != m * m {
        return Err(Error::bug(
            "a symmetric block product of mismatched blocks",
            format!("{m} x {k} by its transpose into {}", c.len()),
        ));
    }
    match (a, c) {
        (Values::F64(a), Values::F64(c)) => super::gemm::dsyrk_acc(m, k, a, c),
        (Values::F32(a), Values::F32(c)) => super::gemm::ssyrk_acc(m, k, a, c),
        (Values::I64(a), Values::I64(c)) => {
            for i in 0..m {
                let x = &a[i * k..(i + 1) * k];
                for j in i..m {
                    let sum = c[i * m + j].wrapping_add(dot_i64(x, &a[j * k..(j + 1) * k]));
                    c[i * m + j] = sum;
                    c[j * m + i] = sum;
                }
            }
        }
        (a, _) => return Err(uncast(a)),
    }
    Ok(())
}

/// `sum x[p] * y[p]`, wrapping.
fn dot_i64(x: &[i64], y: &[i64]) -> i64 {
    x.iter()
        .zip(y)
        .fold(0i64, |s, (&p, &q)| s.wrapping_add(p.wrapping_mul(q)))
}

/// The error of a block of a type no product takes.
fn uncast(a: &Values) -> Error {
    Error::bug(
        "a block product of a type the array layer should have cast",
        format!("{:?}", a.phys()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_accumulate_in_every_type() {
        // [[1, 2, 3], [4, 5, 6]] @ [[1, 0], [0, 1], [1, 1]] = [[4, 5], [10, 11]], twice.
        let a = [1, 2, 3, 4, 5, 6];
        let b = [1, 0, 0, 1, 1, 1];
        let want = [8, 10, 20, 22];
        let mut c = Values::I64(vec![0; 4]);
        for _ in 0..2 {
            accumulate(
                &Values::I64(a.to_vec()),
                &Values::I64(b.to_vec()),
                &mut c,
                2,
                3,
                2,
            )
            .unwrap();
        }
        assert_eq!(c, Values::I64(want.to_vec()));
        let f = |v: &[i64]| v.iter().map(|&x| x as f64).collect::<Vec<f64>>();
        let mut c = Values::F64(vec![0.0; 4]);
        for _ in 0..2 {
            accumulate(&Values::F64(f(&a)), &Values::F64(f(&b)), &mut c, 2, 3, 2).unwrap();
        }
        assert_eq!(c, Values::F64(f(&want)));
        let g = |v: &[i64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        let mut c = Values::F32(vec![0.0; 4]);
        for _ in 0..2 {
            accumulate(&Values::F32(g(&a)), &Values::F32(g(&b)), &mut c, 2, 3, 2).unwrap();
        }
        assert_eq!(c, Values::F32(g(&want)));
        assert!(accumulate(&Values::F64(f(&a)), &Values::F64(f(&b)), &mut c, 3, 3, 2).is_err());
    }

    #[test]
    fn products_with_the_transpose_accumulate_in_every_type() {
        // a = [[1, 2, 3], [4, 5, 6]], bt = [[1, 0, 1], [0, 1, 1]]: a @ bt.T is
        // [[4, 5], [10, 11]], and a @ a.T is [[14, 32], [32, 77]]; each twice.
        let a = [1, 2, 3, 4, 5, 6];
        let bt = [1, 0, 1, 0, 1, 1];
        let (nt, gram) = ([8, 10, 20, 22], [28, 64, 64, 154]);
        let f = |v: &[i64]| Values::F64(v.iter().map(|&x| x as f64).collect());
        let g = |v: &[i64]| Values::F32(v.iter().map(|&x| x as f32).collect());
        let i = |v: &[i64]| Values::I64(v.to_vec());
        for make in [&f as &dyn Fn(&[i64]) -> Values, &g, &i] {
            let mut c = make(&[0; 4]);
            let mut s = make(&[0; 4]);
            for _ in 0..2 {
                accumulate_nt(&make(&a), &make(&bt), &mut c, 2, 3, 2).unwrap();
                accumulate_gram(&make(&a), &mut s, 2, 3).unwrap();
            }
            assert_eq!(c, make(&nt));
            assert_eq!(s, make(&gram));
            assert!(accumulate_nt(&make(&a), &make(&bt), &mut c, 3, 2, 2).is_err());
            assert!(accumulate_gram(&make(&a), &mut c, 3, 2).is_err());
        }
    }
}
