//! External hash partitioning: the rows of a large table spread over bucket files by the hash
//! of a key, so that a pass over one bucket holds only its share of the rows in memory, and
//! every row of one key is in the same bucket.
//!
//! A bucket file is CSV: its first column (unnamed) is the line of the file the row came from,
//! then the row's own fields under that file's header. [`crate::input::Table::open_bucket`]
//! reads it back with the source's file name and line numbers, so that what is said of a row
//! names the user's file and line.

use crate::book::CsvFile;
use expansa_import::{Problem, SharedRecord as Record};
use std::io;
use std::path::{Path, PathBuf};

/// The most buckets a partition has (the files a pass writes to at once).
pub const MAX_BUCKETS: usize = 256;

/// The bucket of `key` among `k` (at least one): the same on every run and platform (FNV-1a,
/// its bits then mixed so that keys differing only in their last characters spread).
pub fn bucket_of(key: &str, k: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    (h % k.clamp(1, MAX_BUCKETS) as u64) as usize
}

/// How many buckets `bytes` of rows take at `per_bucket` bytes each: one for a small input,
/// at most [`MAX_BUCKETS`].
pub fn buckets_for(bytes: u64, per_bucket: u64) -> usize {
    usize::try_from(bytes.div_ceil(per_bucket.max(1)))
        .unwrap_or(MAX_BUCKETS)
        .clamp(1, MAX_BUCKETS)
}

/// The size in bytes of the files at `paths` that are there.
pub fn size_of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> u64 {
    paths
        .into_iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

/// One table's bucket files (`NAME-0.csv` ... in a work folder), each starting with the
/// header; rows are appended by a [`BucketWriter`].
pub(crate) struct Buckets {
    /// The source file the rows come from, as problems name it.
    pub file: String,
    /// The source file's header (without the line column).
    pub names: Vec<String>,
    paths: Vec<PathBuf>,
}

/// Bytes buffered per bucket file being written.
const BUFFER: usize = 64 << 10;

impl Buckets {
    /// Creates `k` bucket files named `name` in `dir` for rows of the source file `file` whose
    /// header is `names`.
    pub fn create(
        dir: &Path,
        name: &str,
        file: &str,
        names: &[String],
        k: usize,
    ) -> io::Result<Buckets> {
        let header: Vec<&str> = std::iter::once("")
            .chain(names.iter().map(String::as_str))
            .collect();
        let mut paths = Vec::with_capacity(k);
        for i in 0..k.clamp(1, MAX_BUCKETS) {
            let path = dir.join(format!("{name}-{i}.csv"));
            CsvFile::create(&path, &header)?.flush()?;
            paths.push(path);
        }
        Ok(Buckets {
            file: file.to_string(),
            names: names.to_vec(),
            paths,
        })
    }

    /// How many buckets there are (at least one).
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// The file of bucket `i`.
    pub fn path(&self, i: usize) -> Option<&Path> {
        self.paths.get(i).map(PathBuf::as_path)
    }

    /// Appends rows to the buckets (every file open until the writer is finished).
    pub fn writer(&self) -> io::Result<BucketWriter> {
        let files = self
            .paths
            .iter()
            .map(|p| CsvFile::append(p, BUFFER))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(BucketWriter { files })
    }

    /// Removes bucket `i`'s file (read for the last time).
    pub fn remove(&self, i: usize) -> io::Result<()> {
        match self.paths.get(i) {
            Some(p) => std::fs::remove_file(p),
            None => Ok(()),
        }
    }
}

/// Rows being appended to a table's buckets.
pub(crate) struct BucketWriter {
    files: Vec<CsvFile>,
}

impl BucketWriter {
    /// Appends a row of the source's `line` to the bucket of `key`: the fields of `record`
    /// from its `skip`-th (a record read from a bucket carries its line first: skip 1).
    pub fn write(&mut self, key: &str, line: u64, record: &Record, skip: usize) -> io::Result<()> {
        self.write_to(bucket_of(key, self.files.len()), line, record, skip)
    }

    /// [`BucketWriter::write`] to bucket `i` (a key's bucket found before).
    pub fn write_to(
        &mut self,
        i: usize,
        line: u64,
        record: &Record,
        skip: usize,
    ) -> io::Result<()> {
        let Some(w) = self.files.get_mut(i) else {
            return Ok(());
        };
        w.shown(line);
        for field in record.iter().skip(skip) {
            w.text(field);
        }
        w.end()
    }

    /// Writes what is buffered.
    pub fn finish(mut self) -> io::Result<()> {
        self.files.iter_mut().try_for_each(CsvFile::flush)
    }
}

/// A work folder inside the folder a conversion writes into, removed with everything in it
/// when dropped (the conversion done, or given up).
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `dir/name` (a name starting with `.`, which no book file has).
    pub fn create(dir: &Path, name: &str) -> io::Result<WorkDir> {
        let path = dir.join(name);
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir(path))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        // Best effort: a folder that cannot be removed is thrown away with the conversion's.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The problem of a work file in the folder `dir` that cannot be written or read (the disk
/// full, the folder read-only): the folder's whole path, as the user must find it.
pub(crate) fn work_problem(dir: &Path, e: io::Error) -> Problem {
    Problem::new(
        &dir.display().to_string(),
        0,
        "folder",
        "",
        &format!("a temporary file of the conversion cannot be written there: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_stable_and_spread() {
        assert_eq!(bucket_of("sub_1", 1), 0);
        assert_eq!(bucket_of("cus_42", 7), bucket_of("cus_42", 7));
        let mut seen = [0u32; 8];
        for i in 0..8000 {
            seen[bucket_of(&format!("cus_{i:06}"), 8)] += 1;
        }
        assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
        assert_eq!(buckets_for(0, 10), 1);
        assert_eq!(buckets_for(10, 10), 1);
        assert_eq!(buckets_for(11, 10), 2);
        assert_eq!(buckets_for(u64::MAX, 1), MAX_BUCKETS);
    }

    #[test]
    fn a_work_file_that_cannot_be_written_names_its_folder() {
        let dir = Path::new("/books/out.tmp/.stripe-parts");
        let p = work_problem(dir, io::Error::other("No space left on device"));
        assert_eq!(
            p.to_string(),
            "/books/out.tmp/.stripe-parts:0: folder: : a temporary file of the conversion \
             cannot be written there: No space left on device"
        );
    }
}
