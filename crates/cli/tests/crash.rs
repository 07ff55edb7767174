//! The server killed (SIGKILL) in the middle of a burst of writes, on SQLite and PostgreSQL:
//! after it, every acknowledged write is in the store, no write is there twice, and no write
//! is half there (an amendment changes two rows in one event: both or neither). Then every
//! request whose answer was lost is sent again under its Idempotency-Key: the ones that were
//! stored answer as a replay, the others are applied now, and the book holds each exactly once.
//! Issue 16, "Bad input and faults".

mod common;

use common::{expansa, private_server, store_urls, try_http, Answer, Killed};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Writers of single lines, besides the one writer of amendments.
const LINE_WRITERS: usize = 6;
/// Amendments at most per round: one day apart from 2024-01-23, all rounds' inside contract
/// K1's term.
const MAX_AMENDMENTS: usize = 60;
/// Kills per store: each at another moment of the burst.
const ROUNDS: usize = 3;
/// Acknowledged writes before the server is killed.
const ACKS_BEFORE_KILL: usize = 40;
/// K1's seats before any amendment (testdata/contracts).
const SEATS: i64 = 5;

/// One write request: its Idempotency-Key, its endpoint and body.
#[derive(Clone, Debug)]
struct Request {
    key: String,
    path: &'static str,
    body: String,
    /// The line it adds (a line write), or none (an amendment adds one seat to K1).
    line: Option<String>,
}

/// What became of a request before the kill.
#[derive(Debug)]
enum Outcome {
    /// Answered 2xx: it must be stored.
    Acknowledged,
    /// No whole answer (the server died): stored or not, never half.
    Unknown,
}

fn line_request(round: usize, writer: usize, n: usize) -> Request {
    let id = format!("crash-{round}-{writer}-{n}");
    Request {
        key: format!("line-{round}-{writer}-{n}"),
        path: "/api/v1/lines",
        body: serde_json::json!({
            "id": id, "customer_id": "c2", "product_id": "ADDON", "quantity": "1",
            "unit_price": "10.00", "billing_period_months": "1", "start_date": "2024-03-01"
        })
        .to_string(),
        line: Some(id),
    }
}

fn amendment_request(round: usize, n: usize) -> Request {
    let nth = (round * MAX_AMENDMENTS + n) as i64;
    let day = jiff::civil::date(2024, 1, 23) + jiff::Span::new().days(nth);
    Request {
        key: format!("amend-{round}-{n}"),
        path: "/api/v1/quotes/amend",
        body: serde_json::json!({
            "contract": "K1", "effective": day.to_string(), "add": ["SEAT:1"], "apply": true
        })
        .to_string(),
        line: None,
    }
}

fn send(base: &str, key: &str, r: &Request) -> std::io::Result<Answer> {
    let bearer = format!("Bearer {key}");
    try_http(
        base,
        "POST",
        r.path,
        &[("Authorization", &bearer), ("Idempotency-Key", &r.key)],
        &r.body,
    )
}

/// A server on `db` with the per-client limits lifted (every writer comes from 127.0.0.1),
/// killed when dropped (a failing test leaves none behind).
fn serve(db: &str) -> (Killed, String) {
    let limits = ["--rate-limit", "1000000", "--rate-burst", "1000000"];
    let (child, base) = private_server(db, &limits);
    (Killed(child), base)
}

/// SIGKILL: no shutdown, no checkpoint.
fn kill(server: &mut Killed) {
    server.0.kill().unwrap();
    server.0.wait().unwrap();
}

