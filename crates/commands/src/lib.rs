//! The commands of expansa: raw flags turned into a validated [`Plan`], and a plan run
//! against a book ([`execute`]). The `expansa` binary and the HTTP API share both: the API
//! turns its query parameters into the same flags, so both accept the same parameters, give
//! the same errors and print the same numbers.

mod args;
pub mod audit;
pub mod convert;
mod exec;
pub mod portal;
pub mod renewals;
pub mod users;

pub use args::*;
pub use exec::{
    base_of_parts, execute, execute_on_cells, execute_on_parts, kpi_report, movement_report,
    output_format, part_of, report_cells, runs_on_parts, trail, PartsBase, PartsState,
};
