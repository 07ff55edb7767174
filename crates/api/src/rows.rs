//! The book's rows over HTTP: customers, products, lines and contracts (list, show, create,
//! replace, delete). Every write is one event, validated as a whole book, idempotent.

use crate::http::JsonBody;
use crate::reads::{json_response, parse_as_of, query_pairs};
use crate::{ApiError, AppState};
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use expansa_commands::limits::MAX_ROWS;
use expansa_import::schema::{ColumnKind, Schema, CONTRACTS, CUSTOMERS, PRODUCTS, SUBSCRIPTIONS};
use expansa_store::{Actor, AsOf, RowChange, TableRow};
use serde_json::{Map, Value};
use std::sync::Arc;

/// The file behind a path segment.
pub(crate) fn schema(table: &str) -> Result<Schema, ApiError> {
    match table {
        "customers" => Ok(CUSTOMERS),
        "products" => Ok(PRODUCTS),
        "lines" => Ok(SUBSCRIPTIONS),
        "contracts" => Ok(CONTRACTS),
        _ => Err(ApiError::NotFound(format!(
            "no collection {table:?}: customers, products, lines, contracts"
        ))),
    }
}

/// A row as JSON: every column (null when empty), then the extra ones.
fn row_json(schema: &Schema, values: &[Option<String>], extra: &[(String, String)]) -> Value {
    let mut map = Map::new();
    for (c, v) in schema.columns.iter().zip(values) {
        map.insert(
            (*c).to_string(),
            v.clone().map_or(Value::Null, Value::String),
        );
    }
    for (k, v) in extra {
        map.insert(k.clone(), Value::String(v.clone()));
    }
    Value::Object(map)
}

/// A JSON body, for [`row_from_value`].
fn json_value(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not JSON: {e}")))
}

/// A column's name as a row's JSON gives it: trimmed and in lower case, as a file's header is
/// read.
fn column_name(key: &str) -> String {
    key.trim().to_lowercase()
}

/// Whether `value` (a JSON object) names a column `schema` does not have.
fn names_other_columns(schema: &Schema, value: &Value) -> bool {
    value.as_object().is_some_and(|map| {
        map.keys()
            .any(|key| schema.column_of(&column_name(key)).is_none())
    })
}

/// A row from a JSON object. Decimals must be strings (exact); whole numbers may be numbers.
/// Names are read trimmed and in lower case (as a file's header is); a name given twice so is
/// refused. Columns other than the file's are kept for customers (attributes used by filters)
/// and, for the other files, when `known` names them (the extra columns of the row a PUT
/// replaces: what `GET` showed can be sent back); any other is refused as unknown, so that a
/// misspelt column is not stored as a new one.
pub(crate) fn row_from_value(
    schema: &Schema,
    value: Value,
    id: Option<&str>,
    known: &[String],
) -> Result<TableRow, ApiError> {
    let Value::Object(map) = value else {
        return Err(ApiError::BadRequest(
            "the body must be a JSON object".into(),
        ));
    };
    let mut values = vec![None; schema.columns.len()];
    let mut extra = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, v) in map {
        let name = column_name(&key);
        // A schema's column by its own name or an alias (`segmento` is segment), as a header
        // names it.
        let column = schema.column_of(&name);
        let canonical = column.map_or(name.clone(), |k| schema.columns[k].to_string());
        if !seen.insert(canonical.clone()) {
            return Err(ApiError::BadRequest(format!(
                "{key:?}: column {canonical:?} is given twice (names are read trimmed, in lower \
                 case, pt-BR names as aliases of the format's)"
            )));
        }
        let text = match &v {
            Value::Null => None,
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => {
                let kind = column.map(|k| schema.kinds[k]);
                match (kind, n.as_i64()) {
                    (Some(ColumnKind::Integer), Some(i)) => Some(i.to_string()),
                    _ => {
                        return Err(ApiError::BadRequest(format!(
                            "{name}: send numbers as strings (\"398.45\"), so they stay exact"
                        )))
                    }
                }
            }
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "{name}: expected a string or null"
                )))
            }
        };
        match column {
            Some(k) => values[k] = text,
            None if !name.is_empty()
                && (schema.file == CUSTOMERS.file || known.contains(&name)) =>
            {
                if let Some(t) = text {
                    extra.push((name, t));
                }
            }
            None => {
                return Err(ApiError::BadRequest(format!(
                    "unknown column {name:?} of {}: {}",
                    schema.file,
                    schema.columns.join(", ")
                )))
            }
        }
    }
    let k = schema.position("id").expect("these files have ids");
    match (id, &values[k]) {
        (Some(path), Some(body)) if path != body => {
            return Err(ApiError::BadRequest(format!(
                "the body's id {body:?} is not the path's {path:?}"
            )))
        }
        (Some(path), _) => values[k] = Some(path.to_string()),
        (None, None) => return Err(ApiError::BadRequest("id is required".into())),
        (None, Some(_)) => {}
    }
    Ok(TableRow { values, extra })
}

