//! Books from where users keep them: billing-system exports, spreadsheets and any CSV turned
//! into a book of the interchange format (`shared/spec/data-format.md`), with a report of what
//! became of every source row.
//!
//! One mechanism: a source that is a flat table (Baremetrics, ChartMogul and Chargebee import
//! templates, Asaas, Iugu and Vindi exports, a spreadsheet) is read by a [`mapping::Mapping`], a TOML
//! file naming which column is which field; the product ships one preset per such source and a
//! user writes their own for any other export. Code is kept for the sources that need logic:
//! Stripe (items, coupons, invoices), Recurly (subscription versions), Zuora (rate plan charge
//! segments) and Conexa (contracts and recurring sales).
//!
//! A conversion writes into a folder ([`convert_into`]) and is published whole
//! ([`publish`]) only when nothing was refused and the book it wrote is valid: the output
//! folder is left as it was otherwise. A conversion's temporary files (a large export spread
//! over parts, [`partition`]) live in that folder, under names starting with `.`, and are
//! removed when it ends.

pub mod book;
mod conexa;
pub mod input;
pub mod mapping;
pub mod money;
pub mod partition;
mod recurly;
pub mod report;
mod stripe;
pub mod template;
pub mod time;
mod warehouse;
mod zuora;

pub use book::{
    BookWriter, ContractOut, CustomerOut, Interval, LineOut, Period, ProductOut, Written,
};
pub use input::Input;
pub use report::{Outcome, Report, Summary};
pub use stripe::convert_subscription as convert_stripe_subscription;

use expansa_import::{BookErrors, Problem, TextEncoding};
use expansa_ledger::Currency;
use jiff::tz::TimeZone;
use std::path::Path;

/// The sources expansa converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceKind {
    Stripe,
    Recurly,
    Zuora,
    Chargebee,
    Baremetrics,
    Chartmogul,
    Conexa,
    Asaas,
    Iugu,
    Vindi,
}

impl SourceKind {
    pub const ALL: [SourceKind; 10] = [
        SourceKind::Stripe,
        SourceKind::Recurly,
        SourceKind::Zuora,
        SourceKind::Chargebee,
        SourceKind::Baremetrics,
        SourceKind::Chartmogul,
        SourceKind::Conexa,
        SourceKind::Asaas,
        SourceKind::Iugu,
        SourceKind::Vindi,
    ];

    /// The name `--from` takes.
    pub fn name(self) -> &'static str {
        match self {
            SourceKind::Stripe => "stripe",
            SourceKind::Recurly => "recurly",
            SourceKind::Zuora => "zuora",
            SourceKind::Chargebee => "chargebee",
            SourceKind::Baremetrics => "baremetrics",
            SourceKind::Chartmogul => "chartmogul",
            SourceKind::Conexa => "conexa",
            SourceKind::Asaas => "asaas",
            SourceKind::Iugu => "iugu",
            SourceKind::Vindi => "vindi",
        }
    }

    /// The kind a name stands for (any case).
    pub fn from_name(name: &str) -> Option<SourceKind> {
        SourceKind::ALL
            .into_iter()
            .find(|k| k.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The mapping preset shipped for a flat-table source; `None` for a source converted by
    /// code.
    pub fn preset(self) -> Option<&'static str> {
        mapping::preset(self)
    }
}

/// What a conversion reads and how (made once per conversion: its size does not matter).
#[allow(clippy::large_enum_variant)]
pub enum Spec {
    /// A known source.
    Source(SourceKind),
    /// A user's mapping file.
    Mapping(mapping::Mapping),
}

impl Spec {
    /// The name the report gives the source.
    pub fn name(&self) -> String {
        match self {
            Spec::Source(k) => k.name().to_string(),
            Spec::Mapping(m) => m.name.clone(),
        }
    }
}

/// Choices that shape a conversion.
#[derive(Clone, Debug)]
pub struct Options {
    /// The book's reporting currency: lines the source gives no currency for are in it.
    pub currency: Currency,
    /// The time zone the book's days are counted in (default UTC).
    pub timezone: TimeZone,
    /// How CSV files that are not UTF-8 are read.
    pub encoding: TextEncoding,
    /// Leave refused rows out (listed in the report) instead of writing nothing.
    pub skip_refused: bool,
    /// An `fx_rates.csv` (month, currency, rate) copied into the book, for a source whose
    /// lines are in several currencies; without it every line must be in `currency`.
    pub fx_rates: Option<std::path::PathBuf>,
    /// How many parts a large export and the written book are worked on in (each part's
    /// rows held in memory at once); `None`: from their size. For tests: the book and the
    /// report are the same whatever the number.
    #[doc(hidden)]
    pub parts: Option<usize>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            currency: Currency::BRL,
            timezone: TimeZone::UTC,
            encoding: TextEncoding::UTF_8,
            skip_refused: false,
            fx_rates: None,
            parts: None,
        }
    }
}

/// What a converter works with.
pub struct Context<'a> {
    pub input: &'a Input,
    pub options: &'a Options,
    pub book: &'a mut BookWriter,
    pub report: &'a mut Report,
}

/// The outcome of a conversion written into a folder.
#[derive(Clone, Debug)]
pub struct Conversion {
    pub summary: Summary,
    pub written: Written,
}

