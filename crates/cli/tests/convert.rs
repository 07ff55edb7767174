//! `expansa convert` and `expansa import --from` end to end: flags, the report, the book
//! written whole or not at all, and `convert` then `check` then `movements`.

mod common;

use common::expansa;
use std::path::Path;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn flags_are_checked_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let cases: [(&[&str], &str); 5] = [
        (
            &["convert", "--from", "strype", "--input", "x"],
            "error: --from strype: unknown source (one of stripe, recurly, zuora, chargebee, baremetrics, chartmogul, conexa, asaas, iugu, vindi)",
        ),
        (
            &["convert", "--input", "x"],
            "error: give the source: --from KIND or --map mapping.toml",
        ),
        (
            &["convert", "--from", "stripe"],
            "error: give the export to convert: --input FOLDER_OR_FILE",
        ),
        (
            &["convert", "--from", "stripe", "--input", "x", "--timezone", "Mars/Olympus"],
            "error: --timezone Mars/Olympus: unknown time zone (give an IANA name such as America/Sao_Paulo or UTC)",
        ),
        (
            &["convert", "--map", "/nonexistent/mapping.toml", "--input", "x"],
            "error: --map /nonexistent/mapping.toml: cannot be read",
        ),
    ];
    for (args, message) in cases {
        let o = expansa()
            .args(args)
            .arg("--out")
            .arg(&out)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).starts_with(message), "{args:?}: {}", stderr(&o));
    }
    assert!(!out.exists());
    // import: --input needs --from, and --data is a book, not an export.
    let o = expansa()
        .args(["import", "--input", "x", "--db"])
        .arg(format!("sqlite:{}", dir.path().join("s.db").display()))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--input is an export to convert"),
        "{}",
        stderr(&o)
    );
    let o = expansa()
        .args(["import", "--from", "stripe", "--input", "x", "--data", "y"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("give one or the other"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_folder_that_holds_something_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let o = expansa()
        .args(["convert", "--from", "stripe", "--input"])
        .arg(dir.path())
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("exists and is not an empty folder: give a new folder, or --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 1);
}

#[test]
fn an_input_that_is_not_there_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book");
    let o = expansa()
        .args(["convert", "--from", "stripe", "--input"])
        .arg(dir.path().join("missing"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let text = stderr(&o);
    assert!(text.contains("missing:0: file: : is not there"), "{text}");
    assert!(
        text.ends_with("error: the conversion found 1 problem(s); nothing was written\n"),
        "{text}"
    );
    assert!(!out.exists());
    // No temporary folder is left behind.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs `convert` with `args`, which must succeed; returns the report's JSON.
pub fn convert_json(args: &[&str], input: &Path, out: &Path) -> serde_json::Value {
    let o = expansa()
        .arg("convert")
        .args(args)
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}
