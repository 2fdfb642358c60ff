//! `blockwise array EXPR`: evaluate a numpy-like expression chunk by chunk.
//!
//! ```text
//! blockwise array EXPR [--input NAME=PATH]... [-o OUT] [--chunks 1000,1000|auto]
//!     [--compression zstd[:LEVEL]|none] [--overwrite]
//!     [--memory-limit 2GiB] [--threads N] [--no-progress] [--stats]
//!     [--report FILE.html [--overwrite-report]]
//! ```
//!
//! The expression is a subset of Python: names (inputs, numpy's functions with or
//! without `np.`/`da.`), numbers, tuples, operators, calls with keywords, methods,
//! `.T` and subscripts. A small result prints as numpy prints it; with `-o` the
//! result is written to a Zarr array, an `.npy` file or an npy stack, atomically.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use super::common::JobArgs;
use crate::array::eval::{evaluate, Value};
use crate::array::graph::Array;
use crate::array::select::Selection;
use crate::convert::{compute_array, write_array, ChunkSpec, Compression, ConvertOptions};
use crate::error::{Error, Result};
use crate::exec::CancelToken;

/// Evaluate a numpy-like array expression, chunk by chunk
#[derive(Debug, clap::Args)]
#[command(after_help = crate::array::eval::functions_help())]
pub struct Args {
    /// The expression, e.g. "(arcsin(x) + arccos(y)).sum(axis=(1, 2))"
    #[arg(allow_hyphen_values = true)]
    expr: String,
    /// Bind a name to an array file: NAME=PATH (.zarr, .npy, npy stack); repeatable
    #[arg(long = "input", short = 'i', value_name = "NAME=PATH")]
    inputs: Vec<String>,
    /// Bind a name to an expression's value, for the expressions after it: NAME=EXPR;
    /// repeatable, evaluated in order after the inputs (a value used many times is
    /// written once)
    #[arg(long = "let", value_name = "NAME=EXPR", allow_hyphen_values = true)]
    lets: Vec<String>,
    /// Write the result here (.zarr, .npy, or an npy stack directory) instead of printing it
    #[arg(long, short = 'o')]
    output: Option<PathBuf>,
    /// Output format: zarr, npy, npy-stack [default: from OUT's extension]
    #[arg(long)]
    to: Option<String>,
    /// Output chunk shape, e.g. 1000,1000, or auto [default: the result's chunks]
    #[arg(long)]
    chunks: Option<String>,
    /// Output compression: zstd[:LEVEL] or none [default: zstd:3 for zarr]
    #[arg(long)]
    compression: Option<String>,
    /// Replace OUT if it exists
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    pub(super) job: JobArgs,
}

impl Args {
    /// The arrays the `--input` options bind, by name.
    fn names(&self) -> Result<BTreeMap<String, Array>> {
        let mut names = BTreeMap::new();
        // A file without chunks of its own is cut as `convert` cuts its output:
        // chunks a quarter of one task's share of the limit, 128 MiB at most.
        let sizing = self.job.planned_sizing()?;
        let budget = sizing.memory_limit / (2 * sizing.threads as u64);
        let auto_bytes = crate::array::graph::AUTO_CHUNK_BYTES.min(budget / 4);
        for item in &self.inputs {
            let invalid = |reason: String| Error::InvalidOption {
                option: "input",
                value: item.clone(),
                reason,
            };
            let (name, path) = item
                .split_once('=')
                .ok_or_else(|| invalid("write NAME=PATH, e.g. x=data.zarr".into()))?;
            if !is_name(name) {
                return Err(invalid(format!(
                    "{name:?} is not a name an expression can use"
                )));
            }
            if names.contains_key(name) {
                return Err(invalid(format!("the name {name:?} is bound twice")));
            }
            let array = Array::open_sized(path.as_ref(), None, auto_bytes)?;
            names.insert(name.to_string(), array);
        }
        for item in &self.lets {
            let invalid = |reason: String| Error::InvalidOption {
                option: "let",
                value: item.clone(),
                reason,
            };
            let (name, expr) = item
                .split_once('=')
                .ok_or_else(|| invalid("write NAME=EXPR, e.g. z=x * 2".into()))?;
            if !is_name(name) {
                return Err(invalid(format!(
                    "{name:?} is not a name an expression can use"
                )));
            }
            if names.contains_key(name) {
                return Err(invalid(format!("the name {name:?} is bound twice")));
            }
            let value = result_array(evaluate(expr, &names)?)?;
            names.insert(name.to_string(), value);
        }
        Ok(names)
    }

    pub(super) fn options(&self) -> Result<ConvertOptions> {
        Ok(ConvertOptions {
            to: self
                .to
                .as_deref()
                .map(crate::storage::Format::parse)
                .transpose()?,
            chunks: self.chunks.as_deref().map(ChunkSpec::parse).transpose()?,
            compression: self
                .compression
                .as_deref()
                .map(Compression::parse)
                .transpose()?,
            overwrite: self.overwrite,
            ..ConvertOptions::default()
        })
    }
}

/// Whether `name` is a name an expression can use.
fn is_name(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
}

/// The expression's result as an array (a number is a 0-d array).
fn result_array(value: Value) -> Result<Array> {
    match value {
        Value::Array(a) => Ok(a),
        Value::Int(_) | Value::Float(_) | Value::Bool(_) => {
            // A constant expression: numpy prints it as a scalar; so do we.
            crate::array::eval::scalar_array(&value)
        }
        Value::Tuple(items) if items.iter().all(|v| matches!(v, Value::Array(_))) => {
            Err(Error::ArrayArgument {
                op: "array".into(),
                reason: format!(
                    "the expression's value is a tuple of {} arrays (as histogram and \
                     gradient give); compute one at a time: add [0], [1], ... to it",
                    items.len()
                ),
            })
        }
        other => Err(Error::ArrayArgument {
            op: "array".into(),
            reason: format!(
                "the expression's value is {}, not an array",
                other.describe()
            ),
        }),
    }
}

