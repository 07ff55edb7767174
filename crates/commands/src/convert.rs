//! `expansa convert`: a billing system's export, a spreadsheet or any CSV (by a mapping file)
//! turned into a book folder of the interchange format, with a report of what became of every
//! source row (`conversion.csv` beside the book) and the book's MRR at a month end, to compare
//! with the source system's own figure. `expansa import --from KIND --input PATH` converts the
//! same way and loads the book into the store.
//!
//! The book is written into a new folder beside `--out` and moved there only when the
//! conversion refused nothing (or `--skip-refused`) and the book passes the importer's checks
//! (a large book part by part: `convert/check.rs`): on any problem `--out` is left as it was.

mod check;
mod heap;

use crate::Format;
use expansa_import::{BookErrors, ImportOptions, Problem, TextEncoding};
use expansa_ledger::{Currency, Date, Locale, Money, Month};
use expansa_sources::{mapping::Mapping, Conversion, Input, Options, SourceKind, Spec};
use std::path::{Path, PathBuf};

/// Where a conversion reads from: `--from KIND` or `--map FILE`, and `--input PATH`.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct SourceArgs {
    /// The source system: stripe, recurly, zuora, chargebee, baremetrics, chartmogul, conexa,
    /// asaas, iugu or vindi.
    #[arg(long, value_name = "KIND")]
    pub(crate) from: Option<String>,
    /// A mapping file (TOML; docs/mapping.md) for any other export.
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub(crate) map: Option<PathBuf>,
    /// The export: a folder of the source's files, or one file (CSV, JSON, .xlsx, .ods).
    #[arg(long, value_name = "PATH")]
    pub(crate) input: Option<PathBuf>,
    /// The time zone whose days the book counts (an IANA name such as America/Sao_Paulo).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub(crate) timezone: String,
    /// Leave the rows the conversion refuses out of the book (they stay listed in the report)
    /// instead of writing nothing.
    #[arg(long)]
    pub(crate) skip_refused: bool,
    /// Exchange rates (fx_rates.csv: month, currency, rate) for an export whose lines are in
    /// several currencies: copied into the book.
    #[arg(long, value_name = "FILE")]
    pub(crate) fx_rates: Option<PathBuf>,
    /// How many parts a large export and the written book are worked on in (from their size
    /// by default): for tests, the book and report are the same whatever the number.
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) parts: Option<u16>,
}

/// `expansa convert` flags.
#[derive(clap::Args, Debug)]
pub(crate) struct ConvertArgs {
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    /// The book folder to write: new or empty (see --force).
    #[arg(long, value_name = "DIR")]
    pub(crate) out: PathBuf,
    /// Replace a folder that holds something.
    #[arg(long)]
    pub(crate) force: bool,
    /// The month whose end the book's MRR is given at (default: the month before this one).
    #[arg(long, value_name = "YYYY-MM")]
    pub(crate) mrr_at: Option<Month>,
    /// The book's reporting currency (ISO 4217): what lines without a currency are in.
    #[arg(long, default_value = "BRL")]
    pub(crate) currency: String,
    /// Text encoding of CSV files that are not UTF-8 (windows-1252, also latin1).
    #[arg(long, default_value = "utf-8", value_name = "NAME")]
    pub(crate) encoding: String,
    /// Language of the report: pt-BR or en (default: from the environment).
    #[arg(long)]
    pub(crate) locale: Option<String>,
    /// Output format of the report.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub(crate) format: Format,
}

/// A validated conversion: what to read, how, and into which book.
pub struct ConvertPlan {
    pub spec: Spec,
    pub input: PathBuf,
    pub options: Options,
    /// The user's files the conversion reads (the export, the mapping, the rates): a book is
    /// never written over them.
    pub reads: Vec<PathBuf>,
}

impl std::fmt::Debug for ConvertPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConvertPlan")
            .field("spec", &self.spec.name())
            .field("input", &self.input)
            .finish()
    }
}

impl SourceArgs {
    /// Whether a source was given (`--from` or `--map`).
    pub(crate) fn given(&self) -> bool {
        self.from.is_some() || self.map.is_some()
    }

