//! The one error type of blockwise.
//!
//! Every variant carries the values a user needs to fix the problem: the path, the
//! line and column, what was expected and what was found. Messages are built by
//! `Display` from those fields, never assembled as strings in the middle of code.
//!
//! Errors fall in three classes, which decide the CLI's exit code (see
//! [`Error::exit_code`]): problems with the user's input or request (2), a job
//! that did not fit its memory limit (3), a cancelled job (130), and internal
//! failures (1).

pub mod sql;
pub mod syntax;

pub use sql::SqlProblem;
use std::path::{Path, PathBuf};
pub use syntax::{SyntaxError, SyntaxProblem};

/// A `Result` whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in blockwise.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input path does not exist.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },

    /// The output already exists and replacing it was not asked for.
    #[error("{path} already exists; pass {} to replace it", flag("overwrite"))]
    OutputExists {
        /// The existing output.
        path: PathBuf,
    },

    /// The format of a path could not be told from its name or contents.
    #[error("{path}: cannot tell the format from the name or contents; {hint}")]
    UnknownFormat {
        /// The path whose format is unknown.
        path: PathBuf,
        /// What the user can do about it.
        hint: String,
    },

    /// A CSV row has more or fewer fields than the header.
    #[error("{path}: line {line}: expected {expected} fields (as in the header), found {found}")]
    CsvFieldCount {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line where the row starts (the header is line 1).
        line: u64,
        /// Number of fields in the header.
        expected: usize,
        /// Number of fields in this row.
        found: usize,
    },

    /// A CSV value does not parse as its column's type.
    #[error(
        "{path}: line {line}, column {}: value {} is not a valid {expected}{hint}",
        quoted(column),
        quoted(value)
    )]
    CsvValue {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line where the row starts.
        line: u64,
        /// Column name.
        column: String,
        /// The offending value.
        value: String,
        /// The column's type.
        expected: String,
        /// Advice, starting with "; " (or empty).
        hint: String,
    },

    /// A file is malformed: a corrupt header, a truncated file, bad metadata.
    #[error("{path}: {format} file is corrupt or truncated: {detail}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The format it claims to be ("parquet", "npy", ...).
        format: &'static str,
        /// What is wrong, as the underlying reader reported it.
        detail: String,
    },

    /// The input uses a feature blockwise does not read (a codec, a dtype, an encoding).
    #[error("{path}: unsupported {what} {}{supported}", quoted(found))]
    Unsupported {
        /// The input.
        path: PathBuf,
        /// What kind of thing: "codec", "dtype", "npy dtype", ...
        what: &'static str,
        /// The value found.
        found: String,
        /// Advice, starting with "; " (or empty).
        supported: String,
    },

    /// The user's request is invalid (bad flag value, an impossible conversion).
    #[error("{0}")]
    Usage(String),

    /// A `--dtype`, `--columns` or similar option names a column that does not exist.
    #[error(
        "{path}: no column named {}; the columns are {available}",
        quoted(column)
    )]
    NoSuchColumn {
        /// The input.
        path: PathBuf,
        /// The requested column.
        column: String,
        /// The available column names, comma-separated.
        available: String,
    },

    /// The disk holding `path` is full (or the file size limit was hit).
    #[error("{path}: no space left on device; nothing was written")]
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },

    /// A SQL query the planner refuses: a syntax error, a construct not supported,
    /// an unknown function or table (placed at its line and column by the SQL
    /// front end).
    #[error(transparent)]
    Sql(#[from] SqlProblem),

    /// A scalar subquery returned more than one row (DuckDB's error too).
    #[error(
        "more than one row returned by the subquery ({subquery}) used as an expression: \
         a scalar subquery returns a single row (add LIMIT 1, or an aggregate)"
    )]
    SubqueryRows {
        /// The subquery's SQL text.
        subquery: String,
    },

    /// The values of `x IN (subquery)` do not fit in the memory left.
    #[error(
        "the subquery ({subquery}) of IN returns {rows} rows, {bytes} bytes as a set in \
         memory, more than the memory limit leaves: {source}. IN (subquery) holds its values \
         in memory; for a subquery this large, a join is the way (joins are not supported \
         yet)"
    )]
    SubqueryTooLarge {
        /// The subquery's SQL text.
        subquery: String,
        /// Its rows.
        rows: u64,
        /// The bytes its set would hold.
        bytes: u64,
        /// The pool's refusal.
        source: Box<Error>,
    },

    /// A reservation did not fit in the memory pool.
    #[error(
        "memory limit: {consumer} asked for {requested} more bytes with {reserved} of the \
         {limit} bytes operators may reserve already reserved; top consumers: {top}. Raise \
         --memory-limit or use smaller chunks or blocks"
    )]
    MemoryLimit {
        /// Who asked.
        consumer: String,
        /// Bytes asked for.
        requested: u64,
        /// Bytes reserved at the time.
        reserved: u64,
        /// The bytes the pool lends (its capacity: the pause threshold's share of
        /// the memory limit, for a job's pool).
        limit: u64,
        /// The largest consumers and their bytes.
        top: String,
    },

    /// A plan's largest task cannot fit the memory limit; refused before it runs.
    #[error(
        "plan refused before running: a {op} task needs about {projected} bytes at its peak, \
         more than half of the {limit}-byte memory limit; {}",
        suggest_unit(*suggested_unit_bytes)
    )]
    PlanTooLarge {
        /// The operation of the largest task.
        op: String,
        /// Its projected peak bytes.
        projected: u64,
        /// The memory limit.
        limit: u64,
        /// A unit of work (chunk or partition) size in bytes that would fit; 0 if unknown.
        suggested_unit_bytes: u64,
    },

    /// Spilling would pass the spill directory's disk quota.
    #[error(
        "spill quota: writing {requested} more bytes to {dir} would pass the quota of {quota} bytes \
         ({used} used); free space there, point --spill-dir elsewhere, or raise the memory limit"
    )]
    SpillQuota {
        /// The spill directory.
        dir: PathBuf,
        /// Bytes asked for.
        requested: u64,
        /// Bytes already spilled there.
        used: u64,
        /// The quota.
        quota: u64,
    },

    /// Process memory passed the terminate threshold; the job was cancelled cleanly.
    #[error(
        "memory: the process used {rss} bytes, past the terminate threshold of {threshold} bytes \
         ({fraction} of the {limit}-byte limit{}); the job was cancelled and its outputs removed. \
         Top consumers: {top}",
        if *allowance > 0 { format!(", plus {allowance} bytes for the threads' own memory") } else { String::new() }
    )]
    MemoryTerminated {
        /// Resident set size when the threshold was crossed.
        rss: u64,
        /// The threshold in bytes.
        threshold: u64,
        /// The threshold as a fraction of the limit.
        fraction: f64,
        /// Bytes added to the threshold for the threads' own memory.
        allowance: u64,
        /// The memory limit.
        limit: u64,
        /// The largest consumers and their bytes.
        top: String,
    },

    /// The job was cancelled (Ctrl-C or a cancel request).
    #[error("cancelled; no output was written")]
    Cancelled,

    /// An option's value is out of range or does not apply to this job.
    #[error("{}: {reason}", option_value(option, value))]
    InvalidOption {
        /// The option's name in snake case (`threads`, `row_group_size`), spelled
        /// for the user by the front end (see [`set_spelling`]); or an environment
        /// variable (`BLOCKWISE_MEMORY_LIMIT`).
        option: &'static str,
        /// The value given.
        value: String,
        /// What is wrong and what would be accepted.
        reason: String,
    },

    /// A size computed from a file's metadata overflows or exceeds what the file holds.
    #[error("{path}: {what} {shape} needs {needed} bytes, but {present}")]
    SizeMismatch {
        /// The file or dataset.
        path: PathBuf,
        /// What the size describes ("shape", "chunk shape", "column chunk", ...).
        what: &'static str,
        /// The shape or length as the metadata states it, e.g. `[1000, 1000]`.
        shape: String,
        /// The bytes it needs, or "more than 2^64" when the product overflows.
        needed: String,
        /// What is there, e.g. "the file holds 4096".
        present: String,
    },

    /// A quoted CSV field is never closed.
    #[error(
        "{path}: line {line}: a quoted field opens here and is never closed \
         (an unterminated quote)"
    )]
    UnterminatedQuote {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line where the quote opens.
        line: u64,
    },

    /// A column's type cannot be stored in the output format.
    #[error(
        "column {} has type {dtype}, which {format} output cannot hold{hint}",
        quoted(column)
    )]
    UnsupportedColumn {
        /// The column.
        column: String,
        /// Its type, as `info` names it.
        dtype: String,
        /// The output format.
        format: &'static str,
        /// Advice, starting with "; " (or empty).
        hint: String,
    },

    /// The output would overwrite, contain or sit inside the input.
    #[error("{dst} {relation} the input {src}; choose a destination outside it")]
    OverlapsInput {
        /// The input.
        src: PathBuf,
        /// The requested output.
        dst: PathBuf,
        /// "is", "contains" or "is inside".
        relation: &'static str,
    },

    /// An existing path may not be replaced, even when asked.
    #[error("{path} is {what}; blockwise replaces only a file or a dataset it writes, not this")]
    WillNotReplace {
        /// The existing path.
        path: PathBuf,
        /// What it is: "a FIFO", "a device", "a symbolic link", "a directory that is
        /// not a dataset (a Zarr array, a Parquet directory or an npy stack)".
        what: String,
    },

    /// A path is used as a directory but a component is a file.
    #[error("{path}: is not a directory")]
    NotADirectory {
        /// The path.
        path: PathBuf,
    },

    /// Permission to read or write a path was denied.
    #[error("{path}: permission denied")]
    PermissionDenied {
        /// The path.
        path: PathBuf,
    },

    /// The job was stopped by a signal (SIGINT, SIGTERM, SIGHUP).
    #[error("interrupted by {signal}; no output was written")]
    Interrupted {
        /// The signal's name.
        signal: &'static str,
        /// The exit code the CLI uses (128 + the signal's number).
        code: u8,
    },

    /// A path, or one of its names, is longer than the filesystem allows.
    #[error(
        "{path}: the path is too long for the filesystem (a name may have at most \
         {name_max} bytes, a whole path {path_max})"
    )]
    NameTooLong {
        /// The path.
        path: PathBuf,
        /// The longest name allowed (`NAME_MAX`).
        name_max: usize,
        /// The longest path allowed (`PATH_MAX`).
        path_max: usize,
    },

    /// A Zarr path is a group, not an array.
    #[error("{path} is a Zarr group holding arrays {arrays}; pass one of them, e.g. {example}")]
    ZarrGroup {
        /// The group.
        path: PathBuf,
        /// Its arrays, comma-separated, as paths relative to the group.
        arrays: String,
        /// The path of its first array.
        example: PathBuf,
    },

    /// A destination ends with a slash, naming a directory, but the output is one file.
    #[error(
        "{path}: the trailing slash names a directory, but {format} output is a single file; \
         remove the slash"
    )]
    TrailingSlash {
        /// The destination as given.
        path: PathBuf,
        /// The output format.
        format: &'static str,
    },

    /// A name that is not one of those known: a format, a type.
    #[error("unknown {what} {}; the {what}s are {known}", quoted(name))]
    UnknownName {
        /// What kind of name (`format`, `type`).
        what: &'static str,
        /// The name given.
        name: String,
        /// The names known, comma-separated.
        known: String,
    },

    /// An `array` expression that does not parse: what was expected, what was found,
    /// and where (the [`SyntaxError`] also renders the line with a caret under the
    /// place).
    #[error(transparent)]
    ExprSyntax(#[from] SyntaxError),

    /// Array operands whose shapes do not broadcast together (numpy's rule: axes
    /// compared from the last, equal or one of them 1).
    #[error(
        "{op}: operands could not be broadcast together with shapes {} and {}",
        crate::grid::tuple_text(lhs),
        crate::grid::tuple_text(rhs)
    )]
    Broadcast {
        /// The operation (`add`, `where`).
        op: String,
        /// One operand's shape.
        lhs: Vec<u64>,
        /// The other's.
        rhs: Vec<u64>,
    },

    /// An array operation that does not apply to its operands' dtypes, or a cast that
    /// the rule in force refuses.
    #[error("{op}: {reason}")]
    ArrayType {
        /// The operation (`bitwise_and`, `astype`).
        op: String,
        /// What does not fit: the dtypes, from and to.
        reason: String,
    },

    /// An array operation given arguments it cannot take (an axis out of range, a
    /// slice step of zero, a shape that does not hold the elements).
    #[error("{op}: {reason}")]
    ArrayArgument {
        /// The operation.
        op: String,
        /// What is wrong, with the values given and expected.
        reason: String,
    },

    /// An `array` expression that parses but cannot be evaluated there: the error,
    /// its place, and the line with carets under it.
    #[error("{error} (line {line}, column {column})\n{caret}")]
    InExpression {
        /// What went wrong.
        error: Box<Error>,
        /// The 1-based line.
        line: usize,
        /// The 1-based column, in characters.
        column: usize,
        /// The expression's line with carets under the place.
        caret: String,
    },

    /// A name in an `array` expression that is neither an input nor a function.
    #[error("unknown name {}{}", quoted(name), close_matches(close))]
    UnknownFunction {
        /// The name as written (dotted).
        name: String,
        /// Known names close to it.
        close: Vec<String>,
    },

    /// A table format asked for where an array is needed, or the reverse.
    #[error("{format} is {is}, not {wanted}")]
    WrongKind {
        /// The format's name.
        format: &'static str,
        /// What it is (`an array format`).
        is: &'static str,
        /// What was needed (`a table format`).
        wanted: &'static str,
    },

    /// The parts of one dataset disagree (schemas, partition keys).
    #[error(
        "{path}: its {what} differs from {first}'s ({difference}); every part of a dataset \
         must share one"
    )]
    InconsistentParts {
        /// The part that differs.
        path: PathBuf,
        /// The first part, which the others are compared with.
        first: PathBuf,
        /// What differs (`schema`, `set of partition keys`).
        what: &'static str,
        /// How it differs.
        difference: String,
    },

    /// A path that names no file: `/`, or one ending in `..`.
    #[error("{path} does not name a file or directory to write")]
    NoFileName {
        /// The path given.
        path: PathBuf,
    },

    /// `run-task` of a task whose dependency has not run (anywhere): the tasks were
    /// run out of the order `blockwise tasks` gives.
    #[error(
        "task {task} waits for task {dep} ({op}), which has not run: its output {output} \
         is not in {dir}; run the tasks in the order `blockwise tasks` prints"
    )]
    DependencyNotRun {
        /// The task asked for.
        task: u32,
        /// The dependency that has not run.
        dep: u32,
        /// The dependency's operation.
        op: String,
        /// The dependency's output, as the plan spells it.
        output: String,
        /// The plan's working directory.
        dir: PathBuf,
    },

    /// A sort key that cannot be used: an empty column name, a direction other than
    /// asc or desc, a column the table does not have.
    #[error("{}: {problem}", sort_keys_given(keys.as_deref()))]
    BadSortKey {
        /// The keys as the user gave them (`x:desc,name`), when the problem is in
        /// their text; `None` when it is in the table they are applied to.
        keys: Option<String>,
        /// What is wrong.
        problem: SortKeyProblem,
    },

    /// A store entry is not of the kind the task reading it expects: a plan that
    /// hands one operation's output to an operation that reads something else.
    #[error("{key} holds {holds}, not {wanted}")]
    WrongEntry {
        /// The entry, as the plan spells it.
        key: String,
        /// What it holds (`bytes`, `a JSON value`, `record batches`).
        holds: &'static str,
        /// What was asked for.
        wanted: &'static str,
    },

    /// A task ended without publishing the store entry the plan says it makes: a
    /// plan whose task names an output its operation does not write.
    #[error(
        "task {task} ({op}) finished without publishing its output {output}; the plan \
         names an output its operation does not make"
    )]
    Unpublished {
        /// The task.
        task: u32,
        /// Its operation.
        op: String,
        /// Its output, as the plan spells it.
        output: String,
    },

    /// A task panicked: a bug in its operation. The job was stopped cleanly.
    #[error("internal error: task {task} ({op}) panicked: {message}")]
    TaskPanicked {
        /// The task.
        task: u32,
        /// Its operation.
        op: String,
        /// The panic's message.
        message: String,
    },

    /// The operating system refused to start the job's threads.
    #[error("cannot start {threads} threads: {reason}")]
    ThreadsRefused {
        /// Threads asked for.
        threads: usize,
        /// The system's answer.
        reason: String,
    },

    /// A bug: an invariant of blockwise's own code that did not hold. Nothing a user,
    /// a plan or a file can do leads here (those are the other variants).
    #[error("internal error: {what}{}", then_detail(detail))]
    Bug {
        /// What went wrong, in a few words (`plan to JSON`).
        what: &'static str,
        /// The underlying report, or empty.
        detail: String,
    },

    /// A plan names an operation, or a version of one, that this blockwise does not
    /// have.
    #[error(
        "task {task}: unknown operation {name:?} version {version}{}",
        if known.is_empty() {
            "; this blockwise has no operation of that name".to_string()
        } else {
            format!("; this blockwise runs versions {known:?} of it")
        }
    )]
    UnknownOperation {
        /// The task naming it.
        task: u32,
        /// The operation's name.
        name: String,
        /// The version asked for.
        version: u32,
        /// The versions this build has.
        known: Vec<u32>,
    },

    /// A plan that is not valid: JSON that is not a plan, a dangling reference, a
    /// cycle, parameters that do not fit their operation.
    #[error("not a valid blockwise plan: {reason}")]
    BadPlan {
        /// What is wrong, and where.
        reason: String,
    },

    /// A task's input is not in the data store: the task that makes it has not run
    /// (or its output was lost).
    #[error("{key} is not in the data store at {dir}; run the task that makes it first")]
    MissingEntry {
        /// The reference, as the plan spells it.
        key: String,
        /// The store's directory.
        dir: PathBuf,
    },

    /// A Python integer in an expression does not fit the integer dtype of the
    /// result it is part of (numpy 2's rule, NEP 50: `uint8` array `+ 300` is an error,
    /// not a wider result).
    #[error("Python integer {value} out of bounds for {dtype} (which holds {min} to {max})")]
    IntegerOutOfBounds {
        /// The integer given.
        value: i128,
        /// The dtype it had to fit, as numpy names it (`uint8`).
        dtype: &'static str,
        /// The smallest value the dtype holds.
        min: i128,
        /// The largest value the dtype holds.
        max: i128,
    },

    /// A frame expression names a column its input does not have.
    #[error(
        "unknown column {}{}{}",
        quoted(column),
        did_you_mean(close),
        columns_are(available)
    )]
    UnknownColumn {
        /// The column named.
        column: String,
        /// The input's columns closest to it (see [`close_names`]).
        close: Vec<String>,
        /// The input's columns.
        available: Vec<String>,
    },

    /// A query that uses what the frame layer does not do yet (it says what,
    /// and what it does instead).
    #[error("{what} is not supported yet: {reason}")]
    NotYet {
        /// The construct, as the query names it.
        what: String,
        /// Why, and what is supported.
        reason: String,
    },

    /// A frame expression whose operands, arguments or values do not fit its
    /// operation: types that do not mix (both named), a wrong number of arguments,
    /// a pattern that does not compile, an integer overflow.
    #[error("{op}: {reason}")]
    FrameType {
        /// The operation, as the expression's SQL text (`(v1 + 1)`) or a function name.
        op: String,
        /// What does not fit, with the types and values involved.
        reason: String,
    },

    /// Any other I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },

    /// An error from Arrow while processing data (not attributable to one input).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

