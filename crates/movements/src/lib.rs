//! Monthly MRR and its movements, exactly as `shared/spec/movement-rules.md` defines them.
//!
//! One pure pass per customer ([`customer_movements`]) decides every movement; the month
//! totals ([`report`]) and the per-customer trail ([`trail`]) are both built from it, so the
//! totals are always the sums of the trail. Customers are processed in parallel; sums are
//! exact, so the result does not depend on the thread count or on the order of the rows.

mod engine;
mod parts;
mod render;

pub use engine::{
    all_movements, customer_movements, mrr_by_month, mrr_history, part_sums, report,
    report_of_parts, report_selected, trail, BaseSums, ByCustomer, Kind, MonthTotals, Movement,
    PartsSums, Query, Report, Rules, Selection, Sums, KINDS,
};
pub use parts::CellsOfParts;
pub use render::{
    kind_label, render_csv, render_detail, render_json, render_table, render_trail, table,
};
