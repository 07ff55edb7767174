//! `GET /api/v1/renewals`: the renewal desk, as `expansa renewals --format json`. The query
//! parameters become the command's flags and the same plan runs, so the API and the CLI
//! accept, refuse and answer alike. Renewing a contract from the desk is
//! `POST /api/v1/quotes/renew` with `"apply": true` (crates/api/src/quotes.rs).

use crate::reads::{plan_from, query_pairs, run_plan};
use crate::{ApiError, AppState};
use axum::extract::{RawQuery, State};
use axum::response::Response;
use std::sync::Arc;
use utoipa::IntoParams;

/// The parameters of `GET /api/v1/renewals` (the flags of `expansa renewals`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the raw query
pub struct RenewalParams {
    /// The desk's day, YYYY-MM-DD (default: today, UTC).
    #[param(pattern = r"^\d{4}-\d{2}-\d{2}$", example = "2024-10-01")]
    at: Option<String>,
    /// Days on each side of `at` whose contract ends are listed (default 90; at most 3660).
    #[param(minimum = 0, maximum = 3660, example = 90)]
    within: Option<u32>,
    /// `KEY=VALUE`, repeatable (as `--where`): the whole contracts of the kept customers
    /// holding a line of a kept product.
    r#where: Option<Vec<String>>,
    /// The book as of event:N, a day (YYYY-MM-DD) or an RFC 3339 instant.
    as_of: Option<String>,
}

/// The parameters the endpoint takes (besides `as_of`).
const ALLOWED: &[&str] = &["at", "within", "where"];

/// The renewal desk (`expansa renewals`): contracts whose term ends within `within` days of
/// `at`, with their ARR up for renewal, the renewal quote under their pricing and its change,
/// and whether the book holds their renewal (renewed, churned, open); evergreen contracts
/// apart.
#[utoipa::path(get, path = "/api/v1/renewals", params(RenewalParams),
    responses((status = 200, description = "The renewal desk (as `expansa renewals --format json`)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn renewals(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut params = query_pairs(q.as_deref());
    // The day is part of the request (and of the key its answer is kept under): an answer
    // for "today" is never served on another day.
    if !params.iter().any(|(k, _)| k == "at") {
        params.push(("at".into(), expansa_commands::renewals::today().to_string()));
    }
    let (plan, as_of) = plan_from(&["renewals"], &params, ALLOWED)?;
    run_plan(&s, plan, as_of).await
}
