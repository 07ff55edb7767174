//! The HTTP API and the dashboard, over a [`Store`].
//!
//! [`app`] builds the whole service as one `Router` (tested without a socket); [`serve`] binds
//! it. Report endpoints take the CLI's parameters (`from=2024-01` is `--from 2024-01`) and run
//! the very same plan ([`expansa_commands::execute`]), so the API and the CLI accept the same
//! input, refuse it with the same words and print the same numbers. Every error is one JSON
//! shape ([`error::ErrorBody`]), the framework's own refusals included. Every request but the
//! pages and the login needs a session or an API key with the role [`auth::need`] names;
//! writes also need an `Idempotency-Key`. [`serve_on`] bounds what each connection and client may hold
//! ([`Limits`]).

mod admin;
mod assets;
pub mod auth;
mod books;
mod error;
mod http;
pub mod imports;
mod limits;
mod live;
mod openapi;
mod portal_links;
mod quotes;
mod reads;
mod renewals;
mod rows;
mod server;
pub mod tls;
pub mod webhooks;

pub use error::{ApiError, ErrorBody};
pub use limits::Limits;
pub use server::{init_logging, serve_on, MAX_HEAD};

use auth::Principal;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;
use books::BookCache;
use expansa_store::{Idempotency, SessionLimits, Store};
use governor::DefaultKeyedRateLimiter;
use std::net::IpAddr;
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};

/// How the server treats requests.
#[derive(Clone, Debug, Default)]
pub struct ApiConfig {
    /// Reads need no session or key (`serve --public-reads`, on a loopback address only).
    pub public_reads: bool,
    /// A TLS proxy is in front: a non-loopback address may be served without TLS.
    pub behind_proxy: bool,
    /// Built-in TLS (`serve --tls-cert --tls-key`): every connection is TLS.
    pub tls: Option<tls::Tls>,
    /// How long sessions live.
    pub sessions: SessionLimits,
    /// Timeouts, sizes, connections and request rates.
    pub limits: Limits,
    /// The webhook endpoints' secrets and tolerance.
    pub webhooks: webhooks::WebhookConfig,
    /// The customer portal's routes (`expansa_portal::router`), served under `/portal/`
    /// within this app's HTTP layer (security headers, limits, request ids, error shape).
    pub portal: Mounted,
}

/// Routes made elsewhere and mounted under a prefix of the app (the portal's, which depends on
/// this crate); none by default.
#[derive(Clone, Default)]
pub struct Mounted(pub Option<Router>);

impl std::fmt::Debug for Mounted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Mounted(routes)"
        } else {
            "Mounted(none)"
        })
    }
}

impl ApiConfig {
    /// Session cookies are `Secure` when the browser reaches the server over TLS: built in, or
    /// a proxy's.
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || self.behind_proxy
    }
}

/// What every handler shares.
pub struct AppState {
    store: Store,
    config: ApiConfig,
    books: BookCache,
    /// Converted books waiting for their commit.
    imports: imports::Imports,
    /// Requests per client (peer IP address).
    limiter: Arc<DefaultKeyedRateLimiter<IpAddr>>,
    /// Login attempts per client and per user name.
    logins: Arc<auth::LoginLimits>,
    /// The latest event, for live updates.
    live: live::Live,
    /// Wakes the worker that applies queued webhook events.
    webhook_worker: Arc<tokio::sync::Notify>,
}

impl AppState {
    /// The state, and (within a Tokio runtime) the worker that applies queued webhook events
    /// and the poller of live updates.
    pub fn new(store: Store, config: ApiConfig) -> Arc<AppState> {
        let webhook_worker = Arc::new(tokio::sync::Notify::new());
        webhooks::spawn_worker(store.clone(), &webhook_worker);
        Arc::new(AppState {
            live: live::Live::new(store.clone()),
            webhook_worker,
            books: BookCache::new(store.clone()),
            imports: imports::Imports::default(),
            limiter: Arc::new(config.limits.limiter()),
            logins: Arc::new(auth::LoginLimits::new()),
            store,
            config,
        })
    }

