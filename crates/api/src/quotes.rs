//! Quotes over HTTP: the body becomes `expansa quote amend|renew` flags; with `"apply": true`
//! the quote is recorded in the store, once per Idempotency-Key.

use crate::http::JsonBody;
use crate::reads::plan_from;
use crate::rows::{actor, replayable};
use crate::{ApiError, AppState};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use expansa_commands::Command;
use expansa_contracts::{quote_amend, quote_renew, render_quote};
use expansa_ledger::Format;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// An amendment request (the flags of `expansa quote amend`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AmendBody {
    pub contract: String,
    /// First day of the change, YYYY-MM-DD.
    pub effective: String,
    /// `PRODUCT:QTY` items.
    #[serde(default)]
    pub add: Vec<String>,
    #[serde(default)]
    pub set: Vec<String>,
    /// Products.
    #[serde(default)]
    pub remove: Vec<String>,
    /// `OLD:NEW` items.
    #[serde(default)]
    pub swap: Vec<String>,
    /// month_day (default), day or month.
    pub precision: Option<String>,
    /// Record the quote in the store (needs an API key and an Idempotency-Key).
    #[serde(default)]
    pub apply: bool,
}

/// A renewal request (the flags of `expansa quote renew`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenewBody {
    pub contract: String,
    /// same, list or uplift (default: the contract's).
    pub pricing: Option<String>,
    /// Uplift percentage, as a string ("5").
    pub uplift: Option<String>,
    #[serde(default)]
    pub apply: bool,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

/// Whether the quote body of `route` asks to record it, read exactly as its handler reads it
/// (the same type, the same parser: a JSON array of the fields in order is the same request
/// to both), so the role check and the handler can never disagree. A body the handler would
/// refuse is refused here.
pub(crate) fn applies(route: &str, body: &[u8]) -> Result<bool, ApiError> {
    Ok(if route.ends_with("/amend") {
        parse::<AmendBody>(body)?.apply
    } else {
        parse::<RenewBody>(body)?.apply
    })
}

/// Prices an amendment, co-terminated, with exact proration; `apply` records it.
#[utoipa::path(post, path = "/api/v1/quotes/amend", request_body = AmendBody, params(crate::openapi::WriteHeaders),
    responses((status = 200, description = "The quote (with `applied` when recorded)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn amend(
    State(s): State<Arc<AppState>>,
    who: crate::auth::Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let b: AmendBody = parse(&body)?;
    let mut params = vec![
        ("contract".to_string(), b.contract),
        ("effective".to_string(), b.effective),
    ];
    for (flag, items) in [
        ("add", b.add),
        ("set", b.set),
        ("remove", b.remove),
        ("swap", b.swap),
    ] {
        params.extend(items.into_iter().map(|v| (flag.to_string(), v)));
    }
    params.extend(b.precision.map(|p| ("precision".to_string(), p)));
    let command = ["quote", "amend"];
    quote(
        &s, &who, &headers, &command, params, b.apply, "amend", &body,
    )
    .await
}

/// Prices a renewal; `apply` records it.
#[utoipa::path(post, path = "/api/v1/quotes/renew", request_body = RenewBody, params(crate::openapi::WriteHeaders),
    responses((status = 200, description = "The quote (with `applied` when recorded)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn renew(
    State(s): State<Arc<AppState>>,
    who: crate::auth::Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let b: RenewBody = parse(&body)?;
    let mut params = vec![("contract".to_string(), b.contract)];
    params.extend(b.pricing.map(|p| ("pricing".to_string(), p)));
    params.extend(b.uplift.map(|p| ("uplift".to_string(), p)));
    let command = ["quote", "renew"];
    quote(
        &s, &who, &headers, &command, params, b.apply, "renew", &body,
    )
    .await
}

/// Runs `command` with `params`; with `apply`, records the quote (`what`: amend or renew) once
/// per Idempotency-Key and `body`.
#[allow(clippy::too_many_arguments)]
async fn quote(
    s: &AppState,
    who: &crate::auth::Principal,
    headers: &HeaderMap,
    command: &[&str],
    params: Vec<(String, String)>,
    apply: bool,
    what: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let allowed = [
        "contract",
        "effective",
        "add",
        "set",
        "remove",
        "swap",
        "precision",
        "pricing",
        "uplift",
    ];
    // Repeatable flags go through as-is; plan_from refuses repeats of the others.
    let (plan, as_of) = {
        let mut unique: Vec<(String, String)> = Vec::new();
        let mut argv_extra: Vec<String> = Vec::new();
        for (k, v) in params {
            if ["add", "set", "remove", "swap"].contains(&k.as_str()) {
                argv_extra.push(format!("--{k}={v}"));
            } else {
                unique.push((k, v));
            }
        }
        let mut cmd: Vec<&str> = command.to_vec();
        cmd.extend(argv_extra.iter().map(String::as_str));
        plan_from(&cmd, &unique, &allowed)?
    };
    if !apply {
        return crate::reads::run_plan(s, plan, as_of).await;
    }
    let path = format!("POST /api/v1/quotes/{what}");
    let idempotency = s.writer(who, headers, &path, body)?;
    if let Some((event, response)) = s.store.replay(&idempotency).await? {
        let outcome = expansa_store::WriteOutcome {
            event,
            files: Vec::new(),
            replayed: true,
            response: Some(response),
        };
        return replayable(outcome, StatusCode::OK, String::new);
    }
    let (priced_at, book) = crate::reads::book_for(s, &plan.plan, as_of).await?;
    let quote = match &plan.plan.command {
        Command::Amend { request, .. } => quote_amend(&book, request),
        Command::Renew { request, .. } => quote_renew(&book, request),
        _ => unreachable!("the plan of a quote command"),
    }
    .map_err(anyhow::Error::from)?;
    let actor = actor(who, headers, &format!("{what} contract {}", quote.contract));
    let outcome = s
        .store
        .apply_quote(&quote, priced_at, &actor, &idempotency)
        .await?;
    replayable(outcome, StatusCode::OK, || {
        render_quote(&quote, Format::Json)
    })
}
