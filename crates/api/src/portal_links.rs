//! The customer portal, as staff see it (docs/portal.md): links made, listed and revoked
//! (`expansa portal link|list|revoke` over the API), and the amendments customers made there,
//! with their signature record, the event that applied each and its invoice. Admins only
//! ([`crate::auth::need`]); like the users endpoints, these change no book and take no
//! `Idempotency-Key` (a second link is a second link).

use crate::auth::Principal;
use crate::http::JsonBody;
use crate::{ApiError, AppState};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use expansa_store::{PortalAmendment, PortalLink, MAX_PORTAL_DAYS};
use serde_json::{json, Value};
use std::sync::Arc;

/// The most amendments one listing answers.
pub const MAX_AMENDMENTS_LISTED: u32 = 1000;

fn link_json(l: &PortalLink) -> Value {
    json!({
        "id": l.id, "customer_id": l.customer_id, "created_by": l.created_by,
        "created_at": l.created_at, "expires_at": l.expires_at, "revoked_at": l.revoked_at,
    })
}

/// `POST /api/v1/portal/links`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewLink {
    customer: String,
    days: Option<u32>,
}

/// Makes a link to a customer's portal page (`expansa portal link`): `{"customer", "days"}`
/// (days 1 to 90, default 7). The answer has the token and the page's path, given this once.
#[utoipa::path(post, path = "/api/v1/portal/links",
    request_body(content = Object, description = "{\"customer\": ID, \"days\": 1 to 90 (default 7)}"),
    responses((status = 201, description = "{\"id\", \"customer_id\", \"created_by\", \"created_at\", \"expires_at\", \"revoked_at\", \"token\", \"path\"}", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, description = "No such customer in the latest book", body = crate::ErrorBody)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let asked: NewLink =
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let days = asked.days.unwrap_or(7);
    if !(1..=MAX_PORTAL_DAYS).contains(&days) {
        return Err(ApiError::BadRequest(format!(
            "days {days}: a portal link lives 1 to {MAX_PORTAL_DAYS} days"
        )));
    }
    let (link, token) = s
        .store
        .create_portal_link(&asked.customer, days, &who.actor())
        .await?;
    let mut answer = link_json(&link);
    answer["token"] = json!(token);
    answer["path"] = json!(format!("/portal/{token}/"));
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The links (never their tokens), newest first.
#[utoipa::path(get, path = "/api/v1/portal/links",
    responses((status = 200, description = "[{\"id\", \"customer_id\", \"created_by\", \"created_at\", \"expires_at\", \"revoked_at\"}]", body = Vec<Object>),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub async fn list(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let links = s.store.portal_links().await?;
    Ok(Json(links.iter().map(link_json).collect::<Vec<_>>()).into_response())
}

/// Revokes a link (`expansa portal revoke`): its next request is refused.
#[utoipa::path(delete, path = "/api/v1/portal/links/{id}", params(("id" = String, Path, description = "The link's id (the token's part before the dot)")),
    responses((status = 200, description = "The link, revoked", body = Object),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn revoke(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let link = s.store.revoke_portal_link(&id).await?;
    Ok(Json(link_json(&link)).into_response())
}

/// An amendment as staff see it: what was priced, the signature record, event and invoice.
fn amendment_json(a: &PortalAmendment) -> Value {
    json!({
        "id": a.id,
        "link_id": a.link_id,
        "customer_id": a.customer_id,
        "contract": a.contract_id,
        "created_at": a.created_at,
        "sha256": a.sha256,
        "quote": serde_json::from_str::<Value>(&a.quote).unwrap_or(Value::Null),
        "signature": a.signature.as_ref().map(|s| json!({
            "signed_at": s.signed_at, "name": s.name, "email": s.email,
            "client_address": s.client_address, "user_agent": s.user_agent,
        })),
        "event": a.event,
        "invoice": a.invoice.as_ref().map(|(vendor, number, sha256)| json!({
            "vendor": vendor, "number": number, "sha256": sha256,
        })),
    })
}

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AmendmentsParams {
    /// How many, the newest (default 50; 1 to 1000).
    #[param(minimum = 1, maximum = 1000, example = 50)]
    limit: Option<u32>,
}

/// The amendments customers made on the portal, newest first: signed ones with their
/// signature record, the event that applied each and its invoice.
#[utoipa::path(get, path = "/api/v1/portal/amendments", params(AmendmentsParams),
    responses((status = 200, description = "[{\"id\", \"link_id\", \"customer_id\", \"contract\", \"created_at\", \"sha256\", \"quote\", \"signature\", \"event\", \"invoice\", \"deliveries\": [{\"kind\", \"target\", \"state\", \"attempts\", \"last_error\", \"created_at\", \"sent_at\"}]}], newest first", body = Vec<Object>),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub async fn amendments(
    State(s): State<Arc<AppState>>,
    Query(p): Query<AmendmentsParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.unwrap_or(50);
    if !(1..=MAX_AMENDMENTS_LISTED).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit}: from 1 to {MAX_AMENDMENTS_LISTED}"
        )));
    }
    let found = s.store.portal_amendments(limit).await?;
    let mut listed = Vec::with_capacity(found.len());
    for a in &found {
        let mut entry = amendment_json(a);
        let deliveries = s.store.deliveries_of(&a.id).await?;
        entry["deliveries"] = deliveries
            .iter()
            .map(|d| {
                json!({
                    "kind": d.kind, "target": d.target, "state": d.state, "attempts": d.attempts,
                    "last_error": d.last_error, "created_at": d.created_at, "sent_at": d.sent_at,
                })
            })
            .collect();
        listed.push(entry);
    }
    Ok(Json(listed).into_response())
}
