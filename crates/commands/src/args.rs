//! Raw command-line flags, and the validated plan made from them.

use clap::{Parser, Subcommand, ValueEnum};
use expansa_contracts::{AmendRequest, Change, Precision, RenewRequest};
use expansa_import::TextEncoding;
use expansa_kpi::{CohortBy, CohortMetric};
use expansa_ledger::{parse_date, Currency, Date, Decimal, Locale, Month, RenewalPricing};
use expansa_movements::{Kind, Query, Rules};
use expansa_opportunities::{
    EvaluateOptions, Level, MinSupport, MiningOptions, OpportunityKind, OpportunityOptions,
};
use expansa_store::{Actor, AsOf, ImportMode};
use std::path::PathBuf;

/// The most a request may ask for. Every size a user chooses is checked against these when the
/// plan is made, before anything is read or computed (README, "Limits"): the CLI exits 2 and
/// the API answers 400, with the same message.
pub mod limits {
    /// Months of a report's range (`--from`..=`--to` of movements, kpis, cohorts, offers):
    /// 100 years. Work, memory and output grow with the months.
    pub const MAX_MONTHS: i32 = 1200;
    /// The first year of a report's months and days (`--from`, `--to`, `--month`, `--at`,
    /// `--cutoff`, `--until`). No subscription book starts earlier (nor can PostgreSQL hold
    /// the year 0000), and a mistyped year (`0224-01`) is named as such instead of being read
    /// as 1,800 years of nothing.
    pub const FIRST_YEAR: i16 = 1900;
    /// The last year: the last one `YYYY-MM` can write (quotes reach 9999-12-31).
    pub const LAST_YEAR: i16 = 9999;
    /// Periods of a cohort grid (`--by month`: months, `--by quarter`: quarters), so at most
    /// this many cohorts of this many cells.
    pub use expansa_kpi::MAX_COHORT_PERIODS;
    /// `opportunities --top` (0 still lists all: as many as the book has).
    pub const MAX_TOP: usize = 10_000;
    /// Rows of one page of an API collection (`limit`).
    pub const MAX_ROWS: usize = 10_000;
    /// `evaluate --k`: the length of each recommendation list.
    pub const MAX_K: usize = 1_000;
    /// `--max-itemsets` (its default) and `--max-len` of association mining.
    pub use expansa_opportunities::{MAX_ITEMSETS, MAX_LEN};
    /// Month windows: `--usage-months` and `--skip-downsell-months`, as many as a report's
    /// months.
    pub const MAX_WINDOW_MONTHS: u32 = 1200;
    /// `--threads`.
    pub const MAX_THREADS: usize = 1024;
    /// `renewals --within`: days on each side of `--at`.
    pub use expansa_contracts::MAX_RENEWAL_WINDOW_DAYS;
}

use limits::*;

/// `--FLAG VALUE`, refused above `max` (`what` says more).
fn at_most<T: PartialOrd + std::fmt::Display>(
    flag: &str,
    value: T,
    max: T,
    what: &str,
) -> Result<(), String> {
    if value > max {
        return Err(format!("--{flag} {value}: at most {max}{what}"));
    }
    Ok(())
}

/// A month a report reads, within [`FIRST_YEAR`]..=[`LAST_YEAR`].
fn report_month(flag: &str, m: Month) -> Result<(), String> {
    if !(FIRST_YEAR..=LAST_YEAR).contains(&m.year()) {
        return Err(format!(
            "--{flag} {m}: a report's months run from {FIRST_YEAR}-01 to {LAST_YEAR}-12"
        ));
    }
    Ok(())
}

/// A day a report reads, within [`FIRST_YEAR`]..=[`LAST_YEAR`].
pub(crate) fn report_day(flag: &str, d: Date) -> Result<(), String> {
    if !(FIRST_YEAR..=LAST_YEAR).contains(&d.year()) {
        return Err(format!(
            "--{flag} {d}: a report's days run from {FIRST_YEAR}-01-01 to {LAST_YEAR}-12-31"
        ));
    }
    Ok(())
}

