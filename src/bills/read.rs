//! Finding bill files, telling what each holds by its content, and reading its records.

use super::normalise::{kind_of, normalise, PageFacts};
use super::record::{clip, BillKind, BillRecord, Fields};
use crate::input::{self, InputFile, Opened};
use serde_json::value::RawValue;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How bills are read.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The currency of records whose record and page give none (UCloud
    /// items, JSON lines of records, console CSV without a currency column).
    pub currency: Option<String>,
}

/// A problem with a bill file or record: where, and what. The rest is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillProblem {
    /// The file.
    pub file: PathBuf,
    /// The record or line (`FILE:LINE`, `#N`, `#N.M`), when it is one record's.
    pub location: Option<String>,
    /// What went wrong.
    pub message: String,
    /// A record was not read (counted in [`BillStats::errors`]); else a
    /// warning about a record read anyway, or a file not read.
    pub record_lost: bool,
}

impl std::fmt::Display for BillProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.location {
            Some(location) => write!(f, "{}{location}: {}", self.file.display(), self.message),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

/// What reading bills came to. `read == records + errors`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct BillStats {
    /// Files read as bills: a page of bill records in it (perhaps empty),
    /// or records, read or not.
    pub files: u64,
    /// Files that were not bills, or could not be read.
    pub files_not_read: u64,
    /// Records found in the files read.
    pub read: u64,
    /// Records normalised.
    pub records: u64,
    /// Records that could not be (no amount, an amount that is not a number, …).
    pub errors: u64,
    /// Warnings about records read anyway.
    pub warnings: u64,
}

/// Every bill record read, with the problems met.
#[derive(Debug, Default)]
pub struct Bills {
    /// The records, in file order then record order.
    pub records: Vec<BillRecord>,
    /// What went wrong, in order.
    pub problems: Vec<BillProblem>,
    /// The counts.
    pub stats: BillStats,
}

/// The most one bill file may hold once decompressed: it is read whole, as
/// the scan reads a JSON document whole (`--max-record-bytes`).
const MAX_BILL_FILE: u64 = 512 << 20;

/// Reads every bill file under `paths` (folders walked, gzip and tar
/// read), each told by its content.
///
/// ```
/// use cts_audit::bills::{read_bills, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// assert!(bills.stats.records > 0 && bills.stats.errors == 0);
/// assert_eq!(bills.stats.read, bills.stats.records + bills.stats.errors);
/// ```
pub fn read_bills(paths: &[PathBuf], options: &ReadOptions) -> Bills {
    let (files, not_found) = input::find(paths);
    let mut bills = Bills::default();
    for (path, err) in not_found {
        bills.file_problem(&path, err.to_string());
    }
    for file in &files {
        read_file(file, options, &mut bills);
    }
    bills
}

impl Bills {
    fn file_problem(&mut self, path: &Path, message: String) {
        self.stats.files_not_read += 1;
        self.problems.push(BillProblem {
            file: path.to_path_buf(),
            location: None,
            message,
            record_lost: false,
        });
    }

    /// Reads one file's content (a whole decompressed file or tar member).
    pub(crate) fn read_content(&mut self, path: &Path, bytes: &[u8], options: &ReadOptions) {
        let bytes = input::strip_bom(bytes);
        let Ok(text) = std::str::from_utf8(bytes) else {
            return self.file_problem(path, "not UTF-8 text: not a bill file".into());
        };
        let start = text.trim_start();
        let mut reader = Reader {
            path,
            options,
            bills: self,
            found: 0,
            page_seen: false,
        };
        if start.starts_with(['{', '[']) {
            match serde_json::from_str::<&RawValue>(text) {
                Ok(document) => reader.document(document),
                Err(_) if text.trim_end().contains('\n') => reader.lines(text),
                Err(err) => reader.bills.file_problem(path, format!("not JSON: {err}")),
            }
        } else if start.is_empty() {
            return self.file_problem(path, "empty".into());
        } else {
            reader.csv(text);
        }
        if reader.found > 0 || reader.page_seen {
            self.stats.files += 1;
        }
    }
}

