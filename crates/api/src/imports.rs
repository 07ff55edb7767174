//! Imports from the dashboard: an export uploaded as files (CSV, JSON, `.xlsx`, `.ods`),
//! converted by a source kind or a mapping, previewed (the conversion report and the first
//! rows of the mapped book), then committed to the store as one event.
//!
//! No conversion code lives here: a preview builds the `convert` command's plan and runs its
//! [`convert_into`] and [`report_json`] (`crates/commands`), so the CLI and the API convert
//! the same files the same way and report them in the same words. A commit is the store's
//! import of the converted folder (`expansa import --data`), in merge mode: one event.
//!
//! Converted books wait server-side under a random token: at most [`MAX_PENDING`] of them (a
//! new preview drops the oldest past that), each for [`PENDING_FOR`] (then a commit is 404);
//! they are temporary folders, removed when dropped, and all are lost when the server stops.

use crate::http::JsonBody;
use crate::reads::json_response;
use crate::rows::actor;
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use expansa_commands::convert::{
    convert_into, mapping_spec, previous_month_end, report_json, source_spec, ConvertErrors,
    ConvertPlan,
};
use expansa_import::{Folder, Problem, Records, TextEncoding};
use expansa_ledger::{Currency, Month};
use expansa_sources::SourceKind;
use expansa_store::{FileChanges, ImportMode, StoreError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// Files one preview may upload.
pub const MAX_FILES: usize = 20;

/// Converted books kept waiting for their commit, at most.
pub const MAX_PENDING: usize = 16;

/// How long a converted book waits for its commit (and a committed one keeps its answer).
pub const PENDING_FOR: Duration = Duration::from_secs(15 * 60);

/// Rows of each file of the converted book shown in a preview.
pub const PREVIEW_ROWS: usize = 20;

/// The name a mapping sent as text goes by (in the report and in its problems).
pub const MAPPING_NAME: &str = "mapping.toml";

/// Longest uploaded file name, in bytes.
const MAX_NAME_BYTES: usize = 255;

/// The body of `POST /api/v1/imports/preview`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviewRequest {
    /// A source kind (`--from`).
    from: Option<String>,
    /// A mapping file's TOML text (`--map`).
    mapping: Option<String>,
    files: Vec<Upload>,
    timezone: Option<String>,
    #[serde(default)]
    skip_refused: bool,
    currency: Option<String>,
    encoding: Option<String>,
    /// `YYYY-MM`: the month whose end the MRR is given at (`--mrr-at`).
    mrr_at: Option<String>,
}

/// One uploaded file: a plain name and its bytes in standard base64 (RFC 4648, padded).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Upload {
    name: String,
    content_base64: String,
}

/// Converted books waiting for their commit, by token.
#[derive(Default)]
pub struct Imports {
    pending: Mutex<HashMap<String, Arc<Pending>>>,
    /// One commit at a time: from its idempotency check to the answer kept under its key.
    committing: tokio::sync::Mutex<()>,
}

/// A converted book, and the answer of its commit once made.
struct Pending {
    made: Instant,
    state: Mutex<PendingState>,
}

struct PendingState {
    /// The converted book's folder; dropped (removed) once committed.
    book: Option<Arc<TempDir>>,
    /// The commit's answer.
    answer: Option<String>,
}

impl Imports {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Pending>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps `book` under `token`: expired entries are dropped, and the oldest while
    /// [`MAX_PENDING`] are kept.
    fn insert(&self, token: String, book: TempDir) {
        let mut dropped = Vec::new();
        {
            let mut pending = self.lock();
            dropped.extend(expire(&mut pending));
            while pending.len() >= MAX_PENDING {
                let Some(oldest) = pending
                    .iter()
                    .min_by_key(|(_, p)| p.made)
                    .map(|(t, _)| t.clone())
                else {
                    break;
                };
                dropped.extend(pending.remove(&oldest));
            }
            pending.insert(
                token,
                Arc::new(Pending {
                    made: Instant::now(),
                    state: Mutex::new(PendingState {
                        book: Some(Arc::new(book)),
                        answer: None,
                    }),
                }),
            );
        }
        drop(dropped); // folders removed outside the lock
    }