impl Args {
    /// The output path, when one is given.
    pub(super) fn output(&self) -> Option<&std::path::Path> {
        self.output.as_deref()
    }

    /// The array whose distinct values the expression asks for (`unique(x)`), and
    /// whether with their counts; `None` for any other expression.
    ///
    /// # Errors
    /// The inputs' and the expression's errors.
    pub(super) fn unique(&self) -> Result<Option<(Array, bool)>> {
        Ok(match evaluate(&self.expr, &self.names()?)? {
            Value::Unique(array, counts) => Some((array, counts)),
            _ => None,
        })
    }

    /// The boolean selection the expression is (`x[mask]`, and elementwise work on
    /// it); `None` for any other expression.
    ///
    /// # Errors
    /// The inputs' and the expression's errors.
    pub(super) fn selected(&self) -> Result<Option<Selection>> {
        Ok(match evaluate(&self.expr, &self.names()?)? {
            Value::Selected(s) => Some(s),
            _ => None,
        })
    }

    /// The array the expression computes, in the chunks asked for, and the output
    /// options.
    ///
    /// # Errors
    /// The inputs' and the expression's errors.
    pub(super) fn array(&self) -> Result<(Array, ConvertOptions)> {
        let options = self.options()?;
        let names = self.names()?;
        let array = result_array(evaluate(&self.expr, &names)?)?;
        let array = rechunked(array, options.chunks.as_ref())?;
        Ok((array, options))
    }
}

/// `array` in the chunks of `--chunks`.
fn rechunked(array: Array, chunks: Option<&ChunkSpec>) -> Result<Array> {
    Ok(match chunks {
        Some(ChunkSpec::Shape(shape)) => {
            array.rechunk(crate::array::graph::regular_chunks(array.shape(), shape)?)?
        }
        Some(ChunkSpec::Auto) => array.rechunk(crate::array::graph::auto_chunks(
            array.shape(),
            array.dtype().size() as u64,
        )?)?,
        None => array,
    })
}

pub(super) fn run(args: Args, cancel: CancelToken) -> Result<ExitCode> {
    let started = Instant::now();
    if let Some((array, counts)) = args.unique()? {
        return run_unique(&args, &array, counts, cancel, started);
    }
    if let Some(selection) = args.selected()? {
        // `--chunks` applies to the file written, once the length is known.
        let options = args.options()?;
        return run_job(
            &args,
            selection.values().input_paths(),
            (cancel, started),
            |out, ctx| crate::convert::write_selected(&selection, out, &options, ctx),
            |ctx| crate::convert::compute_selected(&selection, ctx),
        );
    }
    let (array, options) = args.array()?;
    run_job(
        &args,
        array.input_paths(),
        (cancel, started),
        |out, ctx| write_array(&array, out, &options, ctx),
        |ctx| compute_array(&array, ctx),
    )
}

/// The job of an expression reading `inputs`: its result written to the output by
/// `write`, or, without one, computed into memory by `compute` and printed as numpy
/// prints it.
fn run_job(
    args: &Args,
    inputs: Vec<PathBuf>,
    (cancel, started): (CancelToken, Instant),
    write: impl FnOnce(&std::path::Path, &crate::exec::JobContext) -> Result<u64>,
    compute: impl FnOnce(&crate::exec::JobContext) -> Result<crate::convert::ComputedArray>,
) -> Result<ExitCode> {
    let mut paths: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    paths.extend(args.output.as_deref());
    let (ctx, report_file) = args.job.start(cancel, &paths, args.overwrite)?;
    match &args.output {
        Some(out) => {
            let outcome = write(out, &ctx);
            args.job.finish(&ctx, started, report_file, outcome, |_| {
                serde_json::json!({})
            })?;
        }
        None => {
            let outcome = compute(&ctx);
            let computed = args.job.finish(&ctx, started, report_file, outcome, |_| {
                serde_json::json!({})
            })?;
            println!(
                "{}",
                crate::array::print::numpy_str(&computed.shape, computed.dtype, &computed.bytes)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `unique(...)`: its values (and counts) printed, as numpy prints them.
fn run_unique(
    args: &Args,
    array: &Array,
    counts: bool,
    cancel: CancelToken,
    started: Instant,
) -> Result<ExitCode> {
    if args.output.is_some() {
        return Err(Error::ArrayArgument {
            op: "unique".into(),
            reason: "its result is printed; -o is not supported for it".into(),
        });
    }
    let inputs = array.input_paths();
    let paths: Vec<&std::path::Path> = inputs.iter().map(PathBuf::as_path).collect();
    let (ctx, report_file) = args.job.start(cancel, &paths, args.overwrite)?;
    let outcome = crate::convert::compute_unique(array, &ctx);
    let (values, n) = args.job.finish(&ctx, started, report_file, outcome, |_| {
        serde_json::json!({})
    })?;
    println!(
        "{}",
        crate::array::print::numpy_str(&values.shape, values.dtype, &values.bytes)
    );
    if counts {
        let bytes: Vec<u8> = n.iter().flat_map(|c| c.to_ne_bytes()).collect();
        println!(
            "{}",
            crate::array::print::numpy_str(
                &values.shape,
                crate::storage::array::DType::Int64,
                &bytes
            )
        );
    }
    Ok(ExitCode::SUCCESS)
}