/// Reads the bill records in one file's content (decompressed), told by
/// that content: for a plugin that has the bytes already. `name` is where
/// problems say they are.
///
/// ```
/// use cts_audit::bills::{read_bills_in, ReadOptions};
/// let page = br#"{"currency":"CNY","fee_records":[{"bill_type":2,"amount":"12.50000000","trade_id":"CS1"}]}"#;
/// let bills = read_bills_in("page.json".as_ref(), page, &ReadOptions::default());
/// assert_eq!(bills.records[0].billed.to_string(), "12.50000000");
/// ```
pub fn read_bills_in(name: &Path, bytes: &[u8], options: &ReadOptions) -> Bills {
    let mut bills = Bills::default();
    bills.read_content(name, bytes, options);
    bills
}

fn read_file(file: &InputFile, options: &ReadOptions, bills: &mut Bills) {
    let opened = match input::open(file) {
        Ok(opened) => opened,
        Err(err) => return bills.file_problem(&file.path, err.to_string()),
    };
    match opened {
        Opened::Content(content) => match read_capped(content) {
            Ok(bytes) => bills.read_content(&file.path, &bytes, options),
            Err(why) => bills.file_problem(&file.path, why),
        },
        Opened::Tar(archive) => {
            let result = input::each_tar_member(&file.path, archive, &mut |member| {
                let read = member
                    .raw
                    .and_then(input::open_member)
                    .map_err(|e| e.to_string())
                    .and_then(read_capped);
                match read {
                    Ok(bytes) => bills.read_content(&member.path, &bytes, options),
                    Err(why) => bills.file_problem(&member.path, why),
                }
                std::ops::ControlFlow::Continue(())
            });
            if let Some(err) = result {
                bills.file_problem(&file.path, err.to_string());
            }
        }
    }
}

fn read_capped(content: impl Read) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    content
        .take(MAX_BILL_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read: {e}"))?;
    if bytes.len() as u64 > MAX_BILL_FILE {
        return Err(format!(
            "over {} MiB once decompressed: not read",
            MAX_BILL_FILE >> 20
        ));
    }
    Ok(bytes)
}

/// The arrays a page keeps its records in, and their kind.
const PAGES: &[(&str, Option<BillKind>)] = &[
    ("fee_records", Some(BillKind::FeeRecord)),
    ("monthly_records", Some(BillKind::MonthlyRecord)),
    ("Items", Some(BillKind::UCloudItem)),
    // Account changes; the records' own fields decide.
    ("records", None),
];

struct Reader<'r> {
    path: &'r Path,
    options: &'r ReadOptions,
    bills: &'r mut Bills,
    /// Records found (read or not).
    found: u64,
    /// A page of bill records was found (perhaps empty).
    page_seen: bool,
}