    /// The plan, checked: a known kind or a mapping file that reads, an input given.
    pub(crate) fn plan(
        self,
        currency: Currency,
        encoding: TextEncoding,
    ) -> Result<ConvertPlan, String> {
        let spec = match (self.from, &self.map) {
            (Some(name), None) => source_spec(&name)?,
            (None, Some(path)) => {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut regular_file("map", path)?, &mut text)
                    .map_err(|e| format!("--map {}: cannot be read: {e}", path.display()))?;
                mapping_spec(&path.display().to_string(), &text)?
            }
            _ => return Err("give the source: --from KIND or --map mapping.toml".into()),
        };
        let input = self
            .input
            .ok_or("give the export to convert: --input FOLDER_OR_FILE")?;
        let mut plan = ConvertPlan::new(
            spec,
            input,
            &self.timezone,
            currency,
            encoding,
            self.skip_refused,
        )?;
        if let Some(rates) = &self.fx_rates {
            regular_file("fx-rates", rates)?;
        }
        plan.reads = [Some(plan.input.clone()), self.map, self.fx_rates.clone()]
            .into_iter()
            .flatten()
            .collect();
        plan.options.fx_rates = self.fx_rates;
        plan.options.parts = self.parts.map(usize::from);
        Ok(plan)
    }
}

/// `--FLAG PATH` names a regular file (a named pipe or a device would be read without end),
/// opened as the importer opens a book's files.
fn regular_file(flag: &str, path: &Path) -> Result<std::fs::File, String> {
    match expansa_import::open_regular(path) {
        Ok(Some(f)) => Ok(f),
        Ok(None) => Err(format!(
            "--{flag} {}: cannot be read: it is not there",
            path.display()
        )),
        Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => {
            Err(format!("--{flag} {}: {e}", path.display()))
        }
        Err(e) => Err(format!("--{flag} {}: cannot be read: {e}", path.display())),
    }
}

/// The spec of `--from NAME`: a known source kind (any case), or the message listing them.
pub fn source_spec(name: &str) -> Result<Spec, String> {
    SourceKind::from_name(name)
        .map(Spec::Source)
        .ok_or_else(|| {
            format!(
                "--from {name}: unknown source (one of {})",
                SourceKind::ALL.map(|k| k.name()).join(", ")
            )
        })
}

/// The spec of a mapping file's TOML `text`; `name` names it in the report and in problems.
pub fn mapping_spec(name: &str, text: &str) -> Result<Spec, String> {
    Ok(Spec::Mapping(
        Mapping::parse(name, text).map_err(|p| p.to_string())?,
    ))
}

impl ConvertPlan {
    /// A plan reading `input` (a folder or one file) by `spec`, its days counted in
    /// `timezone` (an IANA name; the `--timezone` message otherwise).
    pub fn new(
        spec: Spec,
        input: PathBuf,
        timezone: &str,
        currency: Currency,
        encoding: TextEncoding,
        skip_refused: bool,
    ) -> Result<ConvertPlan, String> {
        let timezone =
            expansa_sources::time::time_zone(timezone).map_err(|e| format!("--timezone {e}"))?;
        Ok(ConvertPlan {
            spec,
            input,
            options: Options {
                currency,
                timezone,
                encoding,
                skip_refused,
                fx_rates: None,
                parts: None,
            },
            reads: Vec::new(),
        })
    }
}

/// Every problem a conversion found (the source's, or the written book's): nothing was
/// written.
#[derive(Debug)]
pub struct ConvertErrors(pub BookErrors, pub bool);

impl std::fmt::Display for ConvertErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the conversion found {} problem(s); nothing was written",
            self.0.total()
        )
    }
}

impl ConvertErrors {
    /// Whether `--skip-refused` would leave these problems' rows out: the conversion refused
    /// rows (not the source as a whole, nor values only the written book's check refuses) and
    /// the flag was not given (`.1`).
    pub fn rows_refused(&self) -> bool {
        self.1 && self.0 .0.iter().any(|p| p.line > 0)
    }
}

impl std::error::Error for ConvertErrors {}

/// What a conversion did: the report's summary, what was written, the MRR at a month end.
#[derive(Debug, Clone)]
pub struct Converted {
    pub conversion: Conversion,
    pub currency: Currency,
    /// The month end the MRR is given at, the MRR then and the customers paying.
    pub mrr_at: Date,
    pub mrr: Money,
    pub customers: usize,
}

