//! Raw command-line flags, and the validated plan made from them.

use clap::{Parser, Subcommand, ValueEnum};
use expansa_kpi::{CohortBy, CohortMetric};
use expansa_ledger::{Currency, Locale, Month};
use expansa_movements::{Query, Rules};
use std::path::PathBuf;

/// Where recurring revenue grows and where it leaks.
#[derive(Parser, Debug)]
#[command(name = "expansa", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand, Debug)]
enum CliCommand {
    /// Monthly MRR and its movements (new, cross-sell, upsell, reactivation, downsell, churn).
    Movements {
        #[command(flatten)]
        book: BookArgs,
        #[command(flatten)]
        report: ReportArgs,
        /// Print one customer's trail: every movement with the lines behind it.
        #[arg(long, value_name = "CUSTOMER_ID")]
        explain: Option<String>,
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
        /// First cohort month (YYYY-MM).
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
    /// Validate a book and list every problem; changes nothing.
    Check {
        #[command(flatten)]
        book: BookArgs,
    },
}

#[derive(clap::Args, Debug)]
struct BookArgs {
    /// Folder of the book (subscriptions.csv and the optional tables).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Reporting currency (ISO 4217).
    #[arg(long, default_value = "BRL")]
    currency: String,
    /// Language of tables: pt-BR or en (default: from LC_ALL / LC_MESSAGES / LANG, where C means
    /// en; else pt-BR).
    #[arg(long)]
    locale: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

/// A monthly report: its range, rules and format.
#[derive(clap::Args, Debug)]
struct ReportArgs {
    /// First month of the report (YYYY-MM).
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

/// Filters on customers and products.
#[derive(clap::Args, Debug)]
struct FilterArgs {
    /// Keep only matching lines: segment=, country=, channel=, name=, customer= (customer
    /// attributes), family= or product=. Repeat a key for alternatives; keys combine with AND.
    #[arg(long = "where", value_name = "KEY=VALUE")]
    filters: Vec<String>,
}

impl FilterArgs {
    fn parse(self) -> Result<Vec<(String, String)>, String> {
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

/// What to do, validated.
pub struct Plan {
    pub data: PathBuf,
    pub currency: Currency,
    pub locale: Locale,
    pub threads: usize,
    pub command: Command,
}

pub enum Command {
    Check,
    Movements {
        query: Query,
        format: Format,
        explain: Option<String>,
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

fn range(from: Month, to: Month) -> Result<(), String> {
    if from > to {
        return Err(format!("--from {from} is after --to {to}"));
    }
    Ok(())
}

impl Plan {
    pub fn from_cli(cli: Cli) -> Result<Plan, String> {
        let (book, command) = match cli.command {
            CliCommand::Check { book } => (book, Command::Check),
            CliCommand::Movements {
                book,
                report,
                explain,
                filters,
            } => {
                let (query, format, chart) = report.parse()?;
                if explain.is_some() && chart.is_some() {
                    return Err(
                        "--chart draws the whole report; it does not go with --explain".into(),
                    );
                }
                let filters = filters.parse()?;
                let command = Command::Movements {
                    query,
                    format,
                    explain,
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
                range(from, to)?;
                let command = Command::Cohorts {
                    from,
                    to,
                    by: match by {
                        By::Month => CohortBy::Month,
                        By::Quarter => CohortBy::Quarter,
                    },
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
        let currency = Currency::from_code(&book.currency).ok_or_else(|| {
            format!(
                "--currency {}: unknown ISO 4217 currency code",
                book.currency
            )
        })?;
        let locale = match book.locale {
            Some(tag) => tag.parse::<Locale>()?,
            None => locale_from_env(),
        };
        let threads = match book.threads {
            Some(0) => return Err("--threads must be at least 1".into()),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Plan {
            data: book.data,
            currency,
            locale,
            threads,
            command,
        })
    }
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
