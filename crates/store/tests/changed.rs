//! A write validated on the customers it changes gives the verdict the whole book gives: two
//! stores hold the demo book, one validating writes on what they change (the default), one on
//! the whole book; the same random writes (new and replaced lines, removals, column changes,
//! offers naming lines, customers, contracts, products; revisions and contracts of other customers,
//! unknown products, currencies without rates, bad dates) go to both, and every answer must be
//! the same: accepted by both, or refused by both with the same problems at the same lines.
//! And the latest book in parts (a base book, and the rows of the customers changed since)
//! gives the movement report of the whole book, after every few writes, whoever wrote them;
//! and a contract's or a customer's part of the book gives the quotes, contract terms and
//! trail the whole book gives.
//! SQLite always; PostgreSQL too when `EXPANSA_TEST_POSTGRES` names a server.

mod common;

use common::{actor, backends, root};
use expansa_import::schema::{Schema, CONTRACTS, CUSTOMERS, OFFERS, PRODUCTS, SUBSCRIPTIONS};
use expansa_import::ImportOptions;
use expansa_kpi::KpiSums;
use expansa_ledger::Month;
use expansa_movements::{
    render_json, report, report_of_parts, BaseSums, ByCustomer, CellsOfParts, PartsSums, Query,
    Selection,
};
use expansa_store::{AsOf, PartOf, RowChange, Store, StoreError, WriteValidation};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &'a [String]) -> &'a str {
        &items[self.below(items.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The ids in the first column of one of the demo's files, and a few it does not have.
fn ids(file: &str, column: usize, more: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(root().join("examples/demo").join(file)).unwrap();
    let mut out: Vec<String> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(column).map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out.extend(more.iter().map(|s| s.to_string()));
    out
}

struct Pools {
    customers: Vec<String>,
    products: Vec<String>,
    lines: Vec<String>,
    contracts: Vec<String>,
    offers: Vec<String>,
    channels: Vec<String>,
}

fn row(schema: &Schema, pairs: &[(&str, Option<String>)]) -> Vec<Option<String>> {
    let mut values = vec![None; schema.columns.len()];
    for (column, value) in pairs {
        values[schema.position(column).unwrap()] = value.clone();
    }
    values
}

fn put(schema: Schema, values: Vec<Option<String>>) -> RowChange {
    RowChange::Put {
        schema,
        values,
        extra: vec![],
        create_only: false,
    }
}

fn day(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        2023 + rng.below(3),
        1 + rng.below(12),
        1 + rng.below(28)
    )
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

/// One random change.
fn change(rng: &mut Rng, p: &mut Pools, n: usize) -> RowChange {
    let roll = rng.below(100);
    if roll < 45 {
        // A new line, or a line replaced under an existing id.
        let id = if roll < 3 {
            // A line whose id is a contract's: its own contract, if it names none.
            let id = rng.pick(&p.contracts).to_string();
            p.lines.push(id.clone());
            id
        } else if roll < 32 {
            let id = format!("N{n}");
            p.lines.push(id.clone());
            id
        } else {
            rng.pick(&p.lines).to_string()
        };
        let start = day(rng);
        let end = rng.chance(30).then(|| day(rng));
        let revises = rng.chance(20).then(|| rng.pick(&p.lines).to_string());
        let contract = rng.chance(60).then(|| rng.pick(&p.contracts).to_string());
        let currency = [None, some("BRL"), some("USD"), some("EUR")]
            [rng.below(4) * usize::from(rng.chance(25))]
        .clone();
        let quantity = if rng.chance(5) {
            "-1".to_string()
        } else {
            (1 + rng.below(5)).to_string()
        };
        put(
            SUBSCRIPTIONS,
            row(
                &SUBSCRIPTIONS,
                &[
                    ("id", Some(id)),
                    ("customer_id", some(rng.pick(&p.customers))),
                    ("contract_id", contract),
                    ("product_id", some(rng.pick(&p.products))),
                    ("quantity", Some(quantity)),
                    ("unit_price", some("100.00")),
                    ("currency", currency),
                    ("start_date", Some(start)),
                    ("end_date", end),
                    ("revises", revises),
                ],
            ),
        )
    } else if roll < 55 {
        RowChange::Remove {
            schema: SUBSCRIPTIONS,
            key: rng.pick(&p.lines).to_string(),
        }
    } else if roll < 65 {
        let (column, value) = match rng.below(3) {
            0 => ("end_date", rng.chance(80).then(|| day(rng))),
            1 => ("customer_id", some(rng.pick(&p.customers))),
            _ => (
                "revises",
                rng.chance(70).then(|| rng.pick(&p.lines).to_string()),
            ),
        };
        RowChange::Set {
            schema: SUBSCRIPTIONS,
            key: rng.pick(&p.lines).to_string(),
            column,
            value,
        }
    } else if roll < 75 {
        let id = if rng.chance(50) {
            let id = format!("OF{n}");
            p.offers.push(id.clone());
            id
        } else {
            rng.pick(&p.offers).to_string()
        };
        put(
            OFFERS,
            row(
                &OFFERS,
                &[
                    ("id", Some(id)),
                    ("customer_id", some(rng.pick(&p.customers))),
                    ("product_id", some(rng.pick(&p.products))),
                    (
                        "kind",
                        some(if rng.chance(50) {
                            "upsell"
                        } else {
                            "cross_sell"
                        }),
                    ),
                    ("offered_on", Some(day(rng))),
                    (
                        "line_id",
                        rng.chance(60).then(|| rng.pick(&p.lines).to_string()),
                    ),
                ],
            ),
        )
    } else if roll < 80 {
        RowChange::Remove {
            schema: OFFERS,
            key: rng.pick(&p.offers).to_string(),
        }
    } else if roll < 88 {
        let id = if rng.chance(30) {
            let id = format!("C{n}");
            p.customers.push(id.clone());
            id
        } else {
            rng.pick(&p.customers).to_string()
        };
        let values = row(
            &CUSTOMERS,
            &[
                ("id", Some(id.clone())),
                ("name", Some(format!("Customer {id}"))),
                ("registered_on", Some(day(rng))),
                (
                    "channel",
                    rng.chance(80).then(|| rng.pick(&p.channels).to_string()),
                ),
            ],
        );
        // Now and then attributes (extra columns), in either order, one of them new.
        let extra = match rng.below(8) {
            0 => vec![("city".to_string(), "Recife".to_string())],
            1 => vec![
                ("plan_note".to_string(), format!("note {n}")),
                ("city".to_string(), "Natal, RN".to_string()),
            ],
            2 => vec![("city".to_string(), String::new())],
            _ => vec![],
        };
        RowChange::Put {
            schema: CUSTOMERS,
            values,
            extra,
            create_only: false,
        }
    } else if roll < 92 {
        RowChange::Remove {
            schema: CUSTOMERS,
            key: rng.pick(&p.customers).to_string(),
        }
    } else if roll < 97 {
        let start = day(rng);
        put(
            CONTRACTS,
            row(
                &CONTRACTS,
                &[
                    ("id", some(rng.pick(&p.contracts))),
                    ("customer_id", some(rng.pick(&p.customers))),
                    ("start_date", Some(start)),
                    ("end_date", rng.chance(70).then(|| "2027-12-31".to_string())),
                ],
            ),
        )
    } else {
        // A shared table: validated whole, and the book in parts read again.
        put(
            PRODUCTS,
            row(
                &PRODUCTS,
                &[
                    ("id", some(rng.pick(&p.products))),
                    ("name", some("A product")),
                    ("list_price", Some(format!("{}.00", 50 + rng.below(500)))),
                ],
            ),
        )
    }
}

/// What a write answered, in a form both stores' answers can be compared in.
fn answer(result: Result<expansa_store::WriteOutcome, StoreError>) -> String {
    match result {
        Ok(outcome) => format!("ok, event {}", outcome.event.is_some()),
        Err(StoreError::Book(errors)) => {
            let mut lines: Vec<String> = errors.0.iter().map(|p| p.to_string()).collect();
            lines.push(format!("and {} more", errors.1));
            lines.join("\n")
        }
        Err(other) => format!("error: {other}"),
    }
}

/// The KPIs' cells of a book (every customer's).
fn kpi_cells(book: &expansa_ledger::Book, query: &Query) -> Vec<(String, i128)> {
    let all = ByCustomer::new(book, &Selection::all());
    KpiSums::of(book, query, &all).cells()
}

/// What a base's reports keep between reads of the book in parts.
type Bases = Vec<(i64, BaseSums, PartsSums, Option<CellsOfParts>)>;

/// The answers to the same write of a store validating the changed customers and of one
/// validating the whole book.
async fn both_answers(changed: &Store, whole: &Store, changes: &[RowChange]) -> (String, String) {
    let a = answer(
        changed
            .write("line", changes, &actor("t"), None, |_| None)
            .await,
    );
    let b = answer(
        whole
            .write("line", changes, &actor("t"), None, |_| None)
            .await,
    );
    (a, b)
}

/// The movement report and the KPIs' cells of the store's latest book in parts, and of its
/// latest book whole (the KPIs when they add up over customers: the third value says). The
/// sums of a base, and their changes, are kept (`bases`) and brought up to date for every
/// later state, as the server does.
async fn both_reports(store: &Store, bases: &mut Bases) -> (String, String, bool) {
    let query = Query {
        from: "2023-01".parse::<Month>().unwrap(),
        to: "2026-06".parse::<Month>().unwrap(),
        rules: Default::default(),
    };
    let parts = store.latest_parts().await.unwrap();
    if !bases.iter().any(|(e, ..)| *e == parts.base_event) {
        bases.push((
            parts.base_event,
            BaseSums::new(&parts.base, &query),
            PartsSums::default(),
            None,
        ));
    }
    let (_, sums, changes, cells) = bases
        .iter_mut()
        .find(|(e, ..)| *e == parts.base_event)
        .unwrap();
    let pieces: Vec<_> = parts
        .pieces
        .iter()
        .map(|p| (&p.book, &p.customers))
        .collect();
    let in_parts = render_json(&report_of_parts(&parts.base, sums, changes, &pieces));
    // And summed anew from the pieces, without the kept changes.
    let anew = render_json(&report_of_parts(
        &parts.base,
        sums,
        &mut PartsSums::default(),
        &pieces,
    ));
    assert_eq!(in_parts, anew, "kept and fresh changes differ");
    let whole = store.book(AsOf::Event(parts.event)).await.unwrap();
    // The KPIs add up over customers unless a contract or a revision spans two (the server
    // then reads the book whole for them: expansa_commands::PartsBase::Whole).
    let (mut kpis_in_parts, mut kpis_whole) = (String::new(), String::new());
    let owners = parts.base.contract_owners().map(std::sync::Arc::new);
    let new =
        |owners| CellsOfParts::new(kpi_cells(&parts.base, &query).into_iter().collect(), owners);
    let additive = match &owners {
        None => false,
        Some(owners) => {
            if cells.as_ref().is_none_or(|c| c.pieces() > pieces.len()) {
                *cells = Some(new(owners.clone()));
            }
            let kept = cells.as_mut().unwrap();
            let adds_up = kept.update(&parts.base, &pieces, |part| kpi_cells(part, &query));
            let mut fresh = new(owners.clone());
            assert_eq!(
                adds_up,
                fresh.update(&parts.base, &pieces, |part| kpi_cells(part, &query))
            );
            adds_up && {
                assert_eq!(
                    kept.cells(),
                    fresh.cells(),
                    "kept and fresh KPI cells differ"
                );
                true
            }
        }
    };
    if additive {
        let cells = cells.as_ref().unwrap();
        let whole_cells: std::collections::BTreeMap<String, i128> =
            kpi_cells(&whole, &query).into_iter().collect();
        kpis_in_parts = format!("\nKPI cells {:?}", cells.cells());
        kpis_whole = format!("\nKPI cells {whole_cells:?}");
    }
    let whole = render_json(&report(&whole, &query));
    (
        format!("{in_parts}{kpis_in_parts}"),
        format!("{whole}{kpis_whole}"),
        additive,
    )
}

/// A quote, a contract's terms and a customer's trail on the part of the book they read, and
/// on the whole book.
async fn on_part_and_whole(
    store: &Store,
    contract: &str,
    customer: &str,
    seed: u64,
) -> (String, String) {
    use expansa_contracts::{
        quote_amend, quote_renew, render_quote, AmendRequest, Change, RenewRequest,
    };
    use expansa_ledger::{Book, Decimal, Format};
    let effective: expansa_ledger::Date = ["2024-03-15", "2025-01-01", "2026-06-30"]
        [seed as usize % 3]
        .parse()
        .unwrap();
    let product = ["folha", "fiscal", "contabil-premium"][seed as usize % 3].to_string();
    let contract_views = |book: &Book| {
        let amend = AmendRequest {
            contract: contract.to_string(),
            effective,
            changes: vec![Change::Add(product.clone(), Decimal::from(2))],
            precision: Default::default(),
        };
        let renew = RenewRequest {
            contract: contract.to_string(),
            ..Default::default()
        };
        let shown = |q: Result<expansa_contracts::Quote, expansa_contracts::QuoteError>| match q {
            Ok(q) => render_quote(&q, Format::Json),
            Err(e) => e.to_string(),
        };
        let terms = match expansa_contracts::contract(book, contract, effective) {
            Ok(v) => expansa_contracts::render_contract(&v, Format::Json),
            Err(e) => e.to_string(),
        };
        format!(
            "{}\n{}\n{terms}",
            shown(quote_amend(book, &amend)),
            shown(quote_renew(book, &renew))
        )
    };
    let trail = |book: &Book| {
        let query = Query {
            from: "2023-01".parse::<Month>().unwrap(),
            to: "2026-06".parse::<Month>().unwrap(),
            rules: Default::default(),
        };
        match book.customers.ids.find(customer) {
            Some(c) => expansa_movements::render_trail(
                book,
                customer,
                &expansa_movements::trail(book, &query, c),
                Format::Json,
            ),
            None => "unknown customer".to_string(),
        }
    };
    let (event, part) = store.latest_part(PartOf::Contract(contract)).await.unwrap();
    let (_, of_customer) = store.latest_part(PartOf::Customer(customer)).await.unwrap();
    let whole = store.book(AsOf::Event(event)).await.unwrap();
    (
        format!("{}\n{}", contract_views(&part), trail(&of_customer)),
        format!("{}\n{}", contract_views(&whole), trail(&whole)),
    )
}

async fn store(url: &str, validation: WriteValidation, book: &std::path::Path) -> Store {
    common::loaded_with(url, book.to_str().unwrap(), validation).await
}

/// A line without a contract_id is its own contract: a line of another customer's contract id
/// (new, or its contract_id cleared), or a contracts.csv row for another customer's line id,
/// is refused on its part as on the whole book (a newcomer found all three accepted).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lines_own_contract_is_checked_like_a_named_one() {
    let book = root().join("testdata/contracts");
    for (backend, url, _dir) in backends("own_contract").await {
        let (_, whole_url, _whole_dir) = backends("own_contract_whole")
            .await
            .into_iter()
            .find(|(b, ..)| *b == backend)
            .unwrap();
        let changed = store(&url, WriteValidation::Changed, &book).await;
        let whole = store(&whole_url, WriteValidation::Whole, &book).await;
        let line = |id: &str, contract: Option<&str>| {
            put(
                SUBSCRIPTIONS,
                row(
                    &SUBSCRIPTIONS,
                    &[
                        ("id", some(id)),
                        ("customer_id", some("c4")),
                        ("contract_id", contract.map(str::to_string)),
                        ("product_id", some("SEAT")),
                        ("quantity", some("1")),
                        ("unit_price", some("100.00")),
                        ("billing_period_months", some("12")),
                        ("start_date", some("2024-02-01")),
                        ("end_date", some("2025-01-31")),
                    ],
                ),
            )
        };
        let contract = put(
            CONTRACTS,
            row(
                &CONTRACTS,
                &[
                    ("id", some("LZ")),
                    ("customer_id", some("c1")),
                    ("start_date", some("2024-01-01")),
                    ("end_date", some("2024-12-31")),
                ],
            ),
        );
        let steps = [
            (line("K2", None), false),      // K2 is c2's contract
            (line("K3", Some("K4")), true), // c4's own contract K4
            (line("K3", None), false),      // cleared: K3 is c3's
            (line("LZ", None), true),       // its own contract LZ
            (contract, false),              // LZ for c1: the line is c4's
        ];
        for (n, (change, kept)) in steps.into_iter().enumerate() {
            let changes = [change];
            let (a, b) = both_answers(&changed, &whole, &changes).await;
            assert_eq!(a, b, "{backend}, step {n}");
            assert_eq!(a.starts_with("ok"), kept, "{backend}, step {n}: {a}");
            if !kept {
                assert!(a.contains("contract belongs to another customer"), "{a}");
            }
        }
    }
}

/// Lines written, replaced, ended and removed, each contract within its customer: the KPIs
/// read in parts (the base's cells, minus the changed customers' there, plus theirs in their
/// latest piece) are the whole book's after every few writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kpis_in_parts_follow_the_writes() {
    let ids = |file: &str| -> Vec<String> {
        std::fs::read_to_string(root().join("examples/demo").join(file))
            .unwrap()
            .lines()
            .skip(1)
            .filter_map(|l| l.split(',').next().map(str::to_string))
            .collect()
    };
    let (customers, products) = (ids("customers.csv"), ids("products.csv"));
    for (backend, url, _dir) in backends("kpi_parts").await {
        let store = store(
            &url,
            WriteValidation::Changed,
            &root().join("examples/demo"),
        )
        .await;
        let mut rng = Rng(7);
        let (mut bases, mut written, mut compared, mut refused) =
            (Vec::new(), Vec::<(String, String)>::new(), 0, 0);
        for n in 0..90 {
            let mut added = None;
            let change = match rng.below(10) {
                0 | 1 if !written.is_empty() => RowChange::Remove {
                    schema: SUBSCRIPTIONS,
                    key: written.swap_remove(rng.below(written.len())).0,
                },
                2 if !written.is_empty() => RowChange::Set {
                    schema: SUBSCRIPTIONS,
                    key: rng
                        .pick(&written.iter().map(|w| w.0.clone()).collect::<Vec<_>>())
                        .to_string(),
                    column: "end_date",
                    value: Some(day(&mut rng)),
                },
                _ => {
                    let customer = rng.pick(&customers).to_string();
                    let id = format!("W{n}");
                    added = Some((id.clone(), customer.clone()));
                    let end = rng.chance(40).then(|| day(&mut rng));
                    put(
                        SUBSCRIPTIONS,
                        row(
                            &SUBSCRIPTIONS,
                            &[
                                ("id", Some(id)),
                                ("customer_id", Some(customer.clone())),
                                (
                                    "contract_id",
                                    rng.chance(50).then(|| format!("c-{customer}")),
                                ),
                                ("product_id", some(rng.pick(&products))),
                                ("quantity", Some((1 + rng.below(4)).to_string())),
                                ("unit_price", some("100.00")),
                                ("start_date", Some(day(&mut rng))),
                                ("end_date", end),
                            ],
                        ),
                    )
                }
            };
            let answer = answer(
                store
                    .write("line", &[change], &actor("t"), None, |_| None)
                    .await,
            );
            // An end before the start is refused, like any bad row: nothing changes.
            if answer.starts_with("ok") {
                written.extend(added);
            } else {
                refused += 1;
            }
            if n % 5 == 4 {
                let (in_parts, whole, additive) = both_reports(&store, &mut bases).await;
                assert!(in_parts == whole, "{backend}, write {n}: the KPIs in parts differ from the whole book's:\n{in_parts}\n{whole}");
                compared += usize::from(additive);
            }
        }
        assert_eq!(
            compared, 18,
            "{backend}: every read of the KPIs added up in parts"
        );
        assert!(refused < 30, "{backend}: {refused} of 90 writes refused");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changed_customers_give_the_whole_books_verdict() {
    let (a, r) = differential(&root().join("examples/demo"), "demo", &[1, 2, 3]).await;
    // A book without customers.csv (nor offers, usage, spend): the first customer written makes
    // the file part of the book, and every line's customer must then be listed.
    let bare = tempfile::tempdir().unwrap();
    for file in ["subscriptions.csv", "products.csv", "fx_rates.csv"] {
        std::fs::copy(
            root().join("examples/demo").join(file),
            bare.path().join(file),
        )
        .unwrap();
    }
    let (a2, r2) = differential(bare.path(), "bare", &[4, 5]).await;
    let (a3, r3) = differential(with_city().path(), "city", &[6]).await;
    let (accepted, refused) = (a + a2 + a3, r + r2 + r3);
    assert!(
        accepted > 100 && refused > 100,
        "the random writes test both verdicts: {accepted} accepted, {refused} refused"
    );
}

/// The random writes of `seeds` on two stores holding `book`: the same answers; how many
/// were accepted and refused.
async fn differential(book: &std::path::Path, tag: &str, seeds: &[u64]) -> (usize, usize) {
    let (mut accepted, mut refused) = (0, 0);
    let mut backends_a = backends(&format!("changed_{tag}_a")).await;
    let backends_b = backends(&format!("changed_{tag}_b")).await;
    for ((backend, url_a, _), (_, url_b, _)) in backends_a.iter_mut().zip(&backends_b) {
        let changed = store(url_a, WriteValidation::Changed, book).await;
        let whole = store(url_b, WriteValidation::Whole, book).await;
        // A reader in another process of the first store: it follows the writes it did not make.
        let reader = Store::open(url_a, ImportOptions::default()).await.unwrap();
        let (mut bases_changed, mut bases_reader) = (Vec::new(), Vec::new());
        let steps = if *backend == "sqlite" { 400 } else { 150 };
        let (mut merged, mut not_made) = (0, 0);
        for &seed in seeds {
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ seed);
            let mut pools = Pools {
                customers: ids("customers.csv", 0, &["ghost"]),
                products: ids("products.csv", 0, &["unknown-product"]),
                lines: ids("subscriptions.csv", 0, &[]),
                contracts: ids("subscriptions.csv", 2, &["KX"]),
                offers: ids("offers.csv", 0, &[]),
                channels: ids("customers.csv", 5, &["Google-Ads", "fresh-channel"]),
            };
            for n in 0..steps {
                let k = 1 + rng.below(2);
                let changes: Vec<RowChange> = (0..k)
                    .map(|i| change(&mut rng, &mut pools, n * 2 + i))
                    .collect();
                let (a, b) = both_answers(&changed, &whole, &changes).await;
                assert_eq!(
                    a, b,
                    "{backend}, seed {seed}, step {n}: the write {changes:?}\nchanged-customers verdict:\n{a}\nwhole-book verdict:\n{b}"
                );
                if a.starts_with("ok") {
                    accepted += 1;
                } else {
                    refused += 1;
                }
                if n % 7 == 0 {
                    let who = if n % 2 == 0 { &changed } else { &reader };
                    let bases = if n % 2 == 0 {
                        &mut bases_changed
                    } else {
                        &mut bases_reader
                    };
                    // The latest book made from the book in parts is the database's, file for
                    // file, byte for byte.
                    let before = who.latest_books_made();
                    let (event, _) = who.latest_book().await.unwrap();
                    let after = who.latest_books_made();
                    if after.2 > before.2 {
                        // Read whole: the extra columns changed (or the base was made by
                        // appending rows). Still the database's book.
                        let kept = who.files(AsOf::Event(event)).await.unwrap();
                        let fresh = Store::open(url_a, ImportOptions::default()).await.unwrap();
                        let read = fresh.files(AsOf::Event(event)).await.unwrap();
                        fresh.close().await.unwrap();
                        assert!(
                            kept == read,
                            "{backend}, seed {seed}, step {n}: the book read whole differs"
                        );
                    }
                    not_made += after.2 - before.2;
                    if after.0 > before.0 {
                        let made = who.files(AsOf::Event(event)).await.unwrap();
                        let fresh = Store::open(url_a, ImportOptions::default()).await.unwrap();
                        let read = fresh.files(AsOf::Event(event)).await.unwrap();
                        fresh.close().await.unwrap();
                        assert!(made == read, "{backend}, seed {seed}, step {n}: the latest book made from its parts differs from the database's:\n{}\n---\n{}", text(&made), text(&read));
                        merged += 1;
                    }
                    let (in_parts, whole, _) = both_reports(who, bases).await;
                    assert!(in_parts == whole, "{backend}, seed {seed}, step {n}: the report in parts differs from the whole book's:\n{in_parts}\n{whole}");
                    let contract = rng.pick(&pools.contracts).to_string();
                    let customer = rng.pick(&pools.customers).to_string();
                    let (part, whole) =
                        on_part_and_whole(who, &contract, &customer, rng.next()).await;
                    assert!(part == whole, "{backend}, seed {seed}, step {n}: contract {contract} or customer {customer} read in a part differs from the whole book:\n{part}\n---\n{whole}");
                }
            }
        }
        // Most reads after writes to customers' rows made it (the others follow writes to
        // shared files, or a change of the extra columns).
        assert!(
            merged > 10 && merged > 3 * not_made,
            "{backend}: made from its parts {merged} times, not {not_made} times"
        );
        // And the two stores hold the same book.
        let (x, y) = (
            changed.files(AsOf::Latest).await.unwrap(),
            whole.files(AsOf::Latest).await.unwrap(),
        );
        assert!(x == y, "{backend}: the two stores' books differ");
    }
    (accepted, refused)
}

/// A new line `id` of `customer` in the demo book: one `folha` at 50.00 from 2024-06-10.
fn folha_line(id: &str, customer: &str) -> RowChange {
    put(
        SUBSCRIPTIONS,
        row(
            &SUBSCRIPTIONS,
            &[
                ("id", some(id)),
                ("customer_id", some(customer)),
                ("product_id", some("folha")),
                ("quantity", some("1")),
                ("unit_price", some("50.00")),
                ("start_date", some("2024-06-10")),
            ],
        ),
    )
}

/// The demo book with an attribute (an extra column, `city`) on its first two customers.
fn with_city() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("examples/demo");
    for entry in std::fs::read_dir(&demo).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let customers = std::fs::read_to_string(demo.join("customers.csv")).unwrap();
    let with_city: String = customers
        .lines()
        .enumerate()
        .map(|(n, l)| match n {
            0 => format!("{l},city\n"),
            1 => format!("{l},Recife\n"),
            2 => format!("{l},\"Natal, RN\"\n"),
            _ => format!("{l},\n"),
        })
        .collect();
    std::fs::write(dir.path().join("customers.csv"), with_city).unwrap();
    dir
}

/// Customers with attributes (extra columns): the latest book is made from its parts while
/// every row's extra columns give the base's; a write that changes them (a new column, the
/// last row holding one) has it read whole, and the next base takes them. Each time the
/// database's book, byte for byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_columns_follow_the_rows_written() {
    let dir = with_city();
    let customers = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
    let id = |n: usize| customers.lines().nth(n).unwrap().split(',').next().unwrap();
    let customer = |id: &str, extra: &[(&str, &str)]| RowChange::Put {
        schema: CUSTOMERS,
        values: row(
            &CUSTOMERS,
            &[
                ("id", some(id)),
                ("name", some("Renamed")),
                ("registered_on", some("2023-01-05")),
            ],
        ),
        extra: extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        create_only: false,
    };
    // Each write, and whether the book after it is made from the parts (else read whole).
    let steps = [
        (folha_line("XC-1", id(1)), true),
        (customer(id(3), &[("city", "Olinda")]), true),
        (
            customer("xc-new", &[("plan_note", "gold"), ("city", "Natal")]),
            false,
        ),
        (folha_line("XC-2", "xc-new"), true),
        (customer(id(1), &[]), true),
        (customer(id(2), &[]), true),
        // Only xc-new's row has extra columns now: plan_note first.
        (customer(id(3), &[]), false),
        (customer("xc-new", &[]), false),
    ];
    for (backend, url, _dir) in backends("extra_columns").await {
        let store = store(&url, WriteValidation::Changed, dir.path()).await;
        store.latest_book().await.unwrap();
        for (n, (change, made)) in steps.iter().enumerate() {
            let answer = answer(
                store
                    .write(
                        "row",
                        std::slice::from_ref(change),
                        &actor("t"),
                        None,
                        |_| None,
                    )
                    .await,
            );
            assert!(answer.starts_with("ok"), "{backend}, step {n}: {answer}");
            let before = store.latest_books_made();
            let (event, _) = store.latest_book().await.unwrap();
            let after = store.latest_books_made();
            let how = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
            let want = if *made { (1, 0, 0) } else { (0, 1, 1) };
            assert_eq!(how, want, "{backend}, step {n}: made, read whole, not made");
            let fresh = Store::open(&url, ImportOptions::default()).await.unwrap();
            let read = fresh.files(AsOf::Event(event)).await.unwrap();
            fresh.close().await.unwrap();
            let kept = store.files(AsOf::Event(event)).await.unwrap();
            assert!(
                kept == read,
                "{backend}, step {n}:\n{}\n---\n{}",
                text(&kept),
                text(&read)
            );
        }
    }
}