    /// The entry under `token`, unless expired.
    fn get(&self, token: &str) -> Option<Arc<Pending>> {
        let (found, dropped) = {
            let mut pending = self.lock();
            let dropped = expire(&mut pending);
            (pending.get(token).cloned(), dropped)
        };
        drop(dropped);
        found
    }
}

/// Takes the entries older than [`PENDING_FOR`] out of `pending`.
fn expire(pending: &mut HashMap<String, Arc<Pending>>) -> Vec<Arc<Pending>> {
    let old: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.made.elapsed() >= PENDING_FOR)
        .map(|(t, _)| t.clone())
        .collect();
    old.iter().filter_map(|t| pending.remove(t)).collect()
}

impl Pending {
    fn state(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sources a preview takes: every kind `--from` names, with the mapping preset of the
/// flat-table ones (the page shows it for editing).
#[utoipa::path(get, path = "/api/v1/imports/sources",
    responses((status = 200, description = "{\"sources\": [{\"kind\": \"stripe\", \"preset\": null}, {\"kind\": \"baremetrics\", \"preset\": \"<TOML>\"}, ...]}", body = Object),
              (status = 401, body = crate::ErrorBody)))]
pub(crate) async fn sources() -> Result<Response, ApiError> {
    let sources: Vec<Value> = SourceKind::ALL
        .iter()
        .map(|k| json!({"kind": k.name(), "preset": k.preset()}))
        .collect();
    Ok(json_response(json!({ "sources": sources }).to_string()))
}

/// Converts uploaded files and keeps the book for a commit; nothing is written to the store.
#[utoipa::path(post, path = "/api/v1/imports/preview",
    request_body(content = Object, description = "{\"from\": \"stripe\" | \"mapping\": \"<TOML>\", \"files\": [{\"name\": \"subscriptions.csv\", \"content_base64\": \"...\"}], \"timezone\": \"UTC\", \"skip_refused\": false, \"currency\": \"BRL\", \"encoding\": \"utf-8\", \"mrr_at\": \"2024-12\"}: one of `from` and `mapping`; 1 to 20 files with plain names; the rest optional, as `expansa convert`'s flags"),
    responses((status = 200, description = "{\"token\", \"report\": what `expansa convert --format json` prints, \"preview\": {\"subscriptions\": {\"columns\": [...], \"rows\": [[...]]}, ...} (the first 20 rows of each file written), \"mapping\": the mapping's TOML (the preset of a flat-table kind, or the one sent) or null}", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
              (status = 422, description = "The conversion refused the files (`invalid_source`), every problem listed; nothing is kept", body = crate::ErrorBody)))]
pub(crate) async fn preview(
    State(s): State<Arc<AppState>>,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let request: PreviewRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a preview request: {e}")))?;
    drop(body);
    let (spec, mapping) = match (&request.from, &request.mapping) {
        (Some(name), None) => {
            let spec = source_spec(name).map_err(ApiError::BadRequest)?;
            let preset = SourceKind::from_name(name).and_then(SourceKind::preset);
            (spec, preset.map(str::to_string))
        }
        (None, Some(text)) => (
            mapping_spec(MAPPING_NAME, text).map_err(ApiError::BadRequest)?,
            Some(text.clone()),
        ),
        _ => {
            return Err(ApiError::BadRequest(
                "give the source: \"from\" (a source kind) or \"mapping\" (a mapping's TOML), one of them".into(),
            ))
        }
    };
    let files = decode(request.files)?;
    let currency = request.currency.as_deref().unwrap_or("BRL");
    let currency = Currency::from_code(currency).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "--currency {currency}: unknown ISO 4217 currency code"
        ))
    })?;
    let encoding = request.encoding.as_deref().unwrap_or("utf-8");
    let encoding = TextEncoding::from_name(encoding).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "--encoding {encoding}: unknown encoding (utf-8, windows-1252 or latin1)"
        ))
    })?;
    let mrr_at = match request.mrr_at.as_deref() {
        None => None,
        Some(text) => Some(month(text)?),
    };
    let upload = tempfile::Builder::new()
        .prefix("expansa-upload-")
        .tempdir()
        .map_err(|e| ApiError::Internal(format!("cannot make a folder for the upload: {e}")))?;
    // One file is the input itself (`--input FILE`); several are a folder (`--input DIR`).
    let input = match files.as_slice() {
        [(name, _)] => upload.path().join(name),
        _ => upload.path().to_path_buf(),
    };
    let timezone = request.timezone.as_deref().unwrap_or("UTC");
    let plan = ConvertPlan::new(
        spec,
        input,
        timezone,
        currency,
        encoding,
        request.skip_refused,
    )
    .map_err(ApiError::BadRequest)?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let book_name = format!("import {token}");
    let (report, preview, book) =
        tokio::task::spawn_blocking(move || convert(&plan, upload, files, mrr_at, &book_name))
            .await
            .map_err(|e| ApiError::Internal(format!("the conversion stopped: {e}")))??;
    s.imports.insert(token.clone(), book);
    Ok(json_response(
        json!({"token": token, "report": report, "preview": preview, "mapping": mapping})
            .to_string(),
    ))
}

