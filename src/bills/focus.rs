//! Bill records as FinOps FOCUS 1.2 rows: the mandatory columns under their FOCUS names, the conditional ones the sources have, and the providers' own keys as `x_` columns.

use super::record::{cycle_bounds, BillKind, BillRecord, Charge};
use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;

/// One FOCUS 1.2 row. Amounts are decimal strings with every decimal the
/// source gave; datetimes are UTC `YYYY-MM-DDTHH:MM:SSZ`, ends exclusive.
///
/// ```
/// use cts_audit::bills::{read_bills, FocusRow, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// let row = FocusRow::from(&bills.records[0]);
/// assert_eq!(row.provider_name, "Huawei Cloud");
/// assert!(row.billing_period_start.ends_with('Z'));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
#[allow(missing_docs)] // Each field is the FOCUS column of its name.
pub struct FocusRow {
    pub billed_cost: String,
    pub effective_cost: String,
    pub list_cost: String,
    pub contracted_cost: String,
    pub billing_currency: String,
    pub billing_account_id: String,
    pub billing_account_name: Option<String>,
    pub billing_period_start: String,
    pub billing_period_end: String,
    pub charge_category: &'static str,
    pub charge_class: Option<&'static str>,
    pub charge_description: Option<String>,
    pub charge_frequency: &'static str,
    pub charge_period_start: String,
    pub charge_period_end: String,
    pub invoice_issuer_name: &'static str,
    pub pricing_quantity: Option<String>,
    pub pricing_unit: Option<String>,
    pub provider_name: &'static str,
    pub publisher_name: &'static str,
    pub region_id: Option<String>,
    pub resource_id: Option<String>,
    pub resource_name: Option<String>,
    pub resource_type: Option<String>,
    pub service_category: &'static str,
    pub service_name: String,
    pub sku_id: Option<String>,
    pub sub_account_id: Option<String>,
    /// The provider's bill type (`bill_type`, `OrderType`, `revenue_expense_type`).
    #[serde(rename = "x_BillType")]
    pub x_bill_type: String,
    /// The charge in cts-audit's terms (`renewal`, `refund`, …).
    #[serde(rename = "x_Charge")]
    pub x_charge: &'static str,
    /// Order or transaction id (`trade_id`, `OrderNo`).
    #[serde(rename = "x_TradeId")]
    pub x_trade_id: Option<String>,
    /// Other order ids (`order_id`, `relative_order_id`, `pre_order_id`), `;`-separated.
    #[serde(rename = "x_OrderIds")]
    pub x_order_ids: Option<String>,
    /// Billing mode (`charge_mode`, `ChargeType`).
    #[serde(rename = "x_ChargeMode")]
    pub x_charge_mode: Option<String>,
    /// Which API the record came from (`fee_record`, `monthly_record`, …).
    #[serde(rename = "x_SourceKind")]
    pub x_source_kind: &'static str,
    /// The provider's row id.
    #[serde(rename = "x_BillId")]
    pub x_bill_id: String,
    /// Where it was read: `FILE:LINE` or `FILE#N.M`.
    #[serde(rename = "x_Source")]
    pub x_source: String,
}

/// The FOCUS columns, in the order rows are written.
///
/// ```
/// assert_eq!(cts_audit::bills::FOCUS_COLUMNS[0], "BilledCost");
/// ```
pub const FOCUS_COLUMNS: &[&str] = &[
    "BilledCost",
    "EffectiveCost",
    "ListCost",
    "ContractedCost",
    "BillingCurrency",
    "BillingAccountId",
    "BillingAccountName",
    "BillingPeriodStart",
    "BillingPeriodEnd",
    "ChargeCategory",
    "ChargeClass",
    "ChargeDescription",
    "ChargeFrequency",
    "ChargePeriodStart",
    "ChargePeriodEnd",
    "InvoiceIssuerName",
    "PricingQuantity",
    "PricingUnit",
    "ProviderName",
    "PublisherName",
    "RegionId",
    "ResourceId",
    "ResourceName",
    "ResourceType",
    "ServiceCategory",
    "ServiceName",
    "SkuId",
    "SubAccountId",
    "x_BillType",
    "x_Charge",
    "x_TradeId",
    "x_OrderIds",
    "x_ChargeMode",
    "x_SourceKind",
    "x_BillId",
    "x_Source",
];

