//! cts-audit: read exported Huawei Cloud CTS audit trails, name every Billing
//! Center operation they record, and flag the sensitive ones.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod analyze;
pub mod bills;
pub mod catalog;
pub mod classify;
pub mod input;
pub mod integrity;
pub mod records;
pub mod report;
pub mod rules;
pub mod scan;
pub mod siem;
pub mod trace;
pub mod verdict;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
/// docs/REPORT.md's Rust example, compiled and run as a doctest.
#[cfg(all(doctest, feature = "html"))]
#[doc = include_str!("../docs/REPORT.md")]
pub struct ReportDoctests;
#[cfg(feature = "summary")]
pub mod parquet;
#[cfg(feature = "summary")]
pub mod summary;
