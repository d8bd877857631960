//! Bills: reading every source by content, FOCUS rows and their totals to
//! the last decimal, the join of charges to billing actions, and the
//! counts that account for every record.

use assert_cmd::Command;
use cts_audit::bills::join::{assign, Action, ActionAt, BillAction};
use cts_audit::bills::{read_bills, totals, Charge, ReadOptions};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::path::{Path, PathBuf};
use std::str::FromStr;

fn dec(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cts-audit-bills-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn cli() -> Command {
    Command::cargo_bin("cts-audit").unwrap()
}

/// Runs `command`, checks that it succeeded (showing its stderr if not),
/// and gives what it wrote.
fn succeeded(mut command: Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `cts-audit ARGS`, checked to succeed: its stdout as text.
fn stdout_of<S: AsRef<std::ffi::OsStr>>(args: impl IntoIterator<Item = S>) -> String {
    let mut command = cli();
    command.args(args);
    String::from_utf8(succeeded(command).stdout).unwrap()
}

/// JSON lines, each parsed.
fn parse_lines<T: serde::de::DeserializeOwned>(text: &str) -> Vec<T> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A Huawei `res-fee-records` row as the API writes it (§1 of
/// reference/bill-records.md).
fn fee_record(
    id: &str,
    bill_type: u32,
    resource: &str,
    trade: &str,
    time: &str,
    amount: &str,
) -> String {
    format!(
        r#"{{"id":"{id}","bill_date":"{day}","bill_type":{bill_type},"customer_id":"7e0d78c85c0d4b9b",
        "region":"cn-north-4","cloud_service_type":"hws.service.type.ec2","cloud_service_type_name":"Elastic Cloud Server",
        "resource_type":"hws.resource.type.vm","resource_id":"{resource}","resource_name":"vm-{resource}",
        "trade_id":"{trade}","consume_time":"{time}","charge_mode":"1","period_type":"20",
        "official_amount":{amount},"discount_amount":0,"amount":{amount},"measure_id":1}}"#,
        day = china_day(time)
    )
    .replace('\n', " ")
}

/// The day (UTC+8) an instant falls on, as Huawei writes `bill_date`.
fn china_day(time: &str) -> String {
    let at = chrono::DateTime::parse_from_rfc3339(time).unwrap();
    (at + chrono::Duration::hours(8))
        .format("%Y-%m-%d")
        .to_string()
}

fn fee_page(currency: &str, rows: &[String]) -> String {
    format!(
        r#"{{"currency":"{currency}","total_count":{},"fee_records":[{}]}}"#,
        rows.len(),
        rows.join(",")
    )
}

/// A CTS trace of a Billing Center call, as LTS writes it: one JSON line.
fn trace(
    id: u32,
    name: &str,
    time: &str,
    resource_id: &str,
    request: &str,
    response: &str,
) -> String {
    let ms = chrono::DateTime::parse_from_rfc3339(time)
        .unwrap()
        .timestamp_millis();
    serde_json::json!({
        "trace_id": format!("6c1f0a52-9b4e-11ef-8000-{id:012x}"),
        "trace_name": name,
        "trace_rating": "normal",
        "trace_type": "ApiCall",
        "service_type": "BSS",
        "resource_type": if name.starts_with("pay") { "order" } else { "subscription" },
        "resource_id": resource_id,
        "source_ip": "198.51.100.20",
        "code": 200,
        "time": ms,
        "record_time": ms + 120,
        "user": {"name": "carol", "domain": {"name": "acme-finance", "id": "7e0d78c85c0d4b9b"}, "id": "u-carol"},
        "request": request,
        "response": response,
    })
    .to_string()
}

#[test]
fn the_samples_total_to_the_last_decimal_in_every_format() {
    let bills = read_bills(&["samples/bills".into()], &ReadOptions::default());
    assert_eq!(bills.stats.read, 10);
    assert_eq!((bills.stats.records, bills.stats.errors), (10, 0));
    // By hand: account changes 1234.56 − 1100.00; fee records 1100 +
    // 134.56 − 1100 (a refund written positive) + 0.4125; resource records
    // −356.20 (written negative) + 412.33333333; UCloud 4.21 + 4.21.
    let expected = dec("334.08583333");
    let cny = &totals(&bills.records)["CNY"];
    assert_eq!(cny.billed, expected);
    assert_eq!(cny.refunds, dec("-2556.20"));
    assert_eq!(cny.spend, dec("2890.28583333"));

    let focus_csv = stdout_of(["bills", "samples/bills", "--format", "focus-csv"]);
    let mut reader = csv::Reader::from_reader(focus_csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let billed = header.iter().position(|h| h == "BilledCost").unwrap();
    let sum: Decimal = reader.records().map(|r| dec(&r.unwrap()[billed])).sum();
    assert_eq!(sum, expected);
    for column in [
        "BilledCost",
        "EffectiveCost",
        "ListCost",
        "ContractedCost",
        "BillingAccountId",
        "BillingAccountName",
        "BillingCurrency",
        "BillingPeriodStart",
        "BillingPeriodEnd",
        "ChargeCategory",
        "ChargeClass",
        "ChargeDescription",
        "ChargePeriodStart",
        "ChargePeriodEnd",
        "InvoiceIssuerName",
        "PricingQuantity",
        "PricingUnit",
        "ProviderName",
        "PublisherName",
        "ServiceCategory",
        "ServiceName",
        "ResourceId",
        "ResourceName",
        "ResourceType",
        "RegionId",
        "SkuId",
        "ChargeFrequency",
        "x_BillType",
        "x_TradeId",
        "x_ChargeMode",
    ] {
        assert!(header.iter().any(|h| h == column), "{column}");
    }

    let rows: Vec<serde_json::Value> =
        parse_lines(&stdout_of(["bills", "samples/bills", "--format", "jsonl"]));
    assert_eq!(rows.len(), 10);
    let sum: Decimal = rows
        .iter()
        .map(|r| dec(r["BilledCost"].as_str().unwrap()))
        .sum();
    assert_eq!(sum, expected);
    // A Huawei billing period is cut in UTC+8 and written in UTC.
    let june = rows
        .iter()
        .find(|r| r["x_BillId"] == "0b7a1c2e-fr-0001")
        .unwrap();
    assert_eq!(june["BillingPeriodStart"], "2024-05-31T16:00:00Z");
    assert_eq!(june["BillingPeriodEnd"], "2024-06-30T16:00:00Z");
    assert_eq!(june["ListCost"], "1300.00000000");
    assert_eq!(june["ContractedCost"], "1100.00000000");
    assert_eq!(june["ServiceCategory"], "Compute");
    let refund = rows
        .iter()
        .find(|r| r["x_BillId"] == "0b7a1c2e-fr-0003")
        .unwrap();
    assert_eq!(
        (
            refund["ChargeCategory"].as_str(),
            refund["BilledCost"].as_str()
        ),
        (Some("Purchase"), Some("-1100.00000000"))
    );

    let table = stdout_of(["bills", "samples/bills"]);
    assert!(
        table.contains(
            "CNY: 10 rows, billed 334.08583333 (charged 2890.28583333, refunded -2556.20000000)"
        ),
        "{table}"
    );

    let dir = temp_dir("parquet");
    let parquet = dir.join("focus.parquet");
    let mut command = cli();
    command
        .args(["bills", "samples/bills", "--format", "parquet", "-o"])
        .arg(&parquet);
    succeeded(command);
    use polars::prelude::*;
    use polars_io::prelude::{ParquetReader, SerReader};
    let frame = ParquetReader::new(std::fs::File::open(&parquet).unwrap())
        .finish()
        .unwrap();
    assert_eq!(frame.height(), 10);
    let column = frame.column("BilledCost").unwrap();
    assert_eq!(column.dtype(), &DataType::Decimal(38, 8));
    let mantissas = column
        .as_materialized_series()
        .decimal()
        .unwrap()
        .physical()
        .clone();
    let sum: i128 = mantissas.iter().flatten().sum();
    assert_eq!(Decimal::from_i128_with_scale(sum, 8), expected);
    let start = frame.column("BillingPeriodStart").unwrap();
    assert!(
        matches!(start.dtype(), DataType::Datetime(TimeUnit::Milliseconds, Some(tz)) if tz.as_str() == "UTC")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn every_source_form_is_read_by_content_and_damage_is_counted() {
    let dir = temp_dir("forms");
    // Two pages of fee records in one JSON array, gzip-compressed, in USD.
    let pages = format!(
        "[{},{}]",
        fee_page(
            "USD",
            &[fee_record(
                "u1",
                2,
                "vm-1",
                "CS1",
                "2025-01-31T17:30:00Z",
                "10.12345678"
            )]
        ),
        fee_page(
            "USD",
            &[fee_record(
                "u2",
                4,
                "vm-1",
                "CS2",
                "2025-02-02T01:00:00Z",
                "-3.5"
            )]
        )
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, pages.as_bytes()).unwrap();
    std::fs::write(dir.join("fees.json.gz"), gz.finish().unwrap()).unwrap();
    // JSON lines of records, one damaged in each way a line can be.
    let lines = [
        fee_record("l1", 5, "vm-2", "PPU1", "2025-02-03T00:00:00Z", "\"0.00000001\"").replace("\"region\"", "\"currency\":\"USD\",\"region\""),
        "{\"amount\": 1, \"bill_type\": 2, \"currency\": \"USD\", \"trade_id\": \"CS9\", \"amount\": \"ten\"".to_owned(),
        "{\"amount\":\"twelve\",\"bill_type\":2,\"currency\":\"USD\",\"trade_id\":\"CS9\"}".to_owned(),
        "{\"hello\":\"world\"}".to_owned(),
        "{\"amount\":\"1.00\",\"bill_type\":77,\"currency\":\"USD\",\"trade_id\":\"CS10\",\"consume_time\":\"2025-02-04T00:00:00Z\"}".to_owned(),
    ];
    std::fs::write(dir.join("fees.jsonl"), lines.join("\n")).unwrap();
    // A console export in Chinese headers, and one of the API's own names.
    std::fs::write(
        dir.join("SettleBillDetail.csv"),
        "账期,资源ID,订单号,账单类型,计费模式,应付金额,币种\n2025-02,vm-3,CS11,续费,包年/包月,\"1,000.50\",CNY\n2025-02,vm-3,CS12,退订退款,包年/包月,250.25,CNY\n2025-02,vm-4,CS13,新购,包年/包月,abc,CNY\n",
    )
    .unwrap();
    // Account changes and UCloud items.
    std::fs::write(
        dir.join("changes.json"),
        r#"{"currency":"CNY","records":[{"account_change_id":"A1","trade_id":"CS14","change_amount":"-20.00","trade_time":"2025-02-05 10:00:00"},
            {"account_change_id":"A2","trade_id":"CS15","change_amount":"5.10","revenue_expense_type":"EXPENSE","trade_time":"2025-02-05 11:00:00"}]}"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("ucloud.json"),
        r#"{"Action":"ListUBillDetailResponse","RetCode":0,"TotalCount":1,"Items":[{"Amount":"7.77","OrderType":"OT_REFUND","OrderNo":"U1","ResourceId":"uhost-1","ResourceType":"uhost","CreateTime":1738713600,"StartTime":1738713600,"EndTime":1738717200}]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not a bill\n").unwrap();

    let bills = read_bills(std::slice::from_ref(&dir), &ReadOptions::default());
    let s = &bills.stats;
    // Every record found is read or counted as an error.
    assert_eq!(s.read, s.records + s.errors);
    assert_eq!((s.records, s.errors), (9, 4), "{:#?}", bills.problems);
    assert_eq!(s.files_not_read, 1);
    let located: Vec<String> = bills.problems.iter().map(|p| p.to_string()).collect();
    for expected in [
        "fees.jsonl:2: not JSON",
        "fees.jsonl:3: fee_record not read: `amount` is \"\\\"twelve\\\"\"",
        "fees.jsonl:4: not a bill record",
        "fees.jsonl:5: bill_type \"77\" is not one the reference lists",
        "SettleBillDetail.csv:4: fee_record not read",
        "notes.txt: not a bill file",
    ] {
        assert!(
            located.iter().any(|p| p.contains(expected)),
            "{expected}: {located:#?}"
        );
    }

    let t = totals(&bills.records);
    // Currencies are never added together.
    assert_eq!(
        t["USD"].billed,
        dec("10.12345678") - dec("3.5") + dec("0.00000001") + dec("1.00")
    );
    // 1,000.50 renewal, 250.25 refund (forced negative), account changes
    // −20.00 (a refund by its sign) and +5.10, UCloud refund −7.77.
    assert_eq!(
        t["CNY"].billed,
        dec("1000.50") - dec("250.25") - dec("20.00") + dec("5.10") - dec("7.77")
    );
    // 2025-01-31T17:30Z is cycle 2025-02 in UTC+8.
    let cut = bills.records.iter().find(|r| r.id == "u1").unwrap();
    assert_eq!(cut.cycle, Some((2025, 2)));
    let renewal = bills
        .records
        .iter()
        .find(|r| r.trade_id.as_deref() == Some("CS11"))
        .unwrap();
    assert_eq!(
        (renewal.charge, renewal.currency.as_str()),
        (Charge::Renewal, "CNY")
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Writes the traces and bills of one join case and scans them.
fn scan_joined(
    name: &str,
    traces: &[String],
    bill_pages: &[String],
    extra: &[&str],
) -> (Vec<serde_json::Value>, serde_json::Value, String) {
    let dir = temp_dir(name);
    std::fs::create_dir_all(dir.join("bills")).unwrap();
    std::fs::write(dir.join("traces.jsonl"), traces.join("\n")).unwrap();
    for (i, page) in bill_pages.iter().enumerate() {
        std::fs::write(dir.join("bills").join(format!("page-{i}.json")), page).unwrap();
    }
    let stats = dir.join("stats.json");
    let unmatched = dir.join("unmatched.jsonl");
    let mut command = cli();
    command
        .current_dir(&dir)
        .args([
            "scan",
            "--bills",
            "bills",
            ".",
            "--format",
            "jsonl",
            "-q",
            "--stats",
            "stats.json",
            "--unmatched",
            "unmatched.jsonl",
        ])
        .args(extra);
    let records = parse_lines(&String::from_utf8(succeeded(command).stdout).unwrap());
    let stats = serde_json::from_slice(&std::fs::read(stats).unwrap()).unwrap();
    let unmatched = std::fs::read_to_string(unmatched).unwrap();
    std::fs::remove_dir_all(dir).unwrap();
    (records, stats, unmatched)
}

fn cost_of<'a>(records: &'a [serde_json::Value], trace_id_end: &str) -> &'a serde_json::Value {
    let record = records
        .iter()
        .find(|r| r["trace_id"].as_str().unwrap().ends_with(trace_id_end))
        .unwrap_or_else(|| panic!("no record {trace_id_end}: {records:#?}"));
    &record["cost"]
}

#[test]
fn charges_join_by_order_by_resource_and_from_the_request() {
    let traces = [
        // 1: pays order CS100 (the order id only in the request).
        trace(
            1,
            "payCustomerOrderV3",
            "2025-03-01T02:00:00Z",
            "",
            r#"{"order_id":"CS100","use_coupon":"NO"}"#,
            "{}",
        ),
        // 2: renews two resources named only in the request; one order in the response.
        trace(
            2,
            "renewResources",
            "2025-03-02T02:00:00Z",
            "",
            r#"{"resource_ids":["vm-a","vm-b"],"period_type":2,"period_num":1,"is_auto_pay":1}"#,
            r#"{"order_ids":["CS200"]}"#,
        ),
        // 3: unsubscribes vm-c (the trace's resource_id).
        trace(
            3,
            "unsubscribeResources",
            "2025-03-03T02:00:00Z",
            "vm-c",
            r#"{"resource_ids":["vm-c"],"unsubscribe_type":1}"#,
            "{}",
        ),
        // 4 and 5: vm-d renewed twice in the same month.
        trace(
            4,
            "renewResources",
            "2025-03-04T02:00:00Z",
            "",
            r#"{"resource_ids":["vm-d"]}"#,
            "{}",
        ),
        trace(
            5,
            "renewResources",
            "2025-03-20T02:00:00Z",
            "",
            r#"{"resource_ids":["vm-d"]}"#,
            "{}",
        ),
        // 6: turns auto-renewal off: no charge follows.
        trace(
            6,
            "cancelResourcesAutoRenew",
            "2025-03-05T02:00:00Z",
            "vm-e",
            "",
            "{}",
        ),
        // 7: a renewal that failed moved no money.
        trace(
            7,
            "renewResources",
            "2025-03-06T02:00:00Z",
            "",
            r#"{"resource_ids":["vm-f"]}"#,
            r#"{"error_code":"CBC.0151","error_msg":"access denied"}"#,
        )
        .replace("\"code\":200", "\"code\":403"),
    ];
    let cny = fee_page(
        "CNY",
        &[
            fee_record(
                "c1",
                1,
                "vm-x",
                "CS100",
                "2025-03-01T02:00:01Z",
                "500.00000000",
            ),
            fee_record(
                "c2",
                1,
                "vm-x-disk",
                "CS100",
                "2025-03-01T02:00:01Z",
                "20.12345678",
            ),
            // By resource from the request: the renewal's order id is not in the bill.
            fee_record(
                "c3",
                2,
                "vm-a",
                "CS201",
                "2025-03-02T02:00:05Z",
                "100.00000000",
            ),
            fee_record(
                "c4",
                2,
                "vm-b",
                "CS202",
                "2025-03-02T02:00:05Z",
                "200.00000000",
            ),
            // A usage charge on vm-a is not the renewal's.
            fee_record(
                "c5",
                5,
                "vm-a",
                "PPU1",
                "2025-03-02T03:00:00Z",
                "0.50000000",
            ),
            // The refund, written positive.
            fee_record("c6", 4, "vm-c", "CS300", "2025-03-03T02:01:00Z", "12340.00"),
            // One charge each for the two renewals of vm-d.
            fee_record(
                "c7",
                2,
                "vm-d",
                "CS401",
                "2025-03-04T02:00:09Z",
                "30.00000000",
            ),
            fee_record(
                "c8",
                2,
                "vm-d",
                "CS402",
                "2025-03-20T02:00:09Z",
                "31.00000000",
            ),
            // Past the window of any action.
            fee_record(
                "c9",
                2,
                "vm-d",
                "CS403",
                "2025-03-25T02:00:00Z",
                "32.00000000",
            ),
            // vm-f's failed renewal.
            fee_record(
                "c10",
                2,
                "vm-f",
                "CS500",
                "2025-03-06T02:00:10Z",
                "40.00000000",
            ),
        ],
    );
    // A second currency on the same order as trace 1's.
    let usd = fee_page(
        "USD",
        &[fee_record(
            "u1",
            1,
            "vm-x-ip",
            "CS100",
            "2025-03-01T02:00:01Z",
            "7.25",
        )],
    );
    let (records, stats, unmatched) = scan_joined(
        "join",
        &traces,
        &[cny, usd],
        &["--cost-threshold", "10000:CNY"],
    );

    let pay = cost_of(&records, "000000000001");
    assert_eq!(pay["amount"], "520.12345678");
    assert_eq!(pay["currency"], "CNY");
    assert_eq!(pay["charges"], 3);
    assert_eq!(pay["match"], "order");
    assert_eq!(pay["bill_ids"], serde_json::json!(["c1", "c2", "u1"]));
    assert_eq!(
        pay["other_currencies"],
        serde_json::json!([{"amount": "7.25", "currency": "USD", "charges": 1}])
    );

    let renew = cost_of(&records, "000000000002");
    assert_eq!(
        (
            renew["amount"].as_str(),
            renew["match"].as_str(),
            renew["charges"].as_u64()
        ),
        (Some("300.00000000"), Some("resource"), Some(2))
    );

    let unsubscribe_record = records
        .iter()
        .find(|r| r["trace_name"] == "unsubscribeResources")
        .unwrap();
    assert_eq!(unsubscribe_record["cost"]["amount"], "-12340.00");
    assert!(unsubscribe_record["rules"]
        .as_array()
        .unwrap()
        .contains(&"cost.large".into()));
    let reasons = unsubscribe_record["reasons"].to_string();
    assert!(
        reasons.contains("unsubscribe refunded 12,340.00 CNY"),
        "{reasons}"
    );

    assert_eq!(cost_of(&records, "000000000004")["amount"], "30.00000000");
    assert_eq!(cost_of(&records, "000000000005")["amount"], "31.00000000");
    let off = cost_of(&records, "000000000006");
    assert_eq!(
        (off["charges"].as_u64(), off["currency"].is_null()),
        (Some(0), true)
    );
    // The failed attempt is flagged, but given no cost.
    let failed = records
        .iter()
        .find(|r| r["trace_id"].as_str().unwrap().ends_with("000000000007"))
        .unwrap();
    assert!(failed.get("cost").is_none());

    // Every action and every charge is counted in one place.
    assert_eq!(stats["cost"]["actions"], 6);
    assert_eq!(stats["cost"]["actions_with_charges"], 5);
    assert_eq!(stats["cost"]["actions_without_charges"], 1);
    assert_eq!(stats["cost"]["charges"], 11);
    assert_eq!(stats["cost"]["charges_by_order"], 3);
    assert_eq!(stats["cost"]["charges_by_resource"], 5);
    assert_eq!(stats["cost"]["charges_unmatched"], 3);
    assert_eq!(stats["bills"]["records"], 11);
    let lines: Vec<serde_json::Value> = parse_lines(&unmatched);
    let ids: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["x_BillId"].as_str())
        .collect();
    assert_eq!(ids, ["c5", "c9", "c10"]);
    let actions: Vec<&str> = lines
        .iter()
        .filter_map(|l| l["trace_name"].as_str())
        .collect();
    assert_eq!(actions, ["cancelResourcesAutoRenew"]);
}

#[test]
fn the_join_gives_a_charge_to_the_nearest_compatible_action_before_it() {
    let action = |seq: u64, at: &str, action: Action, ids: &[(&str, &str)]| ActionAt {
        seq,
        time_ms: Some(
            chrono::DateTime::parse_from_rfc3339(at)
                .unwrap()
                .timestamp_millis(),
        ),
        bill: BillAction {
            action,
            trace_name: action.as_str().into(),
            trace_id: None,
            ids: ids
                .iter()
                .map(|(k, i)| (k.to_string(), i.to_string()))
                .collect(),
        },
    };
    let dir = temp_dir("nearest");
    std::fs::write(
        dir.join("page.json"),
        fee_page(
            "CNY",
            &[
                fee_record("r1", 2, "vm-1", "CS1", "2025-04-01T10:00:00Z", "10"),
                fee_record("r2", 4, "vm-1", "CS2", "2025-04-01T12:00:00Z", "5"),
            ],
        ),
    )
    .unwrap();
    let bills = read_bills(std::slice::from_ref(&dir), &ReadOptions::default());
    let actions = [
        action(0, "2025-04-01T08:00:00Z", Action::Renew, &[("r", "vm-1")]),
        // Nearer, but an unsubscription takes no renewal charge.
        action(
            1,
            "2025-04-01T09:00:00Z",
            Action::Unsubscribe,
            &[("r", "vm-1")],
        ),
        // Nearer still, and a renewal: it takes r1.
        action(2, "2025-04-01T09:30:00Z", Action::Renew, &[("r", "vm-1")]),
    ];
    let joined = assign(&bills.records, &actions, 48 * 3_600_000);
    assert_eq!(joined.costs[&0].charges, 0);
    assert_eq!(joined.costs[&1].amount, dec("-5"));
    assert_eq!(joined.costs[&2].amount, dec("10"));
    // A window too short for r1 leaves it unmatched.
    let joined = assign(&bills.records, &actions[..1], 3_600_000);
    assert_eq!(joined.charges_unmatched, [0, 1]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bill_texts_reach_no_spreadsheet_or_terminal_unescaped() {
    let dir = temp_dir("hostile");
    let page = fee_page(
        "CNY",
        &[fee_record(
            "=HYPERLINK(\\\"http://evil\\\")",
            1,
            "vm-\\u001b[31m",
            "@SUM(A1)",
            "2025-05-01T00:00:00Z",
            "-1",
        )],
    );
    std::fs::write(dir.join("page.json"), page).unwrap();
    let text = stdout_of([
        "bills".as_ref(),
        "--format".as_ref(),
        "focus-csv".as_ref(),
        dir.as_os_str(),
    ]);
    assert!(text.contains("'=HYPERLINK"), "{text}");
    assert!(text.contains("'@SUM(A1)"), "{text}");
    // The amount is the tool's own number: not escaped.
    assert!(text.lines().nth(1).unwrap().starts_with("-1,"), "{text}");
    let table = stdout_of(["bills".as_ref(), dir.as_os_str()]);
    assert!(
        !table.contains('\u{1b}') && table.contains("\\x1b[31m"),
        "{table}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn readme_commands_show_the_money() {
    let mut command = cli();
    command.args(["scan", "--bills", "samples/bills", "samples/"]);
    let out = succeeded(command);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("COST"), "{table}");
    assert!(table.contains("1234.56000000 CNY"), "{table}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("cts-audit: cost: 4 billing actions (3 with charges, 1 without)"),
        "{stderr}"
    );
    // The bills under samples/ are not read as traces.
    assert!(!stderr.contains("samples/bills/"), "{stderr}");
}

/// A record of any kind, with its amount as written and its signed value.
#[derive(Debug, Clone)]
struct Generated {
    kind: u8,
    refund: bool,
    negative: bool,
    mantissa: i64,
    scale: u32,
    currency: &'static str,
}

impl Generated {
    fn written(&self) -> Decimal {
        let amount = Decimal::new(self.mantissa, self.scale);
        if self.negative {
            -amount
        } else {
            amount
        }
    }

    /// What BilledCost must be: refunds negative, whatever the sign written.
    fn billed(&self) -> Decimal {
        if self.kind == 2 {
            // Account changes: EXPENSE positive, REVENUE negative.
            return if self.refund {
                -self.written().abs()
            } else {
                self.written().abs()
            };
        }
        if self.refund {
            -self.written().abs()
        } else {
            self.written()
        }
    }

    fn json(&self, i: usize) -> String {
        let amount = self.written();
        match self.kind {
            0 => format!(
                r#"{{"id":"f{i}","bill_type":{},"amount":{amount},"currency":"{}","trade_id":"T{i}","consume_time":"2025-06-01T00:00:00Z"}}"#,
                if self.refund { 4 } else { 2 },
                self.currency
            ),
            1 => format!(
                r#"{{"bill_type":{},"consume_amount":"{amount}","currency":"{}","res_instance_id":"r{i}","cycle":"2025-06"}}"#,
                if self.refund { 24 } else { 8 },
                self.currency
            ),
            2 => format!(
                r#"{{"account_change_id":"a{i}","change_amount":"{amount}","revenue_expense_type":"{}","currency":"{}","trade_time":"2025-06-01 08:00:00"}}"#,
                if self.refund { "REVENUE" } else { "EXPENSE" },
                self.currency
            ),
            _ => format!(
                r#"{{"Amount":"{amount}","OrderType":"{}","OrderNo":"U{i}","ResourceId":"uhost-{i}","Currency":"{}","CreateTime":1748736000}}"#,
                if self.refund { "OT_REFUND" } else { "OT_BUY" },
                self.currency
            ),
        }
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        0u8..4,
        any::<bool>(),
        any::<bool>(),
        0i64..10_000_000_000_000,
        0u32..=8,
        prop::sample::select(vec!["CNY", "USD", "EUR"]),
    )
        .prop_map(
            |(kind, refund, negative, mantissa, scale, currency)| Generated {
                kind,
                refund,
                negative,
                mantissa,
                scale,
                currency,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The sum of BilledCost equals the sum of the source amounts (signed
    /// as refunds are), per currency, for any mix of records and forms.
    #[test]
    fn billed_cost_sums_to_the_source_amounts(records in prop::collection::vec(generated(), 1..40), lines in any::<bool>()) {
        let dir = temp_dir("property");
        let body: Vec<String> = records.iter().enumerate().map(|(i, r)| r.json(i)).collect();
        let path: &Path = &dir.join("bills.json");
        if lines {
            std::fs::write(path, body.join("\n")).unwrap();
        } else {
            std::fs::write(path, format!("[{}]", body.join(","))).unwrap();
        }
        let bills = read_bills(std::slice::from_ref(&dir), &ReadOptions::default());
        prop_assert_eq!(bills.stats.records as usize, records.len(), "{:?}", bills.problems);
        let t = totals(&bills.records);
        for currency in ["CNY", "USD", "EUR"] {
            let expected: Decimal = records.iter().filter(|r| r.currency == currency).map(Generated::billed).sum();
            let got = t.get(currency).map(|t| t.billed).unwrap_or_default();
            prop_assert_eq!(got, expected, "{}", currency);
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}

#[test]
fn summaries_by_user_show_spend_and_refunds_per_currency() {
    let dir = temp_dir("summary");
    let csv_path = dir.join("by-user.csv");
    let mut command = cli();
    command
        .args([
            "scan",
            "--bills",
            "samples/bills",
            "samples/",
            "--format",
            "summary",
            "--summary-by",
            "user",
            "--summary-out",
        ])
        .arg(&csv_path);
    succeeded(command);
    let mut reader = csv::Reader::from_path(&csv_path).unwrap();
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let user = |name: &str| {
        rows.iter()
            .find(|r| &r[at("user")] == name)
            .unwrap()
            .clone()
    };
    // alice paid order CS2406191418XXXX (1,100.00 + 134.56) and unsubscribed
    // the database refunded 356.20; ops-bot's unsubscription was refunded 1,100.00.
    assert_eq!(dec(&user("alice")[at("spend_CNY")]), dec("1234.56"));
    assert_eq!(dec(&user("alice")[at("refund_CNY")]), dec("-356.20"));
    assert_eq!(dec(&user("ops-bot")[at("refund_CNY")]), dec("-1100"));
    assert_eq!(dec(&user("mallory")[at("spend_CNY")]), Decimal::ZERO);

    // The same figures from the JSONL output, read back as summary records.
    let records: Vec<cts_audit::summary::SummaryRecord> = parse_lines(&stdout_of([
        "scan",
        "--bills",
        "samples/bills",
        "samples/",
        "--format",
        "jsonl",
        "-q",
    ]));
    let table = cts_audit::summary::summarize(&records, &["user"]).unwrap();
    let spend = table
        .column("spend_CNY")
        .unwrap()
        .as_materialized_series()
        .decimal()
        .unwrap()
        .physical()
        .clone();
    let total: i128 = spend.iter().flatten().sum();
    assert_eq!(Decimal::from_i128_with_scale(total, 8), dec("1234.56"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn ocsf_ecs_and_csv_carry_the_cost() {
    let run = |format: &str| {
        stdout_of([
            "scan",
            "--bills",
            "samples/bills",
            "samples/",
            "-q",
            "--format",
            format,
        ])
    };
    let pay = |text: &str| -> serde_json::Value {
        parse_lines::<serde_json::Value>(text)
            .into_iter()
            .find(|v| v.to_string().contains("payOrder"))
            .unwrap()
    };
    let ocsf = pay(&run("ocsf"));
    assert_eq!(
        ocsf["unmapped"]["cts_audit"]["cost"]["amount"],
        "1234.56000000"
    );
    assert_eq!(ocsf["unmapped"]["cts_audit"]["cost"]["match"], "order");
    let ecs = pay(&run("ecs"));
    assert_eq!(
        ecs["huaweicloud"]["cts"]["audit"]["cost"]["currency"],
        "CNY"
    );
    let csv = run("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header = reader.headers().unwrap().clone();
    let cost = header.iter().position(|h| h == "cost").unwrap();
    let name = header.iter().position(|h| h == "trace_name").unwrap();
    let row = reader
        .records()
        .map(Result::unwrap)
        .find(|r| &r[name] == "payOrder")
        .unwrap();
    assert_eq!(&row[cost], "1234.56000000 CNY");
}

#[test]
fn an_empty_page_is_a_bill_file_with_no_charges() {
    let dir = temp_dir("empty-page");
    std::fs::write(
        dir.join("empty.json"),
        r#"{"currency":"CNY","total_count":0,"fee_records":[]}"#,
    )
    .unwrap();
    std::fs::write(dir.join("other.json"), r#"{"hello":[1,2]}"#).unwrap();
    let bills = read_bills(std::slice::from_ref(&dir), &ReadOptions::default());
    assert_eq!(
        (
            bills.stats.files,
            bills.stats.files_not_read,
            bills.stats.read
        ),
        (2, 0, 1)
    );
    // `{"hello":…}` is one record that is not a bill record: an error, located.
    assert_eq!(bills.stats.errors, 1);
    assert!(
        bills.problems[0]
            .to_string()
            .contains("other.json#1: not a bill record"),
        "{:?}",
        bills.problems
    );
    std::fs::remove_dir_all(dir).unwrap();
}
