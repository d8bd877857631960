//! One bill record, normalised from whichever provider API or export it came from.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use serde_json::value::RawValue;
use std::collections::HashMap;

/// Who issued the bill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Huawei Cloud (BSS APIs, console exports).
    Huawei,
    /// UCloud (`ListUBillDetail`).
    UCloud,
}

impl Provider {
    /// The name FOCUS gives it (ProviderName, PublisherName, InvoiceIssuerName).
    ///
    /// ```
    /// assert_eq!(cts_audit::bills::Provider::Huawei.name(), "Huawei Cloud");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            Provider::Huawei => "Huawei Cloud",
            Provider::UCloud => "UCloud",
        }
    }
}

/// Which source a record came from, as told by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillKind {
    /// Huawei `fee_records` (`GET /v2/bills/customer-bills/res-fee-records`).
    FeeRecord,
    /// Huawei `monthly_records` (`POST /v2/bills/customer-bills/res-records/query`).
    MonthlyRecord,
    /// Huawei account change records (`…/account-change-records`).
    AccountChange,
    /// UCloud `Items` (`ListUBillDetail`).
    UCloudItem,
}

impl BillKind {
    /// Its name in output and messages.
    ///
    /// ```
    /// assert_eq!(cts_audit::bills::BillKind::FeeRecord.as_str(), "fee_record");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            BillKind::FeeRecord => "fee_record",
            BillKind::MonthlyRecord => "monthly_record",
            BillKind::AccountChange => "account_change",
            BillKind::UCloudItem => "ucloud_item",
        }
    }

    /// The provider whose records these are.
    pub fn provider(self) -> Provider {
        match self {
            BillKind::UCloudItem => Provider::UCloud,
            _ => Provider::Huawei,
        }
    }

    /// Resource-level records (not account movements): what a cost is
    /// summed from when both kinds name the same order.
    pub fn is_resource_level(self) -> bool {
        !matches!(self, BillKind::AccountChange)
    }
}

/// What a charge was for: the provider's bill type or order type, in the
/// terms the join and FOCUS need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Charge {
    /// A new yearly/monthly purchase (Huawei bill_type 1, UCloud `OT_BUY`).
    NewPurchase,
    /// A manual renewal (bill_type 2, `OT_RENEW`).
    Renewal,
    /// An automatic renewal (bill_type 8, `OT_POSTPAID_RENEW`).
    AutoRenewal,
    /// A change of specification (bill_type 3, `OT_UPGRADE`/`OT_DOWNGRADE`).
    Change,
    /// Another upfront or recurring purchase (bill_type 14, 18, 103,
    /// `OT_RECOVER`; an account deduction).
    Purchase,
    /// Metered use (bill_type 5, 12, 23; `OT_SUSPEND`, `OT_POSTPAID_PAYMENT`).
    Usage,
    /// A refund on unsubscription (bill_type 4, `OT_REFUND`; money back to
    /// the account).
    Refund,
    /// A refund on a change (bill_type 20).
    ChangeRefund,
    /// A refund on a change from yearly/monthly to pay-per-use (bill_type 24).
    ToOnDemandRefund,
    /// A provider-granted compensation (bill_type 9).
    Credit,
    /// Any other adjustment (bill_type 13, 16, 25; `OT_ADDITIONAL`).
    Adjustment,
}

impl Charge {
    /// Money back: its BilledCost is negative whatever sign the source gave.
    ///
    /// ```
    /// use cts_audit::bills::Charge;
    /// assert!(Charge::Refund.is_refund() && !Charge::Renewal.is_refund());
    /// ```
    pub fn is_refund(self) -> bool {
        matches!(
            self,
            Charge::Refund | Charge::ChangeRefund | Charge::ToOnDemandRefund
        )
    }

