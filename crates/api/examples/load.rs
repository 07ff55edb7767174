//! Load test of a running `expansa serve`: CLIENTS concurrent clients for SECONDS, on
//! loopback only. Each client reads the movement report (GET /api/v1/movements) and every
//! fifth request writes a new line (POST /api/v1/lines, one in ten sent twice under the same
//! Idempotency-Key). Afterwards every acknowledged line is read back: it must be there once,
//! and the event log must hold one event per acknowledged write (nothing lost, nothing
//! duplicated). Prints latency percentiles.
//!
//! cargo run --release -p expansa-api --example load -- BASE KEY SECONDS CLIENTS CUSTOMERS FROM TO

use axum::body::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

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

async fn send(
    http: &Http,
    method: &str,
    uri: &str,
    key: Option<(&str, &str)>,
    body: Option<String>,
) -> Result<(u16, Vec<(String, String)>, Bytes), String> {
    let mut request = hyper::Request::builder().method(method).uri(uri);
    if let Some((api_key, idempotency)) = key {
        request = request
            .header("authorization", format!("Bearer {api_key}"))
            .header("idempotency-key", idempotency)
            .header("content-type", "application/json");
    }
    let request = request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| e.to_string())?;
    let response = http.request(request).await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, headers, body))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let k = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[k]
}

async fn client(http: Http, args: Arc<Args>, id: usize, deadline: Instant) -> Tally {
    let mut tally = Tally::default();
    // Connect before the clock starts: 200 simultaneous connects overflow the listen backlog,
    // and a dropped SYN is retried after a second, which measures the kernel, not the server.
    let _ = send(
        &http,
        "GET",
        &format!("{}/api/v1/events?warm", args.base),
        None,
        None,
    )
    .await;
    let mut seed = 0x9E37_79B9_7F4A_7C15u64 ^ (id as u64 + 1);
    let mut n = 0u64;
    let report = format!(
        "{}/api/v1/movements?from={}&to={}",
        args.base, args.from, args.to
    );
    while Instant::now() < deadline {
        n += 1;
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
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
            let started = Instant::now();
            let first = send(
                &http,
                "POST",
                &format!("{}/api/v1/lines", args.base),
                Some((&args.key, &idempotency)),
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
                            Some((&args.key, &idempotency)),
                            Some(body),
                        )
                        .await
                        {
                            Ok((201, headers, again))
                                if again == first_body
                                    && headers.iter().any(|(k, v)| {
                                        k == "idempotent-replayed" && v == "true"
                                    }) =>
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
            match send(&http, "GET", &report, None, None).await {
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
    assert!(
        args.base.starts_with("http://127.")
            || args.base.starts_with("http://localhost")
            || args.base.starts_with("http://[::1]"),
        "the load test only targets loopback"
    );
    let http: Http = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(args.clients)
        .build_http();
    let events_before = events(&http, &args.base).await;
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
            None,
            None,
        )
        .await
        {
            Ok((200, _, _)) => {}
            _ => missing += 1,
        }
    }
    let events_after = events(&http, &args.base).await;
    all.reads.sort();
    all.writes.sort();
    let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
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

async fn events(http: &Http, base: &str) -> usize {
    let (_, _, body) = send(http, "GET", &format!("{base}/api/v1/events"), None, None)
        .await
        .expect("events");
    serde_json::from_slice::<Vec<serde_json::Value>>(&body)
        .expect("events JSON")
        .len()
}
