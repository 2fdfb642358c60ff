//! The `blockwise._blockwise` extension module: the command line's jobs
//! (`blockwise::cli::embed`) for Python, with the GIL released while Rust runs and
//! Ctrl-C turned into a clean cancellation. The Python package (`blockwise/`) wraps
//! these functions in the public API.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blockwise::cli::embed;
use blockwise::exec::{CancelToken, Progress};
use blockwise::plan::Plan;
use blockwise::Error;
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyKeyboardInterrupt, PyMemoryError, PyOSError,
    PyPermissionError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;

pyo3::create_exception!(
    _blockwise,
    BlockwiseMemoryError,
    PyMemoryError,
    "A job the memory limit stopped: a plan whose task cannot fit, or a process past \
     the terminate threshold."
);

/// How often a waiting call looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The Python exception for `e`, carrying blockwise's message.
fn to_py(e: Error) -> PyErr {
    let message = e.to_string();
    // An error placed in an expression or query is raised as what it is (a missing
    // file a FileNotFoundError), with the place in its message.
    let mut inner = &e;
    while let Error::InExpression { error, .. } = inner {
        inner = error;
    }
    match inner {
        Error::NotFound { .. } => PyFileNotFoundError::new_err(message),
        Error::OutputExists { .. } => PyFileExistsError::new_err(message),
        Error::PermissionDenied { .. } => PyPermissionError::new_err(message),
        Error::DiskFull { .. }
        | Error::NotADirectory { .. }
        | Error::Io { .. }
        | Error::NameTooLong { .. } => PyOSError::new_err(message),
        Error::Cancelled | Error::Interrupted { .. } => PyKeyboardInterrupt::new_err(message),
        _ => match inner.exit_code() {
            2 => PyValueError::new_err(message),
            3 => BlockwiseMemoryError::new_err(message),
            _ => PyRuntimeError::new_err(message),
        },
    }
}

/// Runs `job` on its own thread with the GIL released, checking for Ctrl-C (and any
/// other pending Python signal) meanwhile: a signal cancels the job, which stops at
/// its next chunk boundary and cleans up before the exception is raised.
fn run_blocking<T: Send>(
    py: Python<'_>,
    job: impl FnOnce(CancelToken) -> blockwise::Result<T> + Send,
) -> PyResult<T> {
    run_watched(py, job, |_| Ok(()))
}

/// [`run_blocking`], calling `tick` with the GIL held every time it looks for
/// Ctrl-C (a progress display); an exception `tick` raises cancels the job as Ctrl-C
/// does and is raised once the job has stopped.
fn run_watched<T: Send>(
    py: Python<'_>,
    job: impl FnOnce(CancelToken) -> blockwise::Result<T> + Send,
    mut tick: impl FnMut(Python<'_>) -> PyResult<()>,
) -> PyResult<T> {
    let cancel = CancelToken::new();
    std::thread::scope(|scope| {
        let (tx, mut rx) = std::sync::mpsc::sync_channel(1);
        let token = cancel.clone();
        scope.spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(token)));
            let _ = tx.send(result);
        });
        let mut interrupted = None;
        loop {
            let wait = if interrupted.is_some() {
                Duration::from_secs(3600)
            } else {
                SIGNAL_POLL
            };
            // The receiver moves in and out: waiting without the GIL needs it `Send`.
            let (received, back) = py.detach(move || (rx.recv_timeout(wait), rx));
            rx = back;
            match received {
                Ok(Ok(result)) => {
                    return match interrupted {
                        Some(e) => Err(e),
                        None => result.map_err(to_py),
                    }
                }
                Ok(Err(_)) => {
                    return Err(PyRuntimeError::new_err(
                        "blockwise panicked; please report it",
                    ))
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if interrupted.is_none() {
                        if let Err(e) = py.check_signals().and_then(|()| tick(py)) {
                            cancel.interrupt(libc_sigint());
                            interrupted = Some(e);
                        }
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(PyRuntimeError::new_err("blockwise's job thread vanished"))
                }
            }
        }
    })
}

/// SIGINT's number (2 on every platform Python supports).
fn libc_sigint() -> i32 {
    2
}

