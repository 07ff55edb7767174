//! Write benchmark of a running `expansa serve` (bench/writes.sh), on loopback only.
//!
//! CLIENTS writers for SECONDS, open loop: together they send RATE writes a second, each on
//! its own schedule (client i sends at start + i/RATE + k*CLIENTS/RATE), and a write's latency
//! is counted from the time it was scheduled, not from when it could be sent: a slow server
//! cannot hide the queue it makes (coordinated omission). Four writes in five are a new line
//! (POST /api/v1/lines), the fifth an amendment applied (POST /api/v1/quotes/amend, `"apply":
//! true`: a quantity change of a random contract, from AMENDABLE, on a day of 2026); each under
//! its own Idempotency-Key and with `X-Reason: wb ID` (kept in the event log), and about one in
//! ten acknowledged writes sent again under its key (the first answer must come back, replayed).
//! Four readers read GET /api/v1/movements?from=2024-01&to=2024-12 (after one read that
//! computes it), open loop too: 50 reads a second in all, each timed from when it was
//! scheduled (`WRITES_READ_RATE`; 0 reads in a closed loop): alone for a few seconds first
//! (reads p95 before writes), then while the writers write (p95 during).
//!
//! Afterwards nothing may be lost or duplicated: every acknowledged write's event is in the
//! log with its reason, once; the events added are exactly the acknowledged writes (plus any
//! write left without an answer that committed, reported); every acknowledged line is readable
//! (GET /api/v1/lines/{id}). Writes left without an answer (timeout, 408, 5xx) and refusals
//! are errors. ACKED gets one row per acknowledged write (`line|amend`, the line or contract,
//! its event, the event before it in the log) for the as-of checks of bench/writes.sh. The last lines are a `RESULT k=v ...`
//! summary and `writes: PASS` or `writes: FAILED` (exit 1).
//!
//! cargo run --release -p expansa-api --example writes -- BASE KEY SECONDS CLIENTS RATE CUSTOMERS AMENDABLE ACKED

mod common;

use common::{events, http, loopback_only, ms, percentile, replayed, send, Headers, Http, Rng};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Readers of the movement report, besides the writers (`WRITES_READERS` changes it: 0 measures
/// the writes alone).
const READERS: usize = 4;
/// Reads a second of all the readers together, each on its own schedule and timed from it
/// (`WRITES_READ_RATE` changes it; 0 has each reader read again as soon as it has an answer,
/// closed loop: on two cores such readers take whatever CPU the writes leave, and the reads'
/// latency then measures the machine's saturation, not the server).
const READ_RATE: f64 = 50.0;
/// How long the readers read alone before the writers start (at most a quarter of SECONDS).
const WARM: Duration = Duration::from_secs(5);
/// The longest a request may take before it counts as unanswered (bench/writes.sh gives the
/// server a shorter --request-timeout, so the server answers 408 first).
const TIMEOUT: Duration = Duration::from_secs(35);
/// One write in this many is an amendment (four lines for one amendment).
const AMEND_EVERY: u64 = 5;
/// About one acknowledged write in this many is sent again under its key.
const REPLAY_EVERY: u64 = 10;

struct Args {
    base: String,
    key: String,
    seconds: u64,
    clients: usize,
    rate: f64,
    customers: u64,
    /// Contracts and a product each holds open (no end): `contract_id,product_id`.
    amendable: Vec<(String, String)>,
    acked: std::path::PathBuf,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Line,
    Amend,
}

/// A write the server acknowledged (2xx).
struct Ack {
    kind: Kind,
    /// Its X-Reason, which the event log keeps.
    tag: String,
    /// The line written, or the contract amended.
    id: String,
    /// Its event (none: the write changed nothing).
    event: Option<i64>,
}

#[derive(Default)]
struct Tally {
    scheduled: usize,
    sent: usize,
    lines: Vec<Duration>,
    amends: Vec<Duration>,
    acked: Vec<Ack>,
    /// Writes without an answer (timeout, connection lost, 408, 5xx): whether they committed
    /// is read from the event log afterwards.
    unanswered: Vec<(Kind, String, String)>,
    /// Writes refused (4xx): they must have changed nothing.
    refused: Vec<String>,
    statuses: BTreeMap<String, usize>,
    replays: usize,
    replays_ok: usize,
    errors: Vec<String>,
}

/// A write's request: path, body, and what it writes (line or contract).
fn request(args: &Args, rng: &mut Rng, kind: Kind, line: &str) -> (&'static str, String, String) {
    match kind {
        Kind::Line => (
            "/api/v1/lines",
            serde_json::json!({
                "id": line,
                "customer_id": format!("c{:07}", rng.below(args.customers)),
                "product_id": "payroll-module",
                "unit_price": "89.00",
                "start_date": "2025-03-15",
            })
            .to_string(),
            line.to_string(),
        ),
        Kind::Amend => {
            let (contract, product) =
                &args.amendable[rng.below(args.amendable.len() as u64) as usize];
            let effective = format!("2026-{:02}-{:02}", 1 + rng.below(12), 1 + rng.below(28));
            let quantity = 2 + rng.below(39);
            (
                "/api/v1/quotes/amend",
                serde_json::json!({
                    "contract": contract,
                    "effective": effective,
                    "set": [format!("{product}:{quantity}")],
                    "apply": true,
                })
                .to_string(),
                contract.clone(),
            )
        }
    }
}

/// The event of a write's answer: `event` (a row) or `applied.event` (a quote).
fn event_of(body: &[u8]) -> Option<i64> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("event")
        .or_else(|| v.get("applied").and_then(|a| a.get("event")))
        .and_then(serde_json::Value::as_i64)
}

