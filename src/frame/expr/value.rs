//! An evaluated operand: a column of the batch's length, or a constant kept as a
//! one-row array that kernels take as a [`Scalar`] datum, so `v1 + 1` never
//! builds a column of ones.

use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, Datum, Scalar, UInt32Array};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::DataType;

use crate::{Error, Result};

/// A column, or a constant standing for every row.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// One value a row.
    Array(ArrayRef),
    /// A one-row array: the same value for every row.
    Scalar(ArrayRef),
}

impl Value {
    /// A constant NULL of `t`.
    pub(super) fn null(t: &DataType) -> Value {
        Value::Scalar(new_null_array(t, 1))
    }

    /// The kernel's result, a scalar when every operand was.
    pub(super) fn from_kernel(array: ArrayRef, scalar: bool) -> Value {
        if scalar {
            Value::Scalar(array)
        } else {
            Value::Array(array)
        }
    }

    /// The array behind the value (one row for a scalar).
    pub(super) fn array(&self) -> &ArrayRef {
        match self {
            Value::Array(a) | Value::Scalar(a) => a,
        }
    }

    /// Whether this is a constant.
    pub(super) fn is_scalar(&self) -> bool {
        matches!(self, Value::Scalar(_))
    }

    /// The value's type.
    pub(super) fn data_type(&self) -> &DataType {
        self.array().data_type()
    }

    /// The value as a kernel operand.
    pub(super) fn datum(&self) -> Operand {
        match self {
            Value::Array(a) => Operand::Array(a.clone()),
            Value::Scalar(a) => Operand::Scalar(Scalar::new(a.clone())),
        }
    }

    /// The value as a column of `rows` rows: a constant is repeated (only done
    /// where no kernel takes a scalar, or for the expression's final result).
    pub(super) fn into_array(self, rows: usize) -> Result<ArrayRef> {
        match self {
            Value::Array(a) => Ok(a),
            Value::Scalar(a) if a.null_count() == 1 => Ok(new_null_array(a.data_type(), rows)),
            Value::Scalar(a) => {
                let indices = UInt32Array::from(vec![0u32; rows]);
                Ok(arrow::compute::take(&a, &indices, None)?)
            }
        }
    }

    /// The value converted to `to` (a no-op when it has that type); `op` names the
    /// expression in the error when a value does not convert.
    pub(super) fn cast(self, to: &DataType, op: &dyn std::fmt::Display) -> Result<Value> {
        if self.data_type() == to {
            return Ok(self);
        }
        let options = CastOptions {
            safe: false,
            ..Default::default()
        };
        let cast = |a: &ArrayRef| {
            cast_with_options(a, to, &options).map_err(|e| Error::FrameType {
                op: op.to_string(),
                reason: format!(
                    "cannot convert {} to {}: {e}",
                    crate::storage::type_name(a.data_type()),
                    crate::storage::type_name(to)
                ),
            })
        };
        Ok(match &self {
            Value::Array(a) => Value::Array(cast(a)?),
            Value::Scalar(a) => Value::Scalar(cast(a)?),
        })
    }

    /// The value as booleans (the caller has checked the type).
    pub(super) fn booleans(&self) -> Result<&BooleanArray> {
        self.array()
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::bug("a boolean operand", self.data_type()))
    }
}

/// A kernel operand: an array or a scalar, both [`Datum`]s.
pub(super) enum Operand {
    Array(ArrayRef),
    Scalar(Scalar<ArrayRef>),
}

impl Datum for Operand {
    fn get(&self) -> (&dyn Array, bool) {
        match self {
            Operand::Array(a) => a.get(),
            Operand::Scalar(s) => s.get(),
        }
    }
}

/// Wraps a boolean kernel's result.
pub(super) fn bools(array: BooleanArray, scalar: bool) -> Value {
    Value::from_kernel(Arc::new(array), scalar)
}
