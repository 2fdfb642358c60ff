//! Plan-time memory projection: refuse, before anything runs, a plan whose largest
//! task cannot fit the memory limit, and say what would fit.

use super::Plan;
use crate::error::{Error, Result};

/// Fraction of the limit a single task may project, leaving room for the other tasks
/// running beside it and for memory the pool does not see.
const TASK_SHARE: f64 = 0.5;

/// The most one task may project under `limit`.
pub(crate) fn task_limit(limit: u64) -> u64 {
    (limit as f64 * TASK_SHARE) as u64
}

/// Checks every task's projected peak against `limit`.
///
/// # Errors
/// [`Error::PlanTooLarge`] for the largest task over its share of the limit, naming
/// its operation, its projected bytes, the limit, and a unit size that would fit
/// (projections scale linearly with the unit of work).
pub fn check_memory(plan: &Plan, limit: u64) -> Result<()> {
    let allowed = task_limit(limit);
    let Some(worst) = plan.tasks.iter().max_by_key(|t| t.memory_bytes) else {
        return Ok(());
    };
    if worst.memory_bytes <= allowed {
        return Ok(());
    }
    let suggested = if worst.unit_bytes > 0 {
        // memory = overhead + k × unit, with the overhead unknown: scale the unit by
        // the ratio, rounded down, so the suggestion fits with room to spare.
        (worst.unit_bytes as f64 * allowed as f64 / worst.memory_bytes as f64 * 0.9) as u64
    } else {
        0
    };
    Err(Error::PlanTooLarge {
        op: worst.op.name.clone(),
        projected: worst.memory_bytes,
        limit,
        suggested_unit_bytes: suggested,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{DataRef, OpSpec, Task, TaskKind};

    fn plan_with(memory: u64, unit: u64) -> Plan {
        let mut plan = Plan::new();
        plan.push(Task {
            id: 0,
            op: OpSpec::new("rechunk_copy", serde_json::Value::Null),
            inputs: vec![],
            output: DataRef::Whole {
                dataset: "x".into(),
            },
            deps: vec![],
            memory_bytes: memory,
            unit_bytes: unit,
            kind: TaskKind::Release,
        });
        plan
    }

    #[test]
    fn a_fitting_plan_passes_and_a_large_one_is_refused_with_a_size_that_fits() {
        assert!(check_memory(&plan_with(40, 20), 100).is_ok());
        let err = check_memory(&plan_with(400 << 20, 200 << 20), 256 << 20).unwrap_err();
        let Error::PlanTooLarge {
            op,
            projected,
            suggested_unit_bytes,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((op.as_str(), *projected), ("rechunk_copy", 400 << 20));
        // The suggested unit, with the same memory-per-unit ratio, fits.
        let projected_at_suggestion = suggested_unit_bytes * 2;
        assert!(check_memory(
            &plan_with(projected_at_suggestion, *suggested_unit_bytes),
            256 << 20
        )
        .is_ok());
        assert!(err.to_string().contains("rechunk_copy"), "{err}");
    }
}