    /// The FOCUS 1.2 ChargeCategory. Refunds are negative Purchases, as the
    /// FOCUS specification says (docs/COST.md gives why).
    pub fn category(self) -> &'static str {
        match self {
            Charge::Usage => "Usage",
            Charge::Credit => "Credit",
            Charge::Adjustment => "Adjustment",
            _ => "Purchase",
        }
    }

    /// Its name in output.
    pub fn as_str(self) -> &'static str {
        match self {
            Charge::NewPurchase => "new_purchase",
            Charge::Renewal => "renewal",
            Charge::AutoRenewal => "auto_renewal",
            Charge::Change => "change",
            Charge::Purchase => "purchase",
            Charge::Usage => "usage",
            Charge::Refund => "refund",
            Charge::ChangeRefund => "change_refund",
            Charge::ToOnDemandRefund => "to_on_demand_refund",
            Charge::Credit => "credit",
            Charge::Adjustment => "adjustment",
        }
    }

    /// A Huawei `bill_type` code (§4 of the reference).
    ///
    /// ```
    /// use cts_audit::bills::Charge;
    /// assert_eq!(Charge::from_huawei_bill_type(4), Some(Charge::Refund));
    /// assert_eq!(Charge::from_huawei_bill_type(77), None);
    /// ```
    pub fn from_huawei_bill_type(code: i64) -> Option<Charge> {
        Some(match code {
            1 => Charge::NewPurchase,
            2 => Charge::Renewal,
            3 => Charge::Change,
            4 => Charge::Refund,
            5 | 12 | 23 => Charge::Usage,
            8 => Charge::AutoRenewal,
            9 => Charge::Credit,
            13 | 16 | 25 => Charge::Adjustment,
            14 | 18 | 103 => Charge::Purchase,
            20 => Charge::ChangeRefund,
            24 => Charge::ToOnDemandRefund,
            _ => return None,
        })
    }

    /// A bill type as the console's exports write it, in English or
    /// Chinese ("Refund-unsubscription", "续费", …).
    pub fn from_huawei_text(text: &str) -> Option<Charge> {
        if let Ok(code) = text.trim().parse::<i64>() {
            return Charge::from_huawei_bill_type(code);
        }
        let t = text.to_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
        Some(if has(&["pay-per-use", "按需"]) && has(&["refund", "退"]) {
            Charge::ToOnDemandRefund
        } else if has(&["refund", "退"]) && has(&["change", "变更"]) {
            Charge::ChangeRefund
        } else if has(&["refund", "unsubscri", "退订", "退款"]) {
            Charge::Refund
        } else if has(&["auto-renew", "auto renew", "自动续费"]) {
            Charge::AutoRenewal
        } else if has(&["renew", "续费"]) {
            Charge::Renewal
        } else if has(&["new purchase", "purchase", "新购"]) {
            Charge::NewPurchase
        } else if has(&["change", "变更"]) {
            Charge::Change
        } else if has(&["compensat", "补偿"]) {
            Charge::Credit
        } else if has(&["adjust", "调账", "deduction", "扣减"]) {
            Charge::Adjustment
        } else if has(&["use", "usage", "hourly", "使用", "按需"]) {
            Charge::Usage
        } else {
            return None;
        })
    }

    /// A UCloud `OrderType`.
    ///
    /// ```
    /// use cts_audit::bills::Charge;
    /// assert_eq!(Charge::from_ucloud_order_type("OT_RENEW"), Some(Charge::Renewal));
    /// ```
    pub fn from_ucloud_order_type(order_type: &str) -> Option<Charge> {
        Some(match order_type {
            "OT_BUY" => Charge::NewPurchase,
            "OT_RENEW" => Charge::Renewal,
            "OT_UPGRADE" | "OT_DOWNGRADE" => Charge::Change,
            "OT_REFUND" => Charge::Refund,
            "OT_RECOVER" => Charge::Purchase,
            "OT_SUSPEND" | "OT_POSTPAID_PAYMENT" => Charge::Usage,
            "OT_POSTPAID_RENEW" => Charge::AutoRenewal,
            "OT_ADDITIONAL" => Charge::Adjustment,
            _ => return None,
        })
    }
}

/// When a charge happened, as finely as its source says: an instant, a day
/// or a month (as an interval of epoch milliseconds, end exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChargeTime {
    /// The first millisecond it may have happened at.
    pub start_ms: i64,
    /// The millisecond after the last it may have happened at.
    pub end_ms: i64,
}

