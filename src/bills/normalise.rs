//! From a record's fields, as each provider API names them, to a [`BillRecord`].

use super::record::*;
use chrono::{DateTime, Utc};

/// What a page says of all its records.
#[derive(Debug, Default, Clone)]
pub(crate) struct PageFacts {
    pub currency: Option<String>,
}

/// A record read, with the notes on what was assumed.
pub(crate) struct Normalised {
    pub record: BillRecord,
    pub warnings: Vec<String>,
}

/// Which kind a lone record is, by its fields.
pub(crate) fn kind_of(fields: &Fields<'_>) -> Option<BillKind> {
    let has = |name: &str| fields.contains_key(name);
    if has("change_amount") || has("account_change_id") {
        Some(BillKind::AccountChange)
    } else if has("consume_amount") || has("res_instance_id") {
        Some(BillKind::MonthlyRecord)
    } else if has("Amount") && (has("OrderType") || has("OrderNo") || has("ResourceId")) {
        Some(BillKind::UCloudItem)
    } else if has("amount")
        && (has("bill_type") || has("trade_id") || has("cloud_service_type") || has("resource_id"))
    {
        Some(BillKind::FeeRecord)
    } else {
        None
    }
}

/// Normalises one record of a known kind. An error names the field that
/// makes it unusable (no amount, an amount that is not a number).
pub(crate) fn normalise(
    kind: BillKind,
    fields: &Fields<'_>,
    page: &PageFacts,
    default_currency: Option<&str>,
    source: String,
) -> Result<Normalised, String> {
    let mut warnings = Vec::new();
    let t = |name: &str| text(fields, name);
    let currency = t("currency")
        .or_else(|| t("Currency"))
        .or_else(|| page.currency.clone())
        .or_else(|| default_currency.map(str::to_owned))
        // UCloud's API names no currency; its bills are in yuan (docs/COST.md).
        .or_else(|| (kind == BillKind::UCloudItem).then(|| "CNY".to_owned()))
        .ok_or("no currency in the record or its page: give --currency")?
        .to_ascii_uppercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(format!(
            "currency {} is not an ISO 4217 code",
            clip(&currency)
        ));
    }
    let amount_field = match kind {
        BillKind::FeeRecord => "amount",
        BillKind::MonthlyRecord => "consume_amount",
        BillKind::AccountChange => "change_amount",
        BillKind::UCloudItem => "Amount",
    };
    let amount = money(fields, amount_field)?.ok_or(format!("no `{amount_field}`"))?;
    let mut record = BillRecord {
        kind,
        source,
        id: String::new(),
        billed: amount,
        list: None,
        contracted: None,
        currency,
        charge: Charge::Adjustment,
        bill_type: String::new(),
        charge_mode: None,
        period_type: None,
        trade_id: None,
        orders: Vec::new(),
        resource_id: None,
        related_resources: Vec::new(),
        resource_name: None,
        resource_type: None,
        region: None,
        sku: None,
        service_code: None,
        service_name: None,
        description: None,
        account_id: None,
        account_name: None,
        sub_account_id: None,
        cycle: None,
        period: None,
        time: None,
        quantity: None,
    };
    match kind {
        BillKind::FeeRecord | BillKind::MonthlyRecord => {
            huawei_resource(&mut record, fields, &mut warnings)?
        }
        BillKind::AccountChange => account_change(&mut record, fields, &mut warnings),
        BillKind::UCloudItem => ucloud(&mut record, fields, &mut warnings),
    }
    // Money back is negative whatever sign the source gave: the sign of
    // refund rows is undocumented (reference, unknown 2).
    if record.charge.is_refund() {
        record.billed = -record.billed.abs();
        record.list = record.list.map(|l| -l.abs());
        record.contracted = record.contracted.map(|c| -c.abs());
    }
    if record.id.is_empty() {
        record.id = [record.trade_id.as_deref(), record.resource_id.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("/");
    }
    if record.id.is_empty() {
        record.id = record.source.clone();
    }
    if record.cycle.is_none() {
        record.cycle = record
            .time
            .and_then(|t| DateTime::from_timestamp_millis(t.start_ms))
            .map(cycle_of);
    }
    if record.time.is_none() {
        record.time = record.cycle.and_then(cycle_bounds).map(interval);
        if record.time.is_none() {
            warnings.push("no time, day or cycle: it cannot be joined to a trace".into());
        }
    }
    Ok(Normalised { record, warnings })
}

