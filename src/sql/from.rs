//! The FROM clause: one relation, which is a table file (`'data.csv'`, a directory
//! of Parquet parts, `'dir/*.parquet'`), a table function (`read_csv`,
//! `read_csv_auto`, `read_parquet`), a CTE (its plan inlined), or a subquery; with
//! its alias and the alias's column names. Joins and lists of tables are refused
//! here, each at its place.

use std::path::{Path, PathBuf};

use sqlparser::ast::{
    self, Expr as Ast, FunctionArg, FunctionArgExpr, FunctionArgOperator, Spanned, TableFactor,
    TableWithJoins, Value,
};
use sqlparser::tokenizer::Span as SqlSpan;

use super::error::{at, SqlProblem};
use super::expr::Scope;
use super::query::{NamedPlan, QueryPlanner};
use crate::error::Result;
use crate::frame::expr::Expr;
use crate::frame::logical::{LogicalPlan, SampleSize, Source};
use crate::storage::frame::FrameReadOptions;
use crate::storage::Format;
use arrow::datatypes::DataType;

/// The options `read_csv` takes, as an error lists them.
const CSV_OPTIONS: &str = "delim (or sep, delimiter), header, auto_detect, sample_size, \
                           blocksize, types (or dtypes, column_types)";

/// The table functions FROM may call.
const TABLE_FUNCTIONS: &[&str] = &[
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "read_arrow",
];

