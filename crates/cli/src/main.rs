//! `expansa`: where recurring revenue grows and where it leaks.

mod progress;

use clap::Parser;
use expansa_api::ApiConfig;
use expansa_commands::{execute, output_format, Apply, Cli, Command, Format, Plan, Source};
use expansa_contracts::{quote_amend, quote_renew, render_quote, Quote};
use expansa_import::{
    book_at, read_book, BookErrors, BookFormat, BookSource, Folder, ImportOptions,
};
use expansa_ledger::Book;
use expansa_store::{
    write_book, AsOf, Event, ExistingBook, Idempotency, Store, StoreError, WriteOutcome,
};
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let plan = match Plan::from_cli(cli) {
        Ok(plan) => plan,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(plan.threads)
        .build_global()
    {
        eprintln!("error: cannot start threads: {e}");
        return ExitCode::from(2);
    }
    match run(&plan) {
        Ok(out) => {
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            let errors = e.downcast_ref::<BookErrors>().or_else(|| {
                e.downcast_ref::<expansa_commands::convert::ConvertErrors>()
                    .map(|c| &c.0)
            });
            match errors {
                Some(errors) => {
                    let mut stderr = std::io::stderr().lock();
                    for p in &errors.0 {
                        let _ = writeln!(stderr, "{p}");
                    }
                    if let Some(more) = errors.more_line() {
                        let _ = writeln!(stderr, "{more}");
                    }
                    let hint = match e.downcast_ref::<expansa_commands::convert::ConvertErrors>() {
                        Some(c) if c.rows_refused() => {
                            " (--skip-refused leaves the refused rows out and writes the rest)"
                        }
                        _ => "",
                    };
                    let _ = writeln!(stderr, "error: {e}{hint}");
                }
                None => eprintln!("error: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

/// Runs the plan and returns what goes to standard output.
fn run(plan: &Plan) -> anyhow::Result<String> {
    match &plan.command {
        Command::Import {
            dir,
            mode,
            actor,
            convert: None,
        } => {
            let source = book_at(dir);
            let outcome = block_on(with_store(plan, async |store: &Store| {
                store.import(&source, *mode, actor).await
            }))
            .map_err(store_error)?;
            Ok(describe_write(&outcome, "import", &|f| {
                source.table_name(f)
            }))
        }
        Command::Import {
            mode,
            actor,
            convert: Some(convert),
            ..
        } => {
            // Converted into a folder of its own, imported from there, then thrown away.
            let tmp = tempfile::Builder::new()
                .prefix("expansa-import-")
                .tempdir()?;
            let today = jiff::Zoned::now()
                .with_time_zone(convert.options.timezone.clone())
                .date();
            expansa_commands::convert::bound_memory();
            let converted = expansa_commands::convert::convert_into(
                convert,
                tmp.path(),
                expansa_commands::convert::previous_month_end(today),
            )?;
            let outcome = block_on(with_store(plan, async |store: &Store| {
                store.import(&Folder(tmp.path()), *mode, actor).await
            }))
            .map_err(store_error)?;
            let mut text =
                expansa_commands::convert::render(&converted, None, Format::Table, plan.locale);
            text.push('\n');
            text.push_str(&describe_write(&outcome, "import", &str::to_string));
            Ok(text)
        }
        Command::Convert {
            plan: convert,
            out,
            force,
            mrr_at,
            format,
        } => {
            expansa_commands::convert::bound_memory();
            let converted = expansa_commands::convert::run(convert, out, *force, *mrr_at)?;
            Ok(expansa_commands::convert::render(
                &converted,
                Some(&out.display().to_string()),
                *format,
                plan.locale,
            ))
        }
        Command::Export { out, force, format } => {
            let existing = if *force {
                ExistingBook::Replace
            } else {
                ExistingBook::Refuse
            };
            let written = match &plan.source {
                Source::Folder(dir) => export_book(plan, dir, out, existing, *format)?,
                Source::Store { .. } => block_on(with_store(plan, async |store: &Store| {
                    store.export(out, as_of(plan), existing, *format).await
                }))
                .map_err(store_error)?,
            };
            let files = if written.len() == 1 { "file" } else { "files" };
            Ok(format!(
                "wrote {} {files} to {}: {}\n",
                written.len(),
                out.display(),
                written.join(", ")
            ))
        }
        Command::Backup { out } => {
            // Checked before opening: opening would make an empty store where there is none.
            let from = Store::backup_source(store_url(plan)).map_err(store_error)?;
            let made = block_on(with_store(plan, async |store: &Store| {
                store.backup(out).await
            }))
            .map_err(store_error)?;
            Ok(format!(
                "backed up {} (event {}) to {}: {} bytes; open it with --db sqlite:{}\n",
                from.display(),
                made.event,
                out.display(),
                made.bytes,
                out.display()
            ))
        }
        Command::Events { format } => {
            let events = block_on(with_store(plan, async |store: &Store| store.events().await))
                .map_err(store_error)?;
            Ok(render_events(&events, *format))
        }
        Command::KeysCreate { name, role } => {
            let key = block_on(with_store(plan, async |store: &Store| {
                store.create_key(name, *role).await
            }))
            .map_err(store_error)?;
            Ok(format!(
                "{key}\n(key role: {role}; shown once: send it as `Authorization: Bearer KEY`; revoke it with `expansa keys revoke --id {}`)\n",
                key.split('.').next().unwrap_or_default()
            ))
        }
        Command::Users(users) => block_on(with_store(plan, async |store: &Store| {
            expansa_commands::users::run(users, store).await
        })),
        Command::Portal(portal) => block_on(with_store(plan, async |store: &Store| {
            expansa_commands::portal::run(portal, store).await
        })),
        Command::Audit(audit) => block_on(with_store(plan, async |store: &Store| {
            expansa_commands::audit::run(audit, store).await
        })),
        Command::KeysList => {
            let keys = block_on(with_store(plan, async |store: &Store| store.keys().await))
                .map_err(store_error)?;
            let mut rows = vec![["id", "name", "role", "created", "revoked"]
                .map(String::from)
                .to_vec()];
            for k in keys {
                rows.push(vec![
                    k.id,
                    k.name,
                    k.role.to_string(),
                    k.created_at,
                    k.revoked_at.unwrap_or_default(),
                ]);
            }
            Ok(expansa_movements::table(&rows, &[false; 5]))
        }
        Command::KeysRevoke { id } => {
            block_on(with_store(plan, async |store: &Store| {
                store.revoke_key(id).await
            }))
            .map_err(store_error)?;
            Ok(format!("revoked key {id}\n"))
        }
        Command::Serve {
            bind,
            public_reads,
            behind_proxy,
            tls,
            sessions,
            webhooks: (webhook_secret_file, webhook_tolerance),
            vendor_name,
            mail: (smtp, mail_from, finance_email),
            provisioning,
            // Given to the store where it is opened (with_store).
            write_validation: _,
            limits,
        } => {
            // Checked before the store is opened or the address bound.
            let deliveries = expansa_portal::deliver::Deliveries {
                smtp: smtp
                    .as_deref()
                    .map(|url| expansa_portal::deliver::Smtp::parse(url, mail_from))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                finance: finance_email
                    .as_deref()
                    .map(|f| {
                        expansa_portal::deliver::check_address("--finance-email", f)
                            .map(|()| f.to_string())
                    })
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
                webhook: provisioning
                    .as_ref()
                    .map(|(url, file)| expansa_portal::deliver::Webhook::load(url, file))
                    .transpose()
                    .map_err(anyhow::Error::msg)?,
            };
            expansa_api::init_logging(limits.log_format == expansa_commands::LogFormat::Json);
            let webhooks = expansa_api::webhooks::WebhookConfig {
                secrets: match webhook_secret_file {
                    Some(file) => expansa_api::webhooks::WebhookSecrets::load(file)
                        .map_err(anyhow::Error::msg)?,
                    None => Default::default(),
                },
                tolerance: std::time::Duration::from_secs(*webhook_tolerance),
            };
            // The files are checked before the store is opened or the address bound.
            let tls = tls
                .as_ref()
                .map(|(cert, key)| expansa_api::tls::load(cert, key))
                .transpose()?;
            let config = ApiConfig {
                public_reads: *public_reads,
                behind_proxy: *behind_proxy,
                tls,
                sessions: *sessions,
                limits: limits.into(),
                webhooks,
                portal: Default::default(),
            };
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()?
                .block_on(with_store(plan, async |store: &Store| {
                    let config = ApiConfig {
                        portal: expansa_api::Mounted(Some(expansa_portal::router(
                            store.clone(),
                            vendor_name,
                            deliveries.clone(),
                        ))),
                        ..config.clone()
                    };
                    expansa_api::serve(store.clone(), bind, config).await
                }))?;
            Ok(String::new())
        }
        Command::Amend {
            request,
            format,
            apply: Some(apply),
        } => {
            let key = format!("cli:amend:{request:?}");
            apply_quote(plan, apply, key, *format, |book| {
                Ok(quote_amend(book, request)?)
            })
        }
        Command::Renew {
            request,
            format,
            apply: Some(apply),
        } => {
            let key = format!("cli:renew:{request:?}");
            apply_quote(plan, apply, key, *format, |book| {
                Ok(quote_renew(book, request)?)
            })
        }
        _ => execute(plan, &load(plan)?),
    }
}

/// Writes the book at `dir` (validated whole first) into `out` as files of `format`: each of
/// its files read by the import's reader, written a chunk of rows at a time as the store
/// writes its export (all or nothing).
fn export_book(
    plan: &Plan,
    dir: &std::path::Path,
    out: &std::path::Path,
    existing: ExistingBook,
    format: BookFormat,
) -> anyhow::Result<Vec<String>> {
    let before = stamps(dir);
    // The book is dropped once validated: the export holds a chunk of rows at a time.
    drop(load(plan)?);
    let source = book_at(dir);
    let progress = progress::Bar::new();
    // The files are read again to be written: they must still be the book validated.
    let unchanged = || {
        if stamps(dir) == before {
            return Ok(());
        }
        Err(StoreError::Conflict(format!(
            "{} changed while it was exported: nothing was written; export it again",
            dir.display()
        )))
    };
    write_book(
        out,
        &source,
        plan.encoding,
        existing,
        format,
        &progress,
        &unchanged,
    )
    .map_err(store_error)
}

/// The size and time of change of each file a book at `path` may have (a folder's files of
/// either format, or the workbook), `None` for those absent.
fn stamps(path: &std::path::Path) -> Vec<Option<(u64, std::time::SystemTime)>> {
    let stamp = |p: &std::path::Path| {
        let m = std::fs::metadata(p).ok()?;
        Some((m.len(), m.modified().ok()?))
    };
    if path.is_file() {
        return vec![stamp(path)];
    }
    expansa_import::book_file_names()
        .map(|name| stamp(&path.join(name)))
        .collect()
}

fn import_options(plan: &Plan) -> ImportOptions {
    ImportOptions {
        currency: plan.currency,
        encoding: plan.encoding,
    }
}

/// The book, from its folder or workbook, or from the store.
fn load(plan: &Plan) -> anyhow::Result<Book> {
    match &plan.source {
        Source::Folder(dir) => Ok(read_book(
            dir,
            &import_options(plan),
            &progress::Bar::new(),
        )?),
        Source::Store { as_of, .. } => Ok(block_on(with_store(plan, async |store: &Store| {
            store.book(*as_of).await
        }))
        .map_err(store_error)?),
    }
}

fn as_of(plan: &Plan) -> AsOf {
    match &plan.source {
        Source::Store { as_of, .. } => *as_of,
        Source::Folder(_) => AsOf::Latest,
    }
}

/// Runs a future to completion on a runtime of its own (the CLI is synchronous).
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime starts")
        .block_on(future)
}

/// The store the plan names.
fn store_url(plan: &Plan) -> &str {
    match &plan.source {
        Source::Store { url, .. } => url.as_str(),
        Source::Folder(_) => expansa_commands::DEFAULT_DB,
    }
}

/// Opens the plan's store, runs `work` on it and closes it, whatever `work` returned: the
/// SQLite file then holds everything committed (its WAL folded in), also after an error.
///
/// Only `import` creates a SQLite store: every other command refuses a file that is not there
/// (a mistyped `--db` would otherwise read, or add a user to, a new empty store).
async fn with_store<T, E: From<StoreError>>(
    plan: &Plan,
    work: impl AsyncFnOnce(&Store) -> Result<T, E>,
) -> Result<T, E> {
    let url = store_url(plan);
    if !matches!(plan.command, Command::Import { .. }) {
        if let Some(file) = Store::sqlite_file(url)?.filter(|f| !f.exists()) {
            return Err(StoreError::NotFound(format!(
                "no store at {}: `expansa import --db {url} --data BOOK` creates one",
                file.display()
            ))
            .into());
        }
    }
    // serve's --write-validation; every other command writes with the store's default.
    let validation = match &plan.command {
        Command::Serve {
            write_validation, ..
        } => *write_validation,
        _ => expansa_store::WriteValidation::default(),
    };
    let store = Store::open_with(url, import_options(plan), plan.busy_timeout)
        .await?
        .with_write_validation(validation);
    let result = work(&store).await;
    if let Err(e) = store.close().await {
        eprintln!("warning: closing the store: {e}");
    }
    result
}

/// A store error, with a book's problems listed the way an import lists them.
fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Book(problems) => anyhow::Error::new(problems),
        StoreError::Busy(m) => anyhow::anyhow!(
            "{m} (wait longer with --busy-timeout SECS, up to {} s, or EXPANSA_BUSY_TIMEOUT)",
            expansa_store::MAX_BUSY_TIMEOUT.as_secs()
        ),
        other => anyhow::Error::new(other),
    }
}

/// What a write changed, table by table, each as `name` says its file (`usage.parquet` for an
/// import of a Parquet book, [`BookSource::table_name`]).
fn describe_write(outcome: &WriteOutcome, what: &str, name: &dyn Fn(&str) -> String) -> String {
    let mut out = match (outcome.event, outcome.replayed) {
        (Some(event), true) => {
            format!("{what}: already applied as event {event}: nothing changed\n")
        }
        (None, true) => format!("{what}: already applied (it changed nothing): nothing changed\n"),
        (Some(event), false) => format!("{what}: recorded as event {event}\n"),
        (None, false) => format!("{what}: no changes (the store already holds these rows)\n"),
    };
    for f in &outcome.files {
        out += &format!(
            "  {}: {} added, {} changed, {} removed, {} unchanged\n",
            name(f.file),
            f.added,
            f.changed,
            f.removed,
            f.unchanged
        );
    }
    out
}

/// Prices a quote on the store's book and records it, once: under the same idempotency key,
/// the same request run again prints the first answer and changes nothing (and another
/// request under that key is refused). `request` names the request; it is the default key.
fn apply_quote(
    plan: &Plan,
    apply: &Apply,
    request: String,
    format: Format,
    price: impl FnOnce(&Book) -> anyhow::Result<Quote>,
) -> anyhow::Result<String> {
    let key = apply.idempotency_key.as_deref().unwrap_or(&request);
    let key = Idempotency::new(key, request.as_bytes());
    let done = block_on(with_store(plan, async |store: &Store| {
        if let Some((event, response)) = store.replay(&key).await.map_err(store_error)? {
            return anyhow::Ok(Err((event, response)));
        }
        let priced_at = store.event_at(as_of(plan)).await.map_err(store_error)?;
        // (An empty store has no event 0: its own message says what to do.)
        let at = if priced_at == 0 {
            as_of(plan)
        } else {
            AsOf::Event(priced_at)
        };
        let book = store.book(at).await.map_err(store_error)?;
        let quote = price(&book)?;
        let outcome = store
            .apply_quote(&quote, priced_at, &apply.actor, &key)
            .await
            .map_err(store_error)?;
        Ok(Ok((quote, outcome)))
    }))?;
    let (quote, outcome) = match done {
        Ok(applied) => applied,
        // A replay: the first answer for JSON (it is the quote's JSON), else what happened.
        Err((event, response)) => {
            let outcome = WriteOutcome {
                event,
                files: Vec::new(),
                replayed: true,
                response: None,
            };
            let said = describe_write(&outcome, "quote", &str::to_string);
            return Ok(match format {
                Format::Json => {
                    let mut v: serde_json::Value = serde_json::from_str(&response)?;
                    v["applied"]["replayed"] = true.into();
                    v.to_string() + "\n"
                }
                Format::Table => said,
                Format::Csv => {
                    eprint!("{said}");
                    String::new()
                }
            });
        }
    };
    let rendered = render_quote(&quote, output_format(plan, format));
    let said = describe_write(&outcome, quote.kind.name(), &str::to_string);
    Ok(match format {
        Format::Json => {
            let mut v: serde_json::Value = serde_json::from_str(&rendered)?;
            v["applied"] = serde_json::json!({
                "event": outcome.event,
                "replayed": outcome.replayed,
            });
            v.to_string() + "\n"
        }
        Format::Table => rendered + &said,
        // CSV stays CSV: what the write did goes to standard error.
        Format::Csv => {
            eprint!("{said}");
            rendered
        }
    })
}

/// The event log as a table, JSON or CSV.
fn render_events(events: &[Event], format: Format) -> String {
    if format == Format::Json {
        return expansa_store::events_json(events).to_string() + "\n";
    }
    // The CSV names the column as the JSON does; the table heads it for people.
    let first = if format == Format::Csv { "id" } else { "event" };
    let header = [first, "at", "actor", "kind", "reason"];
    let rows = events.iter().map(|e| {
        vec![
            e.id.to_string(),
            e.at.clone(),
            e.actor.clone(),
            e.kind.clone(),
            e.reason.clone(),
        ]
    });
    match format {
        Format::Csv => expansa_ledger::csv_rows(&header, rows),
        _ => {
            let mut table = vec![header.map(String::from).to_vec()];
            table.extend(rows);
            expansa_movements::table(&table, &[true, false, false, false, false])
        }
    }
}