/// Where recurring revenue grows and where it leaks.
#[derive(Parser, Debug)]
#[command(name = "expansa", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand, Debug)]
enum CliCommand {
    /// Monthly MRR and its movements (new, cross-sell, upsell, reactivation, downsell, churn,
    /// fx; entering and leaving segment with a product filter).
    Movements {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        report: ReportArgs,
        /// Print one customer's trail: every movement with the lines behind it.
        #[arg(long, value_name = "CUSTOMER_ID")]
        explain: Option<String>,
        /// Print every customer's movements with the lines behind them (who makes each figure).
        #[arg(long, conflicts_with = "explain")]
        detail: bool,
        /// With --detail: only this kind (new, cross_sell, upsell, reactivation, downsell, churn,
        /// fx, entering_segment, leaving_segment).
        #[arg(long, requires = "detail", value_parser = movement_kind)]
        kind: Option<Kind>,
        #[command(flatten)]
        filters: FilterArgs,
    },
    /// Post-sale KPIs per month: MRR, ARR, ARPA, churn, NRR/GRR, LTV, CAC, expansion, ...
    Kpis {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        report: ReportArgs,
        #[command(flatten)]
        filters: FilterArgs,
    },
    /// Cohort grid: customers by month (or quarter) of first MRR, followed period by period.
    Cohorts {
        #[command(flatten)]
        book: BookArgs,
        /// First cohort month (YYYY-MM; years 1900 to 9999, at most 1200 months and 360 periods
        /// to --to).
        #[arg(long)]
        from: Month,
        /// Last month followed (YYYY-MM).
        #[arg(long)]
        to: Month,
        /// Cohort period.
        #[arg(long, value_enum, default_value_t = By::Month)]
        by: By,
        /// What each cell measures, as a fraction of the cohort's start.
        #[arg(long, value_enum, default_value_t = Metric::Mrr)]
        metric: Metric,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        filters: FilterArgs,
    },
    /// The monthly management report: one self-contained HTML page.
    Report {
        #[command(flatten)]
        book: BookArgs,
        /// The month reported (YYYY-MM).
        #[arg(long)]
        month: Month,
        /// The HTML file to write.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Movement rules.
        #[arg(long, default_value = "conexa", value_parser = ["conexa", "chartmogul"])]
        rules: String,
        #[command(flatten)]
        filters: FilterArgs,
    },
    /// Association rules: products (or families) customers hold together on a day.
    Rules {
        #[command(flatten)]
        book: BookArgs,
        /// The day whose holdings are the transactions (YYYY-MM-DD).
        #[arg(long, value_parser = day)]
        at: Date,
        /// Items: products or product families.
        #[arg(long, value_enum, default_value_t = ItemLevel::Product)]
        level: ItemLevel,
        #[command(flatten)]
        mining: MiningArgs,
        /// Also list the frequent itemsets with their counts (JSON only).
        #[arg(long)]
        itemsets: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Upsell and cross-sell opportunities on a day, ranked by expected MRR gained.
    Opportunities {
        #[command(flatten)]
        book: BookArgs,
        /// The day (YYYY-MM-DD).
        #[arg(long, value_parser = day)]
        at: Date,
        /// How many to list (0: all; at most 10000).
        #[arg(long, default_value_t = 20)]
        top: usize,
        /// Only this customer's opportunities.
        #[arg(long, value_name = "CUSTOMER_ID")]
        customer: Option<String>,
        /// Only upsells or only cross-sells.
        #[arg(long, value_enum)]
        kind: Option<OpportunityKindArg>,
        #[command(flatten)]
        filters: FilterArgs,
        #[command(flatten)]
        model: ModelArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Offer conversion: offers made, accepted, declined and open; MRR gained vs forecast.
    Offers {
        #[command(flatten)]
        book: BookArgs,
        /// First month (YYYY-MM), by the month offers were made (years 1900 to 9999, at most
        /// 1200 months to --to).
        #[arg(long)]
        from: Month,
        /// Last month (YYYY-MM).
        #[arg(long)]
        to: Month,
        #[command(flatten)]
        filters: FilterArgs,
        #[command(flatten)]
        model: ModelArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Offline quality of the recommenders: hide what was added after a cutoff and score
    /// rules, item-kNN and popularity on it (HR@k, precision@k, MAP@k, MRR, captured MRR).
    Evaluate {
        #[command(flatten)]
        book: BookArgs,
        /// Holdings on this day train the recommenders (YYYY-MM-DD).
        #[arg(long, value_parser = day)]
        cutoff: Date,
        /// Last day of the hidden period (default: the latest line start).
        #[arg(long, value_parser = day)]
        until: Option<Date>,
        /// Length of each recommendation list (at most 1000).
        #[arg(long, default_value_t = 5)]
        k: usize,
        #[command(flatten)]
        mining: MiningArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Contracts: what one holds on a day.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// CPQ quotes: amend a contract mid-term (co-terminated, prorated) or renew it.
    Quote {
        #[command(subcommand)]
        action: QuoteAction,
    },
    /// The renewal desk: contracts ending within --within days of --at, their renewal quote
    /// and whether the book holds their renewal; evergreen contracts apart.
    Renewals {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        args: crate::renewals::RenewalsArgs,
    },
    /// Turn a billing system's export, a spreadsheet or any CSV (with --map) into a book folder,
    /// with a report of what became of every source row (docs/sources.md).
    Convert(crate::convert::ConvertArgs),
    /// Load a book into the store: one transaction, validated whole (a bad book changes
    /// nothing); importing the same rows again changes nothing. With --from KIND (or --map
    /// FILE) --input PATH, the export is converted first, as `convert` does.
    Import {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        source: crate::convert::SourceArgs,
        /// Also remove the rows the files do not have (of the files given).
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        actor: ActorArgs,
    },
    /// Write the store's book (as of a moment, with --as-of), or the book given with --data,
    /// as files of the interchange format: CSV, or Parquet (--format parquet).
    Export {
        #[command(flatten)]
        book: BookArgs,
        /// The folder to write: a new one, or one without a book's files (other files are
        /// left alone); a folder holding a book's files is refused without --force.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// The files written: csv (subscriptions.csv, ...) or parquet (subscriptions.parquet,
        /// ...: decimals as DECIMAL(38, s), dates as DATE, text as UTF8; docs/interchange.md).
        #[arg(long, value_enum, default_value_t = BookFormatArg::Csv)]
        format: BookFormatArg,
        /// Replace the book in a folder that holds one: its interchange files are overwritten
        /// or removed (other files are left alone).
        #[arg(long)]
        force: bool,
    },
    /// Copy a SQLite store into a new file, consistent while others read and write (SQLite's
    /// online VACUUM INTO); the copy opens with --db sqlite:FILE. PostgreSQL: use pg_dump.
    Backup {
        #[command(flatten)]
        book: BookArgs,
        /// The file to write (refused if it exists).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Serve the HTTP API (OpenAPI at /openapi.json) and the dashboard (at /) over a store.
    Serve {
        #[command(flatten)]
        book: BookArgs,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        bind: String,
        /// Let anyone read without a session or key (refused unless --bind is a loopback
        /// address); writes still need one.
        #[arg(long)]
        public_reads: bool,
        /// Reads need a session or a key: the default now (kept for old scripts).
        #[arg(long, hide = true, conflicts_with = "public_reads")]
        private_reads: bool,
        /// Serve a non-loopback address without TLS: a TLS proxy in front terminates it (session
        /// cookies are then marked Secure).
        #[arg(long)]
        behind_proxy: bool,
        /// Serve TLS (HTTPS) with this certificate chain (PEM, the server's certificate first);
        /// with --tls-key. Session cookies are then marked Secure.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// A session ends after this many seconds without a request (1 to 604800, 7 days).
        #[arg(long, value_name = "SECS", default_value_t = 1800, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        session_idle: u64,
        /// A session ends this many seconds after the login, however used (1 to 2592000, 30
        /// days).
        #[arg(long, value_name = "SECS", default_value_t = 43_200, value_parser = clap::value_parser!(u64).range(1..=2_592_000))]
        session_max: u64,
        /// Enables the webhook endpoints: a file of secrets, one a line, `stripe whsec_...`
        /// (Stripe's endpoint secret; several during a rotation) and/or `generic SECRET`.
        /// Never printed.
        #[arg(long, value_name = "FILE", env = "EXPANSA_WEBHOOK_SECRET_FILE")]
        webhook_secret_file: Option<PathBuf>,
        /// How far a webhook signature's time may be from the server's clock (1 to 3600).
        #[arg(long, value_name = "SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..=3600))]
        webhook_tolerance: u64,
        /// The vendor's name on the customer portal's documents (amendments and invoices,
        /// numbered per vendor); 1 to 200 characters.
        #[arg(long, value_name = "NAME", default_value = "expansa")]
        vendor_name: String,
        /// The SMTP server a signed portal amendment's PDFs are mailed through:
        /// smtp://HOST[:PORT] (STARTTLS when it offers it).
        #[arg(long, value_name = "URL")]
        smtp: Option<String>,
        /// The sender of the portal's mail.
        #[arg(long, value_name = "ADDRESS", default_value = "expansa@localhost")]
        mail_from: String,
        /// The finance address that gets both PDFs of every signed amendment too.
        #[arg(long, value_name = "ADDRESS", requires = "smtp")]
        finance_email: Option<String>,
        /// Where the signed provisioning notice of each signed amendment is POSTed (http or
        /// https); with --provisioning-secret-file.
        #[arg(long, value_name = "URL", requires = "provisioning_secret_file")]
        provisioning_url: Option<String>,
        /// The notices' HMAC-SHA256 secret: the file's first line (16 characters or more).
        #[arg(long, value_name = "FILE", requires = "provisioning_url")]
        provisioning_secret_file: Option<PathBuf>,
        /// How a write is checked before it commits: `changed` (the rows of the customers it
        /// changes) or `whole` (the whole book, every write: the write path before incremental
        /// validation, kept as bench/writes.sh's yardstick).
        #[arg(long, hide = true, value_name = "MODE", default_value = "changed", value_parser = write_validation)]
        write_validation: expansa_store::WriteValidation,
        #[command(flatten)]
        limits: ServeLimits,
    },
    /// API keys: `keys create --name NAME [--role ROLE]` prints a new key once.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// The customer portal's links: `portal link --customer C [--days 7]` prints one once;
    /// `portal list`, `portal revoke TOKEN-or-ID` (docs/portal.md).
    Portal {
        #[command(subcommand)]
        action: crate::portal::PortalAction,
    },
    /// Users of the dashboard, each with a role: add, list, set-role, disable, reset-password.
    Users {
        #[command(subcommand)]
        action: crate::users::UsersAction,
    },
    /// The reads of customer data the API logged (who, when, the endpoint and query), newest
    /// first.
    Audit {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        args: crate::audit::AuditArgs,
    },
    /// The store's event log: every change, with who, when and why.
    Events {
        #[command(flatten)]
        book: BookArgs,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Validate a book and list every problem; changes nothing.
    Check {
        #[command(flatten)]
        book: BookArgs,
    },
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Create a key; it is printed once and stored hashed.
    Create {
        #[command(flatten)]
        book: BookArgs,
        /// What the key is for (shown in `keys list`).
        #[arg(long)]
        name: String,
        /// What the key may do: viewer, analyst or admin.
        #[arg(long, default_value = "admin", value_parser = crate::users::role)]
        role: expansa_store::Role,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        book: BookArgs,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        book: BookArgs,
        /// The key's id (the part before the dot).
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
enum ContractAction {
    /// A contract's terms, the lines it holds, their locked prices and MRR.
    Show {
        #[command(flatten)]
        book: BookArgs,
        /// Contract id.
        #[arg(long)]
        contract: String,
        /// The day read (YYYY-MM-DD; default: the contract's last day).
        #[arg(long, value_parser = day)]
        at: Option<Date>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

#[derive(Subcommand, Debug)]
enum QuoteAction {
    /// Price a change from --effective to the contract's end. Changes apply in the order
    /// --remove, --swap, --set, --add.
    Amend {
        #[command(flatten)]
        book: BookArgs,
        /// Contract id.
        #[arg(long)]
        contract: String,
        /// First day of the change (YYYY-MM-DD).
        #[arg(long, value_parser = day)]
        effective: Date,
        /// Add units: PRODUCT:QTY (repeatable).
        #[arg(long, value_name = "PRODUCT:QTY")]
        add: Vec<String>,
        /// Set a product's quantity: PRODUCT:QTY (repeatable).
        #[arg(long, value_name = "PRODUCT:QTY")]
        set: Vec<String>,
        /// Remove a product (repeatable).
        #[arg(long, value_name = "PRODUCT")]
        remove: Vec<String>,
        /// Replace a product by another, same quantity: OLD:NEW (repeatable).
        #[arg(long, value_name = "OLD:NEW")]
        swap: Vec<String>,
        /// Proration: month_day (CPQ Monthly + Daily), day or month.
        #[arg(long, default_value = "month_day")]
        precision: Precision,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        apply: ApplyArgs,
    },
    /// Price the renewal: a new term from the day after the contract ends.
    Renew {
        #[command(flatten)]
        book: BookArgs,
        /// Contract id.
        #[arg(long)]
        contract: String,
        /// same, list or uplift (default: the contract's renewal_pricing).
        #[arg(long, value_enum)]
        pricing: Option<PricingArg>,
        /// Uplift percentage for --pricing uplift (default: renewal_uplift_pct); more than
        /// -100 (`--uplift -5` and `--uplift=-5` both read as -5%).
        #[arg(long, value_name = "PCT", allow_negative_numbers = true)]
        uplift: Option<Decimal>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        #[command(flatten)]
        apply: ApplyArgs,
    },
}

/// Recording a quote in the store.
#[derive(clap::Args, Debug)]
struct ApplyArgs {
    /// Record the quote in the store (--db): new lines, closed lines, one event. The same
    /// request applied twice changes the book once.
    #[arg(long)]
    apply: bool,
    /// The key that makes --apply idempotent (default: the request itself).
    #[arg(long, requires = "apply")]
    idempotency_key: Option<String>,
    #[command(flatten)]
    actor: ActorArgs,
}

/// A quote to record, and under which key.
pub struct Apply {
    pub idempotency_key: Option<String>,
    pub actor: Actor,
}

impl ApplyArgs {
    fn parse(self, what: String) -> Option<Apply> {
        self.apply.then(|| Apply {
            idempotency_key: self.idempotency_key,
            actor: self.actor.parse(what),
        })
    }
}

/// Renewal pricing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PricingArg {
    Same,
    List,
    Uplift,
}

/// `PRODUCT:QTY`.
fn product_quantity(flag: &str, s: &str) -> Result<(String, Decimal), String> {
    let (product, qty) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("--{flag} {s:?}: expected PRODUCT:QTY"))?;
    let qty: Decimal = qty
        .trim()
        .parse()
        .map_err(|_| format!("--{flag} {s:?}: {qty:?} is not a decimal quantity"))?;
    if product.trim().is_empty() {
        return Err(format!("--{flag} {s:?}: the product is empty"));
    }
    Ok((product.trim().to_string(), qty))
}

#[derive(clap::Args, Debug)]
pub(crate) struct BookArgs {
    /// The book: a folder (subscriptions.csv and the optional tables; or subscriptions.parquet
    /// and the others as Parquet files), or a workbook (.xlsx or .ods: one sheet per table,
    /// named like the files or in pt-BR, or one sheet of subscriptions).
    #[arg(long, value_name = "PATH")]
    data: Option<PathBuf>,
    /// Read the book from a store instead: sqlite:PATH or postgres://... (or the environment's
    /// EXPANSA_DB, which --data overrides; --data and --db typed together are refused).
    #[arg(long, value_name = "URL")]
    db: Option<String>,
    /// With --db: the book as it was at event:N, a day (its end, UTC) or an RFC 3339 instant.
    #[arg(long, value_name = "WHEN")]
    as_of: Option<AsOf>,
    /// Reporting currency (ISO 4217).
    #[arg(long, default_value = "BRL")]
    currency: String,
    /// Text encoding of the files that are not UTF-8: windows-1252 (also latin1 or
    /// iso-8859-1), as Excel saves CSV in Brazil; UTF-8 text is read as UTF-8 all the same.
    #[arg(long, default_value = "utf-8", value_name = "NAME")]
    encoding: String,
    /// Language of tables: pt-BR or en (default: from LC_ALL / LC_MESSAGES / LANG, where C means
    /// en; else pt-BR).
    #[arg(long)]
    locale: Option<String>,
    /// Worker threads (default: one per core; at most 1024).
    #[arg(long)]
    threads: Option<usize>,
    /// With --db: seconds to wait for another process's write before giving up (SQLite's busy
    /// timeout, PostgreSQL's lock_timeout); 1 to 600.
    #[arg(long, value_name = "SECS", env = "EXPANSA_BUSY_TIMEOUT", default_value_t = expansa_store::DEFAULT_BUSY_TIMEOUT.as_secs(), value_parser = clap::value_parser!(u64).range(1..=expansa_store::MAX_BUSY_TIMEOUT.as_secs()))]
    busy_timeout: u64,
}

/// A monthly report: its range, rules and format.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// First month of the report (YYYY-MM; years 1900 to 9999, at most 1200 months to --to).
    #[arg(long)]
    from: Month,
    /// Last month of the report (YYYY-MM).
    #[arg(long)]
    to: Month,
    /// Movement rules.
    #[arg(long, default_value = "conexa", value_parser = ["conexa", "chartmogul"])]
    rules: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Also draw the report as a chart: FILE.svg or FILE.png.
    #[arg(long, value_name = "FILE")]
    chart: Option<PathBuf>,
}

impl ReportArgs {
    /// The validated query, the format and the chart file.
    fn parse(self) -> Result<(Query, Format, Option<PathBuf>), String> {
        range(self.from, self.to)?;
        let rules: Rules = self.rules.parse()?;
        let query = Query {
            from: self.from,
            to: self.to,
            rules,
        };
        if let Some(chart) = &self.chart {
            let ext = chart
                .extension()
                .and_then(|e| e.to_str())
                .map(str::to_ascii_lowercase);
            if !matches!(ext.as_deref(), Some("svg" | "png")) {
                return Err(format!(
                    "--chart {}: the file must end in .svg or .png",
                    chart.display()
                ));
            }
        }
        Ok((query, self.format, self.chart))
    }
}

/// Thresholds of association mining.
#[derive(clap::Args, Debug)]
struct MiningArgs {
    /// Minimum support: a fraction of the transactions (0.05) or a count (12).
    #[arg(long)]
    min_support: Option<String>,
    /// Minimum confidence of a rule, 0..1.
    #[arg(long)]
    min_confidence: Option<Decimal>,
    /// Longest itemset (rules have at most max-len - 1 items on the left); at most 100.
    #[arg(long, default_value_t = 3)]
    max_len: usize,
    /// Stop with an error rather than hold more frequent itemsets than this (at most the
    /// default).
    #[arg(long, default_value_t = 5_000_000)]
    max_itemsets: usize,
}

impl MiningArgs {
    /// The validated options; `defaults` gives the support and confidence when not set.
    fn parse(self, defaults: MiningOptions) -> Result<MiningOptions, String> {
        let min_support = match self.min_support {
            Some(s) => s
                .parse::<MinSupport>()
                .map_err(|e| format!("--min-support {e}"))?,
            None => defaults.min_support,
        };
        let min_confidence = self.min_confidence.unwrap_or(defaults.min_confidence);
        if min_confidence < Decimal::ZERO || min_confidence > Decimal::ONE {
            return Err(format!(
                "--min-confidence {min_confidence}: must be between 0 and 1"
            ));
        }
        if self.max_len == 0 {
            return Err("--max-len must be at least 1".into());
        }
        at_most("max-len", self.max_len, MAX_LEN, " items")?;
        if self.max_itemsets == 0 {
            return Err("--max-itemsets must be at least 1".into());
        }
        at_most(
            "max-itemsets",
            self.max_itemsets,
            MAX_ITEMSETS,
            " (the itemsets found are held in memory)",
        )?;
        Ok(MiningOptions {
            min_support,
            min_confidence,
            max_len: self.max_len,
            max_itemsets: self.max_itemsets,
        })
    }
}

/// The opportunity model: mining thresholds, usage signal and exclusions.
#[derive(clap::Args, Debug)]
struct ModelArgs {
    #[command(flatten)]
    mining: MiningArgs,
    /// Usage at or above this share of what the plan includes is a signal (0.8 = 80%).
    #[arg(long, default_value = "0.8")]
    usage_threshold: Decimal,
    /// Complete months in a row the usage must reach the threshold (at most 1200).
    #[arg(long, default_value_t = 3)]
    usage_months: u32,
    /// Skip customers with a downsell in this many months up to the day (0: never skip; at
    /// most 1200).
    #[arg(long, default_value_t = 3)]
    skip_downsell_months: u32,
    /// Movement rules used to find downsells.
    #[arg(long, default_value = "conexa", value_parser = ["conexa", "chartmogul"])]
    rules: String,
}

impl ModelArgs {
    fn parse(self, at: Date) -> Result<OpportunityOptions, String> {
        let defaults = OpportunityOptions::new(at);
        if self.usage_threshold <= Decimal::ZERO {
            return Err(format!(
                "--usage-threshold {}: must be greater than 0",
                self.usage_threshold
            ));
        }
        if self.usage_months == 0 {
            return Err("--usage-months must be at least 1".into());
        }
        at_most(
            "usage-months",
            self.usage_months,
            MAX_WINDOW_MONTHS,
            " months",
        )?;
        at_most(
            "skip-downsell-months",
            self.skip_downsell_months,
            MAX_WINDOW_MONTHS,
            " months",
        )?;
        Ok(OpportunityOptions {
            at,
            mining: self.mining.parse(defaults.mining)?,
            usage_threshold: self.usage_threshold,
            usage_months: self.usage_months,
            skip_downsell_months: self.skip_downsell_months,
            rules: self.rules.parse()?,
        })
    }
}

/// `--write-validation`: changed or whole.
fn write_validation(s: &str) -> Result<expansa_store::WriteValidation, String> {
    match s {
        "changed" => Ok(expansa_store::WriteValidation::Changed),
        "whole" => Ok(expansa_store::WriteValidation::Whole),
        _ => Err(format!("{s:?}: expected changed or whole")),
    }
}

/// A movement kind by its JSON key.
fn movement_kind(s: &str) -> Result<Kind, String> {
    Kind::from_key(s).ok_or_else(|| {
        let keys: Vec<&str> = Kind::ALL.iter().map(|k| k.key()).collect();
        format!("{s:?}: expected one of {}", keys.join(", "))
    })
}

/// A day as the book writes it (YYYY-MM-DD).
pub(crate) fn day(s: &str) -> Result<Date, String> {
    parse_date(s.as_bytes()).ok_or_else(|| {
        let shaped = s.len() == 10
            && s.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if shaped {
            format!("{s:?}: no such day in the calendar")
        } else {
            format!("{s:?}: expected a date YYYY-MM-DD")
        }
    })
}

/// Items of association mining.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ItemLevel {
    Product,
    Family,
}

/// Opportunity kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OpportunityKindArg {
    Upsell,
    #[value(name = "cross_sell")]
    CrossSell,
}

/// Filters on customers and products.
#[derive(clap::Args, Debug)]
pub(crate) struct FilterArgs {
    /// Keep only matching lines: segment=, country=, channel=, name=, customer= (customer
    /// attributes), family= or product=. Repeat a key for alternatives; keys combine with AND.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    filters: Vec<String>,
}

impl FilterArgs {
    pub(crate) fn parse(self) -> Result<Vec<(String, String)>, String> {
        self.filters
            .into_iter()
            .map(|f| match f.split_once('=') {
                Some((k, v)) if !k.trim().is_empty() => {
                    Ok((k.trim().to_ascii_lowercase(), v.trim().to_string()))
                }
                _ => Err(format!("--where {f}: expected KEY=VALUE")),
            })
            .collect()
    }
}

/// Cohort periods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum By {
    Month,
    Quarter,
}

/// Cohort cell measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Metric {
    Mrr,
    Customers,
}

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

/// What `movements` prints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MovementView {
    /// The monthly report.
    Report,
    /// One customer's trail (`--explain`).
    Trail(String),
    /// Every customer's movements, of one kind if given (`--detail`).
    Detail(Option<Kind>),
}

/// `export --format`: the files a book is written as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BookFormatArg {
    Csv,
    Parquet,
}

impl From<BookFormatArg> for expansa_import::BookFormat {
    fn from(f: BookFormatArg) -> Self {
        match f {
            BookFormatArg::Csv => expansa_import::BookFormat::Csv,
            BookFormatArg::Parquet => expansa_import::BookFormat::Parquet,
        }
    }
}

/// Where the book is read from.
#[derive(Clone, Debug)]
pub enum Source {
    /// `--data`: a folder of CSV files or of Parquet files, or a workbook (`.xlsx`, `.ods`).
    Folder(PathBuf),
    Store {
        url: String,
        as_of: AsOf,
    },
}

/// The store used when a command writes and no --db is given.
pub const DEFAULT_DB: &str = "sqlite:expansa.db";

/// What `serve` allows each connection and each client (docs/api.md, "Limits").
#[derive(clap::Args, Clone, Debug, PartialEq, Eq)]
pub struct ServeLimits {
    /// Seconds a connection may take to send a request's line and headers, counted from when
    /// it opens or its previous answer was sent (so also the keep-alive idle time), and may leave
    /// its answer unread; 1 to 300.
    #[arg(long, value_name = "SECS", default_value_t = ServeLimits::DEFAULT.header_timeout, value_parser = clap::value_parser!(u64).range(1..=300))]
    pub header_timeout: u64,
    /// Seconds a request may take from its headers to its answer, reading its body included
    /// (answered 408 after); 1 to 3600.
    #[arg(long, value_name = "SECS", default_value_t = ServeLimits::DEFAULT.request_timeout, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: u64,
    /// Largest request body, in bytes (413 above); 1024 to 67108864 (64 MiB).
    #[arg(long, value_name = "BYTES", default_value_t = ServeLimits::DEFAULT.max_body, value_parser = clap::value_parser!(u64).range(1024..=67_108_864))]
    pub max_body: u64,
    /// Connections open at once; more wait to be accepted; 1 to 65536.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::DEFAULT.max_connections, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_connections: u64,
    /// Connections open at once from one IP address; more are closed at once; 1 to 65536.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::DEFAULT.max_connections_per_client, value_parser = clap::value_parser!(u64).range(1..=65_536))]
    pub max_connections_per_client: u64,
    /// Requests per second from one IP address, sustained (429 above); 1 to 1000000.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::DEFAULT.rate_limit, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate_limit: u64,
    /// Requests one IP address may send at once above the sustained rate; 1 to 1000000.
    #[arg(long, value_name = "N", default_value_t = ServeLimits::DEFAULT.rate_burst, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub rate_burst: u64,
    /// Log lines on standard error: plain or json (level filter: `RUST_LOG`, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Plain)]
    pub log_format: LogFormat,
}

impl ServeLimits {
    /// The defaults (also the API's own, when it is built without flags).
    pub const DEFAULT: ServeLimits = ServeLimits {
        header_timeout: 10,
        request_timeout: 120,
        max_body: 1_048_576,
        max_connections: 512,
        max_connections_per_client: 256,
        rate_limit: 100,
        rate_burst: 200,
        log_format: LogFormat::Plain,
    };
}

/// How `serve` writes its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Plain,
    Json,
}

