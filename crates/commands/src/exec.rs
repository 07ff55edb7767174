//! A validated plan run against a book: what every book command prints. The CLI and the HTTP
//! API both call [`execute`], so they can never disagree.

use crate::args::{Command, Format, MovementView, Plan};
use expansa_contracts::{quote_amend, quote_renew, render_contract, render_quote};
use expansa_kpi::{cohorts, kpis, render_cohorts, render_kpis, KpiReport, KpiSums};
use expansa_ledger::{Book, Date};
use expansa_movements::{
    all_movements, customer_movements, part_sums, render_csv, render_detail, render_json,
    render_table, render_trail, report_of_parts, report_selected, BaseSums, ByCustomer,
    CellsOfParts, Movement, PartsSums, Query, Report, Selection, Sums,
};
use expansa_opportunities::{
    evaluate, mine, offer_report, opportunities, render_evaluation, render_offers,
    render_opportunities, render_rules, Holdings, OpportunityFilter,
};
use std::collections::BTreeMap;

/// What a report run on the store's latest book in parts keeps of its base
/// ([`base_of_parts`]): the work of the whole report, once per base.
pub enum PartsBase {
    /// The movement report's sums, by customer.
    Movements(Box<BaseSums>),
    /// The cells of a report that adds up over groups of customers ([`report_cells`]: the
    /// KPIs), and the customer of each contract ([`Book::contract_owners`]).
    Cells(
        BTreeMap<String, i128>,
        std::sync::Arc<std::collections::HashMap<u64, expansa_ledger::CustomerIdx>>,
    ),
    /// A base whose KPIs do not add up over customers (a contract named by lines of two
    /// customers, or a line revising another customer's: renewals follow a contract's lines
    /// and revisions across them): run on the book whole.
    Whole,
}

/// What a report run on the book in parts keeps between reads of the same base: the changes
/// the pieces read so far make to the base's figures ([`execute_on_parts`]).
#[derive(Default)]
pub enum PartsState {
    #[default]
    New,
    Movements(PartsSums),
    Cells(CellsOfParts),
}

/// The sums of `plan`'s report over the base of the store's latest book in parts, which
/// [`execute_on_parts`] starts from: the work of the whole report, once per base (keep it).
/// `None` for a plan [`execute_on_parts`] does not run.
pub fn base_of_parts(plan: &Plan, base: &Book) -> Option<PartsBase> {
    if let Some((query, _)) = on_parts(plan) {
        return Some(PartsBase::Movements(Box::new(BaseSums::new(base, query))));
    }
    on_cells(plan).ok()?;
    let Some(owners) = base.contract_owners() else {
        return Some(PartsBase::Whole);
    };
    let cells = report_cells(plan, base).ok()?;
    Some(PartsBase::Cells(
        cells.into_iter().collect(),
        std::sync::Arc::new(owners),
    ))
}

/// Runs `plan` on the store's latest book in parts ([`expansa_store::LatestParts`]) when its
/// figures add up over customers: the movement report without filters or chart, by
/// [`report_of_parts`], and the KPIs without filters or chart, by their cells
/// ([`report_cells`] of [`Book::part`]s: the base's, minus the changed customers' rows in the
/// base, plus theirs in their latest piece), from the base's ([`base_of_parts`], of
/// `parts.base`) and the changes its pieces make (`state`: kept between calls, for this base
/// and plan; a read costs in proportion to the customers changed since the last). `None` for
/// any other plan, and for KPIs of a book where a contract or a revision spans two customers
/// (see [`PartsBase::Whole`], [`CellsOfParts::update`]): [`execute`] runs it on the book
/// whole.
pub fn execute_on_parts(
    plan: &Plan,
    parts: &expansa_store::LatestParts,
    base: &PartsBase,
    state: &mut PartsState,
) -> Option<String> {
    let pieces: Vec<_> = parts
        .pieces
        .iter()
        .map(|p| (&p.book, &p.customers))
        .collect();
    match base {
        PartsBase::Movements(sums) => {
            let (_, format) = on_parts(plan)?;
            if !matches!(state, PartsState::Movements(_)) {
                *state = PartsState::Movements(PartsSums::default());
            }
            let PartsState::Movements(changes) = state else {
                return None;
            };
            let r = report_of_parts(&parts.base, sums, changes, &pieces);
            Some(render_movements(plan, &r, format))
        }
        PartsBase::Whole => None,
        PartsBase::Cells(cells, owners) => {
            let fresh = match state {
                PartsState::Cells(c) => c.pieces() > pieces.len(),
                _ => true,
            };
            if fresh {
                *state = PartsState::Cells(CellsOfParts::new(cells.clone(), owners.clone()));
            }
            let PartsState::Cells(now) = state else {
                return None;
            };
            let mut failed = None;
            let adds_up = now.update(&parts.base, &pieces, |part| {
                report_cells(plan, part).unwrap_or_else(|e| {
                    failed = Some(e);
                    Vec::new()
                })
            });
            let cells = (adds_up && failed.is_none()).then(|| now.cells().clone());
            if failed.is_some() {
                // Counted in part: start anew from the base's cells next time.
                *state = PartsState::New;
            }
            execute_on_cells(plan, &parts.base, cells?).ok()
        }
    }
}

