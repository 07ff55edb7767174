//! Text that is not UTF-8: read as Windows-1252, what Excel saves CSV in where Latin
//! languages are spoken (Brazil's Portuguese among them).
//!
//! Valid UTF-8 is kept as it is and only the bytes that are not UTF-8 are read as
//! Windows-1252: a Windows-1252 text is almost never valid UTF-8 where it is not ASCII, so a
//! file saved either way, or a book mixing both, reads as it was written.

use std::borrow::Cow;

/// `bytes` as text: UTF-8 where it is valid, Windows-1252 where it is not.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 4);
    for piece in bytes.utf8_chunks() {
        out.push_str(piece.valid());
        let (decoded, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(piece.invalid());
        out.push_str(&decoded);
    }
    Cow::Owned(out)
}

/// The fields of a record as text ([`decode`] of each), and where each lies in it.
pub(crate) fn decode_fields(
    data: &[u8],
    fields: &[(u32, u32)],
    decoded: &mut Vec<(u32, u32)>,
) -> String {
    let mut out = String::with_capacity(data.len() + data.len() / 4);
    decoded.clear();
    for &(start, end) in fields {
        let begin = out.len() as u32;
        out.push_str(&decode(&data[start as usize..end as usize]));
        decoded.push((begin, out.len() as u32));
    }
    out
}

/// Whether `bytes` read as plain Windows-1252 text: no control characters other than tab
/// and line ends, and none of the five bytes Windows-1252 leaves undefined.
pub(crate) fn looks_like_windows_1252(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| match b {
        b'\t' | b'\n' | b'\r' => true,
        0x00..=0x1F | 0x7F => false,
        0x81 | 0x8D | 0x8F | 0x90 | 0x9D => false,
        _ => true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_stays_and_the_rest_is_windows_1252() {
        assert!(matches!(decode("São Paulo".as_bytes()), Cow::Borrowed(_)));
        assert_eq!(decode(b"S\xE3o Paulo"), "São Paulo");
        assert_eq!(decode(b"a\xE7\xE3o \x80 \x93x\x94"), "ação € “x”");
        // A record mixing both reads as each part was written.
        assert_eq!(decode(b"\xC3\xA9 \xE9"), "é é");
        let mut fields = Vec::new();
        let text = decode_fields(b"id,Jo\xE3o,x", &[(0, 2), (3, 7), (8, 9)], &mut fields);
        assert_eq!(text, "idJoãox");
        assert_eq!(fields, [(0, 2), (2, 7), (7, 8)]);
        assert_eq!(&text[fields[1].0 as usize..fields[1].1 as usize], "João");
    }

    #[test]
    fn windows_1252_or_not() {
        assert!(looks_like_windows_1252(b"id;nome\r\nc1;Jo\xE3o\t\n"));
        assert!(!looks_like_windows_1252(b"\xFF\xFEi\x00d\x00"));
        assert!(!looks_like_windows_1252(b"a\x81b"));
        assert!(!looks_like_windows_1252(b"PK\x03\x04"));
    }
}
