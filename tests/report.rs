//! `scan --report FILE.html`: the page's counts are the scan's, every actor
//! and flagged record is on it, a hostile trace renders as inert text, the
//! fold stays within its caps, and the samples' page renders in headless
//! Chromium without fetching anything.
//!
//! The browser test runs where Chromium is installed (`.ci/run` installs
//! Debian's and sets `CTS_AUDIT_BROWSER`, which makes it required).
//! Fixtures follow ../shared/reference/cts-trace-format.md.

use assert_cmd::Command;
use cts_audit::analyze::Analyzer;
use cts_audit::catalog::Severity;
use cts_audit::report::fold::{Fold, MAX_ACTORS, MAX_BUCKETS};
use regex::Regex;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T0: i64 = 1_718_777_931_170;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cts-audit-report-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `cts-audit scan` with `args` (stdout JSON lines), writing the
/// report and stats into `dir`; gives (records, stats, page).
fn scan_with_report(dir: &Path, args: &[&str]) -> (Vec<Value>, Value, String) {
    let (report, stats) = (dir.join("report.html"), dir.join("stats.json"));
    let out = Command::cargo_bin("cts-audit")
        .unwrap()
        .timeout(Duration::from_secs(120))
        .args(["scan", "-q", "--format", "jsonl", "--report"])
        .arg(&report)
        .arg("--stats")
        .arg(&stats)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stats = serde_json::from_slice(&std::fs::read(stats).unwrap()).unwrap();
    (records, stats, std::fs::read_to_string(report).unwrap())
}

/// `1,234` as 1234.
fn number(text: &str) -> u64 {
    text.replace(',', "").trim().parse().unwrap()
}