/// What is wrong with a sort key (see [`Error::BadSortKey`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SortKeyProblem {
    /// A key with no column name (`a,,b`, `:desc`).
    #[error("empty column name")]
    EmptyColumn,
    /// A direction that is neither `asc` nor `desc`.
    #[error("direction {} is not asc or desc", quoted(found))]
    Direction {
        /// The direction given.
        found: String,
    },
    /// A key naming a column the table does not have.
    #[error("no column named {}; the columns are {}", quoted(column), available.join(", "))]
    NoSuchColumn {
        /// The column named.
        column: String,
        /// The table's columns.
        available: Vec<String>,
    },
}

/// How messages spell options: each front end says once how its users write them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// As a library: `option row_group_size "0"`, `the overwrite option`.
    Library,
    /// As the command line: `--row-group-size "0"`, `--overwrite`.
    CommandLine,
    /// As Python keyword arguments: `row_group_size="0"`, `overwrite=True`.
    Python,
}

static SPELLING: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Sets how this process's messages spell options (the front end calls it once).
pub fn set_spelling(spelling: Spelling) {
    SPELLING.store(spelling as u8, std::sync::atomic::Ordering::Relaxed);
}

fn spelling() -> Spelling {
    match SPELLING.load(std::sync::atomic::Ordering::Relaxed) {
        1 => Spelling::CommandLine,
        2 => Spelling::Python,
        _ => Spelling::Library,
    }
}