/// The last day of the month before the one `today` is in.
pub fn previous_month_end(today: Date) -> Date {
    Month::of(today).prev().last_day()
}

/// Converts into `dir` (an empty folder) and checks the book written there, as the importer
/// reads it. Errors: the conversion's problems, or the written book's (a converter's defect).
pub fn convert_into(plan: &ConvertPlan, dir: &Path, mrr_at: Date) -> anyhow::Result<Converted> {
    let input = Input::new(&plan.input, plan.options.encoding);
    let conversion = expansa_sources::convert_into(&plan.spec, &input, &plan.options, dir)
        .map_err(|e| ConvertErrors(e, !plan.options.skip_refused))?;
    let options = ImportOptions {
        currency: plan.options.currency,
        encoding: TextEncoding::UTF_8,
    };
    let (mrr, customers) = check::check(dir, &options, plan.options.parts, mrr_at)
        .map_err(|e| ConvertErrors(BookErrors(at_sources(dir, e.0), e.1), false))?;
    Ok(Converted {
        conversion,
        currency: plan.options.currency,
        mrr_at,
        mrr,
        customers,
    })
}

/// The importer's problems with the written book, told at the source rows the book's rows came
/// from (`conversion.csv` says which), so that a value the book cannot keep is reported where
/// the user can fix it: `export.csv:7: unit_price: ...: reason (the book's
/// subscriptions.csv:2)`. A problem with no source row (the book as a whole) stays as it is.
fn at_sources(dir: &Path, problems: Vec<Problem>) -> Vec<Problem> {
    use std::collections::{HashMap, HashSet};
    // The id on each line of each written file that has problems.
    let mut ids: HashMap<(String, u64), String> = HashMap::new();
    let files: HashSet<&str> = problems
        .iter()
        .filter(|p| p.line > 1)
        .map(|p| p.file.as_str())
        .collect();
    for file in &files {
        let Ok(mut r) = csv::Reader::from_path(dir.join(file)) else {
            continue;
        };
        let mut record = csv::StringRecord::new();
        while let Ok(true) = r.read_record(&mut record) {
            let line = record.position().map_or(0, |p| p.line());
            if let Some(id) = record.get(0) {
                ids.insert((file.to_string(), line), id.to_string());
            }
        }
    }
    let wanted: HashSet<&String> = problems
        .iter()
        .filter_map(|p| ids.get(&(p.file.clone(), p.line)))
        .collect();
    // The first source row mapped to each of those ids, for the file its reason writes to.
    let mut sources: HashMap<(String, String), (String, u64)> = HashMap::new();
    if let Ok(mut r) = csv::Reader::from_path(dir.join(expansa_sources::LOG_FILE)) {
        let mut record = csv::StringRecord::new();
        while let Ok(true) = r.read_record(&mut record) {
            let (Some(file), Some(line), Some(reason), Some(book_id)) =
                (record.get(0), record.get(1), record.get(4), record.get(5))
            else {
                continue;
            };
            if book_id.is_empty() || !wanted.contains(&book_id.to_string()) {
                continue;
            }
            let target = match reason {
                "customer" => "customers.csv",
                "product" => "products.csv",
                "contract" => "contracts.csv",
                _ => "subscriptions.csv",
            };
            sources
                .entry((target.to_string(), book_id.to_string()))
                .or_insert_with(|| (file.to_string(), line.parse().unwrap_or(0)));
        }
    }
    problems
        .into_iter()
        .map(|p| {
            let Some(id) = ids.get(&(p.file.clone(), p.line)) else {
                return p;
            };
            match sources.get(&(p.file.clone(), id.clone())) {
                Some((file, line)) => Problem::new(
                    file,
                    *line,
                    &p.column,
                    &p.value,
                    &format!("{} (the book's {}:{}, line {id})", p.reason, p.file, p.line),
                ),
                None => p,
            }
        })
        .collect()
}