fn interval((start, end): (DateTime<Utc>, DateTime<Utc>)) -> ChargeTime {
    ChargeTime {
        start_ms: start.timestamp_millis(),
        end_ms: end.timestamp_millis(),
    }
}

fn instant(time: DateTime<Utc>) -> ChargeTime {
    let ms = time.timestamp_millis();
    ChargeTime {
        start_ms: ms,
        end_ms: ms + 1,
    }
}

/// A time field that should parse; a warning when it is there and does not.
fn time_field(
    fields: &Fields<'_>,
    name: &str,
    warnings: &mut Vec<String>,
) -> Option<DateTime<Utc>> {
    let value = text(fields, name)?;
    let time = parse_bill_time(&value);
    if time.is_none() {
        warnings.push(format!("`{name}` {} is not a time: left out", clip(&value)));
    }
    time
}

/// Huawei resource-level records: `fee_records` (§1) and `monthly_records` (§2).
fn huawei_resource(
    r: &mut BillRecord,
    fields: &Fields<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let t = |name: &str| text(fields, name);
    let bill_type = t("bill_type").ok_or("no `bill_type`")?;
    r.charge = match Charge::from_huawei_text(&bill_type) {
        Some(charge) => charge,
        None => {
            warnings.push(format!(
                "bill_type {} is not one the reference lists: read as an Adjustment",
                clip(&bill_type)
            ));
            Charge::Adjustment
        }
    };
    r.bill_type = bill_type;
    r.list = money(fields, "official_amount")?;
    if let (Some(list), Some(discount)) = (r.list, money(fields, "discount_amount")?) {
        r.contracted = Some(list - discount);
    }
    r.id = t("id").unwrap_or_default();
    r.charge_mode = t("charge_mode");
    r.period_type = t("period_type");
    r.trade_id = t("trade_id");
    r.orders = ["order_id", "relative_order_id", "pre_order_id"]
        .iter()
        .filter_map(|n| t(n))
        .collect();
    r.resource_id = t("resource_id").or_else(|| t("res_instance_id"));
    r.related_resources = ["sub_resource_id", "parent_resource_id", "root_resource_id"]
        .iter()
        .filter_map(|n| t(n))
        .filter(|id| Some(id) != r.resource_id.as_ref())
        .collect();
    r.resource_name = t("resource_name");
    r.resource_type = t("resource_type")
        .or_else(|| t("resource_Type_code"))
        .or_else(|| t("resource_type_code"));
    r.region = t("region");
    r.sku = t("sku_code");
    r.service_code = t("cloud_service_type").or_else(|| t("cloud_service_type_code"));
    r.service_name = t("cloud_service_type_name").or_else(|| r.service_code.clone());
    r.description = match (t("product_name"), t("product_spec_desc")) {
        (Some(name), Some(spec)) => Some(format!("{name} {spec}")),
        (name, spec) => name.or(spec),
    };
    r.account_id = t("payer_account_id").or_else(|| t("customer_id"));
    r.sub_account_id = t("customer_id").filter(|c| Some(c) != r.account_id.as_ref());
    r.account_name = t("account_name");
    r.cycle = t("cycle").and_then(|c| parse_cycle(&c));
    let day = t("bill_date").and_then(|d| day_bounds(&d));
    if r.cycle.is_none() {
        r.cycle = day.map(|(start, _)| cycle_of(start));
    }
    let effective = time_field(fields, "effective_time", warnings);
    let expire = time_field(fields, "expire_time", warnings);
    let consumed = time_field(fields, "consume_time", warnings);
    let traded = time_field(fields, "trade_time", warnings);
    r.period = match (effective, expire) {
        (Some(start), Some(end)) if start < end => Some((start, end)),
        _ => day.or_else(|| {
            consumed
                .or(traded)
                .map(|t| (t, t + chrono::Duration::seconds(1)))
        }),
    };
    r.time = consumed
        .or(traded)
        .map(instant)
        .or_else(|| day.map(interval));
    if let Some(usage) = money(fields, "usage")? {
        r.quantity = Some((usage, t("usage_measure_id").or_else(|| t("usage_type"))));
    }
    Ok(())
}

