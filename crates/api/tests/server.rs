//! The server on a loopback socket ([`expansa_api::serve_on`]): slow and idle clients are cut
//! at the header timeout and cannot stall the others, a client holds a bounded number of
//! connections, and its request rate is limited. Clients other than the one under test connect
//! from other loopback addresses (127.0.0.N), so each is a client of its own.

use expansa_api::{serve_on, ApiConfig, AppState, Limits};
use expansa_import::{Folder, ImportOptions};
use expansa_store::{Actor, ImportMode, Store};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

struct Running {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Running {
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(15), self.task)
            .await
            .expect("the server stops")
            .unwrap()
            .unwrap();
    }
}

/// `expansa serve` over the demo book on 127.0.0.1, an ephemeral port, with `limits`.
async fn start(limits: Limits) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("served.db").display());
    let store = Store::open(&url, ImportOptions::default()).await.unwrap();
    let book = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/demo");
    let actor = Actor {
        who: "test".into(),
        why: "load".into(),
    };
    store
        .import(&Folder(&book), ImportMode::Merge, &actor)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = ApiConfig {
        limits,
        ..open_reads()
    };
    let state = AppState::new(store, config);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, state, async {
        let _ = stopped.await;
    }));
    Running {
        address,
        stop: Some(stop),
        task,
        _dir: dir,
    }
}

/// A connection to `server` from the loopback address 127.0.0.`n`.
async fn connect_from(n: u8, server: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, n)), 0))?;
    socket.connect(server).await
}

/// Sends one whole GET on `stream` and reads its answer: (status, time taken).
async fn get(stream: &mut TcpStream, path: &str) -> (u16, String, Duration) {
    let started = Instant::now();
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).await.unwrap();
        assert_eq!(n, 1, "the answer ended in its head: {head:?}");
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.unwrap();
    let status = head[9..12].parse().unwrap();
    (status, String::from_utf8(body).unwrap(), started.elapsed())
}

/// Waits until the server closes `stream` (end of file or reset), until `since + limit`; the
/// time from `since` to when the close was seen.
async fn closed_within(
    stream: &mut TcpStream,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout_at(
            tokio::time::Instant::from_std(since + limit),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue, // an answer (408 or the like) before the close
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_and_do_not_stall_the_others() {
    let header_timeout = Duration::from_secs(1);
    let server = start(Limits {
        header_timeout,
        ..Limits::default()
    })
    .await;
    let address = server.address;
    // 500 connections from one client, each sending half a request line and then nothing.
    let started = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..500 {
        let mut stream = connect_from(2, address).await.unwrap();
        // The write may fail on a connection the server already refused: that is fine.
        let _ = stream
            .write_all(b"GET /api/v1/movements?from=2024-01&to=20")
            .await;
        slow.push(stream);
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "500 connections opened quickly"
    );
    // Meanwhile another client is answered at once, on a new connection.
    let mut normal = connect_from(1, address).await.unwrap();
    let (status, body, took) = get(&mut normal, "/api/v1/kpis?from=2024-01&to=2024-03").await;
    let answered = Instant::now();
    assert_eq!(status, 200, "{body}");
    assert!(took < Duration::from_secs(3), "answered in {took:?}");
    // Every slow connection is closed by the server soon after the header timeout.
    let deadline = header_timeout + Duration::from_secs(4);
    for stream in &mut slow {
        closed_within(stream, started, deadline)
            .await
            .expect("a half-sent request is closed after the header timeout");
    }
    // The one that was answered is idle now: its keep-alive ends at the header timeout too.
    let idle = closed_within(&mut normal, answered, Duration::from_secs(6))
        .await
        .expect("an idle keep-alive connection is closed");
    assert!(idle >= header_timeout / 2, "not before its time: {idle:?}");
    // And the server is still there for others.
    let mut again = connect_from(3, address).await.unwrap();
    let (status, _, _) = get(&mut again, "/api/v1/events").await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_connection_lives_until_the_header_timeout_only() {
    let header_timeout = Duration::from_millis(1500);
    let server = start(Limits {
        header_timeout,
        ..Limits::default()
    })
    .await;
    // Nothing sent at all, and a request whose headers never end.
    let opened = Instant::now();
    let mut silent = connect_from(1, server.address).await.unwrap();
    let mut partial = connect_from(1, server.address).await.unwrap();
    partial
        .write_all(b"GET /api/v1/events HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        .await
        .unwrap();
    for stream in [&mut silent, &mut partial] {
        let closed = closed_within(stream, opened, Duration::from_secs(6))
            .await
            .expect("closed after the header timeout");
        assert!(closed >= Duration::from_millis(1000), "{closed:?}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_holds_a_bounded_number_of_connections() {
    let server = start(Limits {
        header_timeout: Duration::from_secs(30),
        max_connections_per_client: 4,
        ..Limits::default()
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from(4, server.address).await.unwrap());
    }
    // Let the server accept them all before the fifth comes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut fifth = connect_from(4, server.address).await.unwrap();
    let closed = closed_within(&mut fifth, Instant::now(), Duration::from_secs(5)).await;
    assert!(
        closed.is_some(),
        "the fifth connection of a client is closed at once"
    );
    // Another client is served; and once one of the four goes, the first client may come back.
    let mut other = connect_from(5, server.address).await.unwrap();
    assert_eq!(get(&mut other, "/api/v1/events").await.0, 200);
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut back = connect_from(4, server.address).await.unwrap();
    assert_eq!(get(&mut back, "/api/v1/events").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_over_its_request_rate_is_answered_429() {
    let server = start(Limits {
        rate_per_second: 1,
        rate_burst: 5,
        ..Limits::default()
    })
    .await;
    let mut fast = connect_from(6, server.address).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..7 {
        let (status, body, _) = get(&mut fast, "/api/v1/events").await;
        if status == 429 {
            let error: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(error["error"]["code"], "too_many_requests", "{body}");
        }
        statuses.push(status);
    }
    assert_eq!(&statuses[..5], &[200; 5], "{statuses:?}");
    assert_eq!(statuses[6], 429, "{statuses:?}");
    let mut other = connect_from(7, server.address).await.unwrap();
    assert_eq!(get(&mut other, "/api/v1/events").await.0, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_its_answers_is_cut() {
    let header_timeout = Duration::from_secs(1);
    let server = start(Limits {
        header_timeout,
        ..Limits::default()
    })
    .await;
    // 50 requests for a 200 KB file at once (10 MB of answers), then nothing read for a while.
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)), 0))
        .unwrap();
    let mut stream = socket.connect(server.address).await.unwrap();
    let asset = "/assets/vendor/chart.umd.min.js";
    let one = format!("GET {asset} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n");
    stream.write_all(one.repeat(50).as_bytes()).await.unwrap();
    let size = {
        let mut probe = connect_from(9, server.address).await.unwrap();
        get(&mut probe, asset).await.1.len()
    };
    assert!(size > 100_000, "{size}");
    tokio::time::sleep(header_timeout + Duration::from_secs(2)).await;
    // Now read what there is: the server gave up before sending it all.
    let mut received = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(3), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => received += n,
            Err(_) => panic!("the connection is still open after {received} bytes"),
        }
    }
    assert!(received < 50 * size, "{received} of {} bytes", 50 * size);
    server.stop().await;
}

/// The server as these tests read it: reads open (`serve --public-reads`), writes with a key.
fn open_reads() -> ApiConfig {
    ApiConfig {
        public_reads: true,
        ..ApiConfig::default()
    }
}
