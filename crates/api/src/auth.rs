//! Who is asking and what they may do: API keys (`Authorization: Bearer`, for programs),
//! session cookies (for people, after `POST /login`), and one table, [`need`], of the role each
//! endpoint needs. [`authorize`] is the only place a request is let through or refused: 401
//! without a live session or key, 403 for a role too low or a session write without its CSRF
//! token (docs/api.md, "Accounts, roles and sessions").

use crate::{ApiError, AppState};
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use expansa_store::{ApiKey, Role};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "expansa_session";
/// The header a session's writes carry their CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who a request is from, once [`authorize`] let it through.
#[derive(Clone, Debug)]
pub enum Principal {
    /// Nobody: a read under `serve --public-reads`.
    Anonymous,
    /// A logged-in user, by the session's token (the cookie's value).
    User {
        name: String,
        role: Role,
        token: String,
    },
    /// A program, by its API key.
    Key(ApiKey),
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::Anonymous => Role::Viewer,
            Principal::User { role, .. } => *role,
            Principal::Key(key) => key.role,
        }
    }

    /// How the event log and the audit name it.
    pub fn actor(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::User { name, .. } => format!("user {name}"),
            Principal::Key(key) => format!("{} ({})", key.name, key.id),
        }
    }

    /// What idempotency keys are scoped to: one user's or one key's.
    pub(crate) fn scope(&self) -> String {
        match self {
            Principal::Anonymous => "anonymous".into(),
            Principal::User { name, .. } => format!("user:{name}"),
            Principal::Key(key) => format!("api:{}", key.id),
        }
    }
}

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    /// The principal [`authorize`] put on the request.
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Principal, ApiError> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("log in or send an API key".into()))
    }
}

/// The CSRF token of a session: derived from its secret token (so it need not be stored), and
/// telling nothing about it.
pub fn csrf_token(session_token: &str) -> String {
    expansa_store::sha256_hex(&format!("expansa-csrf:{session_token}"))
}

/// What an endpoint needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Need {
    /// Nothing: the pages, their files, the OpenAPI document, the login, and the webhooks
    /// (their signature is checked by their handlers).
    Public,
    /// At least this role; `audited`: a read of customer data, logged with who asked.
    Role { role: Role, audited: bool },
    /// A quote: analyst to price it, admin to record it (`"apply": true` in the body).
    Quote,
}

/// The one table of what each endpoint needs, by method and route (as the router names it).
/// A route not named here needs a viewer to read it and an admin to change anything.
pub fn need(method: &Method, route: &str) -> Need {
    let read = method == Method::GET || method == Method::HEAD;
    let role = |role, audited| Need::Role { role, audited };
    match route {
        "/" | "/login" | "/assets/{*file}" | "/openapi.json" if read => Need::Public,
        "/login" if method == Method::POST => Need::Public,
        // The customer portal: authenticated by its link's token alone (crate expansa-portal),
        // never by a session or an API key.
        "/portal/{*rest}" => Need::Public,
        // Authenticated by their signature alone (crate::webhooks).
        "/api/v1/webhooks/stripe" | "/api/v1/webhooks/generic" if method == Method::POST => {
            Need::Public
        }
        "/api/v1/events/stream" if read => role(Role::Viewer, false),
        "/logout" => role(Role::Viewer, false),
        "/api/v1/session" | "/api/v1/imports/sources" | "/api/v1/dashboards/{id}" if read => {
            role(Role::Viewer, false)
        }
        "/api/v1/dashboards/{id}" => role(Role::Analyst, false),
        "/api/v1/quotes/amend" | "/api/v1/quotes/renew" => Need::Quote,
        "/api/v1/users"
        | "/api/v1/users/{name}"
        | "/api/v1/users/{name}/password"
        | "/api/v1/audit"
        | "/api/v1/portal/links"
        | "/api/v1/portal/links/{id}" => role(Role::Admin, false),
        // Signature records: customers' names, e-mails and addresses.
        "/api/v1/portal/amendments" => role(Role::Admin, true),
        // What billing systems sent: customers' data.
        "/api/v1/webhooks" => role(Role::Admin, true),
        _ if read => role(Role::Viewer, true),
        _ => role(Role::Admin, false),
    }
}