async fn writer(
    http: Http,
    args: Arc<Args>,
    id: usize,
    start: Instant,
    deadline: Instant,
) -> Tally {
    let mut tally = Tally::default();
    let interval = Duration::from_secs_f64(args.clients as f64 / args.rate);
    let first = start + Duration::from_secs_f64(id as f64 / args.rate);
    let mut slot = first;
    while slot < deadline {
        tally.scheduled += 1;
        slot += interval;
    }
    let mut rng = Rng::new(id as u64);
    let mut next = first;
    let mut n = 0u64;
    while next < deadline && Instant::now() < deadline {
        tokio::time::sleep_until(next.into()).await;
        let scheduled = next;
        next += interval;
        n += 1;
        tally.sent += 1;
        let kind = if (n + id as u64).is_multiple_of(AMEND_EVERY) {
            Kind::Amend
        } else {
            Kind::Line
        };
        let tag = format!("wb {id}-{n}");
        let idempotency = format!("wb-{id}-{n}");
        let (path, body, what) = request(&args, &mut rng, kind, &format!("WB-{id}-{n}"));
        let uri = format!("{}{path}", args.base);
        let headers = Headers {
            key: Some(&args.key),
            idempotency: Some(&idempotency),
            reason: Some(&tag),
        };
        let answer = tokio::time::timeout(
            TIMEOUT,
            send(&http, "POST", &uri, headers, Some(body.clone())),
        )
        .await;
        let latency = scheduled.elapsed();
        match kind {
            Kind::Line => tally.lines.push(latency),
            Kind::Amend => tally.amends.push(latency),
        }
        let status = match &answer {
            Ok(Ok((status, _, _))) => status.to_string(),
            Ok(Err(_)) => "connection error".to_string(),
            Err(_) => "timeout".to_string(),
        };
        *tally
            .statuses
            .entry(format!("{kind:?} {status}"))
            .or_default() += 1;
        match answer {
            Ok(Ok((status @ 200..=299, _, first_body))) => {
                tally.acked.push(Ack {
                    kind,
                    tag: tag.clone(),
                    id: what,
                    event: event_of(&first_body),
                });
                if rng.below(REPLAY_EVERY) == 0 {
                    tally.replays += 1;
                    match tokio::time::timeout(
                        TIMEOUT,
                        send(&http, "POST", &uri, headers, Some(body)),
                    )
                    .await
                    {
                        Ok(Ok((again, h, again_body)))
                            if again == status && again_body == first_body && replayed(&h) =>
                        {
                            tally.replays_ok += 1
                        }
                        other => tally.errors.push(format!(
                            "replay of {idempotency}: {:?}",
                            other
                                .map(|r| r
                                    .map(|(s, _, b)| (s, String::from_utf8_lossy(&b).to_string())))
                        )),
                    }
                }
            }
            // An amendment priced on a book another write changed before it applied: refused,
            // nothing written (what a client does then: price it again). Not an error.
            Ok(Ok((409, _, _))) if kind == Kind::Amend => tally.refused.push(tag),
            Ok(Ok((status, _, b))) => {
                let b = String::from_utf8_lossy(&b).to_string();
                tally
                    .errors
                    .push(format!("{kind:?} {tag} ({what}): {status} {b}"));
                if status == 408 || status >= 500 {
                    tally.unanswered.push((kind, tag, what));
                } else {
                    tally.refused.push(tag);
                }
            }
            Ok(Err(e)) => {
                tally.errors.push(format!("{kind:?} {tag} ({what}): {e}"));
                tally.unanswered.push((kind, tag, what));
            }
            Err(_) => {
                tally.errors.push(format!(
                    "{kind:?} {tag} ({what}): no answer within {} s",
                    TIMEOUT.as_secs()
                ));
                tally.unanswered.push((kind, tag, what));
            }
        }
    }
    tally
}

