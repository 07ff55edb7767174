//! The one definition of a CSV record, used by every path that reads a table (the import's
//! chunked reader, its header reader, and [`crate::read_rows_in`], which the store uses).
//!
//! - A **line end** is `\r\n`, a `\n`, or a `\r` not followed by `\n` (Excel's "CSV
//!   (Macintosh)" ends lines with `\r` alone). Lines are numbered by line ends, inside quoted
//!   values too, so a record's line is where it starts in any text editor.
//! - A **record** ends at a line end outside quotes. A field is quoted when it *starts* with
//!   `"`: it runs to the next `"` not doubled (`""` is a quote inside it), and what follows the
//!   closing quote up to the separator belongs to the field too. A `"` inside an unquoted field
//!   is a plain character (`27" monitor`). This is the csv crate's (and RFC 4180's) reading.
//! - The **separator** is `;` when the header's first line has more semicolons than commas
//!   outside quotes, else `,`.

/// `;` when `first_line` has more semicolons than commas outside quotes, else `,`.
pub fn detect_separator(first_line: &[u8]) -> u8 {
    let (mut commas, mut semis, mut quoted) = (0, 0, false);
    for &b in first_line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semis += 1,
            _ => {}
        }
    }
    if semis > commas {
        b';'
    } else {
        b','
    }
}

/// The end (exclusive, its line end included) of the record that starts `input`; `None` when
/// `input` does not show where it ends (more must be read), unless `eof`: then the record runs
/// to the end of `input`.
pub(crate) fn record_end(input: &[u8], separator: u8, eof: bool) -> Option<usize> {
    let unknown = || eof.then_some(input.len());
    let mut i = 0;
    loop {
        // Outside quotes: the next quote or line end.
        let j = i + match memchr::memchr3(b'"', b'\r', b'\n', &input[i..]) {
            Some(k) => k,
            None => return unknown(),
        };
        match input[j] {
            b'\n' => return Some(j + 1),
            b'\r' => {
                return match input.get(j + 1) {
                    Some(b'\n') => Some(j + 2),
                    Some(_) => Some(j + 1),
                    None => unknown(),
                }
            }
            _ => {}
        }
        // A quote opens a quoted field only where a field starts.
        if j > 0 && input[j - 1] != separator {
            i = j + 1;
            continue;
        }
        // Inside quotes: up to the closing quote (a doubled one stays inside).
        let mut q = j + 1;
        loop {
            q += match memchr::memchr(b'"', &input[q..]) {
                Some(k) => k,
                None => return unknown(),
            };
            match input.get(q + 1) {
                Some(b'"') => q += 2,
                Some(_) => break,
                None => return unknown(),
            }
        }
        i = q + 1;
    }
}

/// The end (exclusive) of the last complete record of `buf`, which starts at a record start;
/// `None` when no record is known to end in it. A `\r` that ends `buf` is not taken as an end:
/// a `\n` may follow it.
pub(crate) fn last_record_end(buf: &[u8], separator: u8) -> Option<usize> {
    if memchr::memchr(b'"', buf).is_none() {
        let mut end = buf.len();
        loop {
            let i = memchr::memrchr2(b'\r', b'\n', &buf[..end])?;
            if buf[i] == b'\r' && i + 1 == buf.len() {
                end = i;
                continue;
            }
            return Some(i + 1);
        }
    }
    let (mut pos, mut last) = (0, None);
    while let Some(n) = record_end(&buf[pos..], separator, false) {
        pos += n;
        last = Some(pos);
    }
    last
}

/// Where the line that starts at `from` ends: `(end of its text, start of the next line)`;
/// for text without quotes.
#[inline]
pub(crate) fn next_line(bytes: &[u8], from: usize) -> (usize, usize) {
    match memchr::memchr2(b'\r', b'\n', &bytes[from..]) {
        Some(k) => {
            let end = from + k;
            let next = if bytes[end] == b'\r' && bytes.get(end + 1) == Some(&b'\n') {
                end + 2
            } else {
                end + 1
            };
            (end, next)
        }
        None => (bytes.len(), bytes.len()),
    }
}

/// Reads the record that starts `input` (up to its line end, or the end of `input`): its
/// fields' text, unquoted, into `out` and where each lies in it into `fields`. Returns the
/// bytes it took (its line end included) and the line ends among them.
pub(crate) fn parse_record(
    input: &[u8],
    separator: u8,
    out: &mut Vec<u8>,
    fields: &mut Vec<(u32, u32)>,
) -> (usize, u64) {
    #[derive(PartialEq)]
    enum State {
        FieldStart,
        InField,
        Quoted,
        /// Just after a closing quote: a quote here is a doubled one.
        AfterQuote,
    }
    out.clear();
    fields.clear();
    let (mut state, mut start, mut lines, mut i) = (State::FieldStart, 0u32, 0u64, 0usize);
    while i < input.len() {
        let b = input[i];
        if state == State::Quoted {
            // Copy up to the next quote at once; count the line ends on the way.
            let k = memchr::memchr(b'"', &input[i..]).map_or(input.len(), |k| i + k);
            let text = &input[i..k];
            lines += line_ends(text);
            // A `\r` ending the copied text is followed by the quote (or nothing): it ended a
            // line, and `line_ends` counted it as such.
            out.extend_from_slice(text);
            if k < input.len() {
                state = State::AfterQuote;
            }
            i = k + 1;
            continue;
        }
        if b == separator {
            fields.push((start, out.len() as u32));
            start = out.len() as u32;
            state = State::FieldStart;
        } else if b == b'\n' || b == b'\r' {
            fields.push((start, out.len() as u32));
            let took = if b == b'\r' && input.get(i + 1) == Some(&b'\n') {
                i + 2
            } else {
                i + 1
            };
            return (took, lines + 1);
        } else if b == b'"' && state == State::FieldStart {
            state = State::Quoted;
        } else if b == b'"' && state == State::AfterQuote {
            out.push(b'"');
            state = State::Quoted;
        } else {
            out.push(b);
            state = State::InField;
        }
        i += 1;
    }
    fields.push((start, out.len() as u32));
    (input.len(), lines)
}

