//! Cumulative sums and products of a block along one axis, from a carry: what came
//! before the block along that axis.

use super::reduce::Reducer;
use super::values::Values;
use crate::error::{Error, Result};

/// `values` (a block of `shape`, C order) scanned along `axis` with `reducer` (`Sum`
/// or `Prod`), each line starting from `carry` (the block's shape with `axis` of
/// extent 1). Floats accumulate in their own type, as numpy's do.
///
/// # Errors
/// [`Error::Bug`] for a reducer other than sum or product, or values and carry of
/// different types.
pub fn scan(
    values: &Values,
    carry: &Values,
    shape: &[u64],
    axis: usize,
    reducer: Reducer,
) -> Result<Values> {
    let product = match reducer {
        Reducer::Sum => false,
        Reducer::Prod => true,
        other => {
            return Err(Error::bug(
                "a scan that is not a sum or a product",
                other.name(),
            ))
        }
    };
    let len = shape.get(axis).copied().unwrap_or(1) as usize;
    let inner: usize = shape[axis + 1..].iter().product::<u64>() as usize;
    let outer: usize = shape[..axis].iter().product::<u64>() as usize;
    let mut out = values.clone();
    macro_rules! run {
        ($v:ident, $c:ident, $add:expr, $mul:expr) => {{
            for o in 0..outer {
                for i in 0..inner {
                    let mut acc = $c[o * inner + i];
                    for l in 0..len {
                        let at = (o * len + l) * inner + i;
                        acc = if product {
                            $mul(acc, $v[at])
                        } else {
                            $add(acc, $v[at])
                        };
                        $v[at] = acc;
                    }
                }
            }
        }};
    }
    match (&mut out, carry) {
        (Values::F64(v), Values::F64(c)) => run!(v, c, |a: f64, b| a + b, |a: f64, b| a * b),
        (Values::F32(v), Values::F32(c)) => run!(v, c, |a: f32, b| a + b, |a: f32, b| a * b),
        (Values::I64(v), Values::I64(c)) => {
            run!(v, c, i64::wrapping_add, i64::wrapping_mul)
        }
        (Values::U64(v), Values::U64(c)) => {
            run!(v, c, u64::wrapping_add, u64::wrapping_mul)
        }
        _ => {
            return Err(Error::bug(
                "a scan's values and carry differ in type",
                format!("{:?} and {:?}", values.phys(), carry.phys()),
            ))
        }
    }
    Ok(out)
}
