//! Writing a book into a folder as files of the interchange format (CSV or Parquet): the
//! store's export and `expansa export`.

use crate::StoreError;
use expansa_import::schema::FILES;
use expansa_import::{
    book_file_names, write_table_from, BookFormat, BookSource, Progress, TextEncoding, WriteError,
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
    book_file_names()
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

/// A book file written under its temporary name.
struct Written {
    /// Where it is written (`.NAME.PID.partial`).
    path: PathBuf,
    /// Its name in the book.
    name: String,
    /// The permissions it would have as a new file (it is private while written).
    mode: std::fs::Permissions,
}

/// Files being written, removed unless they were all moved in; and the folders the export
/// made (innermost first), removed when it fails and leaves them empty.
struct Partial {
    files: Vec<Written>,
    made_dirs: Vec<PathBuf>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        for Written { path, .. } in &self.files {
            let _ = std::fs::remove_file(path);
        }
        for dir in &self.made_dirs {
            // Only an empty folder is removed.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// The folders `dir` and its parents that do not exist yet, innermost first.
fn missing_folders(dir: &Path) -> Vec<PathBuf> {
    dir.ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && d.symlink_metadata().is_err())
        .map(Path::to_path_buf)
        .collect()
}

/// The permissions a new file gets here (the process's umask applied), and the file made
/// private (`0600`) while it is written.
#[cfg(unix)]
fn private(file: &std::fs::File) -> std::io::Result<std::fs::Permissions> {
    use std::os::unix::fs::PermissionsExt;
    let default = file.metadata()?.permissions();
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(default)
}

#[cfg(not(unix))]
fn private(file: &std::fs::File) -> std::io::Result<std::fs::Permissions> {
    Ok(file.metadata()?.permissions())
}

/// A hidden name for book file `name` in its folder, of this process: `.NAME.PID.EXT`, or
/// `.NAME.PID-K.EXT` past the first (`partial` while written, `old` when moved aside).
fn hidden_name(name: &str, k: u32, ext: &str) -> String {
    let pid = std::process::id();
    let suffix = if k == 0 {
        String::new()
    } else {
        format!("-{k}")
    };
    format!(".{name}.{pid}{suffix}.{ext}")
}

/// A new hidden file in `dir` to write `name` into: `.NAME.PID.partial`, or `.NAME.PID-K.partial`
/// when that is taken (a file is never overwritten).
fn temporary(
    dir: &Path,
    name: &str,
) -> Result<(PathBuf, std::fs::File), (PathBuf, std::io::Error)> {
    let mut k = 0;
    loop {
        let path = dir.join(hidden_name(name, k, "partial"));
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

/// Removes the temporary files that exports interrupted before they could (a signal, a crash)
/// left in `dir`: `.NAME.PID[-K].partial` of a book file's name, whose process is gone. Where
/// processes cannot be looked up (no `/proc`), nothing is removed. (`.NAME.PID.old`, a book
/// file moved aside by an export interrupted while it replaced the book, may be the only copy
/// of that file: it is left for its owner.)
fn remove_left_behind(dir: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let names: Vec<String> = book_file_names().collect();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        let Some(rest) = file.strip_prefix('.') else {
            continue;
        };
        let Some((name, tail)) = names
            .iter()
            .find_map(|n| Some((n, rest.strip_prefix(n.as_str())?.strip_prefix('.')?)))
        else {
            continue;
        };
        let pid = tail
            .strip_suffix(".partial")
            .map(|t| t.split_once('-').map_or(t, |(pid, _)| pid));
        let Some(pid) = pid.filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let alive = Path::new("/proc").join(pid).exists();
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        if !alive && is_file {
            let _ = std::fs::remove_file(entry.path());
            tracing::info!("removed {name}'s temporary file {file}, left by an interrupted export");
        }
    }
}

/// Writes the book `source` holds (its files read in `encoding` by the import's reader) into
/// `dir` as files of `format`, and returns their names: each table as
/// [`expansa_import::write_table_from`] writes it, a chunk of rows at a time, so that a book of
/// any size is written in the memory of a chunk. `progress` follows each table's writing.
/// `unchanged` is asked, once every table is written, whether the source is still what was
/// validated (an error stops the export).
///
/// All or nothing: each file is written under a hidden temporary name in `dir`
/// (`.subscriptions.parquet.PID.partial`, never overwriting a file), and only when every table
/// has been written is the folder's book replaced: its files are moved aside (to
/// `.NAME.PID.old`), the new ones renamed in, and the old ones removed; if a move fails, what
/// was moved is moved back. A failure leaves the folder as it was (a folder the export made is
/// removed). A folder that already holds a file named like one of the interchange format's
/// (CSV or Parquet) is another book (or an earlier export): it is refused, writing nothing,
/// unless `existing` is [`ExistingBook::Replace`] (then the book's files are replaced, and
/// those of its files the new book has not are removed); a folder under such a name is refused
/// even then. An empty or new folder, or one with other files only, is written into. Temporary
/// files that an interrupted export left (its process gone) are removed first.
pub fn write_book(
    dir: &Path,
    source: &dyn BookSource,
    encoding: TextEncoding,
    existing: ExistingBook,
    format: BookFormat,
    progress: &dyn Progress,
    unchanged: &dyn Fn() -> Result<(), StoreError>,
) -> Result<Vec<String>, StoreError> {
    let io = |path: &Path, error| StoreError::Io {
        path: path.display().to_string(),
        error,
    };
    if dir.symlink_metadata().is_ok() && !dir.is_dir() {
        return Err(StoreError::Conflict(format!(
            "{} is a file, not a folder: nothing was written",
            dir.display()
        )));
    }
    refuse_held(dir, existing)?;
    refuse_folders(dir)?;
    let mut partial = Partial {
        files: Vec::new(),
        made_dirs: missing_folders(dir),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    // One export into a folder at a time (two replacing one book could mix them).
    let folder = std::fs::File::open(dir).map_err(|e| io(dir, e))?;
    match folder.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(StoreError::Conflict(format!(
                "another export is writing into {}: nothing was written; export again when it \
                 is done",
                dir.display()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(io(dir, e)),
    }
    remove_left_behind(dir);
    for schema in &FILES {
        let name = format.file_name(schema);
        let (path, file) = temporary(dir, &name).map_err(|(path, e)| io(&path, e))?;
        let mode = private(&file);
        partial.files.push(Written {
            path: path.clone(),
            name,
            mode: mode.map_err(|e| io(&path, e))?,
        });
        let out = std::io::BufWriter::with_capacity(1 << 20, file);
        match write_table_from(source, schema, encoding, format, progress, out) {
            Ok(Some(out)) => out
                .into_inner()
                .map_err(|e| e.into_error())
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&path, e))?,
            Ok(None) => {
                partial.files.pop();
                std::fs::remove_file(&path).map_err(|e| io(&path, e))?;
            }
            // A source that changed since it was validated is the cause of what follows.
            Err(WriteError::Book(problems)) => {
                unchanged()?;
                return Err(StoreError::Book(problems));
            }
            Err(WriteError::Io(e)) => return Err(io(&path, e)),
        }
    }
    unchanged()?;
    // Every table is written: the folder's book is replaced.
    refuse_held(dir, existing)?;
    refuse_folders(dir)?;
    let names: Vec<String> = partial.files.iter().map(|w| w.name.clone()).collect();
    install(dir, &mut partial.files)?;
    partial.made_dirs.clear();
    // The renames are kept once the folder is synced (where a folder can be).
    let _ = folder.sync_all();
    Ok(names)
}

/// Refuses a folder under a book file's name in `dir` (it cannot be replaced by a file).
fn refuse_folders(dir: &Path) -> Result<(), StoreError> {
    let folders: Vec<String> = held_files(dir)
        .into_iter()
        .filter(|name| dir.join(name).symlink_metadata().is_ok_and(|m| m.is_dir()))
        .collect();
    if folders.is_empty() {
        return Ok(());
    }
    Err(StoreError::Conflict(format!(
        "{} holds folders named like files of a book ({}): nothing was written",
        dir.display(),
        folders.join(", ")
    )))
}

/// Puts the written files in place of the folder's book: the book's files moved aside (to a name that
/// is not taken, `.NAME.PID.old`), the new ones renamed in (with the permissions of the file they
/// replace, else of a new file), the old ones removed. On a failure what was moved is moved back
/// and `written` keeps the temporary files still to remove; the error says what failed, and
/// where the book's files are if they could not all be moved back.
fn install(dir: &Path, written: &mut Vec<Written>) -> Result<(), StoreError> {
    // A rename replaces a link itself, never writes through it (it could point at another
    // book's file outside the folder).
    let mut aside: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut placed: Vec<(PathBuf, PathBuf)> = Vec::new();
    let failed = |aside: &[(PathBuf, PathBuf)],
                  placed: &[(PathBuf, PathBuf)],
                  path: &Path,
                  what: &str,
                  e: std::io::Error| {
        let mut stuck = Vec::new();
        for (to, from) in placed.iter().rev() {
            if std::fs::rename(to, from).is_err() {
                stuck.push(format!("{} (the new file)", to.display()));
            }
        }
        for (from, to) in aside.iter().rev() {
            if std::fs::rename(to, from).is_err() {
                stuck.push(format!("{} is at {}", from.display(), to.display()));
            }
        }
        let after = if stuck.is_empty() {
            "; the folder is as it was".to_string()
        } else {
            format!("; the book could not all be put back: {}", stuck.join(", "))
        };
        StoreError::Io {
            path: path.display().to_string(),
            error: std::io::Error::new(e.kind(), format!("{what}: {e}{after}")),
        }
    };
    for name in held_files(dir) {
        let from = dir.join(&name);
        let to = (0..)
            .map(|k| dir.join(hidden_name(&name, k, "old")))
            .find(|p| p.symlink_metadata().is_err())
            .unwrap_or_else(|| dir.join(hidden_name(&name, 0, "old")));
        if let Err(e) = std::fs::rename(&from, &to) {
            let what = "could not move the book's file aside to replace it";
            return Err(failed(&aside, &placed, &from, what, e));
        }
        aside.push((from, to));
    }
    for Written {
        path: from,
        name,
        mode,
    } in written.iter()
    {
        let to = dir.join(name);
        let mode = aside
            .iter()
            .find(|(f, _)| *f == to)
            .and_then(|(_, old)| old.metadata().ok())
            .map_or_else(|| mode.clone(), |m| m.permissions());
        let renamed =
            std::fs::set_permissions(from, mode).and_then(|()| std::fs::rename(from, &to));
        if let Err(e) = renamed {
            return Err(failed(
                &aside,
                &placed,
                &to,
                "could not put the new file in place",
                e,
            ));
        }
        placed.push((to, from.clone()));
    }
    written.clear();
    for (_, old) in aside {
        let _ = std::fs::remove_file(old);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut names: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    std::fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        names.sort();
        names
    }

    /// A rename that fails while the book is replaced (here the second new file is missing)
    /// puts back what was moved: the old book in place, the new files at their temporary
    /// names (which the caller then removes).
    #[test]
    fn a_failed_replacement_puts_the_old_book_back() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for (name, body) in [
            ("customers.csv", "old c"),
            ("subscriptions.csv", "old s"),
            ("offers.csv", "old o"),
        ] {
            std::fs::write(d.join(name), body).unwrap();
        }
        std::fs::write(d.join(".customers.csv.1.partial"), "new c").unwrap();
        let before = listing(d);
        let mode = std::fs::metadata(d.join("customers.csv"))
            .unwrap()
            .permissions();
        let written = |path: &str, name: &str| Written {
            path: d.join(path),
            name: name.to_string(),
            mode: mode.clone(),
        };
        let mut written = vec![
            written(".customers.csv.1.partial", "customers.csv"),
            written(".subscriptions.csv.1.partial", "subscriptions.csv"),
        ];
        let failed = install(d, &mut written).unwrap_err();
        assert!(
            matches!(&failed, StoreError::Io { path, error } if *path == d.join("subscriptions.csv").display().to_string() && error.to_string().contains("the folder is as it was")),
            "{failed:?}"
        );
        assert_eq!(listing(d), before);
        assert_eq!(written.len(), 2, "the temporary files are still to remove");
        // Both written: the old book is replaced whole, offers.csv (not in it) removed.
        std::fs::write(d.join(".subscriptions.csv.1.partial"), "new s").unwrap();
        install(d, &mut written).unwrap();
        assert_eq!(
            listing(d),
            [
                ("customers.csv".to_string(), b"new c".to_vec()),
                ("subscriptions.csv".to_string(), b"new s".to_vec())
            ]
        );
    }

    /// An interrupted export's temporary files are removed when its process is gone; a live
    /// process's, a moved-aside book file and other files are kept.
    #[test]
    fn temporary_files_of_interrupted_exports_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // Process numbers past the kernel's largest (4194304) belong to no process.
        let gone = 4_194_305u32;
        let me = std::process::id();
        let files = [
            format!(".subscriptions.csv.{gone}.partial"),
            format!(".customers.parquet.{gone}-3.partial"),
            format!(".subscriptions.csv.{me}.partial"),
            format!(".offers.csv.{gone}.old"),
            format!(".notes.txt.{gone}.partial"),
            "subscriptions.csv".to_string(),
        ];
        for f in &files {
            std::fs::write(d.join(f), "x").unwrap();
        }
        remove_left_behind(d);
        let left: Vec<String> = listing(d).into_iter().map(|(n, _)| n).collect();
        let mut kept = vec![
            files[2].clone(),
            files[3].clone(),
            files[4].clone(),
            files[5].clone(),
        ];
        kept.sort();
        assert_eq!(left, kept);
    }
}