impl QueryPlanner<'_> {
    /// The FROM clause's relation and the names its columns are seen under.
    pub(crate) fn from(
        &mut self,
        from: &[TableWithJoins],
        ctes: &[NamedPlan],
        select_span: SqlSpan,
    ) -> Result<(LogicalPlan, Scope)> {
        let first = match from {
            [] => {
                return Err(at(
                    self.sql,
                    select_span,
                    SqlProblem::Unsupported {
                        construct: "a SELECT without FROM".into(),
                        hint: "; blockwise queries read a table: add FROM 'file.csv'".into(),
                    },
                ))
            }
            [first, rest @ ..] => {
                if let Some(second) = rest.first() {
                    return Err(self.unsupported(
                        second.relation.span(),
                        "a list of tables in FROM (a cross join)",
                    ));
                }
                first
            }
        };
        if let Some(join) = first.joins.first() {
            // The join's span is its table's: the caret goes back to the keyword.
            let err = self.unsupported(join.span(), "JOIN");
            let Some(table) = super::error::byte_span(self.sql, join.relation.span()) else {
                return Err(err);
            };
            let before = self.sql[..table.start].to_ascii_lowercase();
            return Err(match before.rfind("join") {
                Some(k) => super::error::at_bytes(
                    self.sql,
                    crate::error::syntax::Span::new(k, table.end),
                    SqlProblem::Unsupported {
                        construct: "JOIN".into(),
                        hint: String::new(),
                    }
                    .into(),
                ),
                None => err,
            });
        }
        self.table_factor(&first.relation, ctes)
    }

    fn unsupported(&self, span: SqlSpan, construct: &str) -> crate::Error {
        at(
            self.sql,
            span,
            SqlProblem::Unsupported {
                construct: construct.into(),
                hint: String::new(),
            },
        )
    }

    fn table_factor(
        &mut self,
        factor: &TableFactor,
        ctes: &[NamedPlan],
    ) -> Result<(LogicalPlan, Scope)> {
        let span = factor.span();
        let (plan, default_name, alias) = match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_directives,
                inheritance,
            } => {
                if !with_hints.is_empty()
                    || version.is_some()
                    || *with_ordinality
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || !index_directives.is_empty()
                    || inheritance.is_some()
                {
                    return Err(self.unsupported(span, "this table modifier"));
                }
                let ident = match name.0.as_slice() {
                    [ast::ObjectNamePart::Identifier(id)] => id,
                    _ => {
                        return Err(self.unsupported(
                            span,
                            &format!("the qualified table name {name} (schema.table)"),
                        ))
                    }
                };
                let (plan, default) = match args {
                    Some(args) => {
                        if args.settings.is_some() {
                            return Err(self.unsupported(span, "SETTINGS of a table function"));
                        }
                        let plan = self.table_function(&ident.value, &args.args, span)?;
                        (plan, Some(ident.value.clone()))
                    }
                    None => self.named_table(ident, ctes, span)?,
                };
                (self.sampled(plan, sample.as_ref())?, default, alias)
            }
            TableFactor::Derived {
                lateral,
                subquery,
                alias,
                sample,
            } => {
                if *lateral {
                    return Err(self.unsupported(span, "LATERAL"));
                }
                let plan = self.query(subquery, ctes)?;
                (self.sampled(plan, sample.as_ref())?, None, alias)
            }
            TableFactor::NestedJoin { .. } => {
                return Err(self.unsupported(span, "a parenthesized join"))
            }
            TableFactor::UNNEST { .. } => return Err(self.unsupported(span, "UNNEST")),
            TableFactor::Pivot { .. } => return Err(self.unsupported(span, "PIVOT")),
            TableFactor::Unpivot { .. } => return Err(self.unsupported(span, "UNPIVOT")),
            _ => return Err(self.unsupported(span, "this kind of FROM item")),
        };
        self.aliased(plan, default_name, alias.as_ref(), span)
    }

    /// `plan` sampled as its `TABLESAMPLE` clause asks: `BERNOULLI (10)`,
    /// `(10 PERCENT)` or `SYSTEM (10)` keep each row with probability 10%, `(100
    /// ROWS)` 100 rows, `REPEATABLE (seed)` seeds it (0 without). Every method is
    /// a sample of rows, drawn as [`LogicalPlan::sample`] draws it.
    fn sampled(
        &self,
        plan: LogicalPlan,
        sample: Option<&ast::TableSampleKind>,
    ) -> Result<LogicalPlan> {
        let sample = match sample {
            None => return Ok(plan),
            Some(ast::TableSampleKind::BeforeTableAlias(s))
            | Some(ast::TableSampleKind::AfterTableAlias(s)) => s,
        };
        let span = sample
            .quantity
            .as_ref()
            .map_or(SqlSpan::empty(), |q| q.value.span());
        let bad_at = |span: SqlSpan, reason: String| {
            at(
                self.sql,
                span,
                SqlProblem::BadArgument {
                    function: "TABLESAMPLE".into(),
                    reason,
                },
            )
        };
        let bad = |reason: String| bad_at(span, reason);
        if sample.bucket.is_some() || sample.offset.is_some() {
            return Err(self.unsupported(span, "TABLESAMPLE with BUCKET or OFFSET"));
        }
        let Some(quantity) = &sample.quantity else {
            return Err(bad(
                "give the sample's size: TABLESAMPLE (10 PERCENT) or (100 ROWS)".into(),
            ));
        };
        let number = match &quantity.value {
            Ast::Value(v) => match &v.value {
                Value::Number(n, _) => n.replace('_', "").parse::<f64>().ok(),
                _ => None,
            },
            _ => None,
        };
        let Some(number) = number.filter(|n| n.is_finite() && *n >= 0.0) else {
            return Err(bad(format!(
                "the size must be a number of at least 0, not {}",
                quantity.value
            )));
        };
        let rows = matches!(quantity.unit, Some(ast::TableSampleUnit::Rows))
            || matches!(sample.name, Some(ast::TableSampleMethod::Row));
        let size = if rows {
            if number.fract() != 0.0 || number >= u64::MAX as f64 {
                return Err(bad(format!(
                    "a number of rows must be a whole number below 2^64, not {}",
                    quantity.value
                )));
            }
            SampleSize::Rows(number as u64)
        } else if number <= 100.0 {
            SampleSize::Fraction(number / 100.0)
        } else {
            return Err(bad(format!(
                "a percentage must be from 0 to 100, not {number}"
            )));
        };
        let seed = match &sample.seed {
            None => 0,
            Some(seed) => {
                let not = |v: &dyn std::fmt::Display| {
                    bad_at(
                        seed.value.span,
                        format!("the seed must be an integer of 64 bits, not {v}"),
                    )
                };
                match &seed.value.value {
                    // Seeds are 64 bits, written signed or not.
                    Value::Number(n, _) => n
                        .parse::<i64>()
                        .map(|s| s as u64)
                        .or_else(|_| n.parse::<u64>())
                        .map_err(|_| not(n))?,
                    other => return Err(not(other)),
                }
            }
        };
        LogicalPlan::sample(plan, size, seed).map_err(|e| match e {
            crate::Error::NotYet { what, reason } => bad(format!("{what}: {reason}")),
            e => e,
        })
    }

    /// A table named without arguments: a CTE, else a file.
    fn named_table(
        &mut self,
        ident: &ast::Ident,
        ctes: &[NamedPlan],
        span: SqlSpan,
    ) -> Result<(LogicalPlan, Option<String>)> {
        let quoted_as_string = ident.quote_style == Some('\'');
        if !quoted_as_string {
            // The innermost CTE of the name wins, as in SQL scoping.
            if let Some(cte) = ctes
                .iter()
                .rev()
                .find(|c| c.name.eq_ignore_ascii_case(&ident.value))
            {
                return Ok((cte.plan.clone(), Some(cte.name.clone())));
            }
        }
        let looks_like_file = quoted_as_string
            || ident.value.contains(['.', '/', '\\'])
            || self.path(&ident.value).exists();
        if !looks_like_file {
            return Err(at(
                self.sql,
                span,
                SqlProblem::UnknownRelation {
                    name: ident.value.clone(),
                    ctes: ctes.iter().map(|c| c.name.clone()).collect(),
                },
            ));
        }
        let plan = self.scan(&ident.value, None, FrameReadOptions::default(), span)?;
        Ok((plan, Some(stem(&ident.value))))
    }

    /// `read_csv('path', delim=';', header=true, blocksize='16MiB', types={'v1':
    /// 'DOUBLE'})`, `read_parquet('path')`.
    fn table_function(
        &mut self,
        name: &str,
        args: &[FunctionArg],
        span: SqlSpan,
    ) -> Result<LogicalPlan> {
        let lower = name.to_ascii_lowercase();
        let format = match lower.as_str() {
            "read_csv" | "read_csv_auto" => Format::Csv,
            "read_parquet" | "parquet_scan" => Format::Parquet,
            "read_arrow" => Format::Ipc,
            _ => {
                return Err(at(
                    self.sql,
                    span,
                    SqlProblem::UnknownFunction {
                        name: name.into(),
                        close: crate::error::close_names(
                            &lower,
                            TABLE_FUNCTIONS.iter().map(|s| s.to_string()),
                        ),
                    },
                ))
            }
        };
        let bad = |span: SqlSpan, reason: String| {
            at(
                self.sql,
                span,
                SqlProblem::BadArgument {
                    function: lower.clone(),
                    reason,
                },
            )
        };
        let mut path = None;
        let mut read = FrameReadOptions::default();
        let mut blocksize_given = false;
        let mut types = None;
        for arg in args {
            let (key, value) = match arg {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => (None, e),
                FunctionArg::Named {
                    name,
                    arg: FunctionArgExpr::Expr(e),
                    operator:
                        FunctionArgOperator::Equals
                        | FunctionArgOperator::Assignment
                        | FunctionArgOperator::RightArrow,
                } => (Some(name.value.to_ascii_lowercase()), e),
                other => {
                    return Err(bad(span, format!("cannot read the argument {other}")));
                }
            };
            let vspan = value.span();
            match key.as_deref() {
                None if path.is_none() => match string(value) {
                    Some(p) => path = Some(p),
                    None => {
                        return Err(bad(
                            vspan,
                            format!("the path must be a string in single quotes, not {value}"),
                        ))
                    }
                },
                None => return Err(bad(vspan, "takes one path; options are named".into())),
                Some("delim" | "sep" | "delimiter") if format == Format::Csv => {
                    match string(value).map(|s| s.into_bytes()).as_deref() {
                        Some([b]) => read.delimiter = *b,
                        _ => {
                            return Err(bad(
                                vspan,
                                format!("the delimiter must be one ASCII character, not {value}"),
                            ))
                        }
                    }
                }
                Some("header") if format == Format::Csv => match boolean(value) {
                    Some(header) => read.header = header,
                    None => {
                        return Err(bad(
                            vspan,
                            format!("header must be true or false, not {value}"),
                        ))
                    }
                },
                Some("auto_detect") if format == Format::Csv => match boolean(value) {
                    Some(true) => {}
                    _ => {
                        return Err(at(
                            self.sql,
                            vspan,
                            SqlProblem::Unsupported {
                                construct: format!("auto_detect={value}"),
                                hint: "; column types are always inferred".into(),
                            },
                        ))
                    }
                },
                Some("sample_size") if format == Format::Csv => {
                    match integer(value).and_then(|n| usize::try_from(n).ok()) {
                        Some(n) if n > 0 => read.infer_rows = n,
                        _ => {
                            return Err(bad(
                                vspan,
                                format!("sample_size must be a positive integer, not {value}"),
                            ))
                        }
                    }
                }
                Some("blocksize") if format == Format::Csv => {
                    read.blocksize = blocksize(value).map_err(|reason| bad(vspan, reason))?;
                    blocksize_given = true;
                }
                Some(key @ ("types" | "dtypes" | "column_types")) if format == Format::Csv => {
                    if types.is_some() {
                        return Err(bad(
                            vspan,
                            format!("{key}: the column types are given twice"),
                        ));
                    }
                    // (A struct literal has no span of its own: the call's then.)
                    let whole = if vspan == SqlSpan::empty() {
                        span
                    } else {
                        vspan
                    };
                    let parsed = column_types(key, value)
                        .map_err(|(at, reason)| bad(at.unwrap_or(whole), reason))?;
                    types = Some(parsed);
                }
                Some(other) => {
                    let known = if format == Format::Csv {
                        CSV_OPTIONS
                    } else {
                        "none"
                    };
                    return Err(bad(
                        vspan,
                        format!("unknown option {other}; the options read are {known}"),
                    ));
                }
            }
        }
        let Some(path) = path else {
            return Err(bad(span, "needs the path of the file to read".into()));
        };
        if blocksize_given {
            // A tiny blocksize on a large file would make millions of partitions:
            // they are bounded as a conversion bounds them.
            let len = std::fs::metadata(self.path(&path)).map_or(0, |m| m.len());
            read.blocksize = read
                .blocksize
                .max(len.div_ceil(crate::storage::csv::MAX_PARTITIONS));
        }
        match types {
            None => {}
            Some(ColumnTypes::ByName(named)) => read.dtypes = named,
            Some(ColumnTypes::ByPosition(list)) => {
                // By position: the header's names are needed first.
                let LogicalPlan::Scan(plain) =
                    self.scan(&path, Some(format), read.clone(), span)?
                else {
                    return Err(crate::Error::bug(
                        "a file scan planned as something else",
                        "",
                    ));
                };
                let names: Vec<String> = plain
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect();
                if list.len() > names.len() {
                    return Err(bad(
                        span,
                        format!(
                            "{} column types given by position, but the file has {} columns ({})",
                            list.len(),
                            names.len(),
                            names.join(", ")
                        ),
                    ));
                }
                read.dtypes = names.into_iter().zip(list).collect();
            }
        }
        self.scan(&path, Some(format), read, span)
    }

    /// The file (or directory, or glob of Parquet parts) at `text`.
    fn scan(
        &self,
        text: &str,
        format: Option<Format>,
        read: FrameReadOptions,
        span: SqlSpan,
    ) -> Result<LogicalPlan> {
        let path = self.path(text);
        let path = match crate::storage::glob_dir(&path) {
            crate::storage::GlobDir::NotGlob => path,
            crate::storage::GlobDir::Dir(dir) => dir,
            crate::storage::GlobDir::Unsupported => {
                return Err(at(
                    self.sql,
                    span,
                    SqlProblem::Unsupported {
                        construct: format!("the glob '{text}'"),
                        hint: "; globs are not supported yet, except 'dir/*.parquet' (all the \
                               Parquet parts of a directory): name the directory instead"
                            .into(),
                    },
                ))
            }
        };
        let source = Source::open(path, format, read).map_err(|e| at(self.sql, span, e))?;
        Ok(LogicalPlan::Scan(source))
    }

    fn path(&self, text: &str) -> PathBuf {
        let p = Path::new(text);
        match self.base_dir {
            Some(base) if p.is_relative() => base.join(p),
            _ => p.to_path_buf(),
        }
    }

    /// `plan` seen under its alias (or `default`), its columns renamed by the
    /// alias's column list.
    fn aliased(
        &self,
        plan: LogicalPlan,
        default: Option<String>,
        alias: Option<&ast::TableAlias>,
        span: SqlSpan,
    ) -> Result<(LogicalPlan, Scope)> {
        let schema = plan.schema().map_err(|e| at(self.sql, span, e))?;
        let Some(alias) = alias else {
            let scope = Scope {
                names: default.into_iter().collect(),
                schema,
            };
            return Ok((plan, scope));
        };
        if alias.at.is_some() {
            return Err(self.unsupported(span, "AT in a table alias"));
        }
        if alias.columns.iter().any(|c| c.data_type.is_some()) {
            return Err(self.unsupported(span, "types in a table alias's column list"));
        }
        let scope_names = vec![alias.name.value.clone()];
        if alias.columns.is_empty() {
            return Ok((
                plan,
                Scope {
                    names: scope_names,
                    schema,
                },
            ));
        }
        let fields = schema.fields();
        if alias.columns.len() > fields.len() {
            return Err(at(
                self.sql,
                alias.name.span,
                SqlProblem::AliasColumns {
                    alias: alias.name.value.clone(),
                    given: alias.columns.len(),
                    columns: fields.len(),
                },
            ));
        }
        // DuckDB renames the first columns and keeps the others' names.
        let exprs = fields
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let name = alias
                    .columns
                    .get(i)
                    .map_or_else(|| f.name().clone(), |c| c.name.value.clone());
                (Expr::Column(f.name().clone()), name)
            })
            .collect();
        let plan = LogicalPlan::Project {
            input: Box::new(plan),
            exprs,
        };
        let schema = plan.schema().map_err(|e| at(self.sql, span, e))?;
        Ok((
            plan,
            Scope {
                names: scope_names,
                schema,
            },
        ))
    }
}