impl Reader<'_> {
    /// A JSON document: a page, a record, or an array of either.
    fn document(&mut self, document: &RawValue) {
        if document.get().starts_with('[') {
            match serde_json::from_str::<Vec<&RawValue>>(document.get()) {
                Ok(items) => {
                    for (index, item) in items.into_iter().enumerate() {
                        self.object(item, &format!("#{}", index + 1));
                    }
                }
                Err(err) => {
                    return self
                        .bills
                        .file_problem(self.path, format!("not a JSON array: {err}"))
                }
            }
        } else {
            self.object(document, "");
        }
        // An empty page is a bill file with no charges; a document that
        // held neither a page nor a record is not a bill file.
        if self.found == 0 && !self.page_seen {
            self.bills
                .file_problem(self.path, "no bill records (fee_records, monthly_records, account changes or UCloud Items) in it".into());
        }
    }

    /// JSON lines: each a page or a record.
    fn lines(&mut self, text: &str) {
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let location = format!(":{}", number + 1);
            match serde_json::from_str::<&RawValue>(line) {
                Ok(value) => self.object(value, &location),
                Err(err) => self.lost(&location, format!("not JSON: {err}")),
            }
        }
    }

    /// One JSON object: a page of records, or one record. `at` is where it is.
    fn object(&mut self, value: &RawValue, at: &str) {
        let fields: Fields<'_> = match serde_json::from_str(value.get()) {
            Ok(fields) => fields,
            Err(_) => return self.lost(at, format!("not a JSON object: {}", clip(value.get()))),
        };
        for (array, kind) in PAGES {
            let Some(items) = fields.get(*array) else {
                continue;
            };
            self.page_seen = true;
            let page = PageFacts {
                currency: super::record::text(&fields, "currency"),
            };
            if let Some(code) = super::record::text(&fields, "RetCode").filter(|c| c != "0") {
                self.warn(
                    at,
                    format!("a UCloud page with RetCode {code}: its items are read"),
                );
            }
            let items: Vec<&RawValue> = match serde_json::from_str(items.get()) {
                Ok(items) => items,
                Err(_) if items.get() == "null" => Vec::new(),
                Err(_) => return self.lost(at, format!("`{array}` is not an array")),
            };
            let sep = if at.is_empty() { "#" } else { "." };
            for (index, item) in items.into_iter().enumerate() {
                let location = format!("{at}{sep}{}", index + 1);
                self.record(item, *kind, &page, &location);
            }
            return;
        }
        self.record(value, None, &PageFacts::default(), at);
    }

    /// One record, of the page's kind or told by its fields.
    fn record(&mut self, value: &RawValue, kind: Option<BillKind>, page: &PageFacts, at: &str) {
        let at = if at.is_empty() { "#1" } else { at };
        let fields: Fields<'_> = match serde_json::from_str(value.get()) {
            Ok(fields) => fields,
            Err(_) => return self.lost(at, format!("not a JSON object: {}", clip(value.get()))),
        };
        let Some(kind) = kind_of(&fields).or(kind) else {
            return self.lost(
                at,
                "not a bill record: no amount with a bill type, order or resource".into(),
            );
        };
        let source = format!("{}{at}", self.path.display());
        match normalise(
            kind,
            &fields,
            page,
            self.options.currency.as_deref(),
            source,
        ) {
            Ok(normalised) => {
                for warning in normalised.warnings {
                    self.warn(at, warning);
                }
                self.found += 1;
                self.bills.stats.read += 1;
                self.bills.stats.records += 1;
                self.bills.records.push(normalised.record);
            }
            Err(why) => self.lost(at, format!("{} not read: {why}", kind.as_str())),
        }
    }

    /// A console CSV export, or a CSV of the API's fields: each row read as
    /// the record its header names.
    fn csv(&mut self, text: &str) {
        let delimiter = input::csv_delimiter(text.as_bytes()).unwrap_or(b',');
        let mut rows = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_reader(text.as_bytes());
        let header = match rows.headers() {
            Ok(header) => header.clone(),
            Err(err) => {
                return self
                    .bills
                    .file_problem(self.path, format!("not CSV: {err}"))
            }
        };
        let names: Vec<Option<&'static str>> = header.iter().map(csv_field).collect();
        if !names
            .iter()
            .flatten()
            .any(|n| matches!(*n, "amount" | "consume_amount" | "change_amount" | "Amount"))
        {
            return self.bills.file_problem(
                self.path,
                "not a bill file: no amount column (amount, Amount, Amount Due, Original Cost, \
                 consume_amount, change_amount, 应付金额, 消费金额)"
                    .into(),
            );
        }
        for (index, row) in rows.records().enumerate() {
            // The header is line 1.
            let at = format!(":{}", index + 2);
            let row = match row {
                Ok(row) => row,
                Err(err) => {
                    self.lost(&at, format!("not a CSV row: {err}"));
                    continue;
                }
            };
            let object: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .zip(row.iter())
                .filter_map(|(name, value)| {
                    let value = value.trim();
                    Some((
                        (*name)?.to_owned(),
                        serde_json::Value::String(value.to_owned()),
                    ))
                    .filter(|_| !value.is_empty())
                })
                .collect();
            let json = serde_json::Value::Object(object).to_string();
            match serde_json::from_str::<&RawValue>(&json) {
                Ok(value) => self.record(value, None, &PageFacts::default(), &at),
                Err(err) => self.lost(&at, err.to_string()),
            }
        }
    }

    /// A record (or line, or row) that could not be read: counted as read
    /// and as an error.
    fn lost(&mut self, at: &str, message: String) {
        self.found += 1;
        self.bills.stats.read += 1;
        self.bills.stats.errors += 1;
        self.bills.problems.push(BillProblem {
            file: self.path.to_path_buf(),
            location: Some(at.to_owned()),
            message,
            record_lost: true,
        });
    }

    fn warn(&mut self, at: &str, message: String) {
        self.bills.stats.warnings += 1;
        self.bills.problems.push(BillProblem {
            file: self.path.to_path_buf(),
            location: Some(at.to_owned()),
            message,
            record_lost: false,
        });
    }
}