/// A FOCUS datetime.
pub(crate) fn focus_time(time: DateTime<Utc>) -> String {
    time.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl From<&BillRecord> for FocusRow {
    fn from(r: &BillRecord) -> FocusRow {
        let provider = r.kind.provider().name();
        let billing = r.cycle.and_then(cycle_bounds);
        let (billing_start, billing_end) = match billing {
            Some((start, end)) => (focus_time(start), focus_time(end)),
            None => (String::new(), String::new()),
        };
        let (charge_start, charge_end) = match r.period.or(billing) {
            Some((start, end)) => (focus_time(start), focus_time(end)),
            None => (String::new(), String::new()),
        };
        FocusRow {
            billed_cost: r.billed.to_string(),
            // Not amortized: a yearly/monthly purchase is spent when billed.
            effective_cost: r.billed.to_string(),
            list_cost: r.list.unwrap_or(r.billed).to_string(),
            contracted_cost: r.contracted.unwrap_or(r.billed).to_string(),
            billing_currency: r.currency.clone(),
            billing_account_id: r.account_id.clone().unwrap_or_default(),
            billing_account_name: r.account_name.clone(),
            billing_period_start: billing_start,
            billing_period_end: billing_end,
            charge_category: r.charge.category(),
            charge_class: None,
            charge_description: r.description.clone(),
            charge_frequency: frequency(r),
            charge_period_start: charge_start,
            charge_period_end: charge_end,
            invoice_issuer_name: provider,
            pricing_quantity: r.quantity.as_ref().map(|(q, _)| q.to_string()),
            pricing_unit: r.quantity.as_ref().and_then(|(_, u)| u.clone()),
            provider_name: provider,
            publisher_name: provider,
            region_id: r.region.clone(),
            resource_id: r.resource_id.clone(),
            resource_name: r.resource_name.clone(),
            resource_type: r.resource_type.clone(),
            service_category: service_category(r.service_code.as_deref()),
            service_name: r.service_name.clone().unwrap_or_else(|| match r.kind {
                BillKind::AccountChange => "Account".to_owned(),
                _ => "Other".to_owned(),
            }),
            sku_id: r.sku.clone(),
            sub_account_id: r.sub_account_id.clone(),
            x_bill_type: r.bill_type.clone(),
            x_charge: r.charge.as_str(),
            x_trade_id: r.trade_id.clone(),
            x_order_ids: (!r.orders.is_empty()).then(|| r.orders.join(";")),
            x_charge_mode: r.charge_mode.clone(),
            x_source_kind: r.kind.as_str(),
            x_bill_id: r.id.clone(),
            x_source: r.source.clone(),
        }
    }
}

/// FOCUS ChargeFrequency: metered use is Usage-Based (never for a
/// Purchase), yearly/monthly charges Recurring, the rest One-Time.
fn frequency(r: &BillRecord) -> &'static str {
    if r.charge == Charge::Usage {
        return "Usage-Based";
    }
    if r.period_type.as_deref() == Some("5") {
        return "One-Time";
    }
    match r.charge_mode.as_deref() {
        Some("1" | "Year" | "Month" | "Day") => "Recurring",
        _ if matches!(r.charge, Charge::Renewal | Charge::AutoRenewal) => "Recurring",
        _ => "One-Time",
    }
}