    /// Checks a write of `who` and returns the idempotency key its answer is kept under
    /// (scoped to the user or API key), with the request it answers: `what` (method and path)
    /// and `body`. Who may write was decided by [`auth::authorize`].
    fn writer(
        &self,
        who: &Principal,
        headers: &HeaderMap,
        what: &str,
        body: &[u8],
    ) -> Result<Idempotency, ApiError> {
        let scoped = format!("{}:{}", who.scope(), idempotency_key(headers)?);
        let request = [what.as_bytes(), b"\n", body].concat();
        Ok(Idempotency::new(scoped, &request))
    }
}

/// The token of an `Authorization: Bearer TOKEN` value; the scheme's name is case-insensitive
/// (RFC 9110, 11.1): `bearer` and `BEARER` are `Bearer`.
fn bearer_token(value: &str) -> Option<&str> {
    let value = value.trim_start();
    let (scheme, token) = value.split_once([' ', '\t'])?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The `Idempotency-Key` of a write, required.
fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::MissingIdempotencyKey(
                "every write needs an Idempotency-Key header (1 to 200 characters)".into(),
            )
        })
}

/// The whole service: API, OpenAPI document and dashboard, with the HTTP layer around them:
/// request ids (`x-request-id`, echoed), one log line per request, security headers on every
/// response, every error in the JSON shape, UTF-8 paths and queries, the request timeout, the
/// body limit and the per-client rate limit (for requests that came through [`serve_on`]).
pub fn app(state: Arc<AppState>) -> Router {
    let limits = state.config.limits.clone();
    let mut router = Router::new()
        .route("/openapi.json", get(openapi::document))
        .route("/api/v1/movements", get(reads::movements))
        .route("/api/v1/movements/detail", get(reads::movement_detail))
        .route("/api/v1/customers/{id}/trail", get(reads::trail))
        .route("/api/v1/kpis", get(reads::kpis))
        .route("/api/v1/cohorts", get(reads::cohorts))
        .route("/api/v1/rules", get(reads::rules))
        .route("/api/v1/opportunities", get(reads::opportunities))
        .route("/api/v1/offers", get(reads::offers))
        .route("/api/v1/events", get(reads::events))
        .route("/api/v1/events/stream", get(live::stream))
        .route("/api/v1/webhooks", get(webhooks::list))
        .route("/api/v1/webhooks/stripe", post(webhooks::stripe))
        .route("/api/v1/webhooks/generic", post(webhooks::generic))
        .route(
            "/api/v1/webhooks/{source}/{id}/retry",
            post(webhooks::retry),
        )
        .route("/api/v1/contracts/{id}/terms", get(reads::contract))
        .route("/api/v1/renewals", get(renewals::renewals))
        .route("/api/v1/imports/sources", get(imports::sources))
        .route("/api/v1/imports/preview", post(imports::preview))
        .route("/api/v1/imports/{token}/commit", post(imports::commit))
        .route("/api/v1/quotes/amend", post(quotes::amend))
        .route("/api/v1/quotes/renew", post(quotes::renew))
        .route(
            "/api/v1/portal/links",
            get(portal_links::list).post(portal_links::create),
        )
        .route(
            "/api/v1/portal/links/{id}",
            axum::routing::delete(portal_links::revoke),
        )
        .route("/api/v1/portal/amendments", get(portal_links::amendments))
        .route(
            "/api/v1/dashboards/{id}",
            get(assets::get_dashboard).put(assets::put_dashboard),
        )
        .route("/api/v1/{table}", get(rows::list).post(rows::create))
        .route(
            "/api/v1/{table}/{id}",
            get(rows::show).put(rows::replace).delete(rows::remove),
        )
        .route("/api/v1/session", get(auth::whoami))
        .route("/api/v1/audit", get(admin::audit))
        .route(
            "/api/v1/users",
            get(admin::list_users).post(admin::create_user),
        )
        .route(
            "/api/v1/users/{name}",
            axum::routing::put(admin::change_user),
        )
        .route("/api/v1/users/{name}/password", post(admin::reset_password))
        .route("/", get(assets::index))
        .route("/login", get(assets::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/{*file}", get(assets::file));
    if let Some(portal) = state.config.portal.0.clone() {
        router = router.route_service("/portal/{*rest}", portal);
    }
    let mut router = router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authorize,
        ))
        .fallback(|| async { ApiError::NotFound("no such endpoint".into()) })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::MethodNotAllowed(format!("{method} is not allowed on {}", uri.path()))
        })
        .layer(axum::extract::DefaultBodyLimit::max(limits.max_body))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            http::rate_limit,
        ))
        .layer(axum::middleware::from_fn(http::utf8_only))
        .layer(CatchPanicLayer::custom(http::panic_response))
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout.as_secs(),
            http::json_errors,
        ));
    for (name, value) in http::security_headers() {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, value));
    }
    router
        .layer(PropagateRequestIdLayer::new(http::REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(http::request_span)
                .on_request(())
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO))
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(http::REQUEST_ID, MakeRequestUuid))
        .layer(axum::middleware::from_fn(http::bounded_request_id))
        .with_state(state)
}