/// Who writes, and why (recorded with each event).
#[derive(clap::Args, Debug)]
struct ActorArgs {
    /// Who makes the change (default: $USER).
    #[arg(long)]
    actor: Option<String>,
    /// Why (kept in the event log).
    #[arg(long)]
    reason: Option<String>,
}

impl ActorArgs {
    fn parse(self, default_reason: String) -> Actor {
        Actor {
            who: self
                .actor
                .or_else(|| std::env::var("USER").ok())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "cli".into()),
            why: self.reason.unwrap_or(default_reason),
        }
    }
}

/// What to do, validated.
pub struct Plan {
    pub source: Source,
    pub currency: Currency,
    /// How files that are not UTF-8 are read.
    pub encoding: TextEncoding,
    pub locale: Locale,
    pub threads: usize,
    /// How long a store command waits for another writer (`--busy-timeout`).
    pub busy_timeout: std::time::Duration,
    pub command: Command,
}

pub enum Command {
    ContractShow {
        contract: String,
        at: Option<Date>,
        format: Format,
    },
    Amend {
        request: AmendRequest,
        format: Format,
        apply: Option<Apply>,
    },
    Renew {
        request: RenewRequest,
        format: Format,
        apply: Option<Apply>,
    },
    Import {
        dir: PathBuf,
        mode: ImportMode,
        actor: Actor,
        /// Convert this export into `dir` (a new temporary folder) first.
        convert: Option<crate::convert::ConvertPlan>,
    },
    Convert {
        plan: crate::convert::ConvertPlan,
        out: PathBuf,
        force: bool,
        /// The day the book's MRR is given at.
        mrr_at: Date,
        format: Format,
    },
    Export {
        out: PathBuf,
        /// Replace the book of a folder that holds one.
        force: bool,
        format: expansa_import::BookFormat,
    },
    Backup {
        out: PathBuf,
    },
    Events {
        format: Format,
    },
    Serve {
        bind: String,
        public_reads: bool,
        behind_proxy: bool,
        /// The certificate chain and key files of built-in TLS.
        tls: Option<(PathBuf, PathBuf)>,
        sessions: expansa_store::SessionLimits,
        /// The webhook secrets file and the signatures' tolerance in seconds.
        webhooks: (Option<PathBuf>, u64),
        /// The vendor's name on the portal's documents.
        vendor_name: String,
        /// The portal's mail: `--smtp`, `--mail-from`, `--finance-email`.
        mail: (Option<String>, String, Option<String>),
        /// The portal's provisioning notices: `--provisioning-url` and its secret's file.
        provisioning: Option<(String, PathBuf)>,
        /// How the store checks a write (`--write-validation`).
        write_validation: expansa_store::WriteValidation,
        limits: ServeLimits,
    },
    KeysCreate {
        name: String,
        role: expansa_store::Role,
    },
    Users(crate::users::UsersPlan),
    Portal(crate::portal::PortalPlan),
    Audit(crate::audit::AuditPlan),
    KeysList,
    KeysRevoke {
        id: String,
    },
    Check,
    Renewals(crate::renewals::RenewalsPlan),
    Rules {
        at: Date,
        level: Level,
        mining: MiningOptions,
        itemsets: bool,
        format: Format,
    },
    Opportunities {
        options: OpportunityOptions,
        customer: Option<String>,
        kind: Option<OpportunityKind>,
        top: Option<usize>,
        format: Format,
        filters: Vec<(String, String)>,
    },
    Offers {
        from: Month,
        to: Month,
        model: OpportunityOptions,
        format: Format,
        filters: Vec<(String, String)>,
    },
    Evaluate {
        options: EvaluateOptions,
        format: Format,
    },
    Movements {
        query: Query,
        format: Format,
        view: MovementView,
        filters: Vec<(String, String)>,
        chart: Option<PathBuf>,
    },
    Kpis {
        query: Query,
        format: Format,
        filters: Vec<(String, String)>,
        chart: Option<PathBuf>,
    },
    Report {
        month: Month,
        out: PathBuf,
        rules: Rules,
        filters: Vec<(String, String)>,
    },
    Cohorts {
        from: Month,
        to: Month,
        by: CohortBy,
        metric: CohortMetric,
        format: Format,
        filters: Vec<(String, String)>,
    },
}