/// The file beside the book that lists every source row's outcome.
pub const LOG_FILE: &str = "conversion.csv";

/// Converts `input` into a book written in `dir` (an empty folder), with `conversion.csv`
/// beside it. Errors: every problem found (refused rows, unless `options.skip_refused`;
/// a source that is not what `spec` says, as one problem naming file and column). `dir` then
/// holds a partial book: the caller throws it away (see [`publish`]).
pub fn convert_into(
    spec: &Spec,
    input: &Input,
    options: &Options,
    dir: &Path,
) -> Result<Conversion, BookErrors> {
    let io = |e: std::io::Error| -> BookErrors { vec![book::write_problem(dir, e)].into() };
    match std::fs::metadata(&input.path) {
        Err(_) => return Err(vec![input.problem("is not there")].into()),
        Ok(m) if !m.is_dir() && !m.is_file() => {
            return Err(vec![input.problem(
                "is not a regular file or a folder (a named pipe or a device): only files are read",
            )]
            .into())
        }
        Ok(_) => {}
    }
    let mut book = BookWriter::new(dir);
    let mut report = Report::new(&spec.name(), Some(&dir.join(LOG_FILE))).map_err(io)?;
    let mut ctx = Context {
        input,
        options,
        book: &mut book,
        report: &mut report,
    };
    let fatal = match spec {
        Spec::Source(kind) => match kind {
            SourceKind::Stripe => stripe::convert(&mut ctx),
            SourceKind::Recurly => recurly::convert(&mut ctx),
            SourceKind::Zuora => zuora::convert(&mut ctx),
            SourceKind::Conexa => conexa::convert(&mut ctx),
            other => {
                let text = other.preset().expect("flat sources have a preset");
                match mapping::Mapping::parse(other.name(), text) {
                    Ok(m) => mapping::convert(&m, &mut ctx),
                    Err(p) => Err(p),
                }
            }
        },
        Spec::Mapping(m) => mapping::convert(m, &mut ctx),
    };
    let fatal = fatal.err();
    let has_fatal = fatal.is_some();
    if let Some(p) = fatal {
        report.problem(p);
    }
    if !has_fatal {
        let fx = currencies(input, options, &book, dir);
        if let Err(p) = fx {
            report.problem(p);
            return Err(report.finish().map_err(io)?.1.into_errors());
        }
    }
    let written = book.finish().map_err(io)?;
    let refused = report.refused_count();
    let (mut summary, problems) = report.finish().map_err(io)?;
    if has_fatal || (refused > 0 && !options.skip_refused) {
        return Err(problems.into_errors());
    }
    if written.lines == 0 {
        summary.notes.push(
            "the book has no line: every recurring row was left out or refused (see the counts \
             per reason)"
                .into(),
        );
    }
    let left_out = problems.into_errors();
    summary.refused = left_out.0.iter().map(ToString::to_string).collect();
    summary.refused.extend(left_out.more_line());
    Ok(Conversion { summary, written })
}

/// Checks that the lines' currencies can be read by the book: all in the reporting currency,
/// or rates given (copied into the book as `fx_rates.csv`, where the importer checks them).
fn currencies(
    input: &Input,
    options: &Options,
    book: &BookWriter,
    dir: &Path,
) -> Result<(), Problem> {
    if let Some(rates) = &options.fx_rates {
        return std::fs::copy(rates, dir.join("fx_rates.csv"))
            .map(|_| ())
            .map_err(|e| {
                Problem::new(
                    &rates.display().to_string(),
                    0,
                    "file",
                    "",
                    &format!("cannot be read: {e}"),
                )
            });
    }
    let foreign: Vec<String> = book
        .currencies()
        .iter()
        .filter_map(|(c, n)| match c {
            Some(c) if *c != options.currency => Some(format!("{n} in {c}")),
            _ => None,
        })
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let only = book.currencies().len() == 1;
    Err(Problem::new(
        &input.path.display().to_string(),
        0,
        "currency",
        "",
        &format!(
            "the source's lines are {} but the book's currency is {}: {}",
            foreign.join(", "),
            options.currency,
            if only {
                let c = book.currencies().keys().next().copied().flatten();
                format!(
                    "give --currency {}",
                    c.map(|c| c.to_string()).unwrap_or_default()
                )
            } else {
                "give --currency and --fx-rates FILE (month,currency,rate: what one unit of each \
                 currency is worth in the book's currency, each month)"
                    .to_string()
            }
        ),
    ))
}

/// Moves the finished book in `from` (a folder on the same file system) to `out`: `out` must
/// not exist or be an empty folder, unless `force`, when an existing folder is replaced whole.
pub fn publish(from: &Path, out: &Path, force: bool) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(e),
        Ok(m) if m.is_dir() && std::fs::read_dir(out)?.next().is_none() => {
            std::fs::remove_dir(out)?
        }
        Ok(m) if force && m.is_dir() => {
            let old = out.with_extension(format!("old-{}", std::process::id()));
            std::fs::rename(out, &old)?;
            std::fs::rename(from, out)?;
            return std::fs::remove_dir_all(&old);
        }
        Ok(_) => {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                "{} exists and is not an empty folder: give a new folder, or --force to replace it",
                out.display()
            ),
            ))
        }
    }
    std::fs::rename(from, out)
}