/// `YYYY-MM` within the years reports read, as `--mrr-at` takes it.
fn month(text: &str) -> Result<Month, ApiError> {
    use expansa_commands::limits::{FIRST_YEAR, LAST_YEAR};
    let m: Month = text
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("--mrr-at {text}: expected a month, YYYY-MM")))?;
    if !(FIRST_YEAR..=LAST_YEAR).contains(&m.year()) {
        return Err(ApiError::BadRequest(format!(
            "--mrr-at {m}: a report's months run from {FIRST_YEAR}-01 to {LAST_YEAR}-12"
        )));
    }
    Ok(m)
}

/// The uploaded files, checked: 1 to [`MAX_FILES`], plain names (no folder, no `..`, no
/// control character), each once (names compared without case, as a conversion finds them),
/// contents in base64.
fn decode(files: Vec<Upload>) -> Result<Vec<(String, Vec<u8>)>, ApiError> {
    if files.is_empty() || files.len() > MAX_FILES {
        return Err(ApiError::BadRequest(format!(
            "send 1 to {MAX_FILES} files; {} were sent",
            files.len()
        )));
    }
    let mut out: Vec<(String, Vec<u8>)> = Vec::with_capacity(files.len());
    for f in files {
        let name = f.name;
        let shown: String = name.chars().take(64).collect();
        let plain = !name.is_empty()
            && name.len() <= MAX_NAME_BYTES
            && name != "."
            && name != ".."
            && !name.contains(['/', '\\'])
            && !name.chars().any(char::is_control);
        if !plain {
            return Err(ApiError::BadRequest(format!(
                "file {shown:?}: a file name must be a plain name of 1 to {MAX_NAME_BYTES} bytes (no folder, no `..`, no control character)"
            )));
        }
        if out.iter().any(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            return Err(ApiError::BadRequest(format!(
                "file {shown:?} is sent twice (names are compared without case)"
            )));
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(f.content_base64.as_bytes())
            .map_err(|e| {
                ApiError::BadRequest(format!("file {shown:?}: content_base64 is not base64: {e}"))
            })?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// Writes the files into `upload`, converts them by `plan` into a new folder and reads the
/// preview; the upload is removed on return, the book's folder is returned.
fn convert(
    plan: &ConvertPlan,
    upload: TempDir,
    files: Vec<(String, Vec<u8>)>,
    mrr_at: Option<Month>,
    book_name: &str,
) -> Result<(Value, Value, TempDir), ApiError> {
    let internal = |what: &str, e: std::io::Error| ApiError::Internal(format!("{what}: {e}"));
    for (name, bytes) in &files {
        std::fs::write(upload.path().join(name), bytes)
            .map_err(|e| internal("cannot keep the uploaded file", e))?;
    }
    drop(files);
    let book = tempfile::Builder::new()
        .prefix("expansa-import-")
        .tempdir()
        .map_err(|e| internal("cannot make a folder for the book", e))?;
    let mrr_at = match mrr_at {
        Some(m) => m.last_day(),
        None => previous_month_end(
            jiff::Zoned::now()
                .with_time_zone(plan.options.timezone.clone())
                .date(),
        ),
    };
    let places = Places::new(Some(upload.path()), book.path());
    let converted = convert_into(plan, book.path(), mrr_at).map_err(|e| {
        match e.downcast::<ConvertErrors>() {
            Ok(refused) => {
                let mut message = refused.to_string();
                if let Some(more) = refused.0.more_line() {
                    message = format!("{message} ({more})");
                }
                let problems = refused.0 .0.into_iter().map(|p| places.problem(p));
                ApiError::InvalidSource(message, problems.collect())
            }
            Err(e) => ApiError::Internal(places.relative(&format!("{e:#}"))),
        }
    })?;
    drop(upload);
    let report = report_json(&converted, book_name);
    let preview = preview_rows(book.path()).map_err(|p| {
        ApiError::Internal(format!(
            "the converted book cannot be read back: {}",
            places.problem(p)
        ))
    })?;
    Ok((report, preview, book))
}

/// The first [`PREVIEW_ROWS`] rows of each file of the book in `dir`, as written:
/// `{"subscriptions": {"columns": [...], "rows": [[...], ...]}, ...}`.
fn preview_rows(dir: &std::path::Path) -> Result<Value, Problem> {
    let mut out = serde_json::Map::new();
    for schema in expansa_import::schema::FILES {
        let path = dir.join(schema.file);
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let mut records = Records::new(
            &path.display().to_string(),
            std::io::BufReader::new(file),
            TextEncoding::UTF_8,
        )?;
        let columns = records.header().to_vec();
        let mut rows = Vec::new();
        while rows.len() < PREVIEW_ROWS {
            match records.next_record()? {
                Some(r) => rows.push(r.fields),
                None => break,
            }
        }
        let name = schema.file.trim_end_matches(".csv");
        out.insert(name.into(), json!({"columns": columns, "rows": rows}));
    }
    Ok(Value::Object(out))
}

/// The server's temporary folders, named in problems by what they are to the client: a file
/// of the upload by its own name, the upload as a whole `upload`, a file of the converted book
/// as `book/FILE`, the book as a whole `book`.
struct Places(Vec<(String, &'static str, &'static str)>);

impl Places {
    fn new(upload: Option<&std::path::Path>, book: &std::path::Path) -> Places {
        let mut places = Vec::new();
        if let Some(upload) = upload {
            places.push((upload.display().to_string(), "upload", ""));
        }
        places.push((book.display().to_string(), "book", "book/"));
        Places(places)
    }

    fn relative(&self, text: &str) -> String {
        let mut text = text.to_string();
        for (dir, name, inside) in &self.0 {
            text = text.replace(&format!("{dir}/"), inside).replace(dir, name);
        }
        text
    }

    fn problem(&self, p: Problem) -> Problem {
        Problem {
            file: self.relative(&p.file),
            value: self.relative(&p.value),
            reason: self.relative(&p.reason),
            ..p
        }
    }
}

/// Imports a previewed book into the store as one event.
#[utoipa::path(post, path = "/api/v1/imports/{token}/commit",
    params(("token" = String, Path, description = "The token a preview answered"), crate::openapi::WriteHeaders),
    responses((status = 200, description = "{\"event\": N (null when the store already held every row), \"token\", \"files\": [{\"file\", \"added\", \"changed\", \"removed\", \"unchanged\"}]}; the same answer again for a second commit of the token or a replay of the Idempotency-Key (`Idempotent-Replayed: true`)", body = Object),
              (status = 400, body = crate::ErrorBody), (status = 401, body = crate::ErrorBody),
              (status = 404, description = "No such token: never previewed, expired (15 minutes) or the server restarted", body = crate::ErrorBody),
              (status = 422, description = "The store's book with these rows would be invalid (`invalid_book`), or the Idempotency-Key was used for another request", body = crate::ErrorBody)))]
pub(crate) async fn commit(
    State(s): State<Arc<AppState>>,
    Path(token): Path<String>,
    who: crate::auth::Principal,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let what = format!("POST /api/v1/imports/{token}/commit");
    let idempotency = s.writer(&who, &headers, &what, b"")?;
    let _one = s.imports.committing.lock().await;
    if let Some((_, answer)) = s.store.replay(&idempotency).await? {
        return Ok(answered(answer, true));
    }
    let shown: String = token.chars().take(64).collect();
    let pending = s.imports.get(&token).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no import {shown:?}: previews are kept {} minutes (and not across a restart): preview again",
            PENDING_FOR.as_secs() / 60
        ))
    })?;
    let book = {
        let state = pending.state();
        if let Some(answer) = &state.answer {
            return Ok(answered(answer.clone(), true));
        }
        state.book.clone()
    };
    let Some(book) = book else {
        return Err(ApiError::Internal(format!(
            "import {shown:?} has neither its book nor its answer"
        )));
    };
    let actor = actor(&who, &headers, &what);
    // The answer is kept under the Idempotency-Key in the import's own transaction: a retry
    // after a crash, or after the token expired, finds it.
    let outcome = s
        .store
        .import_with(
            &Folder(book.path()),
            ImportMode::Merge,
            &actor,
            Some(&idempotency),
            |event, changes| Some(commit_answer(event, &token, changes)),
        )
        .await
        .map_err(|e| match e {
            StoreError::Book(mut errors) => {
                let places = Places::new(None, book.path());
                errors.0 = errors.0.into_iter().map(|p| places.problem(p)).collect();
                ApiError::from(StoreError::Book(errors))
            }
            other => ApiError::from(other),
        })?;
    let answer = outcome
        .response
        .clone()
        .unwrap_or_else(|| commit_answer(outcome.event, &token, &outcome.files));
    if outcome.replayed {
        return Ok(answered(answer, true));
    }
    {
        let mut state = pending.state();
        state.answer = Some(answer.clone());
        state.book = None;
    }
    drop(book);
    Ok(answered(answer, false))
}