/// When a reader reads: reader `index` of `count`, at `rate` reads a second in all from
/// `origin` (its k-th read at origin + (index + k * count) / rate), or again as soon as it
/// has an answer (`rate` none).
#[derive(Clone, Copy)]
struct Pace {
    index: usize,
    count: usize,
    rate: Option<f64>,
    origin: Instant,
}

/// Reads the movement report until `stop`; each read with the instant it was scheduled (or
/// started, in a closed loop) and the one it ended.
async fn reader(
    http: Http,
    args: Arc<Args>,
    stop: Arc<AtomicBool>,
    pace: Pace,
) -> (Vec<(Instant, Instant)>, Vec<String>) {
    let uri = format!("{}/api/v1/movements?from=2024-01&to=2024-12", args.base);
    let headers = Headers {
        key: Some(&args.key),
        ..Headers::default()
    };
    let (mut reads, mut errors) = (Vec::new(), Vec::new());
    let mut k = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let started = match pace.rate {
            None => Instant::now(),
            Some(rate) => {
                let at = (pace.index as f64 + k as f64 * pace.count as f64) / rate;
                k += 1;
                let scheduled = pace.origin + Duration::from_secs_f64(at);
                tokio::time::sleep_until(scheduled.into()).await;
                scheduled
            }
        };
        if stop.load(Ordering::Relaxed) {
            break;
        }
        match tokio::time::timeout(TIMEOUT, send(&http, "GET", &uri, headers, None)).await {
            Ok(Ok((200, _, _))) => reads.push((started, Instant::now())),
            Ok(other) => errors.push(format!("read: {:?}", other.map(|(s, _, _)| s))),
            Err(_) => errors.push(format!("read: no answer within {} s", TIMEOUT.as_secs())),
        }
    }
    (reads, errors)
}

fn parse_args() -> Args {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() != 8 {
        eprintln!("usage: writes BASE KEY SECONDS CLIENTS RATE CUSTOMERS AMENDABLE ACKED");
        std::process::exit(2);
    }
    let amendable: Vec<(String, String)> = std::fs::read_to_string(&argv[6])
        .expect("AMENDABLE")
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(','))
        .map(|(k, p)| (k.to_string(), p.to_string()))
        .collect();
    assert!(!amendable.is_empty(), "AMENDABLE lists no contract");
    Args {
        base: argv[0].trim_end_matches('/').to_string(),
        key: argv[1].clone(),
        seconds: argv[2].parse().expect("SECONDS"),
        clients: argv[3].parse().expect("CLIENTS"),
        rate: argv[4].parse().expect("RATE"),
        customers: argv[5].parse().expect("CUSTOMERS"),
        amendable,
        acked: argv[7].clone().into(),
    }
}

