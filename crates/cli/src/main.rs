//! `expansa`: where recurring revenue grows and where it leaks.

mod args;
mod progress;

use args::{Cli, Command, Format, Plan, QuoteFormat, Source};
use clap::Parser;
use expansa_contracts::{
    quote_amend, quote_renew, render_contract, render_quote, Format as ContractFormat, Quote,
    QuoteKind,
};
use expansa_import::{read_book, BookErrors, Folder, ImportOptions};
use expansa_kpi::{cohorts, kpis, render_cohorts, render_kpis, KpiFormat};
use expansa_ledger::{Book, Date};
use expansa_movements::{
    customer_movements, render_csv, render_json, render_table, render_trail, report_selected,
    ByCustomer, Selection, TrailFormat,
};
use expansa_opportunities::{
    evaluate, mine, offer_report, opportunities, render_evaluation, render_offers,
    render_opportunities, render_rules, Format as OutFormat, Holdings, OpportunityFilter,
};
use expansa_store::{quote_changes, AsOf, Event, Store, StoreError, WriteOutcome};
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
            match e.downcast_ref::<BookErrors>() {
                Some(BookErrors(problems)) => {
                    let mut stderr = std::io::stderr().lock();
                    for p in problems {
                        let _ = writeln!(stderr, "{p}");
                    }
                    let _ = writeln!(stderr, "error: {e}");
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
        Command::Import { dir, mode, actor } => {
            let outcome = block_on(async {
                let store = open_store(plan).await?;
                store.import(&Folder(dir), *mode, actor).await
            })
            .map_err(store_error)?;
            return Ok(describe_write(&outcome, "import"));
        }
        Command::Export { out } => {
            let written = block_on(async {
                let store = open_store(plan).await?;
                store.export(out, as_of(plan)).await
            })
            .map_err(store_error)?;
            return Ok(format!(
                "wrote {} files to {}: {}\n",
                written.len(),
                out.display(),
                written.join(", ")
            ));
        }
        Command::Events { format } => {
            let events =
                block_on(async { open_store(plan).await?.events().await }).map_err(store_error)?;
            return Ok(render_events(&events, *format));
        }
        _ => {}
    }
    let book = load(plan)?;
    let select = |filters: &[(String, String)]| -> anyhow::Result<ByCustomer> {
        let selection = Selection::from_filters(&book, filters).map_err(anyhow::Error::msg)?;
        Ok(ByCustomer::new(&book, &selection))
    };
    let out_format = |format: &Format| match format {
        Format::Json => OutFormat::Json,
        Format::Csv => OutFormat::Csv,
        Format::Table => OutFormat::Table(plan.locale),
    };
    let quote_format = |format: &QuoteFormat| match format {
        QuoteFormat::Json => ContractFormat::Json,
        QuoteFormat::Table => ContractFormat::Table(plan.locale),
    };
    let kpi_format = |format: &Format| match format {
        Format::Json => KpiFormat::Json,
        Format::Csv => KpiFormat::Csv,
        Format::Table => KpiFormat::Table(plan.locale),
    };
    match &plan.command {
        Command::Check => Ok(summary(&book)),
        Command::ContractShow {
            contract,
            at,
            format,
        } => {
            let at = match at {
                Some(day) => *day,
                None => {
                    let terms = expansa_contracts::contract(&book, contract, Date::MIN)?;
                    terms.end.unwrap_or_else(today)
                }
            };
            let view = expansa_contracts::contract(&book, contract, at)?;
            Ok(render_contract(&view, quote_format(format)))
        }
        Command::Amend {
            request,
            format,
            apply,
        } => {
            let key = format!("cli:amend:{request:?}");
            if let Some(out) = replayed(plan, apply.as_ref(), &key, "amend")? {
                return Ok(out);
            }
            let quote = quote_amend(&book, request)?;
            finish_quote(plan, &quote, quote_format(format), apply.as_ref(), key)
        }
        Command::Renew {
            request,
            format,
            apply,
        } => {
            let key = format!("cli:renew:{request:?}");
            if let Some(out) = replayed(plan, apply.as_ref(), &key, "renew")? {
                return Ok(out);
            }
            let quote = quote_renew(&book, request)?;
            finish_quote(plan, &quote, quote_format(format), apply.as_ref(), key)
        }
        Command::Import { .. } | Command::Export { .. } | Command::Events { .. } => {
            unreachable!("handled before the book is read")
        }
        Command::Rules {
            at,
            level,
            mining,
            itemsets,
            format,
        } => {
            let holdings = Holdings::on(&book, *at, *level);
            let mined = mine(&holdings.baskets, holdings.names.len(), mining)?;
            Ok(render_rules(
                &mined,
                &holdings.names,
                *itemsets,
                out_format(format),
            ))
        }
        Command::Opportunities {
            options,
            customer,
            kind,
            top,
            format,
        } => {
            let customer = customer
                .as_deref()
                .map(|id| find_customer(&book, id))
                .transpose()?;
            let filter = OpportunityFilter {
                customer,
                kind: *kind,
                top: *top,
            };
            let found = opportunities(&book, options, &filter)?;
            Ok(render_opportunities(&book, &found, out_format(format)))
        }
        Command::Offers {
            from,
            to,
            model,
            format,
        } => {
            let report = offer_report(&book, *from, *to, model)?;
            Ok(render_offers(&report, book.currency(), out_format(format)))
        }
        Command::Evaluate { options, format } => {
            let evaluation = evaluate(&book, options)?;
            Ok(render_evaluation(
                &evaluation,
                book.currency(),
                out_format(format),
            ))
        }
        Command::Movements {
            query,
            format,
            explain: None,
            filters,
            chart,
        } => {
            let r = report_selected(&book, query, &select(filters)?);
            if let Some(path) = chart {
                expansa_chart::movements_chart(&r, plan.locale, path)?;
            }
            Ok(match format {
                Format::Json => render_json(&r) + "\n",
                Format::Csv => render_csv(&r),
                Format::Table => render_table(&r, plan.locale),
            })
        }
        Command::Movements {
            query,
            format,
            explain: Some(customer),
            filters,
            ..
        } => {
            let idx = find_customer(&book, customer)?;
            let format = match format {
                Format::Json => TrailFormat::Json,
                Format::Csv => TrailFormat::Csv,
                Format::Table => TrailFormat::Table(plan.locale),
            };
            let lines = select(filters)?;
            let trail = customer_movements(&book, query, idx, lines.lines(idx as usize));
            let mut out = render_trail(&book, customer, &trail, format);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        }
        Command::Kpis {
            query,
            format,
            filters,
            chart,
        } => {
            let channels: Vec<String> = filters
                .iter()
                .filter(|(k, _)| k == "channel")
                .map(|(_, v)| v.clone())
                .collect();
            let spend_channels = (!channels.is_empty()).then_some(channels.as_slice());
            let r = kpis(&book, query, &select(filters)?, spend_channels);
            if let Some(path) = chart {
                expansa_chart::kpi_chart(&r, plan.locale, path)?;
            }
            Ok(render_kpis(&r, kpi_format(format)))
        }
        Command::Report {
            month,
            out,
            rules,
            filters,
        } => {
            let html = expansa_report::management_report(
                &book,
                &select(filters)?,
                *month,
                *rules,
                plan.locale,
            )?;
            std::fs::write(out, html)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            Ok(format!("wrote {}\n", out.display()))
        }
        Command::Cohorts {
            from,
            to,
            by,
            metric,
            format,
            filters,
        } => {
            let grid = cohorts(&book, &select(filters)?, *from, *to, *by, *metric);
            Ok(render_cohorts(&grid, book.currency(), kpi_format(format)))
        }
    }
}

