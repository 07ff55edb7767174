//! Work bounded by what a request may ask (README, "Limits"): the CLI refuses every size past
//! its maximum with exit 2 and a message, and a real `expansa serve` running under a memory
//! limit answers huge requests 400 with its memory flat, then goes on answering.

mod common;

use common::{expansa, missing};
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

fn demo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo")
}

/// Flags past a maximum (after `--data DEMO`), and what the refusal says.
const TOO_MUCH: &[(&[&str], &str)] = &[
    (
        &["cohorts", "--from", "0000-01", "--to", "9999-12"],
        "--from 0000-01: a report's months run from 1900-01 to 9999-12",
    ),
    (
        &["cohorts", "--from", "1990-01", "--to", "2024-12"],
        "420 monthly periods; a cohort grid has at most 360 periods",
    ),
    (
        &["cohorts", "--from", "1990-01", "--to", "2024-12"],
        "or use --by quarter",
    ),
    (
        &[
            "cohorts", "--from", "1901-01", "--to", "2000-12", "--by", "quarter",
        ],
        "400 quarterly periods; a cohort grid has at most 360 periods",
    ),
    (
        &["movements", "--from", "1900-01", "--to", "9999-12"],
        "--from 1900-01 --to 9999-12: 97200 months; a report covers at most 1200 months",
    ),
    (
        &["movements", "--from", "1924-12", "--to", "2024-12"],
        "1201 months; a report covers at most 1200 months",
    ),
    (
        &["movements", "--from", "1899-12", "--to", "1900-12"],
        "--from 1899-12: a report's months run from 1900-01 to 9999-12",
    ),
    (
        &[
            "movements",
            "--from",
            "1900-01",
            "--to",
            "9999-12",
            "--detail",
        ],
        "at most 1200 months",
    ),
    (
        &["kpis", "--from", "1900-01", "--to", "9999-12"],
        "at most 1200 months",
    ),
    (
        &["offers", "--from", "1900-01", "--to", "9999-12"],
        "at most 1200 months",
    ),
    (
        &["report", "--month", "0001-01", "--out", "/dev/null"],
        "--month 0001-01: a report's months run from 1900-01 to 9999-12",
    ),
    (
        &["opportunities", "--at", "2024-12-31", "--top", "10001"],
        "--top 10001: at most 10000 (0 lists all)",
    ),
    (
        &[
            "opportunities",
            "--at",
            "2024-12-31",
            "--usage-months",
            "2000000000",
        ],
        "--usage-months 2000000000: at most 1200 months",
    ),
    (
        &[
            "opportunities",
            "--at",
            "2024-12-31",
            "--skip-downsell-months",
            "4000000000",
        ],
        "--skip-downsell-months 4000000000: at most 1200 months",
    ),
    (
        &[
            "opportunities",
            "--at",
            "2024-12-31",
            "--max-len",
            "1000000000000",
        ],
        "--max-len 1000000000000: at most 100 items",
    ),
    (
        &["opportunities", "--at", "1024-12-31"],
        "--at 1024-12-31: a report's days run from 1900-01-01 to 9999-12-31",
    ),
    (
        &["rules", "--at", "2024-12-31", "--max-len", "101"],
        "--max-len 101: at most 100 items",
    ),
    (
        &["rules", "--at", "2024-12-31", "--max-itemsets", "5000001"],
        "--max-itemsets 5000001: at most 5000000",
    ),
    (
        &["evaluate", "--cutoff", "2024-06-30", "--k", "1001"],
        "--k 1001: at most 1000",
    ),
    (
        &["evaluate", "--cutoff", "0999-06-30"],
        "--cutoff 0999-06-30: a report's days run from 1900-01-01",
    ),
    (
        &[
            "evaluate",
            "--cutoff",
            "2024-06-30",
            "--until",
            "0999-01-01",
        ],
        "--until 0999-01-01: a report's days run from 1900-01-01",
    ),
    (
        &[
            "movements",
            "--from",
            "2024-01",
            "--to",
            "2024-02",
            "--threads",
            "1025",
        ],
        "--threads 1025: at most 1024",
    ),
];

