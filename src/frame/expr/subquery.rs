//! Uncorrelated subqueries inside expressions: what an expression knows of one
//! ([`Subquery`]: its number in the query, its text and type, where a plan keeps
//! its rows), and the value a task binds in before it evaluates the expression
//! ([`SubqueryValue`]).
//!
//! The subquery itself is planned and run elsewhere: the logical plan lists it
//! (`LogicalPlan::WithSubqueries`), the physical planner runs it as a stage of its
//! own ending in one entry and writes that entry here, and the task reading rows
//! through the expression reads the entry (`frame::read::reading`) and binds the
//! value. An unbound subquery does not evaluate.

use std::sync::Arc;

use arrow::array::ArrayRef;
use serde::{Deserialize, Serialize};

use super::in_set::KeySet;
use super::DataTypeName;
use crate::plan::{DataRef, TaskId};

/// A subquery in an expression: `(SELECT avg(v1) FROM t)`, or the list of
/// `x IN (SELECT id FROM t)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Subquery {
    /// Its number among the query's subqueries (the index in
    /// `LogicalPlan::WithSubqueries`).
    pub id: usize,
    /// Its SQL text, for names and messages.
    pub text: String,
    /// The type of its one column.
    pub data_type: DataTypeName,
    /// Where its rows are, once the query is lowered to tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<SubqueryEntry>,
    /// Its value, bound by the task that evaluates the expression (never part
    /// of a plan).
    #[serde(skip)]
    pub value: Option<SubqueryValue>,
}

impl PartialEq for Subquery {
    /// Equal subqueries are the same subquery at the same place: the bound value
    /// is what the entry holds.
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.text == other.text
            && self.data_type == other.data_type
            && self.entry == other.entry
    }
}

/// The entry holding a subquery's rows, and the task that publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubqueryEntry {
    /// The entry.
    pub data: DataRef,
    /// Its task.
    pub task: TaskId,
}

/// How an expression uses a subquery's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubqueryKind {
    /// Its one value (`(SELECT ...)`).
    Scalar,
    /// The set of its values (`x IN (SELECT ...)`).
    Set,
}

/// A subquery's rows as an expression uses them.
#[derive(Debug, Clone)]
pub enum SubqueryValue {
    /// The one value of a scalar subquery, as a one-row array (NULL when the
    /// subquery has no row).
    Scalar(ArrayRef),
    /// The values `IN` looks in.
    Set(Arc<KeySet>),
}