/// The line ends in `bytes`: `\n`, and `\r` not followed by `\n` (a `\r` ending `bytes` counts:
/// text is only cut after a whole line end).
pub(crate) fn line_ends(bytes: &[u8]) -> u64 {
    if memchr::memchr(b'\r', bytes).is_none() {
        return memchr::memchr_iter(b'\n', bytes).count() as u64;
    }
    let Some((&last, head)) = bytes.split_last() else {
        return 0;
    };
    let mut n = u64::from(last == b'\n' || last == b'\r');
    // In blocks of 64, whose counts fit a byte: the compiler turns this into vector code.
    let mut this = head.chunks_exact(64);
    let mut next = bytes[1..].chunks_exact(64);
    for (a, b) in (&mut this).zip(&mut next) {
        let mut k = 0u8;
        for j in 0..64 {
            k += u8::from(a[j] == b'\n') | (u8::from(a[j] == b'\r') & u8::from(b[j] != b'\n'));
        }
        n += u64::from(k);
    }
    for (&a, &b) in this.remainder().iter().zip(next.remainder()) {
        n += u64::from(a == b'\n' || (a == b'\r' && b != b'\n'));
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &[u8]) -> Vec<(u64, Vec<String>)> {
        let (mut out, mut fields, mut pos, mut line) = (Vec::new(), Vec::new(), 0, 1);
        let mut all = Vec::new();
        while pos < text.len() {
            let (took, lines) = parse_record(&text[pos..], b',', &mut out, &mut fields);
            assert_eq!(Some(took), record_end(&text[pos..], b',', true));
            assert_eq!(lines, line_ends(&text[pos..pos + took]));
            let values = fields
                .iter()
                .map(|&(s, e)| String::from_utf8_lossy(&out[s as usize..e as usize]).into_owned())
                .collect();
            all.push((line, values));
            line += lines;
            pos += took;
        }
        all
    }

    #[test]
    fn line_ends_are_lf_crlf_and_lone_cr() {
        assert_eq!(line_ends(b"a\nb\r\nc\rd"), 3);
        assert_eq!(line_ends(b"a\r"), 1);
        assert_eq!(line_ends(b"\r\r\n\n\r"), 4);
        assert_eq!(line_ends(&b"x\r\n".repeat(1000)), 1000);
        assert_eq!(line_ends(&b"x\r".repeat(1000)), 1000);
        for n in [62, 63, 64, 65, 127, 128, 129] {
            let mut text = vec![b'x'; n];
            text[n - 1] = b'\r';
            assert_eq!(line_ends(&text), 1);
            text[n - 2] = b'\r';
            assert_eq!(line_ends(&text), 2);
            text[n - 1] = b'\n';
            assert_eq!(line_ends(&text), 1);
        }
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            records(b"a,b\rc,d\r\ne\nf"),
            [
                (1, v(&["a", "b"])),
                (2, v(&["c", "d"])),
                (3, v(&["e"])),
                (4, v(&["f"]))
            ]
        );
    }

    #[test]
    fn quotes_open_only_where_a_field_starts() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            records(b"\"a,\r\nb\",\"x\"\"y\"\rc,27\" tv,\"q\"z\nlast"),
            [
                (1, v(&["a,\r\nb", "x\"y"])),
                (3, v(&["c", "27\" tv", "qz"])),
                (4, v(&["last"]))
            ]
        );
        // An unclosed quote runs to the end.
        assert_eq!(records(b"a,\"b\nc"), [(1, v(&["a", "b\nc"]))]);
        assert_eq!(record_end(b"a,\"b\nc", b',', false), None);
    }

    #[test]
    fn a_cut_never_splits_a_record_or_a_crlf() {
        assert_eq!(last_record_end(b"a,b\nc,d\ne", b','), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny\"\nc,\"d\ne", b','), Some(8));
        assert_eq!(last_record_end(b"a,\"x\ny", b','), None);
        assert_eq!(last_record_end(b"a\r\nb\r", b','), Some(3));
        assert_eq!(last_record_end(b"a\rb\r\r", b','), Some(4));
        assert_eq!(last_record_end(b"a,27\"\nb", b','), Some(6));
        assert_eq!(detect_separator(b"id;customer_id;unit_price"), b';');
        assert_eq!(detect_separator(b"id,\"a;b;c\""), b',');
    }
}