/// The rows `plan`'s output depends on, when they are one contract's or one customer's (with
/// the shared tables): a quote, a contract's terms, a customer's trail without filters. Run on
/// the store's part of the book with those rows ([`expansa_store::Store::latest_part`]),
/// [`execute`] prints what it prints on the whole book.
pub fn part_of(plan: &Plan) -> Option<expansa_store::PartOf<'_>> {
    use expansa_store::PartOf;
    match &plan.command {
        Command::Amend { request, .. } => Some(PartOf::Contract(&request.contract)),
        Command::Renew { request, .. } => Some(PartOf::Contract(&request.contract)),
        Command::ContractShow { contract, .. } => Some(PartOf::Contract(contract)),
        Command::Movements {
            view: MovementView::Trail(customer),
            filters,
            ..
        } if filters.is_empty() => Some(PartOf::Customer(customer)),
        _ => None,
    }
}

/// Whether [`execute_on_parts`] runs `plan`.
pub fn runs_on_parts(plan: &Plan) -> bool {
    on_cells(plan).is_ok()
}

/// The query and format of a movement report [`execute_on_parts`] runs by customer.
fn on_parts(plan: &Plan) -> Option<(&Query, &Format)> {
    match &plan.command {
        Command::Movements {
            query,
            format,
            view: MovementView::Report,
            filters,
            chart: None,
        } if filters.is_empty() => Some((query, format)),
        _ => None,
    }
}

/// The plans that run on a book held in groups of customers ([`report_cells`] of each group,
/// [`execute_on_cells`] of their sums: the Spark job, docs/spark.md): the movement report and
/// the KPIs, without filters or chart. Filters are not: a `--where` may name a value that only
/// some groups hold, and CAC's spend attribution looks at every customer of a channel.
enum OnCells<'a> {
    Movements(&'a Query, &'a Format),
    Kpis(&'a Query, &'a Format),
}

fn on_cells(plan: &Plan) -> anyhow::Result<OnCells<'_>> {
    // The movement report that adds up over customers is the one that runs on parts.
    if let Some((query, format)) = on_parts(plan) {
        return Ok(OnCells::Movements(query, format));
    }
    match &plan.command {
        Command::Kpis {
            query,
            format,
            filters,
            chart: None,
        } if filters.is_empty() => Ok(OnCells::Kpis(query, format)),
        _ => anyhow::bail!(
            "only `movements` and `kpis` without --where, --explain, --detail or --chart run on a book in groups of customers"
        ),
    }
}

/// The exact sums `plan`'s report is made of over the customers of `book` (a whole book, or
/// one group of a larger book's customers with its shared tables): named cells
/// ([`Sums::cells`](expansa_movements::Sums::cells) for `movements`,
/// [`KpiSums::cells`] for `kpis`), which add up name by name over the groups of a book.
/// An error for a plan [`execute_on_cells`] does not run.
pub fn report_cells(plan: &Plan, book: &Book) -> anyhow::Result<Vec<(String, i128)>> {
    let all = ByCustomer::new(book, &Selection::all());
    Ok(match on_cells(plan)? {
        OnCells::Movements(query, _) => {
            let mut cells = Vec::new();
            part_sums(book, query, &all).cells(&mut cells);
            cells
        }
        OnCells::Kpis(query, _) => KpiSums::of(book, query, &all).cells(),
    })
}

