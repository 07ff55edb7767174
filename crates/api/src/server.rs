//! The listening side: connections accepted up to a cap (in all and per client), each served by
//! hyper's HTTP/1.1 with a header-read timeout that also closes idle keep-alive connections and
//! the same time for a client that stops reading its answer, the peer's address handed to the
//! rate limit, and a graceful stop; over TLS (rustls) when configured, the handshake within the
//! header timeout. The log goes to standard error.

use crate::{app, AppState};
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// Largest request line and headers together, in bytes (hyper answers 431 above).
pub const MAX_HEAD: usize = 64 * 1024;

/// How long a stop waits for the requests under way.
const DRAIN: Duration = Duration::from_secs(10);

/// Installs the log: `RUST_LOG` filters (default `info`), one line per request (its id, method,
/// path, status and time) and every internal error; plain text or JSON lines, on standard error.
pub fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests) keeps the first subscriber.
    let _ = if json {
        builder.json().try_init()
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
        builder.with_ansi(ansi).try_init()
    };
}

/// The open connections of each client.
#[derive(Clone, Default)]
struct Clients(Arc<Mutex<HashMap<IpAddr, usize>>>);

/// One connection of a client, counted until it is dropped.
struct ClientSlot {
    clients: Clients,
    ip: IpAddr,
}

impl Clients {
    /// A slot for `ip`, unless it already holds `max` connections.
    fn take(&self, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            clients: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.clients.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves [`app`] on `listener` until `shutdown` completes, within the state's limits; then
/// stops accepting and waits up to 10 s for the requests under way.
pub async fn serve_on(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let limits = state.config.limits.clone();
    let limiter = state.limiter.clone();
    let logins = state.logins.clone();
    let tls = state
        .config
        .tls
        .as_ref()
        .map(|t| tokio_rustls::TlsAcceptor::from(t.0.clone()));
    let router = app(state);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let clients = Clients::default();
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(MAX_HEAD)
        .keep_alive(true);
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    tokio::pin!(shutdown);
    loop {
        // A connection is accepted only with a free slot: the others wait in the listen queue.
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
            _ = sweep.tick() => {
                // The rate limiter forgets clients that are back to a full allowance.
                limiter.retain_recent();
                limiter.shrink_to_fit();
                logins.sweep();
                continue;
            }
        };
        let Some(slot) = clients.take(peer.ip(), limits.max_connections_per_client) else {
            tracing::debug!(%peer, "closed: the client already holds its connections");
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // A client that stops reading its answer (a write pending that long) is cut too.
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(limits.header_timeout));
        let service = router
            .clone()
            .map_request(move |mut request: hyper::Request<Incoming>| {
                request
                    .extensions_mut()
                    .insert(ConnectInfo::<SocketAddr>(peer));
                request
            });
        let service = TowerToHyperService::new(service);
        let stream = Box::pin(stream);
        let (http, watcher, handshake) = (http.clone(), graceful.watcher(), limits.header_timeout);
        let acceptor = tls.clone();
        tokio::spawn(async move {
            let ended = match acceptor {
                None => {
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                // The handshake is bounded like the request's head: a client that stalls it is
                // cut, holding its slot no longer than a slow header would.
                Some(acceptor) => {
                    match tokio::time::timeout(handshake, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let connection = http.serve_connection(TokioIo::new(tls), service);
                            watcher.watch(connection).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            Ok(())
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake not done within the header timeout");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(e) = ended {
                tracing::debug!(%peer, "connection ended: {e}");
            }
            drop(slot);
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN) => tracing::warn!("stopped with requests still under way"),
    }
    Ok(())
}
