//! Any CSV table, record by record: the import's own reading (see [`crate::record`]: the same
//! records, line numbers, separator detection, BOM, encodings and record bound) for files that
//! are not the interchange format's, such as a billing system's export read by a converter.
//!
//! The table is streamed: memory holds one record at a time (at most [`MAX_RECORD_BYTES`]),
//! whatever the file's size.

use crate::problem::Problem;
use crate::record;
use crate::table::MAX_RECORD_BYTES;
use crate::text;
use crate::TextEncoding;
use std::io::Read;

/// One record of a table: its fields as text (UTF-8, untrimmed) and the line it starts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line of the file where the record starts (the header is line 1).
    pub line: u64,
    pub fields: Vec<String>,
}

/// A CSV table read record by record: the header, then [`Records::next_record`].
pub struct Records<R> {
    file: String,
    reader: R,
    encoding: TextEncoding,
    buf: Vec<u8>,
    /// Where the unread part of `buf` starts (bytes before it are dropped when reading more).
    pos: usize,
    eof: bool,
    separator: u8,
    next_line: u64,
    header: Vec<String>,
    out: Vec<u8>,
    fields: Vec<(u32, u32)>,
    failed: bool,
}

const BLOCK: usize = 64 << 10;

impl<R: Read> Records<R> {
    /// Opens the table in `reader` and reads its header; `file` names it in problems.
    ///
    /// Errors: a file that cannot be read, a header longer than [`MAX_RECORD_BYTES`], text
    /// that is not UTF-8 when `encoding` is UTF-8, an empty file.
    pub fn new(file: &str, reader: R, encoding: TextEncoding) -> Result<Records<R>, Problem> {
        let mut records = Records {
            file: file.to_string(),
            reader,
            encoding,
            buf: Vec::with_capacity(BLOCK),
            pos: 0,
            eof: false,
            separator: b',',
            next_line: 1,
            header: Vec::new(),
            out: Vec::new(),
            fields: Vec::new(),
            failed: false,
        };
        records.fill(3)?;
        if records.buf.starts_with(b"\xEF\xBB\xBF") {
            records.buf.drain(..3);
        }
        // The separator from the first line: read until a line end shows it.
        loop {
            if let Some(i) = memchr::memchr2(b'\r', b'\n', &records.buf) {
                records.separator = record::detect_separator(&records.buf[..i]);
                break;
            }
            if records.eof {
                records.separator = record::detect_separator(&records.buf);
                break;
            }
            if records.buf.len() > MAX_RECORD_BYTES {
                return Err(records.too_long(1));
            }
            let want = records.buf.len() + BLOCK;
            records.fill(want)?;
        }
        match records.next_record()? {
            Some(header) => {
                records.header = header.fields;
                Ok(records)
            }
            None => Err(Problem::new(
                file,
                0,
                "file",
                "",
                "is empty: a table needs a header",
            )),
        }
    }

    /// The header's names, as written (untrimmed).
    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The field separator found in the first line (`,` or `;`).
    pub fn separator(&self) -> u8 {
        self.separator
    }