fn run_ok(args: &[&str]) -> Vec<u8> {
    let out = expansa().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "expansa {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The store's book now: the lines by id (`id` -> the row's columns by name).
fn lines(db: &str, dir: &Path) -> BTreeMap<String, BTreeMap<String, String>> {
    let out = dir.join("export");
    let _ = std::fs::remove_dir_all(&out);
    run_ok(&["export", "--db", db, "--out", out.to_str().unwrap()]);
    let text = std::fs::read_to_string(out.join("subscriptions.csv")).unwrap();
    let mut rows = text.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let mut lines = BTreeMap::new();
    for row in rows {
        let row: BTreeMap<String, String> = header
            .iter()
            .zip(row.split(','))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let id = row["id"].clone();
        assert!(lines.insert(id.clone(), row).is_none(), "line {id} twice");
    }
    lines
}

/// K1's seats held on 2024-11-01 (after every amendment's effective day, inside its term).
fn seats(lines: &BTreeMap<String, BTreeMap<String, String>>) -> i64 {
    let day = "2024-11-01";
    lines
        .values()
        .filter(|l| l["contract_id"] == "K1" && l["product_id"] == "SEAT")
        .filter(|l| l["start_date"].as_str() <= day)
        .filter(|l| l["end_date"].is_empty() || l["end_date"].as_str() >= day)
        .map(|l| l["quantity"].parse::<i64>().unwrap())
        .sum()
}

/// The events after the import: (id, kind, rows it changed in subscriptions.csv).
fn writes(db: &str) -> Vec<(i64, String, i64)> {
    let events: Value =
        serde_json::from_slice(&run_ok(&["events", "--db", db, "--format", "json"])).unwrap();
    events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] != "import")
        .map(|e| {
            let d = &e["detail"]["subscriptions.csv"];
            let rows = ["added", "changed", "removed"]
                .iter()
                .map(|k| d[k].as_i64().unwrap_or(0))
                .sum();
            (
                e["id"].as_i64().unwrap(),
                e["kind"].as_str().unwrap().to_string(),
                rows,
            )
        })
        .collect()
}