/// A report's range: in order, in the years a report reads, at most [`MAX_MONTHS`] months.
fn range(from: Month, to: Month) -> Result<(), String> {
    if from > to {
        return Err(format!("--from {from} is after --to {to}"));
    }
    report_month("from", from)?;
    report_month("to", to)?;
    let months = to.since(from) + 1;
    if months > MAX_MONTHS {
        return Err(format!(
            "--from {from} --to {to}: {months} months; a report covers at most {MAX_MONTHS} months ({} years): narrow the range",
            MAX_MONTHS / 12
        ));
    }
    Ok(())
}

/// A cohort grid's range: a report's range, in at most [`MAX_COHORT_PERIODS`] periods.
fn cohort_range(from: Month, to: Month, by: CohortBy) -> Result<(), String> {
    range(from, to)?;
    let periods = by.periods(from, to);
    if periods > MAX_COHORT_PERIODS {
        let (name, by_flag) = match by {
            CohortBy::Month => ("monthly", "month"),
            CohortBy::Quarter => ("quarterly", "quarter"),
        };
        let quarters = CohortBy::Quarter.periods(from, to) <= MAX_COHORT_PERIODS;
        return Err(format!(
            "--from {from} --to {to} --by {by_flag}: {periods} {name} periods; a cohort grid has at most {MAX_COHORT_PERIODS} periods ({MAX_COHORT_PERIODS} cohorts of {MAX_COHORT_PERIODS} cells): narrow the range{}",
            if by == CohortBy::Month && quarters { " or use --by quarter" } else { "" }
        ));
    }
    Ok(())
}