/// A book's files as text, for a failed comparison.
fn text(files: &[(&'static str, Vec<u8>)]) -> String {
    files
        .iter()
        .map(|(name, bytes)| format!("{name}:\n{}", String::from_utf8_lossy(bytes)))
        .collect()
}

/// The book's total MRR is held under its limit across writes validated on what they change:
/// by a bound kept in the store, raised by every line written; past the limit, the write is
/// validated on the whole book, which sets the bound to the book's exact total again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_on_the_total_mrr_sends_a_write_to_the_whole_book() {
    for (backend, url, _dir) in backends("mrr_bound").await {
        let store = store(
            &url,
            WriteValidation::Changed,
            &root().join("examples/demo"),
        )
        .await;
        let bound = || async {
            let row = sqlx::query("SELECT units FROM book_mrr_bound WHERE id = 1")
                .fetch_one(store.pool())
                .await
                .unwrap();
            sqlx::Row::try_get::<String, _>(&row, 0)
                .unwrap()
                .parse::<i128>()
                .unwrap()
        };
        let line = |id: &str| {
            put(
                SUBSCRIPTIONS,
                row(
                    &SUBSCRIPTIONS,
                    &[
                        ("id", some(id)),
                        ("customer_id", some("padaria-sao-jorge")),
                        ("product_id", some("folha")),
                        ("quantity", some("2")),
                        ("unit_price", some("100.00")),
                        ("start_date", some("2024-05-01")),
                    ],
                ),
            )
        };
        let exact = bound().await;
        store
            .write("line", &[line("B1")], &actor("t"), None, |_| None)
            .await
            .unwrap();
        // Raised by the new line's MRR (200.00, at 10 decimal places).
        let unit = 10i128.pow(10);
        assert_eq!(bound().await, exact + 200 * unit, "{backend}");
        // Near the limit: the next write is judged on the whole book, which finds the exact
        // total (the book is small) and keeps it.
        let near = expansa_import::BOOK_LIMIT_UNITS * unit - unit;
        sqlx::query("UPDATE book_mrr_bound SET units = $1 WHERE id = 1")
            .bind(near.to_string())
            .execute(store.pool())
            .await
            .unwrap();
        store
            .write("line", &[line("B2")], &actor("t"), None, |_| None)
            .await
            .unwrap();
        assert_eq!(bound().await, exact + 400 * unit, "{backend}");
    }
}

/// Two amendments of one contract priced on the same book: the first applies, the second is
/// refused (409, nothing written) instead of being applied on a price the first made stale;
/// priced again on the book after the first, it applies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quote_priced_on_a_book_a_write_made_stale_is_refused() {
    use expansa_contracts::{quote_amend, AmendRequest, Change};
    use expansa_ledger::Decimal;
    use expansa_store::Idempotency;
    for (backend, url, _dir) in backends("stale_quote").await {
        let store = common::loaded_with(&url, "testdata/contracts", Default::default()).await;
        let amend = |day: &str| AmendRequest {
            contract: "K1".into(),
            effective: day.parse().unwrap(),
            changes: vec![Change::Add("SEAT".into(), Decimal::from(3))],
            precision: Default::default(),
        };
        let priced_at = store.event_at(AsOf::Latest).await.unwrap();
        let book = store.book(AsOf::Event(priced_at)).await.unwrap();
        let (first, second) = (
            quote_amend(&book, &amend("2024-02-01")).unwrap(),
            quote_amend(&book, &amend("2024-03-01")).unwrap(),
        );
        let key = |k: &str| Idempotency::new(k, k.as_bytes());
        let applied = store
            .apply_quote(&first, priced_at, &actor("t"), &key("a"))
            .await
            .unwrap();
        let after = applied.event.unwrap();
        let refused = store
            .apply_quote(&second, priced_at, &actor("t"), &key("b"))
            .await;
        match refused {
            Err(StoreError::Conflict(m)) => assert!(m.contains("price it again"), "{backend}: {m}"),
            other => panic!(
                "{backend}: a stale quote was not refused: {:?}",
                other.map(|o| o.event)
            ),
        }
        assert_eq!(
            store.event_at(AsOf::Latest).await.unwrap(),
            after,
            "{backend}"
        );
        let book = store.book(AsOf::Event(after)).await.unwrap();
        let again = quote_amend(&book, &amend("2024-03-01")).unwrap();
        store
            .apply_quote(&again, after, &actor("t"), &key("c"))
            .await
            .unwrap();
    }
}