/// A commit's answer: the event and what changed per file.
fn commit_answer(event: Option<i64>, token: &str, changes: &[FileChanges]) -> String {
    let files: Vec<Value> = changes
        .iter()
        .map(|f| {
            json!({"file": f.file, "added": f.added, "changed": f.changed,
                   "removed": f.removed, "unchanged": f.unchanged})
        })
        .collect();
    json!({"event": event, "token": token, "files": files}).to_string()
}

/// A commit's answer (200), marked replayed or not.
fn answered(body: String, replayed: bool) -> Response {
    (
        StatusCode::OK,
        [
            ("content-type", "application/json"),
            (
                "idempotent-replayed",
                if replayed { "true" } else { "false" },
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn a_pending_book_expires_after_its_time_and_its_folder_goes() {
        let imports = Imports::default();
        let book = folder();
        let path = book.path().to_path_buf();
        imports.insert("old".into(), book);
        imports.insert("new".into(), folder());
        assert!(imports.get("old").is_some());
        // Made just over PENDING_FOR ago: gone at the next look, with its folder.
        let made = Instant::now()
            .checked_sub(PENDING_FOR + Duration::from_secs(1))
            .unwrap();
        let entry = imports.lock().remove("old").unwrap();
        let aged = Pending {
            made,
            state: Mutex::new(PendingState {
                book: entry.state().book.take(),
                answer: None,
            }),
        };
        drop(entry);
        imports.lock().insert("old".into(), Arc::new(aged));
        assert!(path.is_dir());
        assert!(imports.get("old").is_none());
        assert!(!path.exists(), "the expired book's folder is removed");
        assert!(imports.get("new").is_some());
    }

    #[test]
    fn at_most_max_pending_books_wait_the_oldest_dropped_first() {
        let imports = Imports::default();
        for k in 0..MAX_PENDING + 3 {
            imports.insert(format!("t{k}"), folder());
        }
        assert_eq!(imports.lock().len(), MAX_PENDING);
        for k in 0..3 {
            assert!(imports.get(&format!("t{k}")).is_none(), "t{k}");
        }
        assert!(imports.get(&format!("t{}", MAX_PENDING + 2)).is_some());
    }
}
