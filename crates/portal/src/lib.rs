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

pub mod deliver;
pub mod offer;
pub mod page;
pub mod sign;

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
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use offer::Refusal;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

/// The longest token the portal looks up.
const MAX_TOKEN: usize = 200;

/// The path's parameters by name. The API mounts the portal under its own `/portal/{*rest}`
/// route, whose parameter comes along: a tuple or a single-value `Path` would not match.
pub(crate) type Params = Path<HashMap<String, String>>;

/// The parameter `name` of the path (empty when absent: no token opens with it).
pub(crate) fn param(params: &HashMap<String, String>, name: &str) -> String {
    params.get(name).cloned().unwrap_or_default()
}

/// Signature attempts allowed per link and minute (then 429).
pub const SIGNATURES_PER_MINUTE: u32 = 5;
/// Amendment documents one link may have made per minute (then 429): each keeps its PDF.
pub const DRAFTS_PER_MINUTE: u32 = 10;

/// What the portal's handlers share.
struct Portal {
    store: Store,
    /// The vendor's name, printed on the documents and numbering the invoices.
    vendor: String,
    /// Signature attempts, per link.
    signatures: DefaultKeyedRateLimiter<String>,
    /// Amendment documents made, per link.
    drafts: DefaultKeyedRateLimiter<String>,
    /// What a signed amendment sends.
    deliveries: Arc<deliver::Deliveries>,
}

/// Counts one more request of link `id` on `limiter`: 429 past `most` a minute.
fn allowed(
    limiter: &DefaultKeyedRateLimiter<String>,
    id: &str,
    most: u32,
    what: &str,
) -> Result<(), ApiError> {
    if limiter.len() > 10_000 {
        limiter.retain_recent();
    }
    limiter.check_key(&id.to_string()).map_err(|_| {
        ApiError::TooManyRequests(format!(
            "at most {most} {what} a minute with one link: wait a minute"
        ))
    })
}

impl Portal {
    /// Counts a signature attempt with link `id`: 429 past [`SIGNATURES_PER_MINUTE`].
    fn signing_allowed(&self, id: &str) -> Result<(), ApiError> {
        allowed(
            &self.signatures,
            id,
            SIGNATURES_PER_MINUTE,
            "signature attempts",
        )
    }

    /// Counts an amendment document made with link `id`: 429 past [`DRAFTS_PER_MINUTE`].
    fn drafting_allowed(&self, id: &str) -> Result<(), ApiError> {
        allowed(&self.drafts, id, DRAFTS_PER_MINUTE, "amendment documents")
    }
}

/// The portal's routes, with its state: mount under `/portal/`. `vendor` is the vendor's
/// name on the documents (`serve --vendor-name`); `deliveries`, what a signed amendment sends
/// (its worker starts here, within a Tokio runtime).
pub fn router(store: Store, vendor: &str, deliveries: deliver::Deliveries) -> Router {
    let deliveries = Arc::new(deliveries);
    deliver::spawn(store.clone(), deliveries.clone(), vendor.to_string());
    let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
    Router::new()
        .route("/portal/assets/{file}", get(asset))
        .route("/portal/{token}", get(show))
        .route("/portal/{token}/", get(show))
        .route("/portal/{token}/quote", post(quote))
        .route("/portal/{token}/amendments", post(sign::make))
        .route("/portal/{token}/amendments/{id}", get(sign::pdf))
        .route("/portal/{token}/amendments/{id}/sign", post(sign::sign))
        .fallback(|| async { ApiError::NotFound("no such page".into()) })
        // A customer's answers, refusals included, are not kept by shared caches.
        .layer(axum::middleware::map_response(no_store))
        .with_state(Arc::new(Portal {
            store,
            vendor: vendor.to_string(),
            signatures: RateLimiter::keyed(per_minute(SIGNATURES_PER_MINUTE)),
            drafts: RateLimiter::keyed(per_minute(DRAFTS_PER_MINUTE)),
            deliveries,
        }))
}

/// The link `token` opens, or 401 (the same for expired, revoked, forged and malformed).
pub(crate) async fn open(portal: &Portal, token: &str) -> Result<PortalLink, ApiError> {
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
pub(crate) struct Lang {
    lang: Option<String>,
}

/// The language a request asks for: `?lang=`, else `Accept-Language`.
pub(crate) fn locale_of(lang: &Lang, headers: &HeaderMap) -> expansa_ledger::Locale {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    page::locale(lang.lang.as_deref(), accept)
}

/// A JSON body of type `T` (415 without `Content-Type: application/json`, 400 when it is not
/// that JSON, an unknown field included).
pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<T, ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError::UnsupportedMediaType(
            "send the body as Content-Type: application/json".into(),
        ));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

/// `Cache-Control: no-store` on an answer that does not say otherwise.
async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// `GET /portal/{token}/`: the customer's page.
async fn show(
    State(portal): State<Arc<Portal>>,
    Path(params): Params,
    Query(lang): Query<Lang>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let token = param(&params, "token");
    let locale = locale_of(&lang, &headers);
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
    let wanted: offer::Wanted = json_body(&headers, &body)?;
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
pub(crate) fn refused(r: Refusal) -> ApiError {
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
