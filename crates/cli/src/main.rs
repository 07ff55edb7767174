//! `expansa`: where recurring revenue grows and where it leaks.

mod args;
mod progress;

use args::{Cli, Command, Format, Plan};
use clap::Parser;
use expansa_import::{read_book, BookErrors, ImportOptions};
use expansa_ledger::Book;
use expansa_movements::{
    render_csv, render_json, render_table, render_trail, report, trail, TrailFormat,
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
    let book = load(plan)?;
    match &plan.command {
        Command::Check => Ok(summary(&book)),
        Command::Movements {
            query,
            format,
            explain: None,
        } => {
            let r = report(&book, query);
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
        } => {
            let idx = book
                .customers
                .ids
                .find(customer)
                .ok_or_else(|| anyhow::anyhow!("unknown customer {customer:?}"))?;
            let format = match format {
                Format::Json => TrailFormat::Json,
                Format::Csv => TrailFormat::Csv,
                Format::Table => TrailFormat::Table(plan.locale),
            };
            let mut out = render_trail(&book, customer, &trail(&book, query, idx), format);
            if !out.ends_with('\n') {
                out.push('\n');
            }
            Ok(out)
        }
    }
}

fn load(plan: &Plan) -> Result<Book, BookErrors> {
    let options = ImportOptions {
        currency: plan.currency,
    };
    read_book(&plan.data, &options, &progress::Bar::new())
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