    /// The file name problems give.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The next record; `None` at the end. Rows of empty fields only (a spreadsheet's blank
    /// lines, `;;;`) are skipped. After an error the table is not read further.
    pub fn next_record(&mut self) -> Result<Option<Record>, Problem> {
        loop {
            if self.failed {
                return Ok(None);
            }
            let end = loop {
                if let Some(end) =
                    record::record_end(&self.buf[self.pos..], self.separator, self.eof)
                {
                    break end;
                }
                if self.buf.len() - self.pos > MAX_RECORD_BYTES {
                    self.failed = true;
                    return Err(self.too_long(self.next_line));
                }
                // Drop what was read, then read more.
                self.buf.drain(..self.pos);
                self.pos = 0;
                let want = self.buf.len() + BLOCK;
                self.fill(want)?;
            };
            if end == 0 {
                return Ok(None);
            }
            let span = self.pos..self.pos + end;
            let line = self.next_line;
            let (_, lines) = record::parse_record(
                &self.buf[span.clone()],
                self.separator,
                &mut self.out,
                &mut self.fields,
            );
            self.next_line += lines.max(1);
            let mut fields = Vec::with_capacity(self.fields.len());
            for &(start, stop) in &self.fields {
                let bytes = &self.out[start as usize..stop as usize];
                let text = match std::str::from_utf8(bytes) {
                    Ok(t) => t.to_string(),
                    Err(_) if !self.encoding.is_utf8() => text::decode(bytes).into_owned(),
                    Err(_) => {
                        self.failed = true;
                        let column = self
                            .header
                            .get(fields.len())
                            .cloned()
                            .unwrap_or_else(|| "row".into());
                        return Err(Problem::new(
                            &self.file,
                            line,
                            &column,
                            &text::decode(bytes),
                            "is not UTF-8 text: save the file as UTF-8, or read it with \
                             --encoding windows-1252",
                        ));
                    }
                };
                fields.push(text);
            }
            self.pos = span.end;
            if fields.iter().all(|f| f.trim().is_empty()) && !self.header.is_empty() {
                continue;
            }
            return Ok(Some(Record { line, fields }));
        }
    }

    /// Reads until `buf` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<(), Problem> {
        while !self.eof && self.buf.len() < want {
            let start = self.buf.len();
            self.buf.resize(want, 0);
            match self.reader.read(&mut self.buf[start..]) {
                Ok(0) => {
                    self.buf.truncate(start);
                    self.eof = true;
                }
                Ok(n) => self.buf.truncate(start + n),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => self.buf.truncate(start),
                Err(e) => {
                    self.buf.truncate(start);
                    self.failed = true;
                    return Err(Problem::new(
                        &self.file,
                        0,
                        "file",
                        "",
                        &format!("cannot be read: {e}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn too_long(&self, line: u64) -> Problem {
        Problem::new(
            &self.file,
            line,
            "row",
            "",
            &format!(
                "a record longer than {} MiB (is a quote left open?): the rest of the file is \
                 not read",
                MAX_RECORD_BYTES >> 20
            ),
        )
    }
}

impl<R: Read> Iterator for Records<R> {
    type Item = Result<Record, Problem>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &[u8]) -> (Vec<String>, Vec<Record>) {
        let mut r = Records::new("t.csv", text, TextEncoding::UTF_8).unwrap();
        let rows = r.by_ref().collect::<Result<Vec<_>, _>>().unwrap();
        (r.header().to_vec(), rows)
    }

    #[test]
    fn header_records_lines_and_separators() {
        let (h, rows) = all(b"\xEF\xBB\xBFa;b\r\n1;\"x\ny\"\n;\n2;3");
        assert_eq!(h, ["a", "b"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0].line, rows[0].fields.clone()),
            (2, vec!["1".into(), "x\ny".into()])
        );
        assert_eq!(
            (rows[1].line, rows[1].fields.clone()),
            (5, vec!["2".into(), "3".into()])
        );
    }

    #[test]
    fn long_blocks_and_bad_text() {
        let mut text = b"id,v\n".to_vec();
        for i in 0..20_000 {
            text.extend_from_slice(format!("{i},\"{}\"\n", "z".repeat(i % 50)).as_bytes());
        }
        let (_, rows) = all(&text);
        assert_eq!(rows.len(), 20_000);
        assert_eq!(rows[19_999].line, 20_001);
        let mut r = Records::new("t.csv", &b"a\n\xE9\n"[..], TextEncoding::UTF_8).unwrap();
        let e = r.next_record().unwrap_err();
        assert_eq!(e.to_string().split(": ").next(), Some("t.csv:2"));
        let mut r = Records::new("t.csv", &b"a\n\xE9\n"[..], TextEncoding::WINDOWS_1252).unwrap();
        assert_eq!(r.next_record().unwrap().unwrap().fields, ["é"]);
        assert!(Records::new("t.csv", &b""[..], TextEncoding::UTF_8).is_err());
    }
}