#[tokio::main]
async fn main() {
    let args = Arc::new(parse_args());
    loopback_only(&args.base);
    assert!(
        args.rate > 0.0 && args.clients > 0,
        "RATE and CLIENTS above 0"
    );
    let reader_count = std::env::var("WRITES_READERS")
        .map(|r| r.parse().expect("WRITES_READERS"))
        .unwrap_or(READERS);
    let read_rate: f64 = std::env::var("WRITES_READ_RATE")
        .map(|r| r.parse().expect("WRITES_READ_RATE"))
        .unwrap_or(READ_RATE);
    assert!(read_rate >= 0.0, "WRITES_READ_RATE at least 0");
    let http = http(args.clients + reader_count);
    let before = events(&http, &args.base, &args.key).await;
    let last_before = before
        .iter()
        .filter_map(|e| e["id"].as_i64())
        .max()
        .unwrap_or(0);
    // Connect before the clock starts: 200 simultaneous connects overflow the listen backlog,
    // and a dropped SYN is retried after a second, which measures the kernel, not the server.
    let warm_up: Vec<_> = (0..args.clients + reader_count)
        .map(|_| {
            let (http, uri, key) = (
                http.clone(),
                format!("{}/api/v1/lines/-", args.base),
                args.key.clone(),
            );
            tokio::spawn(async move {
                let headers = Headers {
                    key: Some(&key),
                    ..Headers::default()
                };
                let _ = send(&http, "GET", &uri, headers, None).await;
            })
        })
        .collect();
    for w in warm_up {
        let _ = w.await;
    }

    // The report computed once before the clock starts: the first read of a book computes it,
    // the next ones are answered from the server's kept outputs until a write changes the book.
    let _ = tokio::time::timeout(
        TIMEOUT,
        send(
            &http,
            "GET",
            &format!("{}/api/v1/movements?from=2024-01&to=2024-12", args.base),
            Headers {
                key: Some(&args.key),
                ..Headers::default()
            },
            None,
        ),
    )
    .await;
    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let readers: Vec<_> = (0..reader_count)
        .map(|index| {
            let pace = Pace {
                index,
                count: reader_count,
                rate: (read_rate > 0.0).then_some(read_rate),
                origin,
            };
            tokio::spawn(reader(http.clone(), args.clone(), stop.clone(), pace))
        })
        .collect();
    let warm = WARM
        .min(Duration::from_secs(args.seconds) / 4)
        .max(Duration::from_secs(1));
    tokio::time::sleep(warm).await;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.seconds);
    let writers: Vec<_> = (0..args.clients)
        .map(|id| tokio::spawn(writer(http.clone(), args.clone(), id, start, deadline)))
        .collect();
    let mut all = Tally::default();
    for w in writers {
        let t = w.await.expect("writer task");
        all.scheduled += t.scheduled;
        all.sent += t.sent;
        all.lines.extend(t.lines);
        all.amends.extend(t.amends);
        all.acked.extend(t.acked);
        all.unanswered.extend(t.unanswered);
        all.refused.extend(t.refused);
        for (k, v) in t.statuses {
            *all.statuses.entry(k).or_default() += v;
        }
        all.replays += t.replays;
        all.replays_ok += t.replays_ok;
        all.errors.extend(t.errors);
    }
    let writing = start.elapsed();
    let writers_done = Instant::now();
    stop.store(true, Ordering::Relaxed);
    let (mut reads_before, mut reads_during) = (Vec::new(), Vec::new());
    for r in readers {
        let (reads, errors) = r.await.expect("reader task");
        for (from, to) in reads {
            if to <= start {
                reads_before.push(to - from);
            } else if from >= start && to <= writers_done {
                reads_during.push(to - from);
            }
        }
        all.errors.extend(errors);
    }

    // Writes left without an answer may still be committing: wait for the log to settle.
    let mut log = events(&http, &args.base, &args.key).await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let again = events(&http, &args.base, &args.key).await;
        let settled = again.len() == log.len();
        log = again;
        if settled {
            break;
        }
    }
    let added: Vec<&serde_json::Value> = log
        .iter()
        .filter(|e| e["id"].as_i64().is_some_and(|id| id > last_before))
        .collect();
    let mut by_tag: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut foreign = Vec::new();
    for e in &added {
        let id = e["id"].as_i64().unwrap_or_default();
        match e["reason"].as_str() {
            Some(tag) if tag.starts_with("wb ") => by_tag.entry(tag).or_default().push(id),
            other => foreign.push(format!("event {id}: {other:?}")),
        }
    }
    let duplicated: Vec<String> = by_tag
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(tag, ids)| format!("{tag}: events {ids:?}"))
        .collect();
    let mut lost = Vec::new();
    for a in &all.acked {
        let ids = by_tag.get(a.tag.as_str()).map(Vec::as_slice).unwrap_or(&[]);
        match a.event {
            Some(e) if !ids.contains(&e) => lost.push(format!(
                "{} ({}): event {e} not in the log as its own ({ids:?})",
                a.tag, a.id
            )),
            None if !ids.is_empty() => lost.push(format!(
                "{} ({}): answered unchanged, yet events {ids:?}",
                a.tag, a.id
            )),
            _ => {}
        }
    }
    let late: Vec<&str> = all
        .unanswered
        .iter()
        .filter(|(_, tag, _)| by_tag.contains_key(tag.as_str()))
        .map(|(_, tag, _)| tag.as_str())
        .collect();
    let refused_stored: Vec<&String> = all
        .refused
        .iter()
        .filter(|tag| by_tag.contains_key(tag.as_str()))
        .collect();
    let with_event = all.acked.iter().filter(|a| a.event.is_some()).count();

    // Every acknowledged line is readable, 16 reads at a time.
    let lines: Vec<String> = all
        .acked
        .iter()
        .filter(|a| a.kind == Kind::Line)
        .map(|a| a.id.clone())
        .collect();
    let mut missing = Vec::new();
    for chunk in lines.chunks(16) {
        let reads: Vec<_> = chunk
            .iter()
            .map(|line| {
                let (http, uri, key) = (
                    http.clone(),
                    format!("{}/api/v1/lines/{line}", args.base),
                    args.key.clone(),
                );
                tokio::spawn(async move {
                    let headers = Headers {
                        key: Some(&key),
                        ..Headers::default()
                    };
                    matches!(
                        send(&http, "GET", &uri, headers, None).await,
                        Ok((200, _, _))
                    )
                })
            })
            .collect();
        for (line, read) in chunk.iter().zip(reads) {
            if !read.await.unwrap_or(false) {
                missing.push(line.clone());
            }
        }
    }

    // Event ids need not be consecutive (a write that changed nothing, or was rolled back,
    // may have used one): the event before a write's is the log's previous one.
    let mut ids: Vec<i64> = log.iter().filter_map(|e| e["id"].as_i64()).collect();
    ids.sort_unstable();
    let gaps = ids.windows(2).filter(|w| w[1] != w[0] + 1).count();
    let mut acked_rows = String::new();
    for a in &all.acked {
        if let Some(e) = a.event {
            let kind = if a.kind == Kind::Line {
                "line"
            } else {
                "amend"
            };
            let previous = ids
                .partition_point(|&id| id < e)
                .checked_sub(1)
                .map_or(0, |k| ids[k]);
            acked_rows.push_str(&format!("{kind}\t{}\t{e}\t{previous}\n", a.id));
        }
    }
    std::fs::write(&args.acked, acked_rows).expect("ACKED");

    let mut writes: Vec<Duration> = all.lines.iter().chain(&all.amends).copied().collect();
    writes.sort();
    all.lines.sort();
    all.amends.sort();
    reads_before.sort();
    reads_during.sort();
    let per_s = all.acked.len() as f64 / writing.as_secs_f64();
    let acked_lines = all.acked.iter().filter(|a| a.kind == Kind::Line).count();
    let acked_amends = all.acked.len() - acked_lines;
    let timeouts = all.unanswered.len();
    println!(
        "writers {} for {:.1} s, open loop at {}/s in all ({} lines for 1 amendment); readers {} ({}), alone for {:.0} s first",
        args.clients,
        writing.as_secs_f64(),
        args.rate,
        AMEND_EVERY - 1,
        reader_count,
        if read_rate > 0.0 {
            format!("open loop at {read_rate}/s in all")
        } else {
            "closed loop".to_string()
        },
        warm.as_secs_f64(),
    );
    println!(
        "writes scheduled {}, sent {} ({} behind schedule at the end, never sent)",
        all.scheduled,
        all.sent,
        all.scheduled - all.sent
    );
    println!(
        "acknowledged {} ({per_s:.1}/s): {acked_lines} lines, {acked_amends} amendments ({} changed nothing)",
        all.acked.len(),
        all.acked.len() - with_event,
    );
    println!(
        "write latency from the scheduled send: p50 {}  p95 {}  p99 {}  max {}  (lines p95 {}, amendments p95 {})",
        ms(percentile(&writes, 0.50)),
        ms(percentile(&writes, 0.95)),
        ms(percentile(&writes, 0.99)),
        ms(percentile(&writes, 1.0)),
        ms(percentile(&all.lines, 0.95)),
        ms(percentile(&all.amends, 0.95)),
    );
    println!(
        "movements reads p95: {} before the writes ({} reads), {} during them ({} reads)",
        ms(percentile(&reads_before, 0.95)),
        reads_before.len(),
        ms(percentile(&reads_during, 0.95)),
        reads_during.len(),
    );
    println!(
        "answers: {}",
        all.statuses
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "replays answered identically: {} of {}",
        all.replays_ok, all.replays
    );
    println!(
        "events added {} for {with_event} acknowledged writes that changed the book (+{} left unanswered that committed); lost {}, duplicated {}, lines not readable {}, refused yet stored {}, events not ours {}",
        added.len(),
        late.len(),
        lost.len(),
        duplicated.len(),
        missing.len(),
        refused_stored.len(),
        foreign.len(),
    );
    if gaps > 0 {
        println!("  (event ids skip {gaps} times: ids of writes that changed nothing or were rolled back)");
    }
    for problem in lost
        .iter()
        .chain(&duplicated)
        .chain(&foreign)
        .take(5)
        .chain(missing.iter().take(5))
    {
        println!("  problem: {problem}");
    }
    println!(
        "errors {} ({timeouts} left without an answer)",
        all.errors.len()
    );
    for e in all.errors.iter().take(5) {
        println!("  error: {e}");
    }
    let consistent = lost.is_empty()
        && duplicated.is_empty()
        && foreign.is_empty()
        && missing.is_empty()
        && refused_stored.is_empty()
        && added.len() == with_event + late.len();
    let ok = consistent && all.errors.is_empty() && all.replays_ok == all.replays;
    let f = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    println!(
        "RESULT writes_per_s={per_s:.1} p50_ms={} p95_ms={} p99_ms={} read_p95_before_ms={} read_p95_during_ms={} acked={} errors={} timeouts={timeouts} unsent={} consistent={} pass={}",
        f(percentile(&writes, 0.50)),
        f(percentile(&writes, 0.95)),
        f(percentile(&writes, 0.99)),
        f(percentile(&reads_before, 0.95)),
        f(percentile(&reads_during, 0.95)),
        all.acked.len(),
        all.errors.len(),
        all.scheduled - all.sent,
        u8::from(consistent),
        u8::from(ok),
    );
    println!(
        "{}",
        if ok {
            "writes: PASS (nothing lost or duplicated, no errors)"
        } else {
            "writes: FAILED"
        }
    );
    std::process::exit(if ok { 0 } else { 1 });
}
