//! Load test of a running `expansa serve`: CLIENTS concurrent clients for SECONDS, on
//! loopback only. Each client reads the movement report (GET /api/v1/movements) and every
//! fifth request writes a new line (POST /api/v1/lines, one in ten sent twice under the same
//! Idempotency-Key). Afterwards every acknowledged line is read back: it must be there once,
//! and the event log must hold one event per acknowledged write (nothing lost, nothing
//! duplicated). Prints latency percentiles.
//!
//! cargo run --release -p expansa-api --example load -- BASE KEY SECONDS CLIENTS CUSTOMERS FROM TO

mod common;

use common::{events, http, loopback_only, ms, percentile, replayed, send, Headers, Http, Rng};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    base: String,
    key: String,
    seconds: u64,
    clients: usize,
    customers: u64,
    from: String,
    to: String,
}

#[derive(Default)]
struct Tally {
    reads: Vec<Duration>,
    writes: Vec<Duration>,
    acknowledged: Vec<String>,
    replays_ok: usize,
    errors: Vec<String>,
}

async fn client(http: Http, args: Arc<Args>, id: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    // Connect before the clock starts: 200 simultaneous connects overflow the listen backlog,
    // and a dropped SYN is retried after a second, which measures the kernel, not the server.
    let read = Headers {
        key: Some(&args.key),
        ..Headers::default()
    };
    let _ = send(
        &http,
        "GET",
        &format!("{}/api/v1/events?warm", args.base),
        read,
        None,
    )
    .await;
    let mut rng = Rng::new(id as u64);
    let mut n = 0u64;
    let report = format!(
        "{}/api/v1/movements?from={}&to={}",
        args.base, args.from, args.to
    );
    while Instant::now() < deadline {
        n += 1;
        let seed = rng.next();
        if n.is_multiple_of(5) {
            let line = format!("LOAD-{id}-{n}");
            let body = serde_json::json!({
                "id": line,
                "customer_id": format!("c{:07}", seed % args.customers),
                "product_id": "payroll-module",
                "unit_price": "89.00",
                "start_date": "2025-03-15",
            })
            .to_string();
            let idempotency = format!("load-{id}-{n}");
            let write = Headers {
                idempotency: Some(&idempotency),
                ..read
            };
            let started = Instant::now();
            let first = send(
                &http,
                "POST",
                &format!("{}/api/v1/lines", args.base),
                write,
                Some(body.clone()),
            )
            .await;
            tally.writes.push(started.elapsed());
            match first {
                Ok((201, _, first_body)) => {
                    tally.acknowledged.push(line);
                    if seed.is_multiple_of(10) {
                        match send(
                            &http,
                            "POST",
                            &format!("{}/api/v1/lines", args.base),
                            write,
                            Some(body),
                        )
                        .await
                        {
                            Ok((201, headers, again))
                                if again == first_body && replayed(&headers) =>
                            {
                                tally.replays_ok += 1
                            }
                            other => tally
                                .errors
                                .push(format!("replay of {idempotency}: {other:?}")),
                        }
                    }
                }
                other => tally.errors.push(format!(
                    "write {line}: {:?}",
                    other.map(|(s, _, b)| (s, String::from_utf8_lossy(&b).to_string()))
                )),
            }
        } else {
            let started = Instant::now();
            match send(&http, "GET", &report, read, None).await {
                Ok((200, _, _)) => tally.reads.push(started.elapsed()),
                other => tally
                    .errors
                    .push(format!("read: {:?}", other.map(|(s, _, _)| s))),
            }
        }
    }
    tally
}

#[tokio::main]
async fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    if argv.len() != 7 {
        eprintln!("usage: load BASE KEY SECONDS CLIENTS CUSTOMERS FROM TO");
        std::process::exit(2);
    }
    let args = Arc::new(Args {
        base: argv[0].trim_end_matches('/').to_string(),
        key: argv[1].clone(),
        seconds: argv[2].parse().expect("SECONDS"),
        clients: argv[3].parse().expect("CLIENTS"),
        customers: argv[4].parse().expect("CUSTOMERS"),
        from: argv[5].clone(),
        to: argv[6].clone(),
    });
    loopback_only(&args.base);
    let http = http(args.clients);
    let events_before = events(&http, &args.base, &args.key).await.len();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let tasks: Vec<_> = (0..args.clients)
        .map(|id| tokio::spawn(client(http.clone(), args.clone(), id, deadline)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        let t = t.await.expect("client task");
        all.reads.extend(t.reads);
        all.writes.extend(t.writes);
        all.acknowledged.extend(t.acknowledged);
        all.replays_ok += t.replays_ok;
        all.errors.extend(t.errors);
    }
    let elapsed = started.elapsed();
    // Nothing lost: every acknowledged line is stored; nothing duplicated: one event each.
    let mut missing = 0;
    for line in &all.acknowledged {
        match send(
            &http,
            "GET",
            &format!("{}/api/v1/lines/{line}", args.base),
            Headers {
                key: Some(&args.key),
                ..Headers::default()
            },
            None,
        )
        .await
        {
            Ok((200, _, _)) => {}
            _ => missing += 1,
        }
    }
    let events_after = events(&http, &args.base, &args.key).await.len();
    all.reads.sort();
    all.writes.sort();
    println!(
        "clients {} for {:.1} s",
        args.clients,
        elapsed.as_secs_f64()
    );
    println!(
        "movements reads: {} ({:.1}/s)  p50 {}  p95 {}  p99 {}  max {}",
        all.reads.len(),
        all.reads.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&all.reads, 0.50)),
        ms(percentile(&all.reads, 0.95)),
        ms(percentile(&all.reads, 0.99)),
        ms(percentile(&all.reads, 1.0)),
    );
    println!(
        "line writes: {} acknowledged ({:.1}/s)  p50 {}  p95 {}  replays answered identically {}",
        all.acknowledged.len(),
        all.acknowledged.len() as f64 / elapsed.as_secs_f64(),
        ms(percentile(&all.writes, 0.50)),
        ms(percentile(&all.writes, 0.95)),
        all.replays_ok,
    );
    println!(
        "lost {missing}, events added {} for {} acknowledged writes, errors {}",
        events_after - events_before,
        all.acknowledged.len(),
        all.errors.len()
    );
    for e in all.errors.iter().take(5) {
        println!("  error: {e}");
    }
    let ok = missing == 0
        && events_after - events_before == all.acknowledged.len()
        && all.errors.is_empty();
    println!(
        "{}",
        if ok {
            "load: nothing lost or duplicated"
        } else {
            "load: FAILED"
        }
    );
    std::process::exit(if ok { 0 } else { 1 });
}