/// Today, in UTC.
fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

fn find_customer(book: &Book, id: &str) -> anyhow::Result<u32> {
    book.customers
        .ids
        .find(id)
        .ok_or_else(|| anyhow::anyhow!("unknown customer {id:?}"))
}

fn import_options(plan: &Plan) -> ImportOptions {
    ImportOptions {
        currency: plan.currency,
    }
}

/// The book, from its folder or from the store.
fn load(plan: &Plan) -> anyhow::Result<Book> {
    match &plan.source {
        Source::Folder(dir) => Ok(read_book(
            dir,
            &import_options(plan),
            &progress::Bar::new(),
        )?),
        Source::Store { as_of, .. } => {
            Ok(
                block_on(async { open_store(plan).await?.book(*as_of).await })
                    .map_err(store_error)?,
            )
        }
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

async fn open_store(plan: &Plan) -> Result<Store, StoreError> {
    let url = match &plan.source {
        Source::Store { url, .. } => url.as_str(),
        Source::Folder(_) => args::DEFAULT_DB,
    };
    Store::open(url, import_options(plan)).await
}

/// A store error, with a book's problems listed the way an import lists them.
fn store_error(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::Book(problems) => anyhow::Error::new(problems),
        other => anyhow::Error::new(other),
    }
}

/// What a write changed, file by file.
fn describe_write(outcome: &WriteOutcome, what: &str) -> String {
    let mut out = match (outcome.event, outcome.replayed) {
        (_, true) => format!(
            "{what}: already applied as event {}: nothing changed\n",
            outcome.event.unwrap_or_default()
        ),
        (Some(event), false) => format!("{what}: recorded as event {event}\n"),
        (None, false) => format!("{what}: no changes (the store already holds these rows)\n"),
    };
    for f in &outcome.files {
        out += &format!(
            "  {}: {} added, {} changed, {} removed, {} unchanged\n",
            f.file, f.added, f.changed, f.removed, f.unchanged
        );
    }
    out
}

/// When a quote to apply was applied before under the same key: what it answered then
/// (the quote as JSON), and that nothing changed now.
fn replayed(
    plan: &Plan,
    apply: Option<&args::Apply>,
    default_key: &str,
    what: &str,
) -> anyhow::Result<Option<String>> {
    let Some(apply) = apply else {
        return Ok(None);
    };
    let key = apply.idempotency_key.as_deref().unwrap_or(default_key);
    let seen =
        block_on(async { open_store(plan).await?.replay(key).await }).map_err(store_error)?;
    Ok(seen.map(|(event, response)| {
        let outcome = WriteOutcome {
            event,
            files: Vec::new(),
            replayed: true,
            response: None,
        };
        format!("{response}\n{}", describe_write(&outcome, what))
    }))
}

/// Renders a quote, and records it in the store when asked to.
fn finish_quote(
    plan: &Plan,
    quote: &Quote,
    format: ContractFormat,
    apply: Option<&args::Apply>,
    default_key: String,
) -> anyhow::Result<String> {
    let rendered = render_quote(quote, format);
    let Some(apply) = apply else {
        return Ok(rendered);
    };
    let key = apply.idempotency_key.clone().unwrap_or(default_key);
    let changes = quote_changes(quote);
    let kind = match quote.kind {
        QuoteKind::Amend => "amend",
        QuoteKind::Renew => "renew",
    };
    let json = render_quote(quote, ContractFormat::Json);
    let outcome = block_on(async {
        let store = open_store(plan).await?;
        store
            .write(kind, &changes, &apply.actor, Some(&key), |_| {
                Some(json.trim_end().to_string())
            })
            .await
    })
    .map_err(store_error)?;
    Ok(match format {
        ContractFormat::Json => {
            let mut v: serde_json::Value = serde_json::from_str(&rendered)?;
            v["applied"] = serde_json::json!({
                "event": outcome.event,
                "replayed": outcome.replayed,
            });
            v.to_string() + "\n"
        }
        ContractFormat::Table(_) => rendered + &describe_write(&outcome, kind),
    })
}

/// The event log as a table or JSON.
fn render_events(events: &[Event], format: QuoteFormat) -> String {
    match format {
        QuoteFormat::Json => {
            let list: Vec<serde_json::Value> = events
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "id": e.id,
                        "at": e.at,
                        "actor": e.actor,
                        "reason": e.reason,
                        "kind": e.kind,
                        "detail": e.detail.as_deref().and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok()),
                    })
                })
                .collect();
            serde_json::Value::Array(list).to_string() + "\n"
        }
        QuoteFormat::Table => {
            let mut rows = vec![["event", "at", "actor", "kind", "reason"]
                .map(String::from)
                .to_vec()];
            for e in events {
                rows.push(vec![
                    e.id.to_string(),
                    e.at.clone(),
                    e.actor.clone(),
                    e.kind.clone(),
                    e.reason.clone(),
                ]);
            }
            expansa_movements::table(&rows, &[true, false, false, false, false])
        }
    }
}

fn summary(book: &Book) -> String {
    format!(
        "ok: {} customers, {} products, {} lines, {} contracts, {} contracted prices, {} fx rates, {} spend rows, {} usage rows, {} offers ({})\n",
        book.customers.len(),
        book.products.len(),
        book.lines.len(),
        book.contracts.len(),
        book.contracted_prices.len(),
        book.fx_rates.len(),
        book.marketing_spend.len(),
        book.usage.len(),
        book.offers.len(),
        book.currency(),
    )
}