/// The API field a CSV column holds: the API's own names, and the console
/// exports' headers in English and Chinese (reference §5).
///
/// ```
/// use cts_audit::bills::csv_field;
/// assert_eq!(csv_field("Order No."), Some("trade_id"));
/// assert_eq!(csv_field("账期"), Some("cycle"));
/// assert_eq!(csv_field("fee"), None);
/// ```
pub fn csv_field(header: &str) -> Option<&'static str> {
    let key: String = header
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '_')
        .flat_map(char::to_lowercase)
        .collect();
    Some(match key.as_str() {
        "billingcycle" | "cycle" | "month" | "账期" => "cycle",
        "bill_date" | "billdate" | "expendituretime" | "消费日期" | "消费时间" => {
            "bill_date"
        }
        "resource_id" | "resourceid" | "资源id" => "resource_id",
        "res_instance_id" => "res_instance_id",
        "resource_name" | "resourcename" | "资源名称" => "resource_name",
        "trade_id"
        | "tradeid"
        | "orderno"
        | "orderid"
        | "ordernumber"
        | "unsubscriptionorderid"
        | "orderidunsubscriptionorderid"
        | "订单号"
        | "交易id" => "trade_id",
        "order_id" => "order_id",
        "preorderid" | "pre_order_id" => "pre_order_id",
        "bill_type" | "billtype" | "ordertype" | "账单类型" | "订单类型" => "bill_type",
        "charge_mode" | "billingmode" | "计费模式" => "charge_mode",
        "amount" | "amountdue" | "originalcost" | "应付金额" | "消费金额" | "金额" => {
            "amount"
        }
        "consume_amount" => "consume_amount",
        "change_amount" => "change_amount",
        "official_amount" | "listprice" | "官网价" => "official_amount",
        "discount_amount" | "discount" | "优惠金额" => "discount_amount",
        "region" | "区域" => "region",
        "cloud_service_type" | "servicetypecode" | "云服务类型编码" => "cloud_service_type",
        "cloud_service_type_name" | "servicetype" | "云服务类型" => "cloud_service_type_name",
        "resource_type" | "resourcetypecode" | "资源类型编码" => "resource_type",
        "resourcetype" | "资源类型" => "resource_type_name",
        "effective_time" | "usagestarttime" | "使用开始时间" => "effective_time",
        "expire_time" | "usageendtime" | "使用结束时间" => "expire_time",
        "consume_time" => "consume_time",
        "trade_time" => "trade_time",
        "customer_id" | "linkedaccount" => "customer_id",
        "payer_account_id" | "payeraccountid" => "payer_account_id",
        "account_name" | "accountname" | "payeraccountname" => "account_name",
        "sku_code" | "productid" => "sku_code",
        "currency" | "币种" => "currency",
        "usage" => "usage",
        _ => return None,
    })
}