/// FOCUS ServiceCategory from a service code (Huawei
/// `hws.service.type.ec2`, UCloud `uhost`); `Other` when unknown.
///
/// ```
/// use cts_audit::bills::service_category;
/// assert_eq!(service_category(Some("hws.service.type.ec2")), "Compute");
/// assert_eq!(service_category(Some("udb")), "Databases");
/// assert_eq!(service_category(None), "Other");
/// ```
pub fn service_category(code: Option<&str>) -> &'static str {
    let Some(code) = code else { return "Other" };
    let code = code.to_ascii_lowercase();
    let name = code.rsplit('.').next().unwrap_or(&code);
    match name {
        "ec2" | "ecs" | "bms" | "cce" | "cci" | "as" | "functiongraph" | "fgs" | "uhost"
        | "uphost" | "uk8s" | "cube" => "Compute",
        "evs" | "obs" | "sfs" | "cbr" | "vbs" | "csbs" | "udisk" | "ufile" | "us3" | "ufs" => {
            "Storage"
        }
        "vpc" | "eip" | "elb" | "nat" | "cdn" | "dns" | "vpn" | "dc" | "er" | "unet" | "ulb"
        | "ucdn" | "bandwidth" | "sharebandwidth" => "Networking",
        "rds" | "dds" | "gaussdb" | "gaussdbformysql" | "dcs" | "geminidb" | "taurus" | "udb"
        | "umem" | "uredis" | "umongodb" => "Databases",
        "dli" | "dws" | "mrs" | "css" | "dis" | "dataarts" | "uhadoop" | "ukafka" => "Analytics",
        "waf" | "hss" | "antiddos" | "cfw" | "dbss" | "kms" | "uads" | "uwaf" => "Security",
        "iam" | "iamidentitycenter" => "Identity",
        "lts" | "ces" | "aom" | "apm" | "cts" | "umon" => "Management and Governance",
        "modelarts" | "pangu" | "ugpu" => "AI and Machine Learning",
        "smn" | "dms" | "rabbitmq" | "kafka" | "apig" | "roma" => "Integration",
        "support" | "supportplan" => "Support",
        _ => "Other",
    }
}

/// Totals of one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Rows.
    pub rows: u64,
    /// The sum of BilledCost.
    #[serde(serialize_with = "super::join::as_text")]
    pub billed: Decimal,
    /// The sum of ListCost.
    #[serde(serialize_with = "super::join::as_text")]
    pub list: Decimal,
    /// Charges: the sum of the positive BilledCost.
    #[serde(serialize_with = "super::join::as_text")]
    pub spend: Decimal,
    /// Money back: the sum of the negative BilledCost, as a negative amount.
    #[serde(serialize_with = "super::join::as_text")]
    pub refunds: Decimal,
}

/// Totals per currency, never added across currencies.
///
/// ```
/// use cts_audit::bills::{read_bills, totals, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// for (currency, total) in totals(&bills.records) {
///     assert_eq!(total.billed, total.spend + total.refunds, "{currency}");
/// }
/// ```
pub fn totals(records: &[BillRecord]) -> BTreeMap<String, Totals> {
    let mut totals: BTreeMap<String, Totals> = BTreeMap::new();
    for r in records {
        let t = totals.entry(r.currency.clone()).or_default();
        t.rows += 1;
        t.billed += r.billed;
        t.list += r.list.unwrap_or(r.billed);
        if r.billed.is_sign_negative() {
            t.refunds += r.billed;
        } else {
            t.spend += r.billed;
        }
    }
    totals
}