/// Whether `name` is an environment variable (upper case), spelled as it is.
fn is_env(name: &str) -> bool {
    name.bytes().any(|b| b.is_ascii_uppercase())
}

/// Option `name` given `value`, as the user wrote it.
fn option_value(name: &str, value: &str) -> String {
    let value = quoted(value);
    if is_env(name) {
        return format!("{name} {value}");
    }
    match spelling() {
        Spelling::Library => format!("option {name} {value}"),
        Spelling::CommandLine => format!("--{} {value}", name.replace('_', "-")),
        Spelling::Python => format!("{name}={value}"),
    }
}

/// The `sort_by` option, with the keys given when there are some, as the user wrote
/// them.
fn sort_keys_given(keys: Option<&str>) -> String {
    match keys {
        Some(keys) => option_value("sort_by", keys),
        None => match spelling() {
            Spelling::Library => "option sort_by".into(),
            Spelling::CommandLine => "--sort-by".into(),
            Spelling::Python => "sort_by".into(),
        },
    }
}

/// `; did you mean a, b?`, or nothing when no name is close.
fn did_you_mean(close: &[String]) -> String {
    match close {
        [] => String::new(),
        _ => format!("; did you mean {}?", close.join(", ")),
    }
}

/// ` (the columns are a, b, c)`, cut after the first 20 so that a wide table does
/// not bury the message.
fn columns_are(available: &[String]) -> String {
    const SHOWN: usize = 20;
    if available.is_empty() {
        return " (the input has no columns)".into();
    }
    let mut list = available[..available.len().min(SHOWN)].join(", ");
    if available.len() > SHOWN {
        list.push_str(&format!(" and {} more", available.len() - SHOWN));
    }
    format!(" (the columns are {list})")
}