/// What `plan` prints on a book held in groups of customers, from the sums of the groups'
/// [`report_cells`] (`cells`: each name once, with its sum over the groups) and `shared`, a
/// book of the shared tables (its reporting currency and marketing spend): the same report,
/// by the same functions, as [`execute`] prints on the book whole.
pub fn execute_on_cells(
    plan: &Plan,
    shared: &Book,
    cells: impl IntoIterator<Item = (String, i128)>,
) -> anyhow::Result<String> {
    match on_cells(plan)? {
        OnCells::Movements(query, format) => {
            let mut sums = Sums::new(query);
            for (name, units) in cells {
                sums.add_cell(&name, units).map_err(anyhow::Error::msg)?;
            }
            Ok(render_movements(
                plan,
                &sums.report(shared.currency(), query),
                format,
            ))
        }
        OnCells::Kpis(query, format) => {
            let mut sums = KpiSums::zero(query);
            for (name, units) in cells {
                sums.add_cell(&name, units).map_err(anyhow::Error::msg)?;
            }
            let report = sums.report(shared, &Selection::all(), None);
            Ok(render_kpis(&report, output_format(plan, *format)))
        }
    }
}

/// The movement report as `format` says.
fn render_movements(plan: &Plan, r: &Report, format: &Format) -> String {
    match format {
        Format::Json => render_json(r) + "\n",
        Format::Csv => render_csv(r),
        Format::Table => render_table(r, plan.locale),
    }
}

/// The lines `filters` (`--where KEY=VALUE`) keep.
fn selection(book: &Book, filters: &[(String, String)]) -> anyhow::Result<Selection> {
    Selection::from_filters(book, filters).map_err(anyhow::Error::msg)
}

/// The lines `filters` (`--where KEY=VALUE`) keep, by customer.
fn select(book: &Book, filters: &[(String, String)]) -> anyhow::Result<ByCustomer> {
    Ok(ByCustomer::new(book, &selection(book, filters)?))
}

/// The movement report `movements` prints: `query` over the lines `filters` keep.
pub fn movement_report(
    book: &Book,
    query: &Query,
    filters: &[(String, String)],
) -> anyhow::Result<Report> {
    Ok(report_selected(book, query, &select(book, filters)?))
}

/// The KPI report `kpis` prints: `query` over the lines `filters` keep, with the marketing
/// spend of the channels they name (`channel=`), or all of it.
pub fn kpi_report(
    book: &Book,
    query: &Query,
    filters: &[(String, String)],
) -> anyhow::Result<KpiReport> {
    let channels: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k == "channel")
        .map(|(_, v)| v.clone())
        .collect();
    let spend_channels = (!channels.is_empty()).then_some(channels.as_slice());
    Ok(kpis(book, query, &select(book, filters)?, spend_channels))
}

/// One customer's movements (the trail `movements --explain` prints) over the lines `filters`
/// keep; an error for a customer the book does not have.
pub fn trail(
    book: &Book,
    query: &Query,
    filters: &[(String, String)],
    customer: &str,
) -> anyhow::Result<Vec<Movement>> {
    let idx = find_customer(book, customer)?;
    Ok(customer_movements(
        book,
        query,
        &select(book, filters)?,
        idx,
    ))
}