/// Whether `out` may receive the book: a new name or an empty folder; with `force`, a folder
/// holding a book (its `subscriptions.csv`, `subscriptions.parquet` or `conversion.csv`). Never a symbolic link, the
/// current folder or one above it, nor a folder holding the files the conversion reads.
fn refuse_out(plan: &ConvertPlan, out: &Path, force: bool) -> anyhow::Result<()> {
    let Ok(m) = std::fs::symlink_metadata(out) else {
        return Ok(());
    };
    let shown = out.display();
    if m.file_type().is_symlink() {
        anyhow::bail!("--out {shown}: is a symbolic link: give the folder itself, or a new one");
    }
    if !m.is_dir() {
        anyhow::bail!("--out {shown}: is a file, not a folder: give a new folder");
    }
    let here = std::fs::canonicalize(out)?;
    if std::env::current_dir().is_ok_and(|cwd| cwd.starts_with(&here)) {
        anyhow::bail!(
            "--out {shown}: is the current folder or holds it: give a new folder for the book"
        );
    }
    for read in &plan.reads {
        if std::fs::canonicalize(read).is_ok_and(|r| r.starts_with(&here)) {
            anyhow::bail!(
                "--out {shown}: holds {}, which the conversion reads: give another folder for the book",
                read.display()
            );
        }
    }
    let mut entries = std::fs::read_dir(out)?.filter_map(Result::ok);
    let names: Vec<String> = entries
        .by_ref()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    // A book and nothing else: the format's files (CSV or Parquet) and the conversion's log.
    let book_files: Vec<String> = expansa_import::book_file_names().collect();
    let book_file = |n: &String| n == expansa_sources::LOG_FILE || book_files.contains(n);
    let holds_book = names.iter().all(book_file)
        && names.iter().any(|n| {
            [
                "subscriptions.csv",
                "subscriptions.parquet",
                expansa_sources::LOG_FILE,
            ]
            .contains(&n.as_str())
        });
    match (force, holds_book) {
        (true, true) => Ok(()),
        (true, false) => anyhow::bail!(
            "--out {shown}: holds files that are not a book's: --force replaces only a folder holding a book and nothing else; give a new folder"
        ),
        (false, _) => anyhow::bail!(
            "--out {shown}: exists and is not an empty folder: give a new folder, or --force to replace the book in it"
        ),
    }
}

/// Makes the allocator give large blocks back to the system when they are freed, for the rest
/// of the process (`convert/heap.rs`), so that a conversion worked part by part keeps a flat
/// peak. For a process that converts and ends (the CLI's `convert` and `import --from`); a
/// server does not call it: the fixed threshold would slow its large allocations.
pub fn bound_memory() {
    heap::give_back_large_blocks();
}

/// Runs `convert`: converts into a new folder beside `out` and moves it to `out`.
pub fn run(plan: &ConvertPlan, out: &Path, force: bool, mrr_at: Date) -> anyhow::Result<Converted> {
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        anyhow::bail!(
            "--out {}: the folder {} is not there",
            out.display(),
            parent.display()
        );
    }
    // Refused before the work, and again when moving (it may have changed meanwhile).
    refuse_out(plan, out, force)?;
    let tmp = tempfile::Builder::new()
        .prefix(".expansa-convert-")
        .tempdir_in(&parent)?;
    let converted = convert_into(plan, tmp.path(), mrr_at)?;
    let kept = tmp.keep();
    if let Err(e) = expansa_sources::publish(&kept, out, force) {
        let _ = std::fs::remove_dir_all(&kept);
        return Err(e.into());
    }
    Ok(converted)
}

/// The report as JSON (what `convert --format json` prints; the API's import preview answers
/// the same): the source, the book folder `out`, the rows written per file, the source rows
/// per outcome (`mapped`, `merged`, `skipped`, `refused`), the counts per file, outcome and
/// reason, the months not rebuilt, notes, and the MRR at `mrr_at` (a decimal string rounded
/// to the currency's minor unit) with the customers paying then.
pub fn report_json(c: &Converted, out: &str) -> serde_json::Value {
    let s = &c.conversion.summary;
    serde_json::json!({
        "source": s.source,
        "book": out,
        "written": c.conversion.written,
        "rows": s.by_outcome,
        "reasons": s.reasons,
        "not_rebuilt": s.not_rebuilt,
        "notes": s.notes,
        "refused": s.refused,
        "mrr_at": c.mrr_at.to_string(),
        "mrr": c.mrr.round_dp(c.currency.minor_units()).to_string(),
        "customers_paying": c.customers,
        "currency": c.currency.code(),
        "log": expansa_sources::LOG_FILE,
    })
}

