//! Writing a book's tables out as files: what `expansa export` and the store's export write.
//!
//! A table is read by the import's one reader ([`crate::read_rows_in`]'s rows: canonical
//! text) twice, a chunk at a time: first for its shape (the columns the format does not know,
//! in the order first met, and for Parquet each decimal column's scale), then for its rows,
//! written as they are read. A table of any size is written in bounded memory: the reader's
//! chunks, and for Parquet the row group being written (up to 1,048,576 rows, encoded).

use crate::parquet::{self, Shape};
use crate::problem::{BookErrors, Problem};
use crate::rows::{for_each_chunk, read_outcome, CsvRows, RawRow};
use crate::schema::{ColumnKind, Schema};
use crate::{table, BookFormat, BookSource, NoProgress, Progress, TextEncoding};
use std::io::Write;

/// Why a table could not be written.
#[derive(Debug)]
pub enum WriteError {
    /// The table does not read (its problems, as the import lists them).
    Book(BookErrors),
    /// Writing to `out` failed.
    Io(std::io::Error),
}

impl From<BookErrors> for WriteError {
    fn from(e: BookErrors) -> WriteError {
        WriteError::Book(e)
    }
}

/// Writes `schema`'s file of `source` (read in `encoding`) to `out` as a file of `format`:
/// for CSV the canonical columns then the extra ones ([`crate::write_rows`]'s file); for
/// Parquet [`parquet::write_table`]'s file. `Ok(None)` when the source has no such file
/// (nothing is written to `out`); else `out`, written and flushed. `progress` follows the
/// second read (the one that writes).
///
/// Errors: the table's problems when it does not read (what the import reports), or the
/// error of writing to `out`; `out` then holds part of a file.
pub fn write_table_from<W: Write + Send>(
    source: &dyn BookSource,
    schema: &Schema,
    encoding: TextEncoding,
    format: BookFormat,
    progress: &dyn Progress,
    out: W,
) -> Result<Option<W>, WriteError> {
    let Some(shape) = shape_of(source, schema, encoding, format)? else {
        return Ok(None);
    };
    let mut failed: Option<WriteError> = None;
    let written = match format {
        BookFormat::Csv => {
            let mut w = CsvRows::new(schema, &shape.extra, out).map_err(WriteError::Io)?;
            for_each_chunk(source, schema, encoding, progress, |rows| {
                if failed.is_some() {
                    return;
                }
                if let Err(e) = rows.iter().try_for_each(|r| w.row(&r.values, &r.extra)) {
                    failed = Some(WriteError::Io(e));
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            w.finish().map_err(WriteError::Io)?
        }
        BookFormat::Parquet => {
            let arrow = shape.arrow_schema(schema);
            let mut w = parquet::writer(&arrow, out).map_err(io_other)?;
            for_each_chunk(source, schema, encoding, progress, |rows: Vec<RawRow>| {
                if failed.is_some() {
                    return;
                }
                let written = parquet::batch(schema, &shape, &arrow, &rows)
                    .map_err(|reason| {
                        let file = parquet::parquet_name(schema);
                        WriteError::Book(BookErrors(
                            vec![Problem::new(&file, 0, "file", "", &reason)],
                            0,
                        ))
                    })
                    .and_then(|b| w.write(&b).map_err(parquet_error));
                if let Err(e) = written {
                    failed = Some(e);
                }
            })?;
            if let Some(e) = failed {
                return Err(e);
            }
            w.into_inner()
                .map_err(parquet_error)
                .and_then(|mut out| out.flush().map(|()| out).map_err(WriteError::Io))?
        }
    };
    Ok(Some(written))
}

fn io_other(e: String) -> WriteError {
    WriteError::Io(std::io::Error::other(e))
}

/// The Parquet writer's error: the I/O error it wraps (a full disk), else its text.
fn parquet_error(e: ::parquet::errors::ParquetError) -> WriteError {
    match e {
        ::parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => WriteError::Io(*io),
                Err(other) => io_other(other.to_string()),
            }
        }
        other => io_other(other.to_string()),
    }
}

/// The first read: the table's shape (`Ok(None)` when the file is absent). Every problem of
/// the table is found here, before anything is written.
fn shape_of(
    source: &dyn BookSource,
    schema: &Schema,
    encoding: TextEncoding,
    format: BookFormat,
) -> Result<Option<Shape>, BookErrors> {
    let decimals = format == BookFormat::Parquet;
    let mut shape = Shape::default();
    let read = table::read(
        source,
        schema,
        &NoProgress,
        encoding,
        |r, chunk: &mut Shape| {
            // The values the second read parses, parsed here for their problems.
            for k in 0..schema.columns.len() {
                if schema.kinds[k] == ColumnKind::Integer {
                    let _ = r.integer(k, false, i64::MIN);
                }
            }
            let values = (0..schema.columns.len())
                .filter(|&k| schema.kinds[k] == ColumnKind::Decimal)
                .filter_map(|k| Some((k, r.decimal(k, false).ok().flatten()?)))
                .filter(|_| decimals);
            let extra = r
                .extra_columns()
                .enumerate()
                .filter(|&(k, _)| r.extra_text(k).is_some())
                .map(|(_, name)| name);
            chunk.note(schema, values, extra);
        },
        |chunk, _| shape.merge(chunk),
    );
    Ok(read_outcome(source, read)?.map(|()| shape))
}