/// The candidates close to `name`, for "did you mean" suggestions: those within a
/// Levenshtein distance of `max(2, len / 3)` (of the candidate's length, so longer
/// names tolerate more typos), nearest first (ties by name), at most three.
pub fn close_names(name: &str, candidates: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut scored: Vec<(usize, String)> = candidates
        .into_iter()
        .map(|c| (edit_distance(name, &c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .collect();
    scored.sort();
    scored.dedup();
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

/// Levenshtein distance, in characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// `: detail`, or nothing when there is no detail.
fn close_matches(close: &[String]) -> String {
    match close {
        [] => "; `blockwise array --help` lists the functions".into(),
        _ => format!("; did you mean {}?", close.join(", ")),
    }
}

fn then_detail(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}

/// A boolean option `name` turned on, as the user would write it.
fn flag(name: &str) -> String {
    match spelling() {
        Spelling::Library => format!("the {name} option"),
        Spelling::CommandLine => format!("--{}", name.replace('_', "-")),
        Spelling::Python => format!("{name}=True"),
    }
}

/// A user's value in quotes without Rust's escaping: double quotes, or single ones
/// when it holds a double quote; only control characters are escaped (`\n`).
fn quoted(value: &str) -> String {
    let q = if value.contains('"') { '\'' } else { '"' };
    let mut out = String::from(q);
    for c in value.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(q);
    out
}

fn suggest_unit(bytes: u64) -> String {
    if bytes == 0 {
        "raise --memory-limit".into()
    } else {
        format!("use chunks or blocks of at most {bytes} bytes, or raise --memory-limit")
    }
}

impl Error {
    /// Wraps an I/O error with the path it happened on, recognising a full disk.
    pub fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let path = path.as_ref().to_path_buf();
        match source.kind() {
            // ENOSPC, EDQUOT, EFBIG: the data did not fit where it was going.
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge => Error::DiskFull { path },
            // ENOTDIR: a component of the path is a file.
            K::NotADirectory => Error::NotADirectory { path },
            // EACCES, EPERM, EROFS: the user can fix the permissions or pick another place.
            K::PermissionDenied | K::ReadOnlyFilesystem => Error::PermissionDenied { path },
            K::NotFound => Error::NotFound { path },
            _ => Error::Io { path, source },
        }
    }

    /// Builds an [`Error::Bug`]: `what` went wrong, as `detail` reports it.
    pub fn bug(what: &'static str, detail: impl ToString) -> Self {
        Error::Bug {
            what,
            detail: detail.to_string(),
        }
    }

    /// Builds a [`Error::Corrupt`] for `path` in `format` with the given detail.
    pub fn corrupt(path: impl AsRef<Path>, format: &'static str, detail: impl ToString) -> Self {
        Error::Corrupt {
            path: path.as_ref().to_path_buf(),
            format,
            detail: detail.to_string(),
        }
    }

    /// The exit code the CLI uses for this error: 2 for bad input or a bad request,
    /// 130 for a cancelled job, 1 for internal errors.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::NotFound { .. }
            | Error::OutputExists { .. }
            | Error::UnknownFormat { .. }
            | Error::CsvFieldCount { .. }
            | Error::CsvValue { .. }
            | Error::Corrupt { .. }
            | Error::Unsupported { .. }
            | Error::Usage(_)
            | Error::NoSuchColumn { .. }
            | Error::DiskFull { .. }
            | Error::SpillQuota { .. }
            | Error::InvalidOption { .. }
            | Error::SizeMismatch { .. }
            | Error::UnterminatedQuote { .. }
            | Error::UnsupportedColumn { .. }
            | Error::OverlapsInput { .. }
            | Error::WillNotReplace { .. }
            | Error::NotADirectory { .. }
            | Error::PermissionDenied { .. } => 2,
            Error::MemoryLimit { .. }
            | Error::SubqueryTooLarge { .. }
            | Error::MemoryTerminated { .. }
            | Error::PlanTooLarge { .. } => 3,
            Error::Cancelled => 130,
            Error::Interrupted { code, .. } => *code,
            Error::NameTooLong { .. } => 2,
            Error::ZarrGroup { .. } => 2,
            Error::TrailingSlash { .. } => 2,
            Error::UnknownOperation { .. } | Error::BadPlan { .. } => 2,
            Error::UnknownName { .. }
            | Error::ExprSyntax(_)
            | Error::WrongKind { .. }
            | Error::InconsistentParts { .. }
            | Error::NoFileName { .. } => 2,
            Error::DependencyNotRun { .. } => 2,
            Error::IntegerOutOfBounds { .. }
            | Error::Broadcast { .. }
            | Error::ArrayType { .. }
            | Error::ArrayArgument { .. }
            | Error::UnknownFunction { .. } => 2,
            Error::UnknownColumn { .. } | Error::FrameType { .. } | Error::NotYet { .. } => 2,
            Error::SubqueryRows { .. } | Error::Sql(_) => 2,
            Error::InExpression { error, .. } => error.exit_code(),
            Error::BadSortKey { .. } | Error::WrongEntry { .. } | Error::Unpublished { .. } => 2,
            Error::TaskPanicked { .. } | Error::ThreadsRefused { .. } | Error::Bug { .. } => 1,
            Error::MissingEntry { .. } => 1,
            Error::Io { .. } | Error::Arrow(_) => 1,
        }
    }
}

/// Attaches a path to I/O results: `file.read(..).at(path)?`.
pub trait IoResultExt<T> {
    /// Converts an I/O error into [`Error::io`] for `path`.
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_disk_is_recognised_and_is_a_user_error() {
        let e = Error::io("/x/out.parquet", std::io::Error::from_raw_os_error(28));
        assert!(matches!(e, Error::DiskFull { .. }));
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("no space left"));
    }

    #[test]
    fn sort_key_messages_name_the_option_and_are_user_errors() {
        // Unit tests run with the library's spelling (no front end set one).
        let e = crate::frame::ops::sort::parse_sort_keys("a:sideways").unwrap_err();
        assert_eq!(
            e.to_string(),
            "option sort_by \"a:sideways\": direction \"sideways\" is not asc or desc"
        );
        assert_eq!(e.exit_code(), 2);
        let e = crate::frame::ops::sort::parse_sort_keys("a,,b").unwrap_err();
        assert_eq!(e.to_string(), "option sort_by \"a,,b\": empty column name");
        let e = Error::BadSortKey {
            keys: None,
            problem: SortKeyProblem::NoSuchColumn {
                column: "z".into(),
                available: vec!["a".into(), "b".into()],
            },
        };
        assert_eq!(
            e.to_string(),
            "option sort_by: no column named \"z\"; the columns are a, b"
        );
    }

    #[test]
    fn bugs_say_internal_error_and_exit_1_plan_mistakes_exit_2() {
        let e = Error::bug("plan to JSON", "key must be a string");
        assert_eq!(
            e.to_string(),
            "internal error: plan to JSON: key must be a string"
        );
        assert_eq!(e.exit_code(), 1);
        let e = Error::bug("a table route without a plan", "");
        assert_eq!(
            e.to_string(),
            "internal error: a table route without a plan"
        );
        let e = Error::Unpublished {
            task: 3,
            op: "write_csv".into(),
            output: "parts/3".into(),
        };
        assert!(e
            .to_string()
            .starts_with("task 3 (write_csv) finished without publishing"));
        assert_eq!(e.exit_code(), 2);
        let e = Error::WrongEntry {
            key: "runs/0".into(),
            holds: "bytes",
            wanted: "record batches",
        };
        assert_eq!(e.to_string(), "runs/0 holds bytes, not record batches");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn csv_value_message_names_line_column_and_value() {
        let e = Error::CsvValue {
            path: "a.csv".into(),
            line: 3002,
            column: "b".into(),
            value: "12x".into(),
            expected: "int64".into(),
            hint: String::new(),
        };
        assert_eq!(
            e.to_string(),
            "a.csv: line 3002, column \"b\": value \"12x\" is not a valid int64"
        );
    }
}