/// The live session a cookie names, if any, with its token.
async fn session_of(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(expansa_store::Session, String)>, ApiError> {
    let jar = CookieJar::from_headers(headers);
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let token = cookie.value().to_string();
    Ok(state
        .store
        .session(&token, state.config.sessions)
        .await?
        .map(|s| (s, token)))
}

/// Who sent `headers`: a key (a bad one is refused even beside a good cookie), else a session
/// cookie, else nobody (`None`).
async fn identify(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let token = value
            .to_str()
            .ok()
            .and_then(crate::bearer_token)
            .ok_or_else(|| {
                ApiError::Unauthorized("send an API key as `Authorization: Bearer KEY`".into())
            })?;
        let key = state
            .store
            .authenticate(token)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("unknown or revoked API key".into()))?;
        return Ok(Some(Principal::Key(key)));
    }
    if CookieJar::from_headers(headers)
        .get(SESSION_COOKIE)
        .is_some()
    {
        let (session, token) = session_of(state, headers).await?.ok_or_else(|| {
            ApiError::Unauthorized("the session expired or ended: log in again at /login".into())
        })?;
        return Ok(Some(Principal::User {
            name: session.user.name,
            role: session.user.role,
            token,
        }));
    }
    Ok(None)
}

/// Lets a request through to its handler or refuses it, by [`need`]: identifies who sent it,
/// checks a session's CSRF token on anything but a read, checks the role, logs a read of
/// customer data, and hands the handler the [`Principal`].
pub(crate) async fn authorize(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    match check(&state, request).await {
        Ok((request, principal, audited)) => {
            let method = request.method().clone();
            let path = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            let response = next.run(request).await;
            if audited && !matches!(principal, Principal::Anonymous) {
                let store = state.store.clone();
                let status = response.status().as_u16();
                // Logged beside the answer, not before it: a read does not wait for a write.
                tokio::spawn(async move {
                    let actor = principal.actor();
                    if let Err(e) = store.audit(&actor, method.as_str(), &path, status).await {
                        tracing::warn!("cannot log a read in the audit: {e}");
                    }
                });
            }
            response
        }
        Err(e) => e.into_response(),
    }
}

async fn check(state: &AppState, request: Request) -> Result<(Request, Principal, bool), ApiError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let method = request.method().clone();
    let needed = need(&method, &route);
    if needed == Need::Public {
        return Ok((request, Principal::Anonymous, false));
    }
    let read = method == Method::GET || method == Method::HEAD;
    let principal = match identify(state, request.headers()).await? {
        Some(p) => p,
        None if state.config.public_reads
            && read
            && matches!(
                needed,
                Need::Role {
                    role: Role::Viewer,
                    ..
                }
            ) =>
        {
            // A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) would
            // otherwise read the book: public reads answer loopback names only.
            if !loopback_host(request.headers()) {
                return Err(ApiError::Forbidden(
                    "public reads answer requests to localhost, 127.0.0.1 or [::1] only (the \
                     Host header names another host): log in or send an API key"
                        .into(),
                ));
            }
            Principal::Anonymous
        }
        None => {
            return Err(ApiError::Unauthorized(
                "log in (POST /login) or send an API key as `Authorization: Bearer KEY`".into(),
            ))
        }
    };
    if let Principal::User { token, .. } = &principal {
        if !read {
            let sent = request
                .headers()
                .get(CSRF_HEADER)
                .map(HeaderValue::as_bytes)
                .unwrap_or_default();
            if !expansa_store::constant_time_eq(sent, csrf_token(token).as_bytes()) {
                return Err(ApiError::Forbidden(format!(
                    "a write made with a session needs its CSRF token in the {CSRF_HEADER} header \
                     (GET /api/v1/session gives it)"
                )));
            }
        }
    }
    let (request, role, audited) = match needed {
        Need::Public => unreachable!("answered above"),
        Need::Role { role, audited } => (request, role, audited),
        // Below analyst, refused whatever the body (checked below).
        Need::Quote if principal.role() < Role::Analyst => (request, Role::Analyst, false),
        Need::Quote => {
            let (request, apply) = quote_applies(state, request).await?;
            let role = if apply { Role::Admin } else { Role::Analyst };
            (request, role, false)
        }
    };
    if principal.role() < role {
        return Err(ApiError::Forbidden(format!(
            "{} is {}: this needs {role} or above",
            principal.actor(),
            principal.role()
        )));
    }
    let mut request = request;
    request.extensions_mut().insert(principal.clone());
    Ok((request, principal, audited))
}