/// One customer written again and again on a book with a large shared table (4,000 rows of
/// marketing spend with long channel names, about 900 KB): every write is a piece, and a piece
/// holds the shared tables,
/// so the pieces' bytes (64 MiB at most) bring a new base long before 4,096 customers have
/// changed, and the parts stay small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pieces_are_bounded_by_their_bytes() {
    let dir = with_city();
    let mut spend = String::from("month,channel,amount\n");
    let long = "x".repeat(200);
    for channel in 0..40 {
        for month in 0..100 {
            spend.push_str(&format!(
                "{:04}-{:02},ch-{channel}-{long},100.00\n",
                2000 + month / 12,
                1 + month % 12
            ));
        }
    }
    std::fs::write(dir.path().join("marketing_spend.csv"), spend).unwrap();
    let customers = std::fs::read_to_string(dir.path().join("customers.csv")).unwrap();
    let customer = customers.lines().nth(1).unwrap().split(',').next().unwrap();
    for (backend, url, _dir) in backends("piece_bytes").await {
        let store = store(&url, WriteValidation::Changed, dir.path()).await;
        let first = store.latest_parts().await.unwrap().base_event;
        let mut most = 0;
        for n in 0..150 {
            let line = folha_line(&format!("PB-{n}"), customer);
            let answer = answer(
                store
                    .write("line", &[line], &actor("t"), None, |_| None)
                    .await,
            );
            assert!(answer.starts_with("ok"), "{backend}: {answer}");
            if n % 5 == 4 {
                most = most.max(store.latest_parts().await.unwrap().pieces.len());
            }
        }
        // The new base is made in the background: wait for it.
        let mut parts = store.latest_parts().await.unwrap();
        for _ in 0..300 {
            if parts.base_event > first {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            parts = store.latest_parts().await.unwrap();
        }
        assert!(
            parts.base_event > first,
            "{backend}: no new base after 150 pieces"
        );
        assert!(most < 100, "{backend}: {most} pieces kept at once");
        let (event, _) = store.latest_book().await.unwrap();
        let fresh = Store::open(&url, ImportOptions::default()).await.unwrap();
        let read = fresh.files(AsOf::Event(event)).await.unwrap();
        fresh.close().await.unwrap();
        assert!(
            store.files(AsOf::Event(event)).await.unwrap() == read,
            "{backend}"
        );
    }
}
