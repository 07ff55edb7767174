//! What only an admin may read or change besides the book: the audit of reads of customer
//! data (`GET /api/v1/audit`, the plan of `expansa audit`) and the users of the dashboard
//! (the store's functions that `expansa users` runs). [`crate::auth::need`] lets only an admin
//! in; a session's changes carry its CSRF token like every session write.

use crate::auth::Principal;
use crate::http::JsonBody;
use crate::reads::{json_response, plan_from, query_pairs};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use expansa_commands::Command;
use expansa_store::Role;
use std::sync::Arc;
use utoipa::IntoParams;

/// The parameters of `GET /api/v1/audit` (the flags of `expansa audit`).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documentation only: the handler reads the raw query
pub struct AuditParams {
    /// The first moment listed: a day (YYYY-MM-DD, from its midnight UTC) or an RFC 3339 instant.
    #[param(example = "2024-05-01")]
    since: Option<String>,
    /// Only the reads of this user.
    user: Option<String>,
    /// Only the reads made with API keys of this name.
    key: Option<String>,
    /// How many entries, the newest (default 100; 1 to 10000).
    #[param(minimum = 1, maximum = 10000, example = 100)]
    limit: Option<u32>,
}

/// The reads of customer data logged (`expansa audit --format json`), newest first: who
/// (`user NAME` or `KEYNAME (ID)`), when, the method, path and query, and the answer's status.
#[utoipa::path(get, path = "/api/v1/audit", params(AuditParams),
    responses((status = 200, description = "[{\"id\", \"at\", \"actor\", \"method\", \"path\", \"status\"}], newest first", body = Vec<Object>),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub async fn audit(
    State(s): State<Arc<AppState>>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params = query_pairs(q.as_deref());
    if params.iter().any(|(k, _)| k == "as_of") {
        return Err(ApiError::BadRequest(
            "the audit is listed as kept: as_of does not apply (use since)".into(),
        ));
    }
    let (plan, _) = plan_from(&["audit"], &params, &["since", "user", "key", "limit"])?;
    let Command::Audit(audit) = plan.plan.command else {
        return Err(ApiError::Internal("the audit's plan is not one".into()));
    };
    let entries = s.store.audit_log(&audit.query).await?;
    Ok(json_response(
        expansa_commands::audit::json(&entries).to_string(),
    ))
}

/// A user as the API shows one (never a password or its hash).
fn user_json(u: &expansa_store::User) -> serde_json::Value {
    serde_json::json!({
        "name": u.name,
        "role": u.role.name(),
        "created_at": u.created_at,
        "disabled_at": u.disabled_at,
    })
}

/// The JSON object of a body, its fields read by the handler. A body that is not one is refused
/// without repeating any of it (it may hold a password).
fn object(
    body: &[u8],
    shape: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    match serde_json::from_slice(body) {
        Ok(serde_json::Value::Object(fields)) => Ok(fields),
        _ => Err(ApiError::BadRequest(format!("send {shape} as JSON"))),
    }
}

/// A string field of `fields` (`None` when absent); anything but a string is refused, by name.
fn text_field<'a>(
    fields: &'a serde_json::Map<String, serde_json::Value>,
    name: &str,
) -> Result<Option<&'a str>, ApiError> {
    match fields.get(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::BadRequest(format!("{name:?} must be a string"))),
    }
}

/// Only `allowed` fields.
fn only(
    fields: &serde_json::Map<String, serde_json::Value>,
    allowed: &[&str],
) -> Result<(), ApiError> {
    match fields.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::BadRequest(format!(
            "unknown field {:?}; the fields are: {}",
            k.chars().take(64).collect::<String>(),
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

fn role_field(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Result<Option<Role>, ApiError> {
    text_field(fields, "role")?
        .map(|r| Role::parse(r).map_err(|e| ApiError::BadRequest(format!("role: {e}"))))
        .transpose()
}

/// The user `name` (404 when there is none).
async fn existing(s: &AppState, name: &str) -> Result<expansa_store::User, ApiError> {
    s.store.user(name).await?.ok_or_else(|| {
        ApiError::NotFound(format!(
            "no user {:?}",
            name.chars().take(64).collect::<String>()
        ))
    })
}

const USER_ANSWER: &str = "{\"name\", \"role\": \"viewer\"|\"analyst\"|\"admin\", \"created_at\", \"disabled_at\": null or when}";

/// The users of the dashboard, by name (`expansa users list`).
#[utoipa::path(get, path = "/api/v1/users",
    responses((status = 200, description = "[{\"name\", \"role\", \"created_at\", \"disabled_at\"}], by name", body = Vec<Object>),
              (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody)))]
pub async fn list_users(State(s): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let users = s.store.users().await?;
    let list: Vec<_> = users.iter().map(user_json).collect();
    Ok(json_response(serde_json::Value::from(list).to_string()))
}

/// Adds a user (`expansa users add`): `{"name", "role", "password"}`; the password (12
/// characters to 1024 bytes) is kept as an argon2id hash and never sent back.
#[utoipa::path(post, path = "/api/v1/users",
    request_body(content = Object, description = "{\"name\": 1 to 64 letters, digits, '.', '_', '-' or '@', \"role\": \"viewer\"|\"analyst\"|\"admin\", \"password\"}"),
    responses((status = 201, description = USER_ANSWER, body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 409, description = "A user of that name exists (`conflict`)", body = crate::ErrorBody)))]