impl Plan {
    pub fn from_cli(cli: Cli) -> Result<Plan, String> {
        let (book, command) = match cli.command {
            CliCommand::Check { book } => (book, Command::Check),
            CliCommand::Renewals { book, args } => (book, Command::Renewals(args.plan()?)),
            CliCommand::Convert(args) => {
                let book = BookArgs {
                    data: Some(args.out.clone()),
                    db: None,
                    as_of: None,
                    currency: args.currency,
                    encoding: args.encoding,
                    locale: args.locale,
                    threads: None,
                    busy_timeout: expansa_store::DEFAULT_BUSY_TIMEOUT.as_secs(),
                };
                let currency = parse_currency(&book.currency)?;
                let encoding = parse_encoding(&book.encoding)?;
                let plan = args.source.plan(currency, encoding)?;
                let mrr_at = match args.mrr_at {
                    Some(m) => {
                        report_month("mrr-at", m)?;
                        m.last_day()
                    }
                    None => crate::convert::previous_month_end(
                        jiff::Zoned::now()
                            .with_time_zone(plan.options.timezone.clone())
                            .date(),
                    ),
                };
                let command = Command::Convert {
                    plan,
                    out: args.out,
                    force: args.force,
                    mrr_at,
                    format: args.format,
                };
                (book, command)
            }
            CliCommand::Import {
                mut book,
                source,
                replace,
                actor,
            } => {
                if book.as_of.is_some() {
                    return Err("--as-of reads a store; an import writes the latest state".into());
                }
                let (dir, convert) = if source.given() {
                    if book.data.is_some() {
                        return Err("--data reads a book folder; --from/--map convert an export given with --input: give one or the other".into());
                    }
                    let plan = source.plan(
                        parse_currency(&book.currency)?,
                        parse_encoding(&book.encoding)?,
                    )?;
                    (plan.input.clone(), Some(plan))
                } else {
                    if source.input.is_some() {
                        return Err("--input is an export to convert: say what it is with --from KIND or --map FILE (a book folder is given with --data)".into());
                    }
                    let dir = book
                        .data
                        .take()
                        .ok_or("import reads a book: give --data DIR (a folder) or --data FILE.xlsx|.ods (a workbook), or --from KIND --input PATH to convert an export")?;
                    (dir, None)
                };
                let command = Command::Import {
                    actor: actor.parse(format!("import {}", dir.display())),
                    convert,
                    dir,
                    mode: if replace {
                        ImportMode::Replace
                    } else {
                        ImportMode::Merge
                    },
                };
                (book, command)
            }
            CliCommand::Export {
                book,
                out,
                force,
                format,
            } => (
                book,
                Command::Export {
                    out,
                    force,
                    format: format.into(),
                },
            ),
            CliCommand::Backup { book, out } => {
                if book.as_of.is_some() {
                    return Err("backup copies the whole store; --as-of does not apply".into());
                }
                (book, Command::Backup { out })
            }
            CliCommand::Serve {
                book,
                bind,
                public_reads,
                private_reads: _,
                behind_proxy,
                tls_cert,
                tls_key,
                session_idle,
                session_max,
                webhook_secret_file,
                webhook_tolerance,
                vendor_name,
                smtp,
                mail_from,
                finance_email,
                provisioning_url,
                provisioning_secret_file,
                write_validation,
                limits,
            } => {
                let vendor_name = vendor_name.trim().to_string();
                let chars = vendor_name.chars().count();
                if !(1..=200).contains(&chars) || vendor_name.chars().any(char::is_control) {
                    return Err(format!(
                        "--vendor-name: 1 to 200 characters, no control characters ({chars} given)"
                    ));
                }
                if book.as_of.is_some() {
                    return Err("serve reads the latest book; ask for as_of per request".into());
                }
                if session_idle > session_max {
                    return Err(format!(
                        "--session-idle {session_idle} is longer than --session-max \
                         {session_max}: a session ends at the earlier of the two, so the idle \
                         limit would never apply"
                    ));
                }
                (
                    book,
                    Command::Serve {
                        bind,
                        public_reads,
                        behind_proxy,
                        tls: tls_cert.zip(tls_key),
                        sessions: expansa_store::SessionLimits {
                            idle: std::time::Duration::from_secs(session_idle),
                            absolute: std::time::Duration::from_secs(session_max),
                        },
                        webhooks: (webhook_secret_file, webhook_tolerance),
                        vendor_name,
                        mail: (smtp, mail_from, finance_email),
                        provisioning: provisioning_url.zip(provisioning_secret_file),
                        write_validation,
                        limits,
                    },
                )
            }
            CliCommand::Keys { action } => match action {
                KeysAction::Create { book, name, role } => {
                    if name.trim().is_empty() {
                        return Err("--name must not be empty".into());
                    }
                    (book, Command::KeysCreate { name, role })
                }
                KeysAction::List { book } => (book, Command::KeysList),
                KeysAction::Revoke { book, id } => (book, Command::KeysRevoke { id }),
            },
            CliCommand::Portal { action } => {
                let (book, portal) = action.plan()?;
                if book.as_of.is_some() {
                    return Err("portal works on the latest store; --as-of does not apply".into());
                }
                (book, Command::Portal(portal))
            }
            CliCommand::Users { action } => {
                let (book, users) = action.plan()?;
                if book.as_of.is_some() {
                    return Err("users works on the latest store; --as-of does not apply".into());
                }
                (book, Command::Users(users))
            }
            CliCommand::Audit { book, args } => {
                if book.as_of.is_some() {
                    return Err(
                        "audit lists the log as kept; --as-of does not apply (use --since)".into(),
                    );
                }
                (book, Command::Audit(args.plan()?))
            }
            CliCommand::Events { book, format } => {
                if book.as_of.is_some() {
                    return Err("events lists the whole log; --as-of does not apply".into());
                }
                (book, Command::Events { format })
            }
            CliCommand::Contract {
                action:
                    ContractAction::Show {
                        book,
                        contract,
                        at,
                        format,
                    },
            } => (
                book,
                Command::ContractShow {
                    contract,
                    at,
                    format,
                },
            ),
            CliCommand::Quote {
                action:
                    QuoteAction::Amend {
                        book,
                        contract,
                        effective,
                        add,
                        set,
                        remove,
                        swap,
                        precision,
                        format,
                        apply,
                    },
            } => {
                let mut changes: Vec<Change> = remove.into_iter().map(Change::Remove).collect();
                for s in swap {
                    let (old, new) = s
                        .split_once(':')
                        .filter(|(a, b)| !a.trim().is_empty() && !b.trim().is_empty())
                        .ok_or_else(|| format!("--swap {s:?}: expected OLD:NEW"))?;
                    changes.push(Change::Swap(old.trim().into(), new.trim().into()));
                }
                for s in set {
                    let (p, q) = product_quantity("set", &s)?;
                    changes.push(Change::Set(p, q));
                }
                for s in add {
                    let (p, q) = product_quantity("add", &s)?;
                    changes.push(Change::Add(p, q));
                }
                if changes.is_empty() {
                    return Err("nothing to quote: give --add, --set, --remove or --swap".into());
                }
                let what = format!("amend contract {contract} from {effective}");
                let request = AmendRequest {
                    contract,
                    effective,
                    changes,
                    precision,
                };
                let apply = apply.parse(what);
                (
                    book,
                    Command::Amend {
                        request,
                        format,
                        apply,
                    },
                )
            }
            CliCommand::Quote {
                action:
                    QuoteAction::Renew {
                        book,
                        contract,
                        pricing,
                        uplift,
                        format,
                        apply,
                    },
            } => {
                if uplift.is_some() && pricing.is_some_and(|p| p != PricingArg::Uplift) {
                    return Err("--uplift goes with --pricing uplift".into());
                }
                if let Some(u) = uplift.filter(|u| *u <= -Decimal::ONE_HUNDRED) {
                    return Err(format!(
                        "--uplift {u}: must be more than -100 (a renewal at -100% or less is free or negative)"
                    ));
                }
                let request = RenewRequest {
                    contract,
                    pricing: pricing.map(|p| match p {
                        PricingArg::Same => RenewalPricing::Same,
                        PricingArg::List => RenewalPricing::List,
                        PricingArg::Uplift => RenewalPricing::Uplift,
                    }),
                    uplift_pct: uplift,
                };
                let apply = apply.parse(format!("renew contract {}", request.contract));
                (
                    book,
                    Command::Renew {
                        request,
                        format,
                        apply,
                    },
                )
            }
            CliCommand::Rules {
                book,
                at,
                level,
                mining,
                itemsets,
                format,
            } => {
                if itemsets && format != Format::Json {
                    return Err("--itemsets lists itemsets in JSON: add --format json".into());
                }
                report_day("at", at)?;
                let command = Command::Rules {
                    itemsets,
                    at,
                    level: match level {
                        ItemLevel::Product => Level::Product,
                        ItemLevel::Family => Level::Family,
                    },
                    mining: mining.parse(MiningOptions::default())?,
                    format,
                };
                (book, command)
            }
            CliCommand::Opportunities {
                book,
                at,
                top,
                customer,
                kind,
                filters,
                model,
                format,
            } => {
                report_day("at", at)?;
                at_most("top", top, MAX_TOP, " (0 lists all)")?;
                let command = Command::Opportunities {
                    options: model.parse(at)?,
                    customer,
                    kind: kind.map(|k| match k {
                        OpportunityKindArg::Upsell => OpportunityKind::Upsell,
                        OpportunityKindArg::CrossSell => OpportunityKind::CrossSell,
                    }),
                    top: (top > 0).then_some(top),
                    format,
                    filters: filters.parse()?,
                };
                (book, command)
            }
            CliCommand::Offers {
                book,
                from,
                to,
                filters,
                model,
                format,
            } => {
                range(from, to)?;
                let command = Command::Offers {
                    from,
                    to,
                    model: model.parse(to.last_day())?,
                    format,
                    filters: filters.parse()?,
                };
                (book, command)
            }
            CliCommand::Evaluate {
                book,
                cutoff,
                until,
                k,
                mining,
                format,
            } => {
                if k == 0 {
                    return Err("--k must be at least 1".into());
                }
                at_most("k", k, MAX_K, "")?;
                report_day("cutoff", cutoff)?;
                if let Some(until) = until {
                    report_day("until", until)?;
                }
                if until.is_some_and(|u| u <= cutoff) {
                    return Err(format!("--until must be after --cutoff {cutoff}"));
                }
                let defaults = OpportunityOptions::new(cutoff).mining;
                let command = Command::Evaluate {
                    options: EvaluateOptions {
                        cutoff,
                        until,
                        k,
                        mining: mining.parse(defaults)?,
                    },
                    format,
                };
                (book, command)
            }
            CliCommand::Movements {
                book,
                report,
                explain,
                detail,
                kind,
                filters,
            } => {
                let (query, format, chart) = report.parse()?;
                let view = match (explain, detail) {
                    (Some(customer), _) => MovementView::Trail(customer),
                    (None, true) => MovementView::Detail(kind),
                    (None, false) => MovementView::Report,
                };
                if view != MovementView::Report && chart.is_some() {
                    return Err(
                        "--chart draws the whole report; it does not go with --explain or --detail"
                            .into(),
                    );
                }
                let filters = filters.parse()?;
                let command = Command::Movements {
                    query,
                    format,
                    view,
                    filters,
                    chart,
                };
                (book, command)
            }
            CliCommand::Kpis {
                book,
                report,
                filters,
            } => {
                let (query, format, chart) = report.parse()?;
                let filters = filters.parse()?;
                let command = Command::Kpis {
                    query,
                    format,
                    filters,
                    chart,
                };
                (book, command)
            }
            CliCommand::Report {
                book,
                month,
                out,
                rules,
                filters,
            } => {
                report_month("month", month)?;
                let command = Command::Report {
                    month,
                    out,
                    rules: rules.parse()?,
                    filters: filters.parse()?,
                };
                (book, command)
            }
            CliCommand::Cohorts {
                book,
                from,
                to,
                by,
                metric,
                format,
                filters,
            } => {
                let by = match by {
                    By::Month => CohortBy::Month,
                    By::Quarter => CohortBy::Quarter,
                };
                cohort_range(from, to, by)?;
                let command = Command::Cohorts {
                    from,
                    to,
                    by,
                    metric: match metric {
                        Metric::Mrr => CohortMetric::Mrr,
                        Metric::Customers => CohortMetric::Customers,
                    },
                    format,
                    filters: filters.parse()?,
                };
                (book, command)
            }
        };
        let currency = parse_currency(&book.currency)?;
        let encoding = parse_encoding(&book.encoding)?;
        let locale = match book.locale {
            Some(tag) => tag.parse::<Locale>()?,
            None => locale_from_env(),
        };
        let threads = match book.threads {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => {
                at_most("threads", n, MAX_THREADS, "")?;
                n
            }
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        // `export` writes the store's book, or the one given with --data.
        let store_only = matches!(
            command,
            Command::Import { .. }
                | Command::Backup { .. }
                | Command::Events { .. }
                | Command::Serve { .. }
                | Command::KeysCreate { .. }
                | Command::Users(_)
                | Command::Portal(_)
                | Command::Audit(_)
                | Command::KeysList
                | Command::KeysRevoke { .. }
                | Command::Amend { apply: Some(_), .. }
                | Command::Renew { apply: Some(_), .. }
        ) || (matches!(command, Command::Export { .. }) && book.data.is_none());
        // EXPANSA_DB is the store when none is typed (read here, not by clap, so that a typed
        // --db is told from it).
        let db = match (&book.data, book.db) {
            (Some(_), Some(_)) if !store_only => {
                return Err("--data and --db both name a book: give one (--data reads a folder or a workbook, --db a store)".into())
            }
            (_, Some(db)) => Some(db),
            (_, None) => std::env::var("EXPANSA_DB").ok().filter(|url| !url.is_empty()),
        };
        let source = match (book.data, db, book.as_of, store_only) {
            (Some(_), _, _, true) => {
                return Err(match command {
                    Command::Amend { .. } | Command::Renew { .. } => "--apply records the change in the store: read the book from it with --db URL (not --data)",
                    _ => "this command works on a store, not on a book's files: give --db URL (or set EXPANSA_DB), not --data",
                }
                .into())
            }
            (Some(_), _, Some(_), false) => return Err("--as-of reads a store: use it with --db, not --data".into()),
            (Some(dir), _, None, false) => Source::Folder(dir),
            (None, db, as_of, store_only) => match db {
                Some(url) => Source::Store { url, as_of: as_of.unwrap_or_default() },
                None if store_only => Source::Store { url: DEFAULT_DB.into(), as_of: as_of.unwrap_or_default() },
                None => return Err("give the book: --data DIR (a folder of CSV or Parquet files), --data FILE.xlsx|.ods (a workbook) or --db URL (a store)".into()),
            },
        };
        Ok(Plan {
            source,
            currency,
            encoding,
            locale,
            threads,
            busy_timeout: std::time::Duration::from_secs(book.busy_timeout),
            command,
        })
    }
}

/// `--currency CODE`, an ISO 4217 code.
fn parse_currency(code: &str) -> Result<Currency, String> {
    Currency::from_code(code)
        .ok_or_else(|| format!("--currency {code}: unknown ISO 4217 currency code"))
}

/// `--encoding NAME`.
fn parse_encoding(name: &str) -> Result<TextEncoding, String> {
    name.parse::<TextEncoding>()
        .map_err(|e| format!("--encoding {e}"))
}

/// The locale the environment asks for, as POSIX programs read it.
fn locale_from_env() -> Locale {
    ["LC_ALL", "LC_MESSAGES", "LANG"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|v| !v.is_empty())
        .and_then(|v| Locale::from_posix(&v))
        .unwrap_or_default()
}