/// One bill record: one FOCUS row, and one charge for the join.
#[derive(Debug, Clone, PartialEq)]
pub struct BillRecord {
    /// Which API or export it came from.
    pub kind: BillKind,
    /// Where it was read: `FILE:LINE`, `FILE#N` or `FILE#N.M`.
    pub source: String,
    /// The provider's row id, else the trade or order id with the resource.
    pub id: String,
    /// What was billed, after discounts; negative for money back.
    pub billed: Decimal,
    /// The list price (Huawei `official_amount`), when given.
    pub list: Option<Decimal>,
    /// The list price less discounts, when both are given.
    pub contracted: Option<Decimal>,
    /// ISO 4217 code.
    pub currency: String,
    /// What the charge was for.
    pub charge: Charge,
    /// The provider's code for it (`bill_type`, `OrderType`,
    /// `revenue_expense_type`).
    pub bill_type: String,
    /// Billing mode (`charge_mode`, `ChargeType`).
    pub charge_mode: Option<String>,
    /// Period type code (`period_type`).
    pub period_type: Option<String>,
    /// Order or transaction id (`trade_id`, `OrderNo`).
    pub trade_id: Option<String>,
    /// Other order ids it belongs to: `order_id`, `relative_order_id`,
    /// `pre_order_id`.
    pub orders: Vec<String>,
    /// The resource charged.
    pub resource_id: Option<String>,
    /// Resources it is part of, or its child: `sub_resource_id`,
    /// `parent_resource_id`, `root_resource_id`.
    pub related_resources: Vec<String>,
    /// Resource name.
    pub resource_name: Option<String>,
    /// Resource type code or name.
    pub resource_type: Option<String>,
    /// Region id.
    pub region: Option<String>,
    /// SKU (`sku_code`).
    pub sku: Option<String>,
    /// Service code (`cloud_service_type`, UCloud `ResourceType`).
    pub service_code: Option<String>,
    /// Service display name.
    pub service_name: Option<String>,
    /// A description of what was charged.
    pub description: Option<String>,
    /// The billing (payer) account.
    pub account_id: Option<String>,
    /// The billing account's name.
    pub account_name: Option<String>,
    /// The consuming sub-account, when it is not the payer.
    pub sub_account_id: Option<String>,
    /// The billing month (`cycle`), cut in UTC+8.
    pub cycle: Option<(i32, u32)>,
    /// The charge period (UTC, end exclusive).
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// When the charge happened, for the join.
    pub time: Option<ChargeTime>,
    /// Usage quantity and unit (pay-per-use).
    pub quantity: Option<(Decimal, Option<String>)>,
}

/// A record's fields as written, borrowed: strings, numbers and the rest
/// as raw JSON text.
pub(crate) type Fields<'a> = HashMap<std::borrow::Cow<'a, str>, &'a RawValue>;

/// The text of a field: a string's content, a number's digits, `None` for
/// null, an empty string, an object or an array.
pub(crate) fn text(fields: &Fields<'_>, name: &str) -> Option<String> {
    let raw = fields.get(name)?.get();
    let value = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).ok()?
    } else if raw.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
        raw.to_owned()
    } else {
        return None;
    };
    let value = value.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// An amount: a JSON number or a string of one, read exactly. `Ok(None)`
/// when absent or null.
pub(crate) fn money(fields: &Fields<'_>, name: &str) -> Result<Option<Decimal>, String> {
    let Some(raw) = fields.get(name) else {
        return Ok(None);
    };
    let raw = raw.get();
    if raw == "null" {
        return Ok(None);
    }
    let digits = if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).map_err(|e| format!("`{name}`: {e}"))?
    } else {
        raw.to_owned()
    };
    parse_money(&digits)
        .map(Some)
        .map_err(|why| format!("`{name}` is {}: {why}", clip(raw)))
}