/// The report: counts per outcome, per file and reason, what was written and the MRR. `out`
/// is the book folder written (`None` for a book imported into the store, whose folder and
/// `conversion.csv` are not kept).
pub fn render(c: &Converted, out: Option<&str>, format: Format, locale: Locale) -> String {
    let s = &c.conversion.summary;
    let w = &c.conversion.written;
    match format {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&report_json(c, out.unwrap_or("store")))
                .unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Table | Format::Csv => {
            let pt = locale == Locale::PtBr;
            let head = if pt {
                ["arquivo", "destino", "motivo", "linhas"]
            } else {
                ["file", "outcome", "reason", "rows"]
            };
            let outcome = |name: &str| -> String {
                match (pt, name) {
                    (true, "mapped") => "mapeadas".into(),
                    (true, "merged") => "incorporadas".into(),
                    (true, "skipped") => "ignoradas".into(),
                    (true, "refused") => "recusadas".into(),
                    _ => name.to_string(),
                }
            };
            let mut rows = vec![head.map(String::from).to_vec()];
            for r in &s.reasons {
                rows.push(vec![
                    r.file.clone(),
                    r.outcome.name().to_string(),
                    r.reason.clone(),
                    r.rows.to_string(),
                ]);
            }
            if format == Format::Csv {
                // Machine-readable: the codes, under the English header, in any locale.
                return expansa_ledger::csv_rows(
                    &["file", "outcome", "reason", "rows"],
                    &rows[1..],
                );
            }
            for row in rows.iter_mut().skip(1) {
                row[1] = outcome(&row[1]);
            }
            let mut text = match (out, pt) {
                (Some(out), true) => format!("{} convertido em {out}\n", s.source),
                (Some(out), false) => format!("converted {} into {out}\n", s.source),
                (None, true) => format!("{} convertido\n", s.source),
                (None, false) => format!("converted {}\n", s.source),
            };
            let by: Vec<String> = s
                .by_outcome
                .iter()
                .map(|(k, n)| format!("{n} {}", outcome(k)))
                .collect();
            let l = |pt_text: &'static str, en: &'static str| if pt { pt_text } else { en };
            text.push_str(&format!(
                "{}: {}\n",
                l("linhas da origem", "source rows"),
                by.join(", ")
            ));
            text.push_str(&if pt {
                format!(
                    "livro: {} linhas, {} clientes, {} produtos, {} contratos\n",
                    w.lines, w.customers, w.products, w.contracts
                )
            } else {
                format!(
                    "book: {} lines, {} customers, {} products, {} contracts\n",
                    w.lines, w.customers, w.products, w.contracts
                )
            });
            text.push_str(&if pt {
                format!(
                    "MRR em {}: {} ({} clientes pagantes)\n",
                    c.mrr_at,
                    locale.money(c.mrr, c.currency),
                    c.customers
                )
            } else {
                format!(
                    "MRR at {}: {} ({} paying customers)\n",
                    c.mrr_at,
                    locale.money(c.mrr, c.currency),
                    c.customers
                )
            });
            for m in &s.not_rebuilt {
                text.push_str(&format!("{}: {m}\n", l("não reconstruído", "not rebuilt")));
            }
            for n in &s.notes {
                text.push_str(&format!("{}: {n}\n", l("nota", "note")));
            }
            for r in &s.refused {
                text.push_str(&format!(
                    "{}: {r}\n",
                    l("recusada e deixada de fora", "refused and left out")
                ));
            }
            if let Some(out) = out {
                text.push_str(&format!(
                    "{}: {out}/{}\n",
                    l(
                        "cada linha da origem e o que foi feito dela",
                        "every source row and its outcome"
                    ),
                    expansa_sources::LOG_FILE
                ));
            }
            text.push('\n');
            text.push_str(&expansa_movements::table(
                &rows,
                &[false, false, false, true],
            ));
            text
        }
    }
}