/// Rows of a collection: `limit` (default 100, at most [`MAX_ROWS`]), `offset`, `as_of`, and any
/// column as an exact filter (`customer_id=c1`).
#[utoipa::path(get, path = "/api/v1/{table}", params(("table" = String, Path, description = "customers, products, lines or contracts"), crate::openapi::ListParams),
    responses((status = 200, description = "Rows, with the total count", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn list(
    State(s): State<Arc<AppState>>,
    Path(table): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let schema = schema(&table)?;
    let (mut limit, mut offset, mut as_of) = (100usize, 0usize, AsOf::Latest);
    let mut filters: Vec<(usize, String)> = Vec::new();
    for (k, v) in query_pairs(q.as_deref()) {
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| ApiError::BadRequest(format!("{k}: {v:?} is not a whole number")))
        };
        match k.as_str() {
            "limit" => {
                limit = number(&v)?;
                if limit > MAX_ROWS {
                    return Err(ApiError::BadRequest(format!(
                        "limit {limit}: at most {MAX_ROWS} rows a page (page on with offset)"
                    )));
                }
            }
            "offset" => offset = number(&v)?,
            "as_of" => as_of = parse_as_of(&v)?,
            column => match schema.position(column) {
                Some(c) => filters.push((c, v)),
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "unknown parameter {column:?}"
                    )))
                }
            },
        }
    }
    let event = s.store.event_at(as_of).await?;
    let rows = s.store.table(&schema, event).await?;
    let matching: Vec<_> = rows
        .iter()
        .filter(|r| {
            filters
                .iter()
                .all(|(c, v)| r.values[*c].as_deref() == Some(v.as_str()))
        })
        .collect();
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(limit)
        .map(|r| row_json(&schema, &r.values, &r.extra))
        .collect();
    Ok(json_response(
        serde_json::json!({"total": matching.len(), "offset": offset, "rows": page}).to_string(),
    ))
}

/// One row.
#[utoipa::path(get, path = "/api/v1/{table}/{id}", params(("table" = String, Path, description = "customers, products, lines or contracts"), ("id" = String, Path, description = "Row id")),
    responses((status = 200, description = "The row", body = Object),
              (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody)))]