/// Reads an amount exactly: plain decimals, a leading sign, thousands
/// separators, and the exponent form JSON allows.
///
/// ```
/// use cts_audit::bills::parse_money;
/// assert_eq!(parse_money("12,340.00000001").unwrap().to_string(), "12340.00000001");
/// assert_eq!(parse_money("1.5E+2").unwrap().to_string(), "150");
/// assert!(parse_money("12 CNY").is_err());
/// ```
pub fn parse_money(text: &str) -> Result<Decimal, String> {
    let t = text.trim().replace(',', "");
    if t.is_empty() {
        return Err("empty".into());
    }
    if t.contains(['e', 'E']) {
        return Decimal::from_scientific(&t).map_err(|e| e.to_string());
    }
    Decimal::from_str_exact(&t).map_err(|e| e.to_string())
}

pub(crate) fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(40).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    format!("{clipped:?}")
}

/// UTC+8, where Huawei cuts bill dates and cycles.
pub(crate) fn china() -> FixedOffset {
    // 8 h is well inside the ±24 h an offset may be.
    FixedOffset::east_opt(8 * 3600).expect("UTC+8 is a valid offset")
}

/// A `YYYY-MM` cycle.
pub(crate) fn parse_cycle(text: &str) -> Option<(i32, u32)> {
    let (year, month) = text.trim().split_once('-')?;
    let (year, month) = (
        year.parse().ok()?,
        month.get(..2).unwrap_or(month).parse().ok()?,
    );
    (1970..=9999).contains(&year).then_some(())?;
    (1..=12).contains(&month).then_some((year, month))
}

/// The cycle's first instant (00:00 UTC+8 on its first day) and the next
/// cycle's, in UTC.
///
/// ```
/// use cts_audit::bills::cycle_bounds;
/// let (start, end) = cycle_bounds((2025, 1)).unwrap();
/// assert_eq!(start.to_rfc3339(), "2024-12-31T16:00:00+00:00");
/// assert_eq!(end.to_rfc3339(), "2025-01-31T16:00:00+00:00");
/// ```
pub fn cycle_bounds((year, month): (i32, u32)) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let start = NaiveDate::from_ymd_opt(year, month, 1)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let at = |d: NaiveDate| {
        china()
            .from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
            .single()
            .map(|t| t.with_timezone(&Utc))
    };
    Some((at(start)?, at(next)?))
}

/// The cycle (UTC+8 month) an instant falls in.
pub(crate) fn cycle_of(time: DateTime<Utc>) -> (i32, u32) {
    let local = time.with_timezone(&china());
    (local.year(), local.month())
}

/// A `YYYY-MM-DD` day (UTC+8) as an interval.
pub(crate) fn day_bounds(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let day = NaiveDate::parse_from_str(text.trim().get(..10)?, "%Y-%m-%d").ok()?;
    let start = china()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0)?)
        .single()?
        .with_timezone(&Utc);
    Some((start, start + chrono::Duration::days(1)))
}

/// A time as bills write it: RFC 3339 (`…Z` or with an offset), a date and
/// time without a zone (read in `zone`), or epoch seconds or milliseconds.
///
/// ```
/// use cts_audit::bills::parse_bill_time;
/// let utc = parse_bill_time("2024-06-19T06:25:00Z").unwrap();
/// assert_eq!(parse_bill_time("2024-06-19 14:25:00").unwrap(), utc); // no zone: UTC+8
/// assert_eq!(parse_bill_time("1718778300").unwrap(), utc); // epoch seconds
/// ```
pub fn parse_bill_time(text: &str) -> Option<DateTime<Utc>> {
    let t = text.trim();
    if t.bytes().all(|b| b.is_ascii_digit()) && !t.is_empty() {
        let n: i64 = t.parse().ok()?;
        // Seconds until 2286; more digits are milliseconds.
        let ms = if t.len() <= 10 {
            n.checked_mul(1000)?
        } else {
            n
        };
        return DateTime::from_timestamp_millis(ms);
    }
    if let Ok(time) = DateTime::parse_from_rfc3339(t) {
        return Some(time.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(time) = DateTime::parse_from_str(t, format) {
            return Some(time.with_timezone(&Utc));
        }
    }
    for format in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, format) {
            return china()
                .from_local_datetime(&local)
                .single()
                .map(|t| t.with_timezone(&Utc));
        }
    }
    None
}