/// The name a file's table is known by without an alias: its stem (`x` for
/// `dir/x.csv`), as DuckDB binds it.
fn stem(text: &str) -> String {
    Path::new(text)
        .file_stem()
        .map_or_else(|| text.to_string(), |s| s.to_string_lossy().into_owned())
}

/// `read_csv`'s `blocksize`: bytes (`1048576`) or a size (`'64MiB'`, as
/// `--blocksize` reads it).
fn blocksize(value: &Ast) -> std::result::Result<u64, String> {
    let given = match (string(value), integer(value)) {
        (Some(text), _) => crate::grid::size::parse_bytes(&text),
        (None, Some(n)) if n > 0 => Ok(n),
        _ => Err("must be at least 1 byte".into()),
    };
    given.map_err(|reason| {
        format!("blocksize {value} {reason} (give bytes, or a size such as '64MiB')")
    })
}

/// Column types given to `read_csv`: by name (a struct) or by position (a list).
enum ColumnTypes {
    ByName(Vec<(String, DataType)>),
    ByPosition(Vec<DataType>),
}

/// `types={'v1': 'DOUBLE'}` or `types=['VARCHAR', 'DOUBLE']`, DuckDB's type names.
/// An error carries the span of the type at fault when it has one.
fn column_types(
    key: &str,
    value: &Ast,
) -> std::result::Result<ColumnTypes, (Option<SqlSpan>, String)> {
    let type_of = |e: &Ast| -> std::result::Result<DataType, (Option<SqlSpan>, String)> {
        let here = Some(e.span()).filter(|s| *s != SqlSpan::empty());
        let Some(text) = string(e) else {
            return Err((
                here,
                format!("{key}: a type is a name in single quotes, not {e}"),
            ));
        };
        sql_type_name(&text).ok_or_else(|| {
            let reason =
                format!("{key}: '{text}' is not a type blockwise reads; the types are {SQL_TYPES}");
            (here, reason)
        })
    };
    match value {
        Ast::Dictionary(fields) => {
            let mut named: Vec<(String, DataType)> = Vec::with_capacity(fields.len());
            for field in fields {
                let name = field.key.value.clone();
                if named.iter().any(|(n, _)| *n == name) {
                    let reason = format!("{key}: the column {name} is given twice");
                    return Err((Some(field.key.span), reason));
                }
                named.push((name, type_of(&field.value)?));
            }
            Ok(ColumnTypes::ByName(named))
        }
        Ast::Array(list) => list
            .elem
            .iter()
            .map(type_of)
            .collect::<std::result::Result<_, _>>()
            .map(ColumnTypes::ByPosition),
        other => Err((
            None,
            format!(
                "{key} is a struct of column names and types ({{'v1': 'DOUBLE'}}) or a list \
                 of types by position (['VARCHAR', 'DOUBLE']), not {other}"
            ),
        )),
    }
}