/// Runs a book command of `plan` on `book` and returns what it prints.
pub fn execute(plan: &Plan, book: &Book) -> anyhow::Result<String> {
    let selection = |filters: &[(String, String)]| selection(book, filters);
    let select = |filters: &[(String, String)]| select(book, filters);
    let out = |format: &Format| output_format(plan, *format);
    match &plan.command {
        Command::Check => Ok(summary(book)),
        Command::Renewals(r) => {
            crate::renewals::run(r, book, out(&r.format)).map_err(anyhow::Error::msg)
        }
        Command::ContractShow {
            contract,
            at,
            format,
        } => {
            let at = match at {
                Some(day) => *day,
                None => {
                    let terms = expansa_contracts::contract(book, contract, Date::MIN)?;
                    terms.end.unwrap_or_else(today)
                }
            };
            let view = expansa_contracts::contract(book, contract, at)?;
            Ok(render_contract(&view, out(format)))
        }
        Command::Amend { apply: Some(_), .. } | Command::Renew { apply: Some(_), .. } => {
            anyhow::bail!(
                "--apply records the quote in the store: the binary does it, not a plan run"
            )
        }
        Command::Amend {
            request, format, ..
        } => Ok(render_quote(&quote_amend(book, request)?, out(format))),
        Command::Renew {
            request, format, ..
        } => Ok(render_quote(&quote_renew(book, request)?, out(format))),
        Command::Import { .. }
        | Command::Export { .. }
        | Command::Backup { .. }
        | Command::Events { .. }
        | Command::Serve { .. }
        | Command::KeysCreate { .. }
        | Command::Users(_)
        | Command::Portal(_)
        | Command::Audit(_)
        | Command::KeysList
        | Command::KeysRevoke { .. } => {
            anyhow::bail!("this command works on the store, not on one book")
        }
        Command::Convert { .. } => {
            anyhow::bail!("convert writes a book: the binary runs it, not a plan run")
        }
        Command::Rules {
            at,
            level,
            mining,
            itemsets,
            format,
        } => {
            let holdings = Holdings::on(book, *at, *level);
            let mined = mine(&holdings.baskets, holdings.names.len(), mining)?;
            Ok(render_rules(
                &mined,
                &holdings.names,
                *itemsets,
                out(format),
            ))
        }
        Command::Opportunities {
            options,
            customer,
            kind,
            top,
            format,
            filters,
        } => {
            let customer = customer
                .as_deref()
                .map(|id| find_customer(book, id))
                .transpose()?;
            let filter = OpportunityFilter {
                customer,
                kind: *kind,
                selection: selection(filters)?,
                top: *top,
            };
            let found = opportunities(book, options, &filter)?;
            Ok(render_opportunities(book, &found, out(format)))
        }
        Command::Offers {
            from,
            to,
            model,
            format,
            filters,
        } => {
            let report = offer_report(book, *from, *to, model, &selection(filters)?)?;
            Ok(render_offers(&report, book.currency(), out(format)))
        }
        Command::Evaluate { options, format } => {
            let evaluation = evaluate(book, options)?;
            Ok(render_evaluation(&evaluation, book.currency(), out(format)))
        }
        Command::Movements {
            query,
            format,
            view: MovementView::Report,
            filters,
            chart,
        } => {
            let r = movement_report(book, query, filters)?;
            if let Some(path) = chart {
                expansa_chart::movements_chart(&r, plan.locale, path)?;
            }
            Ok(render_movements(plan, &r, format))
        }
        Command::Movements {
            query,
            format,
            view: MovementView::Detail(kind),
            filters,
            ..
        } => {
            let found = all_movements(book, query, &select(filters)?, *kind);
            let mut out = render_detail(book, &found, out(format));
            if !out.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        }
        Command::Movements {
            query,
            format,
            view: MovementView::Trail(customer),
            filters,
            ..
        } => {
            let trail = trail(book, query, filters, customer)?;
            let mut out = render_trail(book, customer, &trail, out(format));
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
            let r = kpi_report(book, query, filters)?;
            if let Some(path) = chart {
                expansa_chart::kpi_chart(&r, plan.locale, path)?;
            }
            Ok(render_kpis(&r, out(format)))
        }
        Command::Report {
            month,
            out,
            rules,
            filters,
        } => {
            let html = expansa_report::management_report(
                book,
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
            let grid = cohorts(book, &select(filters)?, *from, *to, *by, *metric);
            Ok(render_cohorts(&grid, book.currency(), out(format)))
        }
    }
}

/// What a `--format` means for a plan's renderers (tables in the plan's locale).
pub fn output_format(plan: &Plan, format: Format) -> expansa_ledger::Format {
    match format {
        Format::Json => expansa_ledger::Format::Json,
        Format::Csv => expansa_ledger::Format::Csv,
        Format::Table => expansa_ledger::Format::Table(plan.locale),
    }
}

/// Today, in UTC.
fn today() -> Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

/// The index of a customer id.
fn find_customer(book: &Book, id: &str) -> anyhow::Result<u32> {
    book.customers
        .ids
        .find(id)
        .ok_or_else(|| anyhow::anyhow!("unknown customer {id:?}"))
}

/// What `check` prints.
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
