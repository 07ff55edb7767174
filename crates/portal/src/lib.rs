//! The customer portal (docs/portal.md): a customer's own page, opened by a link staff make
//! (`expansa portal link`), under `/portal/{token}/`.
//!
//! The token in the path is the only credential the portal takes: it is checked on every
//! request ([`expansa_store::Store::portal_link`]: the SHA-256 of its secret, not expired, not
//! revoked), and names the one customer whose contracts the page shows and may price. No
//! staff session or API key opens a portal page, and no staff endpoint takes a portal token
//! (they know sessions and API keys only). The page and the JSON endpoint run the same pure
//! functions as the CLI: `contract show`'s view of a contract, the opportunity model, and
//! `quote amend`'s pricing ([`offer`]).
//!
//! [`router`] is mounted by the API's app under `/portal/` (`expansa_api::ApiConfig::portal`),
//! so every answer has the dashboard's security headers (CSP), request ids, limits and error
//! shape.

pub mod offer;
pub mod page;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use expansa_api::ApiError;
use expansa_contracts::render_quote;
use expansa_ledger::Format;
use expansa_store::{PortalLink, Store};
use offer::Refusal;
use std::collections::HashMap;
use std::sync::Arc;

/// The longest token the portal looks up.
const MAX_TOKEN: usize = 200;

/// The path's parameters by name. The API mounts the portal under its own `/portal/{*rest}`
/// route, whose parameter comes along: a tuple or a single-value `Path` would not match.
type Params = Path<HashMap<String, String>>;

/// The parameter `name` of the path (empty when absent: no token opens with it).
fn param(params: &HashMap<String, String>, name: &str) -> String {
    params.get(name).cloned().unwrap_or_default()
}

/// What the portal's handlers share.
struct Portal {
    store: Store,
}

/// The portal's routes, with its state: mount under `/portal/`.
pub fn router(store: Store) -> Router {
    Router::new()
        .route("/portal/assets/{file}", get(asset))
        .route("/portal/{token}", get(show))
        .route("/portal/{token}/", get(show))
        .route("/portal/{token}/quote", post(quote))
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        .with_state(Arc::new(Portal { store }))
}

/// The link `token` opens, or 401 (the same for expired, revoked, forged and malformed).
async fn open(portal: &Portal, token: &str) -> Result<PortalLink, ApiError> {
    let link = if token.len() <= MAX_TOKEN {
        portal.store.portal_link(token).await?
    } else {
        None
    };
    link.ok_or_else(|| {
        ApiError::Unauthorized(
            "this link is not valid: it may have expired or been revoked; ask your contact for a new one"
                .into(),
        )
    })
}

#[derive(serde::Deserialize)]
struct Lang {
    lang: Option<String>,
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `GET /portal/{token}/`: the customer's page.
async fn show(
    State(portal): State<Arc<Portal>>,
    Path(params): Params,
    Query(lang): Query<Lang>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let locale = page::locale(lang.lang.as_deref(), accept);
    let Ok(link) = open(&portal, &token).await else {
        return Ok(html(StatusCode::UNAUTHORIZED, page::invalid_link(locale)));
    };
    let (_, book) = portal.store.latest_book().await?;
    let today = expansa_commands::renewals::today();
    let contracts = offer::contracts(&book, &link.customer_id, today);
    let mut response = html(
        StatusCode::OK,
        page::render(&book, &link.customer_id, &contracts, today, &token, locale),
    );
    // A customer's figures are not kept by shared caches.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// `POST /portal/{token}/quote` with `{"contract", "items": [{"product", "quantity"}]}` (the
/// total quantity wanted of each product): the amendment from today, priced by `quote amend`
/// and answered as its JSON (`expansa quote amend --format json`).
async fn quote(
    State(portal): State<Arc<Portal>>,
    Path(params): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let link = open(&portal, &token).await?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as Content-Type: application/json".into(),
        ));
    }
    let wanted: offer::Wanted =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let (_, book) = portal.store.latest_book().await?;
    let today = expansa_commands::renewals::today();
    let (_, quote) = offer::price(&book, &link.customer_id, &wanted, today).map_err(refused)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        render_quote(&quote, Format::Json),
    )
        .into_response())
}

/// A refusal as the API's error.
fn refused(r: Refusal) -> ApiError {
    match r {
        Refusal::Invalid(m) => ApiError::BadRequest(m),
        Refusal::NotOffered(m) => ApiError::Forbidden(m),
        Refusal::NoContract(m) => ApiError::NotFound(m),
    }
}

/// The page's script and style, embedded in the binary.
async fn asset(Path(params): Params) -> Result<Response, ApiError> {
    let file = param(&params, "file");
    let (body, kind) = match file.as_str() {
        "portal.js" => (
            include_str!("../assets/portal.js"),
            "text/javascript; charset=utf-8",
        ),
        "portal.css" => (
            include_str!("../assets/portal.css"),
            "text/css; charset=utf-8",
        ),
        _ => return Err(ApiError::NotFound(format!("no file {file:?}"))),
    };
    Ok(([(header::CONTENT_TYPE, kind)], body).into_response())
}
