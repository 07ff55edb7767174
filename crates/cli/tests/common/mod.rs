//! Helpers shared by the end-to-end tests of the `expansa` binary.
#![allow(dead_code)] // each test file uses a different subset

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;
use std::path::Path;

/// The binary, with the locale variables cleared so tables default to pt-BR.
pub fn expansa() -> Command {
    let mut cmd = Command::cargo_bin("expansa").unwrap();
    cmd.env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG");
    cmd
}

/// `expansa movements --data DATA ARGS... --format json`, which must succeed, parsed.
pub fn movements_json(data: &Path, args: &[&str]) -> Value {
    command_json("movements", data, args)
}

/// `expansa COMMAND --data DATA ARGS... --format json`, which must succeed, parsed.
pub fn command_json(command: &str, data: &Path, args: &[&str]) -> Value {
    let out = expansa()
        .args([command, "--data"])
        .arg(data)
        .args(args)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command} {}: {}",
        data.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `expansa check --data DATA` must fail with exit code 1 and list each of `problems`.
pub fn check_fails_with(data: &Path, problems: &[&str]) {
    let mut assert = expansa()
        .args(["check", "--data"])
        .arg(data)
        .assert()
        .code(1);
    for p in problems {
        assert = assert.stderr(predicate::str::contains(*p));
    }
}

/// Every kind of movement is non-zero in at least one of `months` (a report's "months").
pub fn assert_every_movement_kind(months: &[Value], what: &str) {
    for key in [
        "new",
        "cross_sell",
        "upsell",
        "reactivation",
        "downsell",
        "churn",
    ] {
        assert!(
            months.iter().any(|m| m[key] != "0.00"),
            "{what} shows no {key}"
        );
    }
}

/// The shared folder (spec, generator, peers): `EXPANSA_SHARED`, else `../shared` beside the
/// repository.
pub fn shared() -> std::path::PathBuf {
    std::env::var_os("EXPANSA_SHARED")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Runs `python3 ARGS...`, which must succeed, and returns its standard output; `needs` names
/// the Python packages the script imports (said when it fails).
pub fn python(args: &[&std::ffi::OsStr], needs: &str) -> Vec<u8> {
    let out = std::process::Command::new("python3")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed (with `pip install {needs}`): {e}"));
    assert!(
        out.status.success(),
        "python3 {args:?} failed (is `pip install {needs}` done?): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}