/// The binary run by `prlimit` with at most [`CLI_DATA_LIMIT`] of data memory, so that an
/// unbounded request fails at once instead of taking the machine's memory; `None` (a skip)
/// without `prlimit`.
fn limited_expansa() -> Option<assert_cmd::Command> {
    let present = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if missing("prlimit (util-linux)", present) {
        return None;
    }
    let mut cmd = assert_cmd::Command::new("prlimit");
    cmd.arg(format!("--data={CLI_DATA_LIMIT}"))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("expansa"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG");
    Some(cmd)
}

/// Data memory for one CLI run over the demo book (which needs some 30 MiB).
const CLI_DATA_LIMIT: u64 = 1 << 30;

#[test]
fn every_size_past_its_maximum_exits_2_with_a_message() {
    for (args, says) in TOO_MUCH {
        let Some(mut expansa) = limited_expansa() else {
            return;
        };
        expansa
            .args(*args)
            .arg("--data")
            .arg(demo())
            .timeout(Duration::from_secs(60))
            .assert()
            .code(2)
            .stdout("")
            .stderr(predicate::str::starts_with("error: --").and(predicate::str::contains(*says)));
    }
}

#[test]
fn sizes_at_their_maximum_run() {
    for args in [
        &["movements", "--from", "1925-01", "--to", "2024-12"][..],
        &["cohorts", "--from", "1995-01", "--to", "2024-12"],
        &[
            "cohorts", "--from", "1935-01", "--to", "2024-12", "--by", "quarter",
        ],
        &[
            "opportunities",
            "--at",
            "2024-12-31",
            "--top",
            "10000",
            "--usage-months",
            "1200",
            "--skip-downsell-months",
            "1200",
            "--max-len",
            "100",
            "--max-itemsets",
            "5000000",
        ],
        &["evaluate", "--cutoff", "2024-06-30", "--k", "1000"],
    ] {
        let Some(mut expansa) = limited_expansa() else {
            return;
        };
        let out = expansa
            .args(args)
            .arg("--data")
            .arg(demo())
            .args(["--format", "json"])
            .timeout(Duration::from_secs(120))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `expansa serve` over the demo book, run by `prlimit` under a limit on its data memory,
/// with two worker threads of each kind (so the limit does not depend on the machine's cores).
struct Limited {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The server's data memory limit: ten times what it uses serving the demo book (about
/// 25 MiB), far below what one unbounded request asked for (a 10,000-year cohort grid: 230 GB).
const DATA_LIMIT: u64 = 256 << 20;

fn serve_limited() -> Limited {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("limited.db").display());
    expansa()
        .args(["import", "--db", &db, "--data"])
        .arg(demo())
        .assert()
        .success();
    let mut child = std::process::Command::new("prlimit")
        .arg(format!("--data={DATA_LIMIT}"))
        .arg("--")
        .arg(assert_cmd::cargo::cargo_bin("expansa"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--public-reads",
            "--db",
            &db,
            "--threads",
            "2",
        ])
        .env("TOKIO_WORKER_THREADS", "2")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let address = common::server_url(&mut child)
        .trim_start_matches("http://")
        .to_string();
    Limited {
        child,
        address,
        _dir: dir,
    }
}

/// `GET path` over a new connection: the status and the body as JSON.
fn get(address: &str, path: &str) -> (u16, Value) {
    let answer = common::http(address, "GET", path, &[], "");
    (answer.status, answer.json())
}

/// The peak resident memory of process `pid`, in bytes (Linux).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn a_server_under_a_memory_limit_refuses_huge_requests_and_answers_on() {
    let present = std::process::Command::new("prlimit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if missing("prlimit (util-linux)", present) {
        return;
    }
    let mut server = serve_limited();
    let address = server.address.clone();
    let pid = server.child.id();
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap();
    assert_eq!(comm.trim(), "expansa", "prlimit runs the server itself");
    // A normal request first (the book is read, the workers started).
    let (status, body) = get(&address, "/api/v1/movements?from=2024-01&to=2024-12");
    assert_eq!(status, 200, "{body}");
    let before = peak_rss(pid);
    for path in [
        "/api/v1/cohorts?from=0000-01&to=9999-12",
        "/api/v1/cohorts?from=1900-01&to=9999-12&by=quarter",
        "/api/v1/cohorts?from=1990-01&to=2024-12",
        "/api/v1/movements?from=0000-01&to=9999-12",
        "/api/v1/movements/detail?from=1900-01&to=9999-12",
        "/api/v1/customers/padaria-sao-jorge/trail?from=1900-01&to=9999-12",
        "/api/v1/kpis?from=1900-01&to=9999-12",
        "/api/v1/offers?from=1900-01&to=9999-12",
        "/api/v1/opportunities?at=2024-12-31&usage_months=2000000000",
        "/api/v1/opportunities?at=2024-12-31&skip_downsell_months=4000000000",
        "/api/v1/opportunities?at=2024-12-31&max_len=1000000000000",
        "/api/v1/opportunities?at=2024-12-31&top=10001",
        "/api/v1/rules?at=2024-12-31&max_len=1000000000000",
        "/api/v1/rules?at=2024-12-31&max_itemsets=18446744073709551615",
        "/api/v1/lines?limit=10001",
    ] {
        let (status, body) = get(&address, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("at most") || message.contains("run from"),
            "{path}: {body}"
        );
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "the server died on {path}"
        );
    }
    let grown = peak_rss(pid).saturating_sub(before);
    assert!(
        grown < 16 << 20,
        "refusing grew the server's peak memory by {grown} bytes"
    );
    // The largest requests allowed are answered within the limit too.
    for path in [
        "/api/v1/movements?from=1925-01&to=2024-12",
        "/api/v1/movements/detail?from=1925-01&to=2024-12",
        "/api/v1/kpis?from=1925-01&to=2024-12",
        "/api/v1/cohorts?from=1995-01&to=2024-12",
        "/api/v1/cohorts?from=1935-01&to=2024-12&by=quarter",
        "/api/v1/offers?from=1925-01&to=2024-12",
        "/api/v1/opportunities?at=2024-12-31&top=10000&usage_months=1200&skip_downsell_months=1200&max_len=100",
    ] {
        let (status, body) = get(&address, path);
        assert_eq!(status, 200, "{path}: {body}");
    }
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the server died"
    );
    let (status, body) = get(&address, "/api/v1/movements?from=2024-01&to=2024-12");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["months"].as_array().map(Vec::len), Some(12), "{body}");
}
