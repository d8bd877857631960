//! Bill records: Huawei Cloud's BSS fee records, resource records and
//! account changes, and UCloud's bill items, told by their content,
//! normalised to FinOps FOCUS 1.2 rows, and joined to the billing actions
//! traces record ([`join`]).
//!
//! Money is [`rust_decimal::Decimal`], read from the JSON or CSV text
//! itself: no amount ever passes through a float, and amounts of two
//! currencies are never added together. docs/COST.md gives the mapping.
//!
//! ```
//! use cts_audit::bills::{read_bills, totals, ReadOptions};
//! let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
//! let cny = &totals(&bills.records)["CNY"];
//! assert!(cny.refunds.is_sign_negative());
//! ```

mod focus;
pub mod join;
mod normalise;
mod read;
mod record;

#[cfg(feature = "summary")]
pub use focus::focus_frame;
pub use focus::{
    service_category, totals, write_focus_csv, write_focus_jsonl, FocusRow, Totals, FOCUS_COLUMNS,
};
pub use read::{csv_field, read_bills, read_bills_in, BillProblem, BillStats, Bills, ReadOptions};
pub use record::{
    cycle_bounds, parse_bill_time, parse_money, BillKind, BillRecord, Charge, ChargeTime, Provider,
};