/// The `data-count` cells of "What was read".
fn counts(page: &str) -> BTreeMap<String, u64> {
    Regex::new(r#"data-count="(\w+)">([\d,]+)<"#)
        .unwrap()
        .captures_iter(page)
        .map(|c| (c[1].to_owned(), number(&c[2])))
        .collect()
}

/// An actor as the page names it: `user (account)`.
fn actor_name(record: &Value) -> String {
    let user = record["user"].as_str().unwrap_or("(no user)");
    match record["domain"].as_str() {
        Some(domain) if domain != user => format!("{user} ({domain})"),
        _ => user.to_owned(),
    }
}

/// maud's escaping of an attribute value or text.
fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn flagged(records: &[Value]) -> usize {
    records
        .iter()
        .filter(|r| r["severity"] != "none" && r["severity"] != "info")
        .count()
}

#[test]
fn the_page_counts_what_the_scan_counted_and_names_every_actor() {
    let dir = temp_dir("samples");
    let (records, stats, page) = scan_with_report(
        &dir,
        &["--bills", "samples/bills", "--tz", "+08:00", "samples/"],
    );
    let shown = counts(&page);
    for key in [
        "files",
        "records",
        "duplicates",
        "unique",
        "emitted",
        "filtered_out",
        "errors",
    ] {
        assert_eq!(shown[key], stats[key].as_u64().unwrap(), "{key}");
    }
    // The invariants are shown, and hold.
    assert_eq!(page.matches(r#"data-holds="true""#).count(), 4);
    assert!(!page.contains(r#"data-holds="false""#));
    // One row per actor of the records written.
    let actors: BTreeSet<String> = records.iter().map(actor_name).collect();
    for actor in &actors {
        assert!(
            page.contains(&format!(
                r#"<tr class="actor" data-actor="{}">"#,
                escaped(actor)
            )),
            "{actor}"
        );
    }
    assert_eq!(page.matches(r#"<tr class="actor""#).count(), actors.len());
    // Every flagged record is listed; nothing was left out.
    assert_eq!(
        page.matches(r#"<tr class="record""#).count(),
        flagged(&records)
    );
    // Times in the zone asked for, and money with --bills.
    assert!(page.contains("+08:00") && page.contains("UTC+08:00"));
    assert!(page.contains(r#"data-field="money""#));
    assert!(page.contains(" CNY"), "a cost of the samples' bills");
    // Severity counts at a glance are the records'.
    for severity in ["critical", "high", "medium", "low"] {
        let expected = records.iter().filter(|r| r["severity"] == severity).count();
        let card = Regex::new(&format!(
            r#"data-severity="{severity}"><div><span[^>]*>{severity}</span></div><div class="v">([\d,]+)<"#
        ))
        .unwrap();
        let shown = card.captures(&page).map(|c| number(&c[1])).unwrap_or(0);
        assert_eq!(shown, expected as u64, "{severity}");
    }
    // Without --verify, integrity has its place and says how to fill it.
    assert!(page.contains("Not checked.") && page.contains("scan --verify"));
    // A timeline was drawn, its texts in the zone asked for.
    assert!(page.contains("<svg") && page.contains("time (UTC+08:00)"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_integrity_section_shows_the_chain_with_verify() {
    let dir = temp_dir("verify");
    let (_, stats, page) = scan_with_report(
        &dir,
        &[
            "--verify",
            "--public-key",
            "tests/keys/test-public-key.pem",
            "--signatures",
            "tests/keys/samples-signatures.txt",
            "samples/",
        ],
    );
    assert_eq!(stats["integrity"]["counts"]["problems"], 0);
    assert!(page.contains(r#"data-chain="intact""#));
    assert!(page.contains(r#"id="integrity-counts""#));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_list_is_capped_and_says_how_many_were_left_out() {
    let dir = temp_dir("cap");
    let (records, _, page) = scan_with_report(&dir, &["--report-records", "3", "samples/"]);
    let flagged = flagged(&records);
    assert!(flagged > 3);
    assert_eq!(page.matches(r#"<tr class="record""#).count(), 3);
    assert!(
        page.contains(&format!("{} were left out", flagged - 3)),
        "{page}"
    );
    // Most severe first: the three listed are the three most severe.
    let order = ["critical", "high", "medium", "low"];
    let listed: Vec<usize> = Regex::new(r#"<tr class="record" data-severity="(\w+)""#)
        .unwrap()
        .captures_iter(&page)
        .map(|c| order.iter().position(|s| *s == &c[1]).unwrap())
        .collect();
    let mut worst: Vec<usize> = records
        .iter()
        .filter_map(|r| order.iter().position(|s| r["severity"] == *s))
        .collect();
    worst.sort();
    assert_eq!(listed, worst[..3]);
    std::fs::remove_dir_all(dir).unwrap();
}

/// Traces whose texts try to become markup: a script, an event handler, a
/// `javascript:` URL, a style that escapes its element, SVG with a handler.
fn hostile_traces() -> String {
    let texts = [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        "javascript:alert(3)",
        "\"><svg onload=alert(4)>",
        "</style><script>alert(5)</script>",
        "</textarea></title><iframe src=javascript:alert(6)>",
    ];
    let mut lines = String::new();
    for (n, text) in texts.iter().enumerate() {
        let trace = json!({
            "trace_id": format!("{n:08x}-2e03-11ef-82de-cf140e2a70fb"),
            // A catalogued deletion, so the record is flagged and listed.
            "trace_name": "deleteResource", "service_type": "CBC", "resource_type": "cloudresouce",
            "resource_name": text, "resource_id": text,
            "time": T0 + n as i64 * 60_000, "trace_rating": "warning", "trace_type": "ConsoleAction",
            "code": 403, "source_ip": text,
            "response": {"error_code": text, "error_msg": text},
            "user": {"name": text, "id": "5f2c", "domain": {"name": text, "id": "25fe"}},
        });
        lines.push_str(&trace.to_string());
        lines.push('\n');
        // And an uncatalogued billing call named by the hostile text.
        let named = json!({
            "trace_id": format!("{n:08x}-2e03-11ef-82de-00000000000b"), "trace_name": text,
            "service_type": "CBC", "resource_type": text, "time": T0 + n as i64 * 60_000 + 1,
            "trace_rating": "incident", "trace_type": "ApiCall", "code": 500,
            "user": {"name": text, "domain": {"name": "acme"}},
        });
        lines.push_str(&named.to_string());
        lines.push('\n');
    }
    lines
}

/// Every tag of `page`: its name and its attributes' text.
fn tags(page: &str) -> Vec<(String, String)> {
    Regex::new(r"<([a-zA-Z][a-zA-Z0-9-]*)([^>]*)>")
        .unwrap()
        .captures_iter(page)
        .map(|c| (c[1].to_ascii_lowercase(), c[2].to_owned()))
        .collect()
}

/// No element can run or load anything: no script, frame or object, no
/// event handler, no `javascript:` and no remote URL in any attribute.
fn assert_inert(page: &str) {
    let handler = Regex::new(r#"(?i)\son[a-z]+\s*="#).unwrap();
    let link =
        Regex::new(r#"(?i)\s(src|href|action|formaction|xlink:href)\s*=\s*"([^"]*)""#).unwrap();
    let quoted = Regex::new(r#""[^"]*""#).unwrap();
    for (name, attributes) in tags(page) {
        assert!(
            !matches!(
                name.as_str(),
                "script" | "iframe" | "object" | "embed" | "img" | "form" | "base"
            ),
            "<{name}{attributes}>"
        );
        // Attribute values are quoted and escaped: a handler would show
        // as ` on...=` outside quotes, which escaping never lets through.
        let unquoted = quoted.replace_all(&attributes, "\"\"");
        assert!(!handler.is_match(&unquoted), "<{name}{attributes}>");
        for link in link.captures_iter(&attributes) {
            assert!(link[2].starts_with("data:"), "<{name}{attributes}>");
        }
    }
}

#[test]
fn hostile_fields_render_as_inert_text() {
    let dir = temp_dir("hostile");
    std::fs::write(dir.join("hostile.jsonl"), hostile_traces()).unwrap();
    let input = dir.join("hostile.jsonl");
    let (records, stats, page) = scan_with_report(&dir, &["--all", input.to_str().unwrap()]);
    assert_eq!(stats["records"], 12);
    assert_eq!(records.len(), 12);
    assert_inert(&page);
    // The texts are there, as text.
    for text in [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        "\"><svg onload=alert(4)>",
    ] {
        assert!(page.contains(&escaped(text)), "{text}");
    }
    // The timeline's lane labels (plotters' SVG) are escaped too.
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    assert!(
        svg.contains("&lt;script&gt;") || svg.contains("&lt;img"),
        "lanes name the actors"
    );
    assert!(page.contains(cts_audit::report::html::CONTENT_SECURITY_POLICY));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_fold_keeps_to_its_caps() {
    let mut fold = Fold::new(100);
    let analyzer = Analyzer::default();
    // 7,000 actors (past MAX_ACTORS), an hour apart, more records than the
    // timeline keeps buckets: actors, the list and the buckets all stay
    // within their caps, and nothing is lost from the counts.
    let (actors, total) = (MAX_ACTORS as i64 + 2_000, MAX_BUCKETS as i64 + 10_000);
    for n in 0..total {
        let text = json!({
            "trace_name": "deleteResource", "service_type": "CBC", "resource_type": "cloudresouce",
            "time": T0 + n * 3_600_000, "user": {"name": format!("user-{}", n % actors)},
        })
        .to_string();
        fold.add(&analyzer.analyze_str(&text).unwrap());
    }
    assert_eq!(fold.records, total as u64);
    assert_eq!(fold.actors.len(), MAX_ACTORS + 1);
    let overflow = fold.actors.last().unwrap();
    assert!(overflow.overflow);
    let past_cap = (0..total)
        .filter(|n| n % actors >= MAX_ACTORS as i64)
        .count();
    assert_eq!(overflow.records, past_cap as u64);
    assert_eq!(
        fold.actors.iter().map(|a| a.records).sum::<u64>(),
        total as u64
    );
    assert_eq!(fold.listed().len(), 100);
    assert_eq!(fold.left_out, total as u64 - 100);
    assert_eq!(
        fold.timeline.total(),
        total as u64,
        "every flagged record is in a bucket"
    );
    assert!(fold.timeline.len() <= MAX_BUCKETS);
    assert!(fold.timeline.width_ms > 60_000, "the buckets were widened");
    // The list keeps the most severe, then the earliest.
    assert!(fold.listed().iter().all(|r| r.severity >= Severity::Low));
    let times: Vec<i64> = fold.listed().iter().filter_map(|r| r.time_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
}

/// A one-page HTTP server on loopback: serves `page` at `/report.html` and
/// records every request line it is sent.
fn serve(page: String) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/report.html", listener.local_addr().unwrap());
    let (sender, requests) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            // The rest of the head.
            let mut header = String::new();
            while reader.read_line(&mut header).unwrap_or(0) > 2 {
                header.clear();
            }
            let _ = sender.send(line.trim().to_owned());
            let (status, body) = if line.starts_with("GET /report.html ") {
                ("200 OK", page.as_bytes())
            } else {
                ("404 Not Found", &b""[..])
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
    });
    (url, requests)
}

/// Debian's Chromium, headless; `None` where it is not installed (and
/// `CTS_AUDIT_BROWSER` does not require it).
fn chromium() -> Option<PathBuf> {
    let required = std::env::var_os("CTS_AUDIT_BROWSER");
    let candidates = [
        required.clone().map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/chromium")),
        Some(PathBuf::from("/usr/bin/chromium-browser")),
    ];
    let found = candidates.into_iter().flatten().find(|p| p.is_file());
    if found.is_none() {
        assert!(
            required.is_none(),
            "CTS_AUDIT_BROWSER is set but names no browser"
        );
        eprintln!("skipped: no Chromium here (.ci/run installs it)");
    }
    found
}

/// Renders `url` in headless Chromium; gives the DOM as Chromium built it,
/// and the URLs the page itself asked for (from Chromium's net log; the
/// browser's own background requests have no page as initiator).
fn render(browser: &Path, url: &str, dir: &Path) -> (String, Vec<String>) {
    let net_log = dir.join("net-log.json");
    let out = Command::new(browser)
        .timeout(Duration::from_secs(120))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--log-net-log={}", net_log.display()))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log: Value = serde_json::from_slice(&std::fs::read(&net_log).unwrap()).unwrap();
    let start_job = &log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"];
    let by_page = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| &e["type"] == start_job)
        .filter(|e| e["params"]["initiator"].as_str() != Some("not an origin"))
        .filter_map(|e| e["params"]["url"].as_str().map(str::to_owned))
        .collect();
    (String::from_utf8_lossy(&out.stdout).into_owned(), by_page)
}

#[test]
fn the_samples_report_renders_in_chromium_and_fetches_nothing() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium");
    let (records, stats, page) = scan_with_report(
        &dir,
        &["--bills", "samples/bills", "--tz", "+08:00", "samples/"],
    );
    let (url, requests) = serve(page);
    let (dom, by_page) = render(&browser, &url, &dir);
    // The page asked for nothing but itself, and the server saw nothing else.
    assert!(by_page.iter().all(|u| u == &url), "{by_page:?}");
    let seen: Vec<String> = requests.try_iter().collect();
    assert_eq!(seen, ["GET /report.html HTTP/1.1"]);
    // The DOM Chromium built has the counts, actor rows and records.
    let shown = counts(&dom);
    for key in ["records", "unique", "emitted", "errors"] {
        assert_eq!(shown[key], stats[key].as_u64().unwrap(), "{key}");
    }
    let actors: BTreeSet<String> = records.iter().map(actor_name).collect();
    let rows: BTreeSet<String> = Regex::new(r#"<tr class="actor" data-actor="([^"]*)">"#)
        .unwrap()
        .captures_iter(&dom)
        .map(|c| c[1].replace("&amp;", "&"))
        .collect();
    assert_eq!(rows, actors);
    assert_eq!(
        dom.matches(r#"<tr class="record""#).count(),
        flagged(&records)
    );
    assert!(dom.contains("<svg"), "the timeline is in the DOM");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_hostile_report_stays_inert_in_chromium() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium-hostile");
    let input = dir.join("hostile.jsonl");
    std::fs::write(&input, hostile_traces()).unwrap();
    let (_, _, page) = scan_with_report(&dir, &["--all", input.to_str().unwrap()]);
    let (url, requests) = serve(page);
    let (dom, by_page) = render(&browser, &url, &dir);
    assert!(by_page.iter().all(|u| u == &url), "{by_page:?}");
    assert_eq!(requests.try_iter().count(), 1);
    // Chromium parsed no hostile text into an element.
    assert_inert(&dom);
    assert!(dom.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    std::fs::remove_dir_all(dir).unwrap();
}

/// The check above would see a fetch: a page that loads an image does
/// show it, in the net log and at the server.
#[test]
fn the_fetch_check_sees_a_page_that_fetches() {
    let Some(browser) = chromium() else { return };
    let dir = temp_dir("chromium-control");
    let page = r#"<!DOCTYPE html><html><head><link rel="icon" href="data:,"></head><body><img src="/pixel.png"></body></html>"#;
    let (url, requests) = serve(page.to_owned());
    let (_, by_page) = render(&browser, &url, &dir);
    let pixel = url.replace("report.html", "pixel.png");
    assert!(by_page.contains(&pixel), "{by_page:?}");
    let seen: Vec<String> = requests.try_iter().collect();
    assert!(
        seen.contains(&"GET /pixel.png HTTP/1.1".to_owned()),
        "{seen:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// A burst of failed card bindings by one actor, among a week of ordinary
/// payments by others, stands out on the timeline without reading: the
/// largest mark is a ring (failed) in that actor's lane, in the colour of
/// its severity, and its column is the tallest.
#[test]
fn a_burst_of_failed_bindings_stands_out_on_the_timeline() {
    let dir = temp_dir("burst");
    let mut lines = String::new();
    let user =
        |name: &str| json!({"name": name, "id": "5f2c", "domain": {"name": "acme", "id": "25fe"}});
    for n in 0..60i64 {
        let payment = json!({
            "trace_id": format!("{n:08x}-2e03-11ef-82de-0000000000aa"), "trace_name": "payOrder",
            "service_type": "CBC", "resource_type": "cloudresouce", "time": T0 + n * 10_800_000,
            "trace_rating": "normal", "trace_type": "ConsoleAction", "code": 200,
            "source_ip": "203.0.113.10", "user": user(["alice", "bob", "carol"][n as usize % 3]),
        });
        lines.push_str(&format!("{payment}\n"));
    }
    let burst_start = T0 + 3 * 86_400_000;
    for n in 0..25i64 {
        let binding = json!({
            "trace_id": format!("{n:08x}-2e03-11ef-82de-0000000000bb"), "trace_name": "bindCard",
            "service_type": "CBC", "resource_type": "order", "time": burst_start + n * 20_000,
            "trace_rating": "warning", "trace_type": "ConsoleAction", "code": 403,
            "source_ip": "198.51.100.200", "user": user("mallory"),
            "response": {"error_code": "CBC.0151", "error_msg": "Access denied."},
        });
        lines.push_str(&format!("{binding}\n"));
    }
    let input = dir.join("week.jsonl");
    std::fs::write(&input, lines).unwrap();
    let (records, _, page) = scan_with_report(&dir, &[input.to_str().unwrap()]);
    let burst_severity = records
        .iter()
        .find(|r| r["trace_name"] == "bindCard")
        .map(|r| r["severity"].as_str().unwrap().to_owned())
        .unwrap();
    let svg = &page[page.find("<svg").unwrap()..page.find("</svg>").unwrap()];
    // The lane of each actor: its label's height.
    let label = Regex::new(r#"(?s)<text[^>]*\sy="(\d+)"[^>]*>\s*([^<]*?)\s*</text>"#).unwrap();
    let lane = label
        .captures_iter(svg)
        .find(|c| &c[2] == "mallory (acme)")
        .map(|c| c[1].parse::<i64>().unwrap())
        .expect("mallory has a lane");
    let circle = Regex::new(
        r#"<circle cx="(-?\d+)" cy="(-?\d+)" r="(\d+)"[^>]*fill="([^"]+)" stroke="([^"]+)""#,
    )
    .unwrap();
    let largest = circle
        .captures_iter(svg)
        .max_by_key(|c| c[3].parse::<i64>().unwrap())
        .unwrap();
    let (cy, radius, fill, stroke) = (
        largest[2].parse::<i64>().unwrap(),
        largest[3].parse::<i64>().unwrap(),
        &largest[4],
        &largest[5],
    );
    assert_eq!(cy, lane, "the largest mark is in mallory's lane");
    assert!(radius >= 10, "25 records make a large mark, r={radius}");
    assert_eq!(fill, "none", "failed attempts are rings");
    let (r, g, b) =
        cts_audit::report::html::severity_colour(Severity::parse(&burst_severity).unwrap());
    assert_eq!(
        stroke,
        format!("#{r:02X}{g:02X}{b:02X}"),
        "in the colour of {burst_severity}"
    );
    // The tallest stacked column is the burst's.
    let bar = Regex::new(
        r##"<rect x="(\d+)" y="(\d+)" width="\d+" height="(\d+)"[^>]*fill="#[0-9A-F]{6}""##,
    )
    .unwrap();
    let mut columns: BTreeMap<i64, i64> = BTreeMap::new();
    for c in bar.captures_iter(svg) {
        *columns.entry(c[1].parse().unwrap()).or_default() += c[3].parse::<i64>().unwrap();
    }
    let tallest = columns
        .iter()
        .max_by_key(|(_, h)| **h)
        .map(|(x, _)| *x)
        .unwrap();
    let burst_x: i64 = largest[1].parse().unwrap();
    assert!(
        (tallest - burst_x).abs() <= 12,
        "tallest column at {tallest}, burst at {burst_x}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// Any text in any field a trace gives the page: the page stays inert,
    /// and every record is folded (library, no process per case).
    #[test]
    fn any_field_text_renders_inert(
        texts in proptest::collection::vec(
            proptest::string::string_regex(
                r#"(<|>|"|'|&|=|/| |script|img|svg|on[a-z]{1,6}|javascript:|style|iframe|\\u003c|[a-z]{1,4}){0,12}"#
            ).unwrap(),
            7,
        ),
        failed in proptest::bool::ANY,
    ) {
        let trace = json!({
            "trace_id": "0000beef-2e03-11ef-82de-cf140e2a70fb",
            "trace_name": if failed { "bindCard" } else { texts[0].as_str() },
            "service_type": "CBC", "resource_type": texts[1], "resource_name": texts[2],
            "resource_id": texts[3], "time": T0, "source_ip": texts[4],
            "trace_rating": if failed { "warning" } else { "normal" }, "code": if failed { 403 } else { 200 },
            "response": {"error_code": texts[5]},
            "user": {"name": texts[6], "domain": {"name": texts[5]}},
        })
        .to_string();
        let verdict = Analyzer::default().analyze_str(&trace).unwrap();
        let mut settings = cts_audit::report::html::ReportSettings::default();
        settings.inputs = vec![texts[0].clone()];
        let mut report = cts_audit::report::html::HtmlReport::new(settings);
        report.add(&verdict);
        let page = report.render(&cts_audit::scan::Stats::default());
        assert_inert(&page);
        proptest::prop_assert_eq!(report.fold().records, 1);
    }
}
