//! blockwise: an out-of-core engine for chunked arrays and data frames.
//!
//! Every dataset is chunks on disk: arrays in Zarr v3 (also read: `.npy`, npy stacks,
//! Zarr v2), tables in Parquet (also read and written: CSV, Arrow IPC). Work runs
//! chunk by chunk under a memory budget. `DESIGN.md` gives the direction; this is the
//! map of the code as it is, bottom layer first (a module uses only those above it
//! in this list; the Python bindings in `python/` use [`cli::embed`]):
//!
//! | module | holds |
//! |---|---|
//! | [`error`] | the one error enum; its variants carry the values a user needs; `syntax`: where an expression does not parse, with a caret display; `sql`: what is wrong with a SQL query |
//! | [`sys`] | what is asked of the OS beyond `std`: process liveness, tree sizes, removal, the account of reclaimed temporaries, the cancel token and its signals |
//! | [`grid`] | shapes, chunk grids, subsets, rechunk stages, `auto` chunks, checked sizes and sizes as users write them (`size`: `64MiB`): pure, no I/O |
//! | [`memory`] | the pool and reservations, the threshold monitor and its memory gate, RSS readings, glibc retention and huge pages for large blocks (`allocator`, installed by the binary), the spill store and its disk manager (quota, stale directories) |
//! | [`storage`] | one module per format (`csv` split by role: `header`, `scan`, `split` (remembered while the file is unchanged), `infer`, `reader` with `plain` (quote-free rows decoded without `csv_core`), `diagnose`, `writer`; `parquet` with its part assembly `parts` (a column whose dictionary a part's first rows say would outgrow its page is written plain from the start), `ipc`, `npy`, `npy_stack` with its `pickle` reader, `zarr` with `direct`: its `bytes` + `zstd` chunks coded without zarrs), row `ordinal`s (a column numbering rows by their place in the file, for `first`, `last` and seeded samples), what a sample says of a column's distinct values (`distinct`: the domain they come from, the values a dictionary would hold), format detection, the `dir/*.parquet` glob (`glob_dir`), the table descriptions a plan carries (`open_frame_described`), and `atomic` outputs (destination checks, no-clobber renames, stale temporaries, publishing a plan's staged output) |
//! | [`plan`] | tasks, data references, plans and their JSON (format 2: working directory, dataset `meta`, waves, what a resumed run needs), the `Operation` trait and the `Registry`, the task environment and its `Resources` cache, the `DataStore` trait and its `Entry` (record-batch entries written batch by batch through a `BatchWriter`, with metadata known only at the end), events, the memory projection, the plan's summary by stage (`summary`, what `explain` prints) |
//! | [`exec`] | the local executor (priorities, the memory gate, `execute` through a registry with skipping and release, `run_task` for one task), the stores (`DirStore`: a shared directory; `MemoryStore`: reserved, spilled LRU through the monitor), the job context, progress, and `report`: the recorder of a job and its self-contained HTML page (`--report`, `formats/report-v1.md`) |
//! | [`array`] | the array layer. Lazy arrays (`graph`: `Array`, a fused elementwise `Program`, a reduction, scan, concatenation, matrix product, block function or count, Dask-style chunks, views for slices, transposes and broadcasting); block functions (`blocks`: `reshape`/`ravel` by Dask's axis groups, `sort`, `argsort`, `topk` as a tree, `take` of integer indices); neighbourhoods (`stencil`: `pad`, `diff`, `gradient`, numpy's 1-d and scipy.ndimage's n-d `convolve`/`correlate` as sums of shifted views); contractions (`linalg`: `tensordot`, `einsum`); counts (`counts`: `histogram`, `bincount`; `unique` is a merge tree in `lower`); boolean-mask selections of unknown length (`select`: `x[mask]` kept as the array and its mask, elementwise work and reductions rewritten on the whole array, laid out by slab only when computed, or counted and then placed slab by slab in a staged `.npy` when written); the program and its block evaluation in tiles (`program`: leaves, views, nodes); the kernels (`kernel`: typed tiles `values` (bool, integers, floats, complex), numpy's ufuncs `ops`, vectorized `math`, reductions and their partial states `reduce`, scans `scan`, sorts and tops of rows `rows`, block products `matmul` on a packed AVX-512 GEMM `gemm`, the strided block `walk`); arrays as plans (`lower`: the `array_block`, `array_combine`, `array_matmul` and `array_unique_merge` operations, stages, the reduction tree, scans, concatenations, block functions, takes, counts, compressions by a mask, matrix products (`x @ x.T` as its upper blocks, SYRK on the diagonal, mirrored)); the expression language (`expr`: lexer, parser) and its evaluation (`eval`: names, functions, Python's numbers); printing as numpy does (`print`); numpy 2's type promotion (`promote`); the counter-based generator (`random`: numpy's Philox bit for bit, index-addressed, AVX-512); the older operations (`create_array`, `copy_block`, `finish_array`, `table_rows`, `place_rows`, `finish_rows`), array dataset layouts, the staged rechunk's plan |
//! | [`frame`] | the frame layer. Column expressions over record batches (`expr`: types and DuckDB's typing rules, evaluation on arrow's kernels, functions on strings, dates and numbers, the hash sets of `IN` (`in_set`), uncorrelated subqueries and their bound values (`subquery`)); the logical plan of a query (`logical`: scan, filter, project, aggregate, window, sort, limit, distinct, union, the subqueries its expressions read); its rewrites (`optimize`: projection pushdown, so scans read only the columns used; the rows' ordinals threaded up from the scans to what reads the file's order); Parquet row groups and pages ruled out by their statistics and page index (`prune`); its lowering to tasks (`physical`: row-wise steps fused into the task that reads the rows, or into a grouping's final tasks when they follow it; a stage a blocking operator); reading partitions and earlier tasks' entries (a partition's reader reserving its own buffers; string columns asked as dictionaries where the source stores them so), and binding the subqueries a pipeline reads (`read`); writing tables from parts (`write`: encoded parts, or parts a grouping's final tasks encode themselves, the append chain, which gathers small parts into row groups, Parquet footers and directories); the operators (`ops`: `pipeline` (filters and projections), `aggregate` (hash aggregation: accumulators (a group's state fetched into the cache rows ahead once the states outgrow the caches), group keys (one integer or string column as itself, integers of a small range through a dense array of groups, several in the row format; string keys a Parquet chunk stores dictionary-encoded read as Arrow dictionaries and grouped on their codes, `keys::codes`; the open-addressed table of group numbers whose slots are prefetched rows ahead, `keys::table`), partial tables over runs of a GiB at most flushed by bucket (nearly distinct keys from a domain larger than a table skip it, each row its own states), published as a bucketed entry written in rounds and indexed at its end (`bucketed`, which a window's shuffle publishes too), final buckets cut again into spill files when they do not fit), `sort` (the external merge sort: runs, the key-range cut, range merges), `stream` (a part through a pipeline, limits, parts gathered into one entry, in-memory sorts and top k), `window` (a shuffle by partition keys, then numbering a bucket, through the external sort when it does not fit; without partition keys over a large table, the external sort's key ranges numbered by a chain of `frame_number` tasks, each going on where the last stopped; a top k per group keeps a table of each partition's best rows instead of sorting, before the shuffle too where the groups, estimated from a part's first rows, are few enough that it keeps a third of them or fewer)) |
//! | [`sql`] | SQL in DuckDB's dialect planned as a frame `LogicalPlan` (`plan_query`, `SqlPlanner`): the FROM relation (`from`: files, `read_csv`/`read_parquet`, CTEs, subqueries), the query and its SELECT (`query`: WHERE, GROUP BY, HAVING, windows, QUALIFY, ORDER BY, LIMIT, UNION), expressions and their subqueries (`expr`), DuckDB's column names (`name`), errors placed at their line and column (`error`) |
//! | [`convert`] | the jobs: the conversion (formats and options, one plan builder a route: table↔table, array↔array, table↔array, sorted), the frame query job (`frame_job`: a `LogicalPlan` computed into memory or written to a table file), the array job (`array_job`: an `Array` computed into memory or written to a file, and their plans; a file's values rechunked go through the staged rechunk; `unique`'s values and counts), `publish_output`, the registry of every operation, running a plan with a memory store (`job`) |
//! | [`dataframe`] | the lazy `Frame` for Rust callers: readers and `from_batches` (an IPC file in a temporary directory the frames hold), pandas' methods (`sample`, `drop_duplicates` with `keep`, `first`/`last`, `filter`, `with_columns`, `rename`, `drop`, `sort_values`, `nlargest`, `groupby(...).agg(...)`, a top k per group, `drop_duplicates`, `value_counts`, `concat`), each checked against its input's schema where it is called, building a `LogicalPlan` that `collect`, the writers and `explain` run as the SQL jobs do |
//! | [`cli`] | the command line, one subcommand a file (`array`, `convert`, `explain`, `info`, `head`, `plan`, `run`, `run-task`, `sql`, `tasks`), and `embed`: the same jobs for the Python bindings (`python/`) |
//!
//! ```no_run
//! use blockwise::convert::{convert, ConvertOptions};
//! use blockwise::exec::JobContext;
//!
//! let report = convert(
//!     "table.csv".as_ref(),
//!     "table.parquet".as_ref(),
//!     &ConvertOptions::default(),
//!     &JobContext::with_defaults()?,
//! )?;
//! println!("{} rows", report.rows);
//! # Ok::<(), blockwise::Error>(())
//! ```

#![warn(missing_docs)]

pub mod array;
pub mod cli;
pub mod convert;
pub mod dataframe;
pub mod error;
pub mod exec;
pub mod frame;
pub mod grid;
pub mod memory;
pub mod plan;
pub mod sql;
pub mod storage;
pub mod sys;

#[cfg(test)]
mod reference;

pub use error::{Error, Result};
