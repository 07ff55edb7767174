//! Warehouse tables (the CSV files Fivetran and Airbyte sync) read whole and by column name,
//! and the refusal of one of their rows: what the Recurly and Zuora converters share.

use crate::input::{display_name, field, Table};
use crate::money;
pub(crate) use crate::report::{refusal, Refusal};
use crate::Context;
use expansa_import::{Problem, SharedRecord as Record};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::path::Path;

/// A table read whole.
pub(crate) struct Loaded {
    pub file: String,
    pub table_names: Vec<String>,
    pub rows: Vec<Record>,
}

impl Loaded {
    /// Reads the table at `path`; one problem when a `required` column is missing (`what` says
    /// what the file should be).
    pub fn read(
        path: &Path,
        ctx: &Context,
        required: &[&str],
        what: &str,
    ) -> Result<Loaded, Problem> {
        let mut t = Table::open(path, ctx.options.encoding)?;
        for name in required {
            t.columns([*name], what)?;
        }
        let mut rows = Vec::new();
        while let Some(r) = t.next_row()? {
            rows.push(r);
        }
        Ok(Loaded {
            file: display_name(path),
            table_names: t.names().to_vec(),
            rows,
        })
    }

    /// The position of a column (names are lower-case).
    pub fn col(&self, name: &str) -> Option<usize> {
        self.table_names.iter().position(|n| n == name)
    }
}

/// Reports a row refused.
pub(crate) fn refuse(ctx: &mut Context, file: &str, line: u64, id: &str, r: Refusal) {
    ctx.report.refuse(file, line, id, r);
}

/// Reads a row's cells by column name (each converter adds its own readers).
pub(crate) struct Cells<'a> {
    pub t: &'a Loaded,
    pub r: &'a Record,
}

impl<'a> Cells<'a> {
    pub fn text(&self, col: &str) -> Option<&'a str> {
        field(self.r, self.t.col(col))
    }

    pub fn required(&self, col: &str) -> Result<&'a str, Refusal> {
        self.text(col)
            .ok_or_else(|| refusal("bad_value", col, "", "is empty: a value is required"))
    }

    /// A decimal at least 0; `None` when empty.
    pub fn amount(&self, col: &str) -> Result<Option<Decimal>, Refusal> {
        let Some(t) = self.text(col) else {
            return Ok(None);
        };
        match money::decimal(t) {
            Ok(d) if d.is_sign_negative() && !d.is_zero() => Err(refusal(
                "bad_value",
                col,
                t,
                "is negative: an amount or quantity is at least 0",
            )),
            Ok(d) => Ok(Some(d.normalize())),
            Err(e) => Err(refusal("bad_value", col, t, &e)),
        }
    }

    /// [`Cells::amount`], required.
    pub fn required_amount(&self, col: &str) -> Result<Decimal, Refusal> {
        self.amount(col)?
            .ok_or_else(|| refusal("bad_value", col, "", "is empty: a value is required"))
    }
}

/// Why a row that other rows name cannot be used, said as the end of a sentence about it.
pub(crate) trait Unusable {
    /// E.g. `"account 7 is refused (accounts.csv:3)"`, for the `what` `id` of `file`.
    fn why(&self, what: &str, id: &str, file: &str) -> String;
}

/// The line that refused it.
impl Unusable for u64 {
    fn why(&self, what: &str, id: &str, file: &str) -> String {
        format!("{what} {id} is refused ({file}:{self})")
    }
}

/// The `what` `id` a row names (in `column`) from `file`, read before into `known`; refused
/// (`missing_reference`) when `file` has none, or has one that cannot be used.
pub(crate) fn reference<'m, T, U: Unusable>(
    known: &'m HashMap<String, Result<T, U>>,
    file: &str,
    what: &str,
    column: &str,
    id: &str,
) -> Result<&'m T, Refusal> {
    match known.get(id) {
        None => Err(refusal(
            "missing_reference",
            column,
            id,
            &format!("no {what} {id} in {file}"),
        )),
        Some(Err(u)) => Err(refusal(
            "missing_reference",
            column,
            id,
            &u.why(what, id, file),
        )),
        Some(Ok(t)) => Ok(t),
    }
}