/// Huawei account change records (§3).
fn account_change(r: &mut BillRecord, fields: &Fields<'_>, warnings: &mut Vec<String>) {
    let t = |name: &str| text(fields, name);
    let direction = t("revenue_expense_type").map(|d| d.to_ascii_uppercase());
    // The sign of `change_amount` is undocumented: the direction decides,
    // and without one the sign as given.
    r.charge = match direction.as_deref() {
        Some("EXPENSE") => Charge::Purchase,
        Some("REVENUE") => Charge::Refund,
        _ if r.billed.is_sign_negative() => Charge::Refund,
        _ => Charge::Purchase,
    };
    if r.charge == Charge::Purchase {
        r.billed = r.billed.abs();
    }
    r.bill_type = direction.unwrap_or_else(|| "-".into());
    r.id = t("account_change_id").unwrap_or_default();
    r.trade_id = t("trade_id");
    r.charge_mode = t("trade_detail_type");
    r.account_name = t("account_name");
    r.description = t("trade_detail_type").map(|d| format!("account change: {d}"));
    r.cycle = t("bill_cycle").and_then(|c| parse_cycle(&c));
    let time = time_field(fields, "trade_time", warnings)
        .or_else(|| time_field(fields, "consume_time", warnings));
    r.time = time.map(instant);
    r.period = time.map(|t| (t, t + chrono::Duration::seconds(1)));
}

/// UCloud `ListUBillDetail` items (§8).
fn ucloud(r: &mut BillRecord, fields: &Fields<'_>, warnings: &mut Vec<String>) {
    let t = |name: &str| text(fields, name);
    let order_type = t("OrderType").unwrap_or_else(|| "-".into());
    r.charge = match Charge::from_ucloud_order_type(&order_type) {
        Some(charge) => charge,
        None => {
            warnings.push(format!(
                "OrderType {} is not one the reference lists: read as an Adjustment",
                clip(&order_type)
            ));
            Charge::Adjustment
        }
    };
    r.bill_type = order_type;
    r.charge_mode = t("ChargeType");
    r.trade_id = t("OrderNo");
    r.resource_id = t("ResourceId");
    // UCloud names one type for the resource and its service.
    let resource_type = t("ResourceType");
    r.service_code = resource_type.clone();
    r.service_name = resource_type.clone();
    r.resource_type = resource_type;
    r.region = t("AzGroupCName");
    r.account_id = t("UserEmail").or_else(|| t("UserName"));
    r.account_name = t("UserDisplayName").or_else(|| t("UserName"));
    r.sub_account_id = t("ProjectId").or_else(|| t("ProjectName"));
    r.resource_name = pairs(fields, "ResourceExtendInfo", "KeyId")
        .into_iter()
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value);
    let details = pairs(fields, "ItemDetails", "ProductName");
    if !details.is_empty() {
        r.description = Some(
            details
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    let created = time_field(fields, "CreateTime", warnings);
    let start = time_field(fields, "StartTime", warnings);
    let end = time_field(fields, "EndTime", warnings);
    r.period = match (start, end) {
        (Some(start), Some(end)) if start < end => Some((start, end)),
        _ => created.map(|t| (t, t + chrono::Duration::seconds(1))),
    };
    r.time = created.or(start).map(instant);
    r.cycle = t("BillingCycle")
        .and_then(|c| parse_cycle(&c))
        .or_else(|| start.or(created).map(cycle_of));
}

/// `[{KEY: k, "Value": v}, …]` lists of UCloud items, as pairs.
fn pairs(fields: &Fields<'_>, name: &str, key: &str) -> Vec<(String, String)> {
    let Some(raw) = fields.get(name) else {
        return Vec::new();
    };
    let Ok(items) = serde_json::from_str::<Vec<std::collections::HashMap<String, serde_json::Value>>>(
        raw.get(),
    ) else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let k = item.get(key)?.as_str()?.to_owned();
            let v = match item.get("Value")? {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((k, v))
        })
        .collect()
}