impl FocusRow {
    /// The row with every text from a bill made safe for a spreadsheet
    /// ([`escape_cell`](crate::report::escape_cell)): amounts and
    /// datetimes are written by this tool and stay numbers.
    pub fn for_spreadsheet(&self) -> FocusRow {
        let cell = |t: &String| crate::report::escape_cell(t).into_owned();
        let opt = |t: &Option<String>| t.as_ref().map(cell);
        FocusRow {
            billing_currency: cell(&self.billing_currency),
            billing_account_id: cell(&self.billing_account_id),
            billing_account_name: opt(&self.billing_account_name),
            charge_description: opt(&self.charge_description),
            pricing_unit: opt(&self.pricing_unit),
            region_id: opt(&self.region_id),
            resource_id: opt(&self.resource_id),
            resource_name: opt(&self.resource_name),
            resource_type: opt(&self.resource_type),
            service_name: cell(&self.service_name),
            sku_id: opt(&self.sku_id),
            sub_account_id: opt(&self.sub_account_id),
            x_bill_type: cell(&self.x_bill_type),
            x_trade_id: opt(&self.x_trade_id),
            x_order_ids: opt(&self.x_order_ids),
            x_charge_mode: opt(&self.x_charge_mode),
            x_bill_id: cell(&self.x_bill_id),
            x_source: cell(&self.x_source),
            ..self.clone()
        }
    }
}

/// Writes FOCUS CSV: a header of [`FOCUS_COLUMNS`], then one row a record,
/// texts from the bills escaped for spreadsheets.
///
/// ```
/// use cts_audit::bills::{read_bills, write_focus_csv, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// let mut out = Vec::new();
/// write_focus_csv(&bills.records, &mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("BilledCost,EffectiveCost,ListCost,"));
/// assert_eq!(text.lines().count(), bills.records.len() + 1);
/// ```
pub fn write_focus_csv(
    records: &[BillRecord],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    for record in records {
        writer
            .serialize(FocusRow::from(record).for_spreadsheet())
            .map_err(std::io::Error::other)?;
    }
    if records.is_empty() {
        writer
            .write_record(FOCUS_COLUMNS)
            .map_err(std::io::Error::other)?;
    }
    writer.flush()
}