/// Writers on the server until it is killed, once `kill_after` writes are acknowledged (and
/// a moment more): every request sent, with its outcome.
fn burst(
    server: &mut Killed,
    base: &str,
    key: &str,
    round: usize,
    kill_after: usize,
) -> Vec<(Request, Outcome)> {
    let outcomes: Arc<Mutex<Vec<(Request, Outcome)>>> = Arc::default();
    let acked = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..=LINE_WRITERS)
        .map(|w| {
            let (outcomes, acked, stop) = (outcomes.clone(), acked.clone(), stop.clone());
            let (base, key) = (base.to_string(), key.to_string());
            std::thread::spawn(move || {
                for n in 0.. {
                    let r = match w {
                        0 if n == MAX_AMENDMENTS => break,
                        0 => amendment_request(round, n),
                        _ => line_request(round, w, n),
                    };
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let outcome = match send(&base, &key, &r) {
                        Ok(a) if (200..300).contains(&a.status) => {
                            acked.fetch_add(1, Ordering::SeqCst);
                            Outcome::Acknowledged
                        }
                        Ok(a) => panic!("{r:?}: {} {}", a.status, a.body),
                        Err(_) => Outcome::Unknown,
                    };
                    let unknown = matches!(outcome, Outcome::Unknown);
                    outcomes.lock().unwrap().push((r, outcome));
                    if unknown {
                        break;
                    }
                }
            })
        })
        .collect();
    let started = Instant::now();
    while acked.load(Ordering::SeqCst) < kill_after {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "too few writes acknowledged"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    // Each round kills at another point of a write: before, during or after its commit.
    std::thread::sleep(Duration::from_micros(4500 * round as u64));
    kill(server);
    stop.store(true, Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    outcomes
}

#[test]
fn a_server_killed_during_a_burst_of_writes_keeps_every_acknowledged_one_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/contracts");
    for db in store_urls(tmp.path()) {
        run_ok(&["import", "--db", &db, "--data", book.to_str().unwrap()]);
        let key = common::api_key(&db, "w");
        // Every request of the earlier rounds: all stored once by the end of their round.
        let mut sent: Vec<Request> = Vec::new();
        for round in 0..ROUNDS {
            let (mut server, base) = serve(&db);
            let outcomes = burst(
                &mut server,
                &base,
                &key,
                round,
                ACKS_BEFORE_KILL * (round + 1),
            );
            let acked = |r: &Request| {
                outcomes
                    .iter()
                    .any(|(q, o)| q.key == r.key && matches!(o, Outcome::Acknowledged))
            };
            let unknown: Vec<&Request> = outcomes
                .iter()
                .filter(|(_, o)| matches!(o, Outcome::Unknown))
                .map(|(r, _)| r)
                .collect();
            let earlier_amendments = sent.iter().filter(|r| r.line.is_none()).count() as i64;
            let amendments_acked = outcomes
                .iter()
                .filter(|(r, _)| r.line.is_none() && acked(r))
                .count() as i64;
            let amendments_unknown = unknown.iter().filter(|r| r.line.is_none()).count() as i64;
            assert!(amendments_acked > 0, "{db}: no amendment acknowledged");

            // After the kill: acknowledged writes all there, the others whole or absent.
            let held = lines(&db, tmp.path());
            let prefix = format!("crash-{round}-");
            let written: BTreeSet<&String> =
                held.keys().filter(|id| id.starts_with(&prefix)).collect();
            for (r, _) in outcomes.iter().filter(|(r, _)| acked(r)) {
                if let Some(id) = &r.line {
                    assert!(written.contains(id), "{db}: acknowledged line {id} lost");
                }
            }
            for id in &written {
                assert!(
                    outcomes.iter().any(|(r, _)| r.line.as_ref() == Some(id)),
                    "{db}: line {id} stored but never sent"
                );
            }
            let amended = seats(&held) - SEATS - earlier_amendments;
            assert!(
                (amendments_acked..=amendments_acked + amendments_unknown).contains(&amended),
                "{db}: {amended} amendments in the book, {amendments_acked} acknowledged, \
                 {amendments_unknown} without an answer"
            );
            // One event per stored write, each whole: a line adds one row, an amendment two.
            let events = writes(&db);
            assert_eq!(
                events.len() as i64,
                sent.len() as i64 + written.len() as i64 + amended,
                "{db}: events {events:?}"
            );
            for (id, kind, rows) in &events {
                let whole = if kind == "amend" { 2 } else { 1 };
                assert_eq!(
                    *rows, whole,
                    "{db}: event {id} ({kind}) changed {rows} rows"
                );
            }

            // After a restart, the requests without an answer are sent again: a stored one
            // answers as a replay, the others are written now.
            let (mut server, base) = serve(&db);
            let mut replayed = 0;
            for r in &unknown {
                let a = send(&base, &key, r).unwrap();
                assert!(
                    (200..300).contains(&a.status),
                    "{r:?}: {} {}",
                    a.status,
                    a.body
                );
                replayed += usize::from(a.header("idempotent-replayed") == Some("true"));
            }
            let stored_unanswered = written.len() as i64 + amended
                - outcomes.iter().filter(|(r, _)| acked(r)).count() as i64;
            assert_eq!(replayed as i64, stored_unanswered, "{db}: replays");
            // An acknowledged amendment sent again is a replay, not a second write.
            let (first, _) = outcomes
                .iter()
                .find(|(r, _)| r.line.is_none() && acked(r))
                .unwrap();
            let again = send(&base, &key, first).unwrap();
            assert_eq!(
                again.header("idempotent-replayed"),
                Some("true"),
                "{}",
                again.body
            );
            kill(&mut server);
            eprintln!(
                "{db}, round {round}: {} writes acknowledged before the kill, {} without an \
                 answer ({replayed} of them had been stored)",
                outcomes.len() - unknown.len(),
                unknown.len()
            );
            sent.extend(outcomes.into_iter().map(|(r, _)| r));

            // Every request stored exactly once.
            let held = lines(&db, tmp.path());
            let sent_lines: BTreeSet<&String> =
                sent.iter().filter_map(|r| r.line.as_ref()).collect();
            let written: BTreeSet<&String> =
                held.keys().filter(|id| id.starts_with("crash-")).collect();
            assert_eq!(written, sent_lines, "{db}: every line exactly once");
            let amendments = sent.iter().filter(|r| r.line.is_none()).count() as i64;
            assert_eq!(
                seats(&held) - SEATS,
                amendments,
                "{db}: every amendment exactly once"
            );
            assert_eq!(writes(&db).len(), sent.len(), "{db}: one event per request");
        }
    }
}