pub async fn create_user(
    State(s): State<Arc<AppState>>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let shape = "{\"name\", \"role\", \"password\"}";
    let fields = object(&body, shape)?;
    only(&fields, &["name", "role", "password"])?;
    let (Some(name), Some(role), Some(password)) = (
        text_field(&fields, "name")?,
        role_field(&fields)?,
        text_field(&fields, "password")?,
    ) else {
        return Err(ApiError::BadRequest(format!("send {shape}: all three")));
    };
    s.store.add_user(name, role, password).await?;
    tracing::info!(
        by = who.actor(),
        user = name,
        role = role.name(),
        "user added"
    );
    let user = existing(&s, name).await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

/// Changes a user (`expansa users set-role`, `users disable`): `{"role"}` and/or
/// `{"disabled": true}` (no more logins; their sessions end at once). A user is enabled again by
/// a new password. An admin may not take their own role or disable themselves.
#[utoipa::path(put, path = "/api/v1/users/{name}", params(("name" = String, Path, description = "The user's name")),
    request_body(content = Object, description = "{\"role\": \"viewer\"|\"analyst\"|\"admin\", \"disabled\": true} (either or both)"),
    responses((status = 200, description = USER_ANSWER, body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn change_user(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let fields = object(&body, "{\"role\"} and/or {\"disabled\": true}")?;
    only(&fields, &["role", "disabled"])?;
    let role = role_field(&fields)?;
    let disabled = match fields.get("disabled") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Bool(b)) => Some(*b),
        Some(_) => {
            return Err(ApiError::BadRequest(
                "\"disabled\" must be true or false".into(),
            ))
        }
    };
    if role.is_none() && disabled.is_none() {
        return Err(ApiError::BadRequest(
            "send {\"role\"} and/or {\"disabled\": true}".into(),
        ));
    }
    let user = existing(&s, &name).await?;
    if disabled == Some(false) && user.disabled_at.is_some() {
        return Err(ApiError::BadRequest(
            "a disabled user is enabled by a new password: POST /api/v1/users/{name}/password"
                .into(),
        ));
    }
    let disable = disabled == Some(true);
    if matches!(&who, Principal::User { name: me, .. } if *me == user.name)
        && (disable || role.is_some_and(|r| r < Role::Admin))
    {
        return Err(ApiError::BadRequest(
            "an admin does not disable themselves or take their own role: another admin does"
                .into(),
        ));
    }
    if let Some(role) = role {
        s.store.set_role(&user.name, role).await?;
        tracing::info!(
            by = who.actor(),
            user = user.name.as_str(),
            role = role.name(),
            "role changed"
        );
    }
    if disable && user.disabled_at.is_none() {
        s.store.disable_user(&user.name).await?;
        tracing::info!(by = who.actor(), user = user.name.as_str(), "user disabled");
    }
    let user = existing(&s, &name).await?;
    Ok(Json(user_json(&user)).into_response())
}

/// Sets a user's password (`expansa users reset-password`): `{"password"}`. Enables a
/// disabled user; their sessions end.
#[utoipa::path(post, path = "/api/v1/users/{name}/password", params(("name" = String, Path, description = "The user's name")),
    request_body(content = Object, description = "{\"password\": 12 characters to 1024 bytes}"),
    responses((status = 200, description = USER_ANSWER, body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 403, body = crate::ErrorBody),
              (status = 404, body = crate::ErrorBody)))]
pub async fn reset_password(
    State(s): State<Arc<AppState>>,
    Path(name): Path<String>,
    who: Principal,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let fields = object(&body, "{\"password\"}")?;
    only(&fields, &["password"])?;
    let Some(password) = text_field(&fields, "password")? else {
        return Err(ApiError::BadRequest("send {\"password\"}".into()));
    };
    let user = existing(&s, &name).await?;
    s.store.reset_password(&user.name, password).await?;
    tracing::info!(by = who.actor(), user = user.name.as_str(), "password set");
    let user = existing(&s, &name).await?;
    Ok(Json(user_json(&user)).into_response())
}
