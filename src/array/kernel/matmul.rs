//! Block products of a matrix product: `c += a @ b` for row-major blocks, floats on
//! the packed kernels of [`super::gemm`], integers (int64, wrapping as numpy's do) on
//! a loop the compiler vectorizes.

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
        (a, _, _) => {
            return Err(Error::bug(
                "a block product of a type the array layer should have cast",
                format!("{:?}", a.phys()),
            ))
        }
    }
    Ok(())
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
}