/// The plan of `text`, parsed once per process for the tasks of one plan (a worker
/// runs many tasks of the same plan).
fn parsed(text: &str) -> PyResult<Arc<Plan>> {
    static LAST: Mutex<Option<(String, Arc<Plan>)>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((t, plan)) = &*last {
        if t == text {
            return Ok(plan.clone());
        }
    }
    let plan = Arc::new(Plan::from_json(text).map_err(to_py)?);
    *last = Some((text.to_string(), plan.clone()));
    Ok(plan)
}

/// Calls `callback(done, total, unit, message)` when the job's count has moved
/// since the last call: `unit` is `"bytes"` (of input) or `"tasks"`.
fn progress_tick<'p>(
    progress: &'p Progress,
    callback: Option<&'p Py<PyAny>>,
) -> impl FnMut(Python<'_>) -> PyResult<()> + 'p {
    let mut last = None;
    move |py| {
        let Some(callback) = callback else {
            return Ok(());
        };
        let (done, total) = progress.position();
        let message = progress.message();
        if total == 0 || last.as_ref() == Some(&(done, total, message.clone())) {
            return Ok(());
        }
        let unit = if progress.counts_bytes() {
            "bytes"
        } else {
            "tasks"
        };
        callback.call1(py, (done, total, unit, &message))?;
        last = Some((done, total, message));
        Ok(())
    }
}

/// One job's part of a performance report (`bw.performance_report`), merged with
/// the others into one page when the report is written.
#[pyclass(module = "blockwise._blockwise")]
struct ReportPart {
    /// Taken when the report is written.
    part: Mutex<Option<embed::ReportPart>>,
}

impl ReportPart {
    fn wrap(part: Option<embed::ReportPart>) -> Option<Self> {
        part.map(|p| ReportPart {
            part: Mutex::new(Some(p)),
        })
    }
}

/// Hands a recorded job's part to `report` (its `add` method), then returns the
/// job's statistics as JSON or raises its error: a failed job is in the report too.
fn finish_watched(
    py: Python<'_>,
    (result, part): embed::Watched,
    report: Option<&Py<PyAny>>,
) -> PyResult<String> {
    if let (Some(report), Some(part)) = (report, ReportPart::wrap(part)) {
        report.call_method1(py, "add", (part,))?;
    }
    result.map(|v| v.to_string()).map_err(to_py)
}

/// Converts `src` to `dst` with command-line `flags`; returns the statistics as JSON.
/// `progress(done, total, unit, message)` is called as the job moves (see
/// [`progress_tick`]); `report`, when given, is recorded into (its `add(part)`).
#[pyfunction]
#[pyo3(signature = (src, dst, flags, progress=None, report=None))]
fn convert(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<String> {
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let watched = run_watched(
        py,
        |cancel| Ok(embed::convert(&src, &dst, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    finish_watched(py, watched, report.as_ref())
}

/// The plan of a conversion, as JSON.
#[pyfunction]
fn plan_convert(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    flags: Vec<String>,
) -> PyResult<String> {
    run_blocking(py, |_| embed::plan_convert(&src, &dst, &flags))
}

/// The waves of a plan (checked first): lists of task ids.
#[pyfunction]
fn plan_waves(text: &str) -> PyResult<Vec<Vec<u32>>> {
    parsed(text)?.waves().map_err(to_py)
}

/// Runs a plan on the local executor; returns the statistics as JSON. `progress`
/// and `report` as for [`convert`].
#[pyfunction]
#[pyo3(signature = (text, flags, progress=None, report=None))]
fn run_plan(
    py: Python<'_>,
    text: &str,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<String> {
    let plan = parsed(text)?;
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let watched = run_watched(
        py,
        |cancel| Ok(embed::run_plan(&plan, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    finish_watched(py, watched, report.as_ref())
}

/// The report part of a plan run task by task on Dask workers: `tasks` is a JSON
/// list of the tasks' reports, each with `thread`, `start_unix_s` and `end_unix_s`.
#[pyfunction]
fn report_from_tasks(text: &str, tasks: &str, command: String) -> PyResult<ReportPart> {
    let plan = parsed(text)?;
    let tasks: Vec<embed::RemoteTask> = serde_json::from_str(tasks)
        .map_err(|e| PyValueError::new_err(format!("task reports: {e}")))?;
    Ok(ReportPart {
        part: Mutex::new(Some(embed::ReportPart::from_tasks(&plan, &tasks, command))),
    })
}

/// Raises `ValueError` when a report at `report` would be, or lie inside, what a
/// job reads or writes: `paths`, and the datasets and working directory of the plan
/// `plan` (JSON) when given.
#[pyfunction]
#[pyo3(signature = (report, plan=None, paths=Vec::new()))]
fn check_report_path(report: PathBuf, plan: Option<&str>, paths: Vec<PathBuf>) -> PyResult<()> {
    let plan = plan.map(parsed).transpose()?;
    let paths: Vec<&std::path::Path> = paths.iter().map(PathBuf::as_path).collect();
    embed::check_report_path(&report, plan.as_deref(), &paths).map_err(to_py)
}

/// Writes one report of `parts` at `path` (refused when it exists, unless
/// `overwrite`); each part is used once.
#[pyfunction]
fn write_report(
    py: Python<'_>,
    parts: Vec<PyRef<'_, ReportPart>>,
    path: PathBuf,
    overwrite: bool,
) -> PyResult<()> {
    let taken: Vec<embed::ReportPart> = parts
        .iter()
        .filter_map(|p| p.part.lock().unwrap_or_else(|e| e.into_inner()).take())
        .collect();
    run_blocking(py, |_| embed::write_report(taken, &path, overwrite))
}

/// Runs one task of a plan in this process; returns its report as JSON.
#[pyfunction]
fn run_task(py: Python<'_>, text: &str, task_id: u32, flags: Vec<String>) -> PyResult<String> {
    let plan = parsed(text)?;
    let report = run_blocking(py, |cancel| embed::run_task(&plan, task_id, &flags, cancel))?;
    serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// An array expression, the files its names are bound to, and the names bound to
/// expressions before it.
type Lets = Vec<(String, String)>;

fn request(expr: String, inputs: Vec<(String, PathBuf)>, lets: Lets) -> embed::ArrayRequest {
    embed::ArrayRequest { expr, inputs, lets }
}

/// What an array expression's result is, as JSON: shape, dtype, chunks, nbytes,
/// tasks.
#[pyfunction]
fn array_info(expr: String, inputs: Vec<(String, PathBuf)>, lets: Lets) -> PyResult<String> {
    let info = embed::array_info(&request(expr, inputs, lets)).map_err(to_py)?;
    Ok(info.to_string())
}

/// What `array_compute` returns to Python.
type Computed<'py> = (
    String,
    Bound<'py, pyo3::types::PyByteArray>,
    Vec<u64>,
    String,
    Option<Vec<i64>>,
);

/// Computes an array expression: `(statistics JSON, bytes, shape, dtype name,
/// counts)`, the counts those of `unique(x)` (else `None`). The bytes are a
/// `bytearray` numpy wraps without another copy.
#[pyfunction]
#[pyo3(signature = (expr, inputs, lets, flags, progress=None, report=None))]
fn array_compute<'py>(
    py: Python<'py>,
    expr: String,
    inputs: Vec<(String, PathBuf)>,
    lets: Lets,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<Computed<'py>> {
    let req = request(expr, inputs, lets);
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let (result, part) = run_watched(
        py,
        |cancel| Ok(embed::array_compute(&req, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    if let (Some(report), Some(part)) = (report.as_ref(), ReportPart::wrap(part)) {
        report.call_method1(py, "add", (part,))?;
    }
    let (stats, array) = result.map_err(to_py)?;
    let bytes = pyo3::types::PyByteArray::new(py, &array.bytes);
    Ok((
        stats.to_string(),
        bytes,
        array.shape,
        array.dtype.name().to_string(),
        array.counts,
    ))
}

/// Writes an array expression's result to `dst`; returns the statistics as JSON.
#[pyfunction]
#[pyo3(signature = (expr, inputs, lets, dst, flags, progress=None, report=None))]
// The arguments are the Python call's, one a parameter.
#[allow(clippy::too_many_arguments)]
fn array_write(
    py: Python<'_>,
    expr: String,
    inputs: Vec<(String, PathBuf)>,
    lets: Lets,
    dst: PathBuf,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<String> {
    let req = request(expr, inputs, lets);
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let watched = run_watched(
        py,
        |cancel| Ok(embed::array_write(&req, &dst, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    finish_watched(py, watched, report.as_ref())
}

/// The plan of writing an array expression's result to `dst`, as JSON.
#[pyfunction]
fn plan_array(
    py: Python<'_>,
    expr: String,
    inputs: Vec<(String, PathBuf)>,
    lets: Lets,
    dst: PathBuf,
    flags: Vec<String>,
) -> PyResult<String> {
    let req = request(expr, inputs, lets);
    run_blocking(py, |_| embed::plan_array(&req, &dst, &flags))
}

/// A SQL query's rows computed into memory: the statistics (JSON) and the rows
/// as an Arrow IPC stream in a `bytearray` (`pyarrow.ipc.open_stream` reads it
/// without another copy).
#[pyfunction]
#[pyo3(signature = (query, flags, progress=None, report=None))]
fn sql_compute<'py>(
    py: Python<'py>,
    query: String,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<(String, Bound<'py, pyo3::types::PyByteArray>)> {
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let (result, part) = run_watched(
        py,
        |cancel| Ok(embed::sql_compute(&query, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    if let (Some(report), Some(part)) = (report.as_ref(), ReportPart::wrap(part)) {
        report.call_method1(py, "add", (part,))?;
    }
    let (stats, bytes) = result.map_err(to_py)?;
    Ok((stats.to_string(), pyo3::types::PyByteArray::new(py, &bytes)))
}

/// Writes a SQL query's rows to `dst`; returns the statistics as JSON.
#[pyfunction]
#[pyo3(signature = (query, dst, flags, progress=None, report=None))]
fn sql_write(
    py: Python<'_>,
    query: String,
    dst: PathBuf,
    flags: Vec<String>,
    progress: Option<Py<PyAny>>,
    report: Option<Py<PyAny>>,
) -> PyResult<String> {
    let watch = embed::Watch {
        record: report.is_some(),
        ..embed::Watch::default()
    };
    let watched = run_watched(
        py,
        |cancel| Ok(embed::sql_write(&query, &dst, &flags, cancel, &watch)),
        progress_tick(&watch.progress, progress.as_ref()),
    )?;
    finish_watched(py, watched, report.as_ref())
}

/// The plan of writing a SQL query's rows to `dst` (Parquet, CSV or Arrow IPC by
/// its extension or `--to`), as JSON: to run on any executor.
#[pyfunction]
fn plan_sql(py: Python<'_>, query: String, dst: PathBuf, flags: Vec<String>) -> PyResult<String> {
    run_blocking(py, |_| embed::plan_sql(&query, &dst, &flags))
}

/// What a SQL query yields, without running it (JSON: columns, partitions, tasks).
#[pyfunction]
fn sql_info(py: Python<'_>, query: String, flags: Vec<String>) -> PyResult<String> {
    run_blocking(py, |_| embed::sql_info(&query, &flags)).map(|v| v.to_string())
}

/// The version of blockwise.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule]
fn _blockwise(m: &Bound<'_, PyModule>) -> PyResult<()> {
    blockwise::error::set_spelling(blockwise::error::Spelling::Python);
    m.add_function(wrap_pyfunction!(convert, m)?)?;
    m.add_function(wrap_pyfunction!(plan_convert, m)?)?;
    m.add_function(wrap_pyfunction!(plan_waves, m)?)?;
    m.add_function(wrap_pyfunction!(run_plan, m)?)?;
    m.add_function(wrap_pyfunction!(run_task, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(array_info, m)?)?;
    m.add_function(wrap_pyfunction!(array_compute, m)?)?;
    m.add_function(wrap_pyfunction!(array_write, m)?)?;
    m.add_function(wrap_pyfunction!(plan_array, m)?)?;
    m.add_function(wrap_pyfunction!(sql_compute, m)?)?;
    m.add_function(wrap_pyfunction!(sql_write, m)?)?;
    m.add_function(wrap_pyfunction!(sql_info, m)?)?;
    m.add_function(wrap_pyfunction!(plan_sql, m)?)?;
    m.add_function(wrap_pyfunction!(report_from_tasks, m)?)?;
    m.add_function(wrap_pyfunction!(write_report, m)?)?;
    m.add_function(wrap_pyfunction!(check_report_path, m)?)?;
    m.add_class::<ReportPart>()?;
    m.add(
        "BlockwiseMemoryError",
        m.py().get_type::<BlockwiseMemoryError>(),
    )?;
    Ok(())
}