pub async fn show(
    State(s): State<Arc<AppState>>,
    Path((table, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let schema = schema(&table)?;
    let row = s
        .store
        .row(&schema, &id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no {table} row {id:?}")))?;
    Ok(json_response(
        row_json(&schema, &row.values, &row.extra).to_string(),
    ))
}

/// Creates a row (409 if a different one has the id).
#[utoipa::path(post, path = "/api/v1/{table}", params(("table" = String, Path, description = "customers, products, lines or contracts"), crate::openapi::WriteHeaders),
    request_body(content = Object, description = "The row: column -> string (decimals as strings) or null"),
    responses((status = 201, description = "Created (or the first answer again, for a repeated Idempotency-Key)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn create(
    State(s): State<Arc<AppState>>,
    Path(table): Path<String>,
    who: crate::auth::Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = schema(&table)?;
    let TableRow { values, extra } = row_from_value(&schema, json_value(&body)?, None, &[])?;
    let change = RowChange::Put {
        schema,
        values,
        extra,
        create_only: true,
    };
    write(
        &s,
        &who,
        &headers,
        &format!("POST /api/v1/{table}"),
        &body,
        change,
        StatusCode::CREATED,
    )
    .await
}

/// Creates or replaces the row with the id.
#[utoipa::path(put, path = "/api/v1/{table}/{id}", params(("table" = String, Path, description = "customers, products, lines or contracts"), ("id" = String, Path, description = "Row id"), crate::openapi::WriteHeaders),
    request_body(content = Object, description = "The whole row: column -> string (decimals as strings) or null"),
    responses((status = 200, description = "Stored", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 409, body = crate::ErrorBody), (status = 422, body = crate::ErrorBody)))]
pub async fn replace(
    State(s): State<Arc<AppState>>,
    Path((table, id)): Path<(String, String)>,
    who: crate::auth::Principal,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = schema(&table)?;
    let value = json_value(&body)?;
    // The extra columns the row has now may be sent back (looked up only when the body names
    // a column other than the file's, on a file without attributes).
    let mut known: Vec<String> = Vec::new();
    if schema.file != CUSTOMERS.file && names_other_columns(&schema, &value) {
        if let Some(row) = s.store.row(&schema, &id).await? {
            known = row.extra.into_iter().map(|(name, _)| name).collect();
        }
    }
    let TableRow { values, extra } = row_from_value(&schema, value, Some(&id), &known)?;
    let change = RowChange::Put {
        schema,
        values,
        extra,
        create_only: false,
    };
    write(
        &s,
        &who,
        &headers,
        &format!("PUT /api/v1/{table}/{id}"),
        &body,
        change,
        StatusCode::OK,
    )
    .await
}

/// Removes the row (it stays in the history).
#[utoipa::path(delete, path = "/api/v1/{table}/{id}", params(("table" = String, Path, description = "customers, products, lines or contracts"), ("id" = String, Path, description = "Row id"), crate::openapi::WriteHeaders),
    responses((status = 200, description = "Removed", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody), (status = 404, body = crate::ErrorBody),
              (status = 422, body = crate::ErrorBody)))]
pub async fn remove(
    State(s): State<Arc<AppState>>,
    Path((table, id)): Path<(String, String)>,
    who: crate::auth::Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let schema = schema(&table)?;
    let change = RowChange::Remove {
        schema,
        key: id.clone(),
    };
    write(
        &s,
        &who,
        &headers,
        &format!("DELETE /api/v1/{table}/{id}"),
        &[],
        change,
        StatusCode::OK,
    )
    .await
}

/// One row change (`what` with `body`) as one event, once per idempotency key.
async fn write(
    s: &AppState,
    who: &crate::auth::Principal,
    headers: &HeaderMap,
    what: &str,
    body: &[u8],
    change: RowChange,
    status: StatusCode,
) -> Result<Response, ApiError> {
    let idempotency = s.writer(who, headers, what, body)?;
    let actor = actor(who, headers, what);
    let row = match &change {
        RowChange::Put {
            schema,
            values,
            extra,
            ..
        } => Some(row_json(schema, values, extra)),
        RowChange::Remove { .. } | RowChange::Set { .. } => None,
    };
    let outcome = s
        .store
        .write(
            "row",
            std::slice::from_ref(&change),
            &actor,
            Some(&idempotency),
            |event| Some(serde_json::json!({"event": event, "row": row}).to_string()),
        )
        .await?;
    replayable(outcome, status, || {
        serde_json::json!({"event": null, "row": row}).to_string()
    })
}

/// Who writes (the user, or the key's name and id) and why (`X-Reason`, else the request line).
pub(crate) fn actor(who: &crate::auth::Principal, headers: &HeaderMap, what: &str) -> Actor {
    Actor {
        who: who.actor(),
        why: headers
            .get("x-reason")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| what.to_string()),
    }
}

/// The response of a write: its answer, the first answer again for a replay (with
/// `Idempotent-Replayed: true`), or `unchanged` when the row already was so.
pub(crate) fn replayable(
    outcome: expansa_store::WriteOutcome,
    status: StatusCode,
    unchanged: impl FnOnce() -> String,
) -> Result<Response, ApiError> {
    let replayed = if outcome.replayed { "true" } else { "false" };
    let body = outcome.response.unwrap_or_else(unchanged);
    // A write (or its replay) that changed nothing answers 200 whatever it asked.
    let status = if outcome.event.is_some() {
        status
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        [
            ("content-type", "application/json"),
            ("idempotent-replayed", replayed),
        ],
        body,
    )
        .into_response())
}