/// Serves the API and the dashboard on `bind` until Ctrl-C, within `config.limits`.
pub async fn serve(store: Store, bind: &str, config: ApiConfig) -> anyhow::Result<()> {
    // Refused before the port is ever opened when the address is given as one; a host name is
    // checked once it is bound, below.
    if let Ok(address) = bind.parse::<std::net::SocketAddr>() {
        exposure(address.ip(), &config)?;
    }
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {bind}: {e}"))?;
    let address = listener.local_addr()?;
    exposure(address.ip(), &config)?;
    let state = AppState::new(store, config);
    // The latest book is read before the first request, not by it (and the 200 behind it).
    let started = std::time::Instant::now();
    // It is the base of the book in parts that later writes bring up to date.
    match state.store.latest_parts().await.map_err(ApiError::from) {
        Ok(parts) => eprintln!(
            "expansa: the book at event {} ({} lines) read in {:.2} s",
            parts.event,
            parts.base.lines.len(),
            started.elapsed().as_secs_f64()
        ),
        Err(ApiError::NotFound(_)) => eprintln!("expansa: the store holds no book yet"),
        Err(e) => anyhow::bail!("cannot read the store's book: {}", e.parts().2),
    }
    let scheme = if state.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    eprintln!(
        "expansa: serving {scheme}://{address}/ (API under /api/v1, OpenAPI at /openapi.json)"
    );
    let limits = &state.config.limits;
    tracing::info!(
        header_timeout_s = limits.header_timeout.as_secs(),
        request_timeout_s = limits.request_timeout.as_secs(),
        max_body = limits.max_body,
        max_connections = limits.max_connections,
        max_connections_per_client = limits.max_connections_per_client,
        rate_per_second = limits.rate_per_second,
        rate_burst = limits.rate_burst,
        "limits"
    );
    let store = state.store.clone();
    let served = serve_on(listener, state, shutdown_signal()).await;
    let (batches, writes) = store.committed_batches();
    if batches > 0 {
        eprintln!(
            "expansa: {writes} writes committed in {batches} batches ({:.1} a batch)",
            writes as f64 / batches as f64
        );
    }
    served
}

/// Refuses to serve what a network could read: `--public-reads` is for a loopback address only,
/// and a non-loopback address needs TLS: built in (`--tls-cert`, `--tls-key`) or a proxy's in
/// front (`--behind-proxy`).
pub fn exposure(ip: IpAddr, config: &ApiConfig) -> anyhow::Result<()> {
    if ip.is_loopback() {
        return Ok(());
    }
    if config.public_reads {
        anyhow::bail!(
            "--public-reads lets anyone read the book: it is refused on {ip}, which is not a loopback address (bind 127.0.0.1 or ::1, or drop --public-reads)"
        );
    }
    if config.tls.is_none() && !config.behind_proxy {
        anyhow::bail!(
            "{ip} is not a loopback address: sessions and keys would cross the network in clear; serve TLS (--tls-cert FILE --tls-key FILE), or put a TLS proxy in front and pass --behind-proxy, or bind 127.0.0.1"
        );
    }
    Ok(())
}

/// Resolves on Ctrl-C (SIGINT) or, on Unix, SIGTERM (what systemd and docker send): either
/// stops the server the same way, so the store is closed and checkpointed.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let terminate = async {
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    term.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