/// DuckDB's type names a CSV column can be read as.
const SQL_TYPES: &str = "BOOLEAN, TINYINT, SMALLINT, INTEGER, BIGINT, UTINYINT, USMALLINT, \
                         UINTEGER, UBIGINT, FLOAT, DOUBLE, VARCHAR, DATE, TIMESTAMP (and their \
                         aliases: INT, INT8, REAL, TEXT, ...)";

/// The Arrow type of a DuckDB type name, as `CAST(x AS name)` reads it.
fn sql_type_name(text: &str) -> Option<DataType> {
    let dialect = sqlparser::dialect::DuckDbDialect {};
    let mut parser = sqlparser::parser::Parser::new(&dialect)
        .try_with_sql(text)
        .ok()?;
    let parsed = parser.parse_data_type().ok()?;
    // The whole text is the type: `'DOUBLE x'` is not one.
    if parser.peek_token().token != sqlparser::tokenizer::Token::EOF {
        return None;
    }
    super::expr::sql_type(&parsed).ok().map(|(t, _)| t)
}

fn string(e: &Ast) -> Option<String> {
    match e {
        Ast::Value(v) => match &v.value {
            Value::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn boolean(e: &Ast) -> Option<bool> {
    match e {
        Ast::Value(v) => match &v.value {
            Value::Boolean(b) => Some(*b),
            Value::Number(n, _) if n == "1" => Some(true),
            Value::Number(n, _) if n == "0" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn integer(e: &Ast) -> Option<u64> {
    match e {
        Ast::Value(v) => match &v.value {
            Value::Number(n, _) => n.replace('_', "").parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The constant of a LIMIT or OFFSET.
pub(crate) fn constant_count(e: &Ast) -> Option<u64> {
    integer(e)
}
