//! Built-in TLS (`serve --tls-cert --tls-key`): a self-signed certificate made here (rcgen),
//! the server on 127.0.0.1 over it, real HTTPS requests (rustls with the certificate as the
//! only root): a login sets a `Secure` cookie that then reads; plain HTTP gets no answer; a
//! client that opens a connection and never finishes its handshake is cut at the header
//! timeout; and the files' errors (missing, not PEM, not a key, another key) are told in words.

use expansa_api::{serve_on, tls, ApiConfig, AppState, Limits};
use expansa_import::ImportOptions;
use expansa_store::{Role, Store};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

const PASSWORD: &str = "correct horse battery";

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM files in `dir`:
/// (certificate file, key file, the certificate's DER).
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    (cert, key, made.cert.der().to_vec())
}

struct Running {
    address: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn start(store: Store, tls: tls::Tls, limits: Limits) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let config = ApiConfig {
        tls: Some(tls),
        limits,
        ..ApiConfig::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_on(listener, AppState::new(store, config), async {
        let _ = stopped.await;
    }));
    Running {
        address,
        stop: Some(stop),
        task,
    }
}

/// One HTTPS request to `address`, trusting only `root`: (status, headers, body).
async fn https(
    address: SocketAddr,
    root: &[u8],
    request: hyper::Request<Full<Bytes>>,
) -> (u16, hyper::HeaderMap, String) {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from(root.to_vec()))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let stream = connector.connect(name, tcp).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_over_tls_sets_a_secure_cookie() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, der) = certificate(dir.path(), "server");
    let url = format!("sqlite:{}", dir.path().join("tls.db").display());
    let store = Store::open(&url, ImportOptions::default()).await.unwrap();
    store.add_user("ana", Role::Viewer, PASSWORD).await.unwrap();
    let header_timeout = Duration::from_secs(1);
    let server = start(
        store,
        tls::load(&cert, &key).unwrap(),
        Limits {
            header_timeout,
            ..Limits::default()
        },
    )
    .await;
    let login = hyper::Request::post("/login")
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(
            serde_json::json!({"user": "ana", "password": PASSWORD}).to_string(),
        )))
        .unwrap();
    let (status, headers, body) = https(server.address, &der, login).await;
    assert_eq!(status, 200, "{body}");
    let cookie = headers["set-cookie"].to_str().unwrap().to_string();
    for attribute in ["Secure", "HttpOnly", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = cookie.split(';').next().unwrap().to_string();
    let me = hyper::Request::get("/api/v1/session")
        .header("host", "localhost")
        .header("cookie", session)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let (status, _, body) = https(server.address, &der, me).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"name\":\"ana\""), "{body}");

    // Plain HTTP on the TLS port gets no HTTP answer.
    let mut plain = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    plain
        .write_all(b"GET /api/v1/session HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/"), "{answer:?}");

    // A connection that never begins its handshake is closed at the header timeout.
    let started = Instant::now();
    let mut idle = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(10), idle.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {closed:?}"
    );
    let took = started.elapsed();
    assert!(
        took >= header_timeout - Duration::from_millis(100) && took < Duration::from_secs(5),
        "{took:?}"
    );

    let mut server = server;
    let _ = server.stop.take().unwrap().send(());
    tokio::time::timeout(Duration::from_secs(15), server.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[test]
fn bad_certificate_and_key_files_are_told_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "one");
    let (_, other_key, _) = certificate(dir.path(), "two");
    let missing = dir.path().join("missing.pem");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "not a certificate\n").unwrap();
    let error = |cert: &Path, key: &Path| tls::load(cert, key).unwrap_err().to_string();

    let e = error(&missing, &key);
    assert!(
        e.starts_with("--tls-cert") && e.contains("cannot read it"),
        "{e}"
    );
    let e = error(&cert, &missing);
    assert!(
        e.starts_with("--tls-key") && e.contains("cannot read it"),
        "{e}"
    );
    let e = error(&text, &key);
    assert!(
        e.contains("--tls-cert") && e.contains("no certificate"),
        "{e}"
    );
    // A certificate given as the key: no private key in it.
    let e = error(&cert, &cert);
    assert!(
        e.contains("--tls-key") && e.contains("no private key"),
        "{e}"
    );
    // An encrypted key (a passphrase a server cannot type): said so, with how to decrypt it.
    let encrypted = dir.path().join("encrypted.pem");
    std::fs::write(
        &encrypted,
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIBvTBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQI\n-----END ENCRYPTED PRIVATE KEY-----\n",
    )
    .unwrap();
    let e = error(&cert, &encrypted);
    assert!(
        e.contains("--tls-key") && e.contains("encrypted") && e.contains("openssl pkey"),
        "{e}"
    );
    // Another certificate's key.
    let e = error(&cert, &other_key);
    assert!(e.contains("does not go with"), "{e}");
    // A file far larger than any PEM certificate.
    let big = dir.path().join("big.pem");
    std::fs::write(&big, vec![b'A'; 2 * 1024 * 1024]).unwrap();
    let e = error(&big, &key);
    assert!(e.contains("larger than"), "{e}");
    assert!(tls::load(&cert, &key).is_ok());
}

#[test]
fn tls_lets_a_non_loopback_address_be_served_without_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key, _) = certificate(dir.path(), "server");
    let anywhere = "0.0.0.0".parse().unwrap();
    let plain = ApiConfig::default();
    let e = expansa_api::exposure(anywhere, &plain)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("--tls-cert") && e.contains("--behind-proxy"),
        "{e}"
    );
    let served = ApiConfig {
        tls: Some(tls::load(&cert, &key).unwrap()),
        ..ApiConfig::default()
    };
    assert!(expansa_api::exposure(anywhere, &served).is_ok());
    assert!(served.secure_cookies() && !plain.secure_cookies());
    // Public reads stay loopback-only, TLS or not.
    let public = ApiConfig {
        public_reads: true,
        ..served
    };
    assert!(expansa_api::exposure(anywhere, &public).is_err());
}
