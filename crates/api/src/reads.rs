//! Report endpoints: query parameters become the CLI's flags, and the same plan runs.

use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use expansa_commands::{
    base_of_parts, execute, execute_on_parts, part_of, runs_on_parts, Cli, Plan,
};
use expansa_store::AsOf;
use std::sync::Arc;

/// Query parameters, in order (repeats kept: `where=a=1&where=b=2`).
pub(crate) fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.map(|q| {
        form_urlencoded::parse(q.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

/// The `as_of` parameter: `event:N`, a day or an RFC 3339 instant.
pub(crate) fn parse_as_of(value: &str) -> Result<AsOf, ApiError> {
    value
        .parse()
        .map_err(|e: String| ApiError::BadRequest(format!("as_of {e}")))
}

/// A plan and the flags it was made from (what its output is cached under).
pub(crate) struct KeyedPlan {
    pub plan: Plan,
    pub key: String,
}

/// The plan of `expansa COMMAND... --flags` made from query parameters, and the moment to read
/// the book at (`as_of`). Only `allowed` parameters are taken; a parameter is a flag with
/// `_` written `-`; `where` may repeat.
pub(crate) fn plan_from(
    command: &[&str],
    params: &[(String, String)],
    allowed: &[&str],
) -> Result<(KeyedPlan, AsOf), ApiError> {
    let mut argv: Vec<String> = std::iter::once("expansa")
        .chain(command.iter().copied())
        .map(String::from)
        .collect();
    // The book comes from the server's store; the flag only satisfies the plan's checks.
    argv.extend([
        "--db".into(),
        "server".into(),
        "--format".into(),
        "json".into(),
    ]);
    let mut as_of = AsOf::Latest;
    for (k, v) in params {
        if k == "as_of" {
            as_of = parse_as_of(v)?;
            continue;
        }
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::BadRequest(format!(
                "unknown parameter {k:?}; this endpoint takes: {}",
                allowed
                    .iter()
                    .chain(["as_of"].iter())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if k != "where" && params.iter().filter(|(p, _)| p == k).count() > 1 {
            return Err(ApiError::BadRequest(format!("parameter {k:?} given twice")));
        }
        // One argument, so that a value starting with '-' is read as the value it is.
        argv.push(format!("--{}={v}", k.replace('_', "-")));
    }
    let cli = <Cli as clap::Parser>::try_parse_from(&argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or_default();
        ApiError::BadRequest(first.trim_start_matches("error: ").to_string())
    })?;
    let plan = Plan::from_cli(cli).map_err(ApiError::BadRequest)?;
    let key = argv.join("\u{1f}");
    Ok((KeyedPlan { plan, key }, as_of))
}

/// Runs a report plan on the book at its moment, off the async workers.
pub(crate) async fn run_plan(
    state: &AppState,
    plan: KeyedPlan,
    as_of: AsOf,
) -> Result<Response, ApiError> {
    // The latest movement report and KPIs add up over customers: they read the book in parts,
    // which a write brings up to date by what it changed, not by reading the book again.
    if as_of == AsOf::Latest && runs_on_parts(&plan.plan) {
        let parts = state.store.latest_parts().await?;
        let (key, event) = (plan.key.clone(), parts.event);
        let plan = Arc::new(plan.plan);
        let out = state
            .books
            .report(event, key.clone(), async move {
                let (for_base, base) = (plan.clone(), parts.base.clone());
                let (sums, changes) = state
                    .books
                    .base_sums(parts.base_event, &key, async move {
                        blocking(move || base_of_parts(&for_base, &base).ok_or_else(not_in_parts))
                            .await
                    })
                    .await?;
                let in_parts = plan.clone();
                let out = blocking(move || {
                    let mut changes = changes.lock().unwrap_or_else(|e| e.into_inner());
                    Ok(execute_on_parts(&in_parts, &parts, &sums, &mut changes))
                })
                .await?;
                match out {
                    Some(out) => Ok(out),
                    // A book whose KPIs do not add up over customers: the book whole.
                    None => {
                        let (_, book) = state.books.get(AsOf::Event(event)).await?;
                        blocking(move || execute(&plan, &book).map_err(ApiError::from)).await
                    }
                }
            })
            .await?;
        return Ok(json_response(out.to_string()));
    }
    let (event, book) = book_for(state, &plan.plan, as_of).await?;
    let key = plan.key.clone();
    let out = state
        .books
        .report(event, key, async move {
            blocking(move || execute(&plan.plan, &book).map_err(ApiError::from)).await
        })
        .await?;
    Ok(json_response(out.to_string()))
}

/// Runs a report's computation off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("report task failed: {e}")))?
}

/// A plan run in parts that does not add up in parts (callers ask [`runs_on_parts`] first).
fn not_in_parts() -> ApiError {
    ApiError::Internal("the report does not add up in parts".into())
}

/// The book a plan runs on: the part of the latest book with the rows it depends on, when
/// they are one contract's or one customer's ([`part_of`]), else the book whole.
pub(crate) async fn book_for(
    state: &AppState,
    plan: &Plan,
    as_of: AsOf,
) -> Result<(i64, Arc<expansa_ledger::Book>), ApiError> {
    match part_of(plan) {
        Some(of) if as_of == AsOf::Latest => {
            let (event, book) = state.store.latest_part(of).await?;
            Ok((event, Arc::new(book)))
        }
        _ => state.books.get(as_of).await,
    }
}

pub(crate) fn json_response(body: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn report(
    state: &AppState,
    raw: Option<String>,
    command: &[&str],
    allowed: &[&str],
) -> Result<Response, ApiError> {
    let params = query_pairs(raw.as_deref());
    let (plan, as_of) = plan_from(command, &params, allowed)?;
    run_plan(state, plan, as_of).await
}

const REPORT: &[&str] = &["from", "to", "rules", "where"];
const MINING: &[&str] = &["min_support", "min_confidence", "max_len", "max_itemsets"];
const MODEL: &[&str] = &[
    "min_support",
    "min_confidence",
    "max_len",
    "max_itemsets",
    "usage_threshold",
    "usage_months",
    "skip_downsell_months",
    "rules",
];

fn with(base: &[&'static str], more: &[&'static str]) -> Vec<&'static str> {
    base.iter().chain(more).copied().collect()
}

/// MRR movements per month, as `expansa movements --format json`.
#[utoipa::path(get, path = "/api/v1/movements", params(crate::openapi::ReportParams),
    responses((status = 200, description = "The movement report (shared/spec's JSON)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn movements(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(&s, q, &["movements"], REPORT).await
}

/// Every customer's movements with their lines (`movements --detail [--kind K]`): who and
/// which lines make a figure.
#[utoipa::path(get, path = "/api/v1/movements/detail", params(crate::openapi::DetailParams),
    responses((status = 200, description = "Movements with customers and lines", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn movement_detail(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(&s, q, &["movements", "--detail"], &with(REPORT, &["kind"])).await
}

/// One customer's trail (`movements --explain ID`).
#[utoipa::path(get, path = "/api/v1/customers/{id}/trail", params(("id" = String, Path, description = "Customer id"), crate::openapi::ReportParams),
    responses((status = 200, description = "The customer's movements with their lines", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn trail(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let explain = format!("--explain={id}");
    report(&s, q, &["movements", &explain], REPORT).await
}

/// KPIs per month (`expansa kpis`).
#[utoipa::path(get, path = "/api/v1/kpis", params(crate::openapi::ReportParams),
    responses((status = 200, description = "KPIs per month", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn kpis(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(&s, q, &["kpis"], REPORT).await
}

/// Cohort grid (`expansa cohorts`).
#[utoipa::path(get, path = "/api/v1/cohorts", params(crate::openapi::CohortParams),
    responses((status = 200, description = "Cohort grid", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn cohorts(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(
        &s,
        q,
        &["cohorts"],
        &["from", "to", "by", "metric", "where"],
    )
    .await
}

/// Association rules (`expansa rules`).
#[utoipa::path(get, path = "/api/v1/rules", params(crate::openapi::RulesParams),
    responses((status = 200, description = "Association rules", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn rules(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(&s, q, &["rules"], &with(MINING, &["at", "level"])).await
}

/// Ranked opportunities (`expansa opportunities`).
#[utoipa::path(get, path = "/api/v1/opportunities", params(crate::openapi::OpportunityParams),
    responses((status = 200, description = "Opportunities ranked by expected MRR", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn opportunities(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(
        &s,
        q,
        &["opportunities"],
        &with(MODEL, &["at", "top", "customer", "kind", "where"]),
    )
    .await
}

/// Offer conversion (`expansa offers`).
#[utoipa::path(get, path = "/api/v1/offers", params(crate::openapi::OfferParams),
    responses((status = 200, description = "Offer conversion and MRR impact", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn offers(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    report(&s, q, &["offers"], &with(MODEL, &["from", "to", "where"])).await
}

/// A contract's terms and held lines (`expansa contract show`).
#[utoipa::path(get, path = "/api/v1/contracts/{id}/terms", params(("id" = String, Path, description = "Contract id"), crate::openapi::ContractParams),
    responses((status = 200, description = "Terms, held lines, locked prices, MRR", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn contract(
    State(s): State<Arc<AppState>>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let contract = format!("--contract={id}");
    report(&s, q, &["contract", "show", &contract], &["at"]).await
}

/// The event log: every change with who, when and why.
#[utoipa::path(get, path = "/api/v1/events",
    responses((status = 200, description = "Events, oldest first", body = Vec<Object>),
              (status = 401, body = crate::ErrorBody)))]
pub async fn events(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let events = s.store.events().await?;
    Ok(json_response(
        expansa_store::events_json(&events).to_string(),
    ))
}