/// Writes one FOCUS row a line as JSON.
///
/// ```
/// use cts_audit::bills::{read_bills, write_focus_jsonl, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// let mut out = Vec::new();
/// write_focus_jsonl(&bills.records, &mut out).unwrap();
/// let first: serde_json::Value = serde_json::from_slice(out.split(|b| *b == b'\n').next().unwrap()).unwrap();
/// assert_eq!(first["BillingCurrency"], "CNY");
/// ```
pub fn write_focus_jsonl(
    records: &[BillRecord],
    out: &mut dyn std::io::Write,
) -> std::io::Result<()> {
    for record in records {
        serde_json::to_writer(&mut *out, &FocusRow::from(record))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// The FOCUS rows as a polars frame, for Parquet: amounts as exact
/// decimals (precision 38, the largest scale any amount has, at least 2),
/// datetimes as UTC milliseconds, the rest as text.
///
/// ```
/// use cts_audit::bills::{focus_frame, read_bills, ReadOptions};
/// let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
/// let frame = focus_frame(&bills.records).unwrap();
/// assert_eq!(frame.height(), bills.records.len());
/// assert_eq!(frame.column("BilledCost").unwrap().dtype().to_string(), "decimal[38,8]");
/// ```
#[cfg(feature = "summary")]
pub fn focus_frame(
    records: &[BillRecord],
) -> polars::prelude::PolarsResult<polars::prelude::DataFrame> {
    use polars::prelude::*;
    let rows: Vec<FocusRow> = records.iter().map(FocusRow::from).collect();
    let amounts = |get: &dyn Fn(&BillRecord) -> Option<Decimal>| -> Vec<Option<Decimal>> {
        records.iter().map(get).collect()
    };
    let billed = amounts(&|r| Some(r.billed));
    let list = amounts(&|r| Some(r.list.unwrap_or(r.billed)));
    let contracted = amounts(&|r| Some(r.contracted.unwrap_or(r.billed)));
    let quantity = amounts(&|r| r.quantity.as_ref().map(|(q, _)| *q));
    let scale = [&billed, &list, &contracted, &quantity]
        .iter()
        .flat_map(|c| c.iter().flatten())
        .map(|d| d.scale())
        .max()
        .unwrap_or(0)
        .max(2);
    let decimal = |name: &str, values: &[Option<Decimal>]| -> PolarsResult<Column> {
        let mantissas: Vec<Option<i128>> = values
            .iter()
            .map(|v| {
                v.map(|mut d| {
                    // Exact: `scale` is at least the value's own.
                    d.rescale(scale);
                    d.mantissa()
                })
            })
            .collect();
        Ok(Int128Chunked::new(name.into(), &mantissas)
            .into_decimal(38, scale as usize)?
            .into_series()
            .into_column())
    };
    let text = |name: &str, get: &dyn Fn(&FocusRow) -> Option<String>| -> Column {
        let values: Vec<Option<String>> = rows.iter().map(get).collect();
        Column::new(name.into(), values)
    };
    let datetime = |name: &str, get: &dyn Fn(&FocusRow) -> &str| -> Column {
        let ms: Vec<Option<i64>> = rows
            .iter()
            .map(|r| {
                chrono::DateTime::parse_from_rfc3339(get(r))
                    .ok()
                    .map(|t| t.timestamp_millis())
            })
            .collect();
        Int64Chunked::new(name.into(), &ms)
            .into_datetime(TimeUnit::Milliseconds, Some(TimeZone::UTC))
            .into_series()
            .into_column()
    };
    let s = |v: &str| Some(v.to_owned());
    let columns = vec![
        decimal("BilledCost", &billed)?,
        decimal("EffectiveCost", &billed)?,
        decimal("ListCost", &list)?,
        decimal("ContractedCost", &contracted)?,
        text("BillingCurrency", &|r| s(&r.billing_currency)),
        text("BillingAccountId", &|r| s(&r.billing_account_id)),
        text("BillingAccountName", &|r| r.billing_account_name.clone()),
        datetime("BillingPeriodStart", &|r| &r.billing_period_start),
        datetime("BillingPeriodEnd", &|r| &r.billing_period_end),
        text("ChargeCategory", &|r| s(r.charge_category)),
        text("ChargeClass", &|r| r.charge_class.map(str::to_owned)),
        text("ChargeDescription", &|r| r.charge_description.clone()),
        text("ChargeFrequency", &|r| s(r.charge_frequency)),
        datetime("ChargePeriodStart", &|r| &r.charge_period_start),
        datetime("ChargePeriodEnd", &|r| &r.charge_period_end),
        text("InvoiceIssuerName", &|r| s(r.invoice_issuer_name)),
        decimal("PricingQuantity", &quantity)?,
        text("PricingUnit", &|r| r.pricing_unit.clone()),
        text("ProviderName", &|r| s(r.provider_name)),
        text("PublisherName", &|r| s(r.publisher_name)),
        text("RegionId", &|r| r.region_id.clone()),
        text("ResourceId", &|r| r.resource_id.clone()),
        text("ResourceName", &|r| r.resource_name.clone()),
        text("ResourceType", &|r| r.resource_type.clone()),
        text("ServiceCategory", &|r| s(r.service_category)),
        text("ServiceName", &|r| s(&r.service_name)),
        text("SkuId", &|r| r.sku_id.clone()),
        text("SubAccountId", &|r| r.sub_account_id.clone()),
        text("x_BillType", &|r| s(&r.x_bill_type)),
        text("x_Charge", &|r| s(r.x_charge)),
        text("x_TradeId", &|r| r.x_trade_id.clone()),
        text("x_OrderIds", &|r| r.x_order_ids.clone()),
        text("x_ChargeMode", &|r| r.x_charge_mode.clone()),
        text("x_SourceKind", &|r| s(r.x_source_kind)),
        text("x_BillId", &|r| s(&r.x_bill_id)),
        text("x_Source", &|r| s(&r.x_source)),
    ];
    DataFrame::new(rows.len(), columns)
}