/// Whether a quote's JSON body asks to record it (`"apply": true`), read by the handler's own
/// parser ([`crate::quotes::applies`]); the body is read (within the body limit) and put back
/// for the handler.
async fn quote_applies(state: &AppState, request: Request) -> Result<(Request, bool), ApiError> {
    let (parts, body) = request.into_parts();
    let bytes: Bytes = axum::body::to_bytes(body, state.config.limits.max_body)
        .await
        .map_err(|_| {
            ApiError::PayloadTooLarge(format!(
                "the body is larger than {} bytes (serve --max-body)",
                state.config.limits.max_body
            ))
        })?;
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let apply = crate::quotes::applies(&route, &bytes)?;
    Ok((Request::from_parts(parts, Body::from(bytes)), apply))
}

/// Whether the request's `Host` names this machine's loopback (`localhost`, `127.0.0.1`,
/// `[::1]`, with any port). A request without one (HTTP/1.0, a router called in a test) names
/// no other host: a browser always sends it.
fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST) else {
        return true;
    };
    let Ok(host) = host.to_str() else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Login attempts allowed: per client address, and per user name from one address (so that
/// guessing a name's password from elsewhere cannot lock its owner out), each a minute's
/// allowance.
pub(crate) struct LoginLimits {
    by_ip: DefaultKeyedRateLimiter<IpAddr>,
    by_user: DefaultKeyedRateLimiter<(IpAddr, String)>,
}

/// Attempts per minute from one address.
pub const LOGINS_PER_IP_PER_MINUTE: u32 = 20;
/// Attempts per minute at one user name from one address.
pub const LOGINS_PER_USER_PER_MINUTE: u32 = 5;

impl LoginLimits {
    pub(crate) fn new() -> LoginLimits {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        LoginLimits {
            by_ip: RateLimiter::keyed(per_minute(LOGINS_PER_IP_PER_MINUTE)),
            by_user: RateLimiter::keyed(per_minute(LOGINS_PER_USER_PER_MINUTE)),
        }
    }

    /// Forgets the addresses and names back to a full allowance.
    pub(crate) fn sweep(&self) {
        self.by_ip.retain_recent();
        self.by_ip.shrink_to_fit();
        self.by_user.retain_recent();
        self.by_user.shrink_to_fit();
    }
}

/// `POST /login` with `{"user", "password"}` as JSON or as a form.
#[derive(serde::Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

/// Logs a user in: a new session, its cookie, and its CSRF token in the answer (JSON), or a
/// redirect to the dashboard (a form). A wrong name or password is one answer (401), after
/// the same work; attempts are limited per address and per name (429).
pub(crate) async fn login(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: Bytes,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let LoginBody { user, password } = if form {
        let mut user = None;
        let mut password = None;
        for (k, v) in form_urlencoded::parse(&body) {
            match k.as_ref() {
                "user" => user = Some(v.into_owned()),
                "password" => password = Some(v.into_owned()),
                _ => {}
            }
        }
        LoginBody {
            user: user.unwrap_or_default(),
            password: password.unwrap_or_default(),
        }
    } else {
        serde_json::from_slice(&body).map_err(|_| {
            ApiError::BadRequest(
                "send {\"user\": NAME, \"password\": PASSWORD} as JSON, or a form with user and password"
                    .into(),
            )
        })?
    };
    let too_many = |what: &str| {
        ApiError::TooManyRequests(format!(
            "too many login attempts {what}: wait a minute and try again"
        ))
    };
    // Without a socket (a router called in a test) there is no address to limit.
    let connected = extensions.get::<ConnectInfo<SocketAddr>>();
    let peer = connected.map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(peer)| peer.ip());
    if connected.is_some() && state.logins.by_ip.check_key(&peer).is_err() {
        return Err(too_many(&format!("from {peer}")));
    }
    let user = user.trim().to_string();
    if user.is_empty() || user.len() > expansa_store::MAX_USER_NAME {
        return Err(ApiError::Unauthorized("wrong user name or password".into()));
    }
    if state
        .logins
        .by_user
        .check_key(&(peer, user.clone()))
        .is_err()
    {
        return Err(too_many(&format!("for {user}")));
    }
    let Some(found) = state.store.verify_login(&user, &password).await? else {
        tracing::info!(user = user.as_str(), "login refused");
        return Err(ApiError::Unauthorized("wrong user name or password".into()));
    };
    let token = state.store.create_session(&found.name).await?;
    tracing::info!(user = found.name.as_str(), "logged in");
    let cookie = Cookie::build((SESSION_COOKIE, token.clone()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .path("/")
        .max_age(
            time::Duration::try_from(state.config.sessions.absolute).unwrap_or(time::Duration::DAY),
        )
        .build();
    let jar = CookieJar::new().add(cookie);
    if form {
        return Ok((jar, [(header::LOCATION, "/")], StatusCode::SEE_OTHER).into_response());
    }
    let answer = serde_json::json!({
        "user": found.name,
        "role": found.role.name(),
        "csrf": csrf_token(&token),
    });
    Ok((jar, Json(answer)).into_response())
}

/// Ends the request's session and clears its cookie.
pub(crate) async fn logout(
    State(state): State<Arc<AppState>>,
    principal: Principal,
) -> Result<Response, ApiError> {
    let Principal::User { token, .. } = &principal else {
        return Err(ApiError::BadRequest(
            "only a session logs out (an API key is revoked with `expansa keys revoke`)".into(),
        ));
    };
    state.store.end_session(token).await?;
    // A removal cookie (empty, expired) so that the browser drops it.
    let mut gone = Cookie::build((SESSION_COOKIE, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(state.config.secure_cookies())
        .build();
    gone.make_removal();
    let jar = CookieJar::new().add(gone);
    Ok((jar, Json(serde_json::json!({"logged_out": true}))).into_response())
}

/// Who the request is from: `{"kind": "user"|"key"|"anonymous", "name", "role", "csrf"}`
/// (`csrf` for a session only).
#[utoipa::path(get, path = "/api/v1/session",
    responses((status = 200, description = "{\"kind\": \"user\"|\"key\"|\"anonymous\", \"name\", \"role\": \"viewer\"|\"analyst\"|\"admin\", \"csrf\": the token a session's writes send in X-CSRF-Token, or null}", body = Object),
              (status = 401, body = crate::ErrorBody)))]
pub(crate) async fn whoami(principal: Principal) -> Response {
    let (kind, name, csrf) = match &principal {
        Principal::Anonymous => ("anonymous", None, None),
        Principal::User { name, token, .. } => {
            ("user", Some(name.clone()), Some(csrf_token(token)))
        }
        Principal::Key(key) => ("key", Some(key.name.clone()), None),
    };
    Json(serde_json::json!({
        "kind": kind,
        "name": name,
        "role": principal.role().name(),
        "csrf": csrf,
    }))
    .into_response()
}

/// A login from another site is refused (login CSRF): an `Origin` header, when sent, names
/// this server's host.
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    if origin != "null" && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "a login from another site ({origin}) is refused"
    )))
}
