//! Writing a book into a folder as files of the interchange format (CSV or Parquet): the
//! store's export and `expansa export`.

use crate::StoreError;
use expansa_import::schema::FILES;
use expansa_import::{
    write_table_from, BookFormat, BookSource, Progress, TextEncoding, WriteError,
};
use std::path::{Path, PathBuf};

/// What [`crate::Store::export`] does with a folder that already holds files of a book.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExistingBook {
    /// Refuse, writing nothing: two books are never mixed in one folder.
    #[default]
    Refuse,
    /// Replace that book: its interchange files are overwritten, and those the exported book
    /// has not are removed (other files are left alone).
    Replace,
}

/// The files of a book (of either format) that `dir` holds.
fn held_files(dir: &Path) -> Vec<String> {
    FILES
        .iter()
        .flat_map(|schema| [BookFormat::Csv, BookFormat::Parquet].map(|f| f.file_name(schema)))
        .filter(|name| dir.join(name).symlink_metadata().is_ok())
        .collect()
}

/// Refuses a folder that holds files of a book (CSV or Parquet), unless `existing` replaces it.
pub(crate) fn refuse_held(dir: &Path, existing: ExistingBook) -> Result<(), StoreError> {
    let held = held_files(dir);
    if !held.is_empty() && existing == ExistingBook::Refuse {
        return Err(StoreError::Conflict(format!(
            "{} already holds files of a book ({}): nothing was written, so that two books \
             are never mixed in one folder; export into an empty or new folder, or give \
             --force to replace that book's files",
            dir.display(),
            held.join(", ")
        )));
    }
    Ok(())
}

/// Files being written, removed unless they were all moved in.
struct Partial(Vec<(PathBuf, String)>);

impl Drop for Partial {
    fn drop(&mut self) {
        for (path, _) in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A new hidden file in `dir` to write `name` into: `.NAME.PID.partial`, or `.NAME.PID-K.partial`
/// when that is taken (a file is never overwritten: one left by an export that was killed stays).
fn temporary(
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, std::fs::File), (PathBuf, std::io::Error)> {
    let pid = std::process::id();
    let mut k = 0;
    loop {
        let suffix = if k == 0 {
            String::new()
        } else {
            format!("-{k}")
        };
        let path = dir.join(format!(".{name}.{pid}{suffix}.partial"));
        let open = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match open {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && k < 100 => k += 1,
            Err(e) => return Err((path, e)),
        }
    }
}

/// Writes the book `source` holds (its files read in `encoding` by the import's reader) into
/// `dir` as files of `format`, and returns their names: each table as
/// [`expansa_import::write_table_from`] writes it, a chunk of rows at a time, so that a book of
/// any size is written in bounded memory. `progress` follows each table's writing.
///
/// All or nothing: each file is written under a hidden temporary name in `dir`
/// (`.subscriptions.parquet.PID.partial`, never overwriting a file), and only when every table has been written are they
/// renamed to their names; a table that does not read, or a failed write, leaves the folder as
/// it was (the temporary files are removed). A folder that already holds a file named like one
/// of the interchange format's (CSV or Parquet) is another book (or an earlier export): it is
/// refused, writing nothing, unless `existing` is [`ExistingBook::Replace`] (then the book's
/// files are replaced, and those of its files the new book has not are removed); an empty or
/// new folder, or one with other files only, is written into.
pub fn write_book(
    dir: &Path,
    source: &dyn BookSource,
    encoding: TextEncoding,
    existing: ExistingBook,
    format: BookFormat,
    progress: &dyn Progress,
) -> Result<Vec<String>, StoreError> {
    let io = |path: &Path, error| StoreError::Io {
        path: path.display().to_string(),
        error,
    };
    refuse_held(dir, existing)?;
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut partial = Partial(Vec::new());
    for schema in &FILES {
        let name = format.file_name(schema);
        let (path, file) = temporary(dir, &name).map_err(|(path, e)| io(&path, e))?;
        partial.0.push((path.clone(), name));
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        match write_table_from(source, schema, encoding, format, progress, out) {
            Ok(Some(out)) => out
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&path, e))?,
            Ok(None) => {
                partial.0.pop();
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
            Err(WriteError::Book(problems)) => return Err(StoreError::Book(problems)),
            Err(WriteError::Io(e)) => return Err(io(&path, e)),
        }
    }
    // Every table is written: the book's files are put in place.
    if existing == ExistingBook::Refuse {
        refuse_held(dir, existing)?;
    }
    for name in held_files(dir) {
        if !partial.0.iter().any(|(_, n)| *n == name) {
            let path = dir.join(&name);
            std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
        }
    }
    let written = std::mem::take(&mut partial.0);
    let mut names = Vec::with_capacity(written.len());
    for (k, (from, name)) in written.iter().enumerate() {
        // A rename replaces a link itself, never writes through it (it could point at another
        // book's file outside the folder).
        let to = dir.join(name);
        if let Err(e) = std::fs::rename(from, &to) {
            partial.0 = written[k..].to_vec();
            return Err(io(&to, e));
        }
        names.push(name.clone());
    }
    Ok(names)
}
