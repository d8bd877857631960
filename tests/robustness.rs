//! Properties over generated input: records cut across any block boundary
//! come out whole and in order, and no input, however damaged, panics the
//! reader or breaks the counts.

mod common;

use common::damage;
use cts_audit::input::{Layout, Unit, UnitReader};
use cts_audit::records::{visit_unit, Location, Visitor};
use cts_audit::trace::Trace;
use proptest::prelude::*;

/// Collects trace ids and problems in order.
#[derive(Default)]
struct Ids {
    ids: Vec<String>,
    problems: Vec<(Location, String)>,
    /// Records read salvaged, by location.
    repaired: Vec<Location>,
}

impl Visitor for Ids {
    const FULL: bool = true;
    fn trace(&mut self, trace: &Trace<'_>, _: &str, _: Location) {
        self.ids
            .push(trace.trace_id.as_deref().unwrap_or("").to_owned());
    }
    fn problem(&mut self, location: Location, message: String) {
        self.problems.push((location, message));
    }
    fn repaired(&mut self, location: Location, _: &[String], _: &[String]) {
        self.repaired.push(location);
    }
}

fn read_all(bytes: &[u8], block: usize) -> (Vec<Unit>, Ids, usize) {
    let mut reader = UnitReader::new(0, bytes).with_block_bytes(block);
    let mut units = Vec::new();
    while let Some(unit) = reader.next_unit(&mut Vec::new) {
        units.push(unit);
    }
    let mut ids = Ids::default();
    for unit in &units {
        visit_unit(unit, &mut ids);
    }
    let read_problems = reader.take_problems().len();
    (units, ids, read_problems)
}

/// A trace whose strings carry the characters that trip naive splitters.
fn trace_json(id: usize, noise: &str) -> String {
    serde_json::json!({
        "trace_id": format!("id-{id}"),
        "trace_name": "payOrder",
        "service_type": "CBC",
        "resource_name": noise,
        "request": serde_json::json!({"note": noise, "nested": [noise, {"k": noise}]}).to_string(),
    })
    .to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arrays_split_at_any_block_size_keep_every_element(
        noise in prop::collection::vec(r#"[\[\]{},"\\a-z \n\t:é]{0,24}"#, 1..40),
        block in 1usize..600,
        pretty in any::<bool>(),
    ) {
        let traces: Vec<serde_json::Value> = noise.iter().enumerate()
            .map(|(i, n)| serde_json::from_str(&trace_json(i, n)).unwrap()).collect();
        let text = if pretty { serde_json::to_string_pretty(&traces).unwrap() } else { serde_json::to_string(&traces).unwrap() };
        let (units, ids, read_problems) = read_all(text.as_bytes(), block);
        let all_elements = units.iter().all(|u| matches!(u.layout, Layout::Elements { .. }));
        prop_assert!(all_elements);
        prop_assert_eq!(read_problems, 0);
        prop_assert!(ids.problems.is_empty(), "{:?}", ids.problems);
        let expected: Vec<String> = (0..noise.len()).map(|i| format!("id-{i}")).collect();
        prop_assert_eq!(ids.ids, expected);
    }

    #[test]
    fn lines_split_at_any_block_size_keep_every_line_number(
        noise in prop::collection::vec(r#"[\[\]{},"\\a-z :é]{0,24}"#, 1..40),
        block in 1usize..600,
        crlf in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let text: String = noise.iter().enumerate().map(|(i, n)| format!("{}{end}", trace_json(i, n))).collect();
        let (_, ids, _) = read_all(text.as_bytes(), block);
        prop_assert_eq!(ids.ids.len(), noise.len());
        prop_assert!(ids.problems.is_empty());
    }

    #[test]
    fn csv_rows_are_each_read_or_reported(
        cells in prop::collection::vec(prop::collection::vec(r#"[a-z ,"\r\né{}]{0,12}"#, 1..5), 1..30),
        block in 1usize..600,
    ) {
        // Each row as the csv crate quotes it; rows of 3 cells match the
        // header, the others are damaged.
        let mut text = b"Trace ID,Trace Name,Trace Status\r\n".to_vec();
        {
            let mut writer = csv::WriterBuilder::new().flexible(true).from_writer(&mut text);
            for (i, row) in cells.iter().enumerate() {
                let mut row = row.clone();
                row[0] = format!("id-{i}");
                writer.write_record(&row).unwrap();
            }
        }
        let (units, ids, read_problems) = read_all(&text, block);
        prop_assert!(units.iter().all(|u| matches!(u.layout, Layout::Csv)));
        prop_assert_eq!(read_problems, 0);
        let good: Vec<String> = cells.iter().enumerate()
            .filter(|(_, row)| row.len() == 3)
            .map(|(i, _)| format!("id-{i}")).collect();
        // Every whole row is read, in order. A damaged row is reported, or
        // read salvaged when its quote was unbalanced and the lines it ran
        // over are rows of their own (which are read too; their ids come
        // from the noise, never `id-N`).
        let whole: Vec<&String> = ids.ids.iter()
            .filter(|id| id.starts_with("id-"))
            .filter(|id| good.contains(id))
            .collect();
        prop_assert_eq!(whole, good.iter().collect::<Vec<_>>());
        prop_assert_eq!(
            ids.problems.len() + ids.repaired.len(),
            cells.len() - good.len(),
            "{:?}", ids.problems
        );
    }

    #[test]
    fn damaged_input_never_panics_and_accounts_for_itself(
        bytes in prop::collection::vec(any::<u8>(), 0..2000),
        cut in 0usize..2000,
        block in 1usize..300,
    ) {
        // Random bytes, and a real export cut short at a random point.
        let _ = read_all(&bytes, block);
        let text = serde_json::to_string(&(0..20).map(|i| serde_json::from_str::<serde_json::Value>(&trace_json(i, "x")).unwrap()).collect::<Vec<_>>()).unwrap();
        let truncated = &text.as_bytes()[..cut.min(text.len())];
        let (_, ids, read_problems) = read_all(truncated, block);
        // Every whole element before the cut is read; the cut one is reported.
        prop_assert!(ids.ids.len() <= 20);
        if cut < text.len() && cut > 0 {
            prop_assert!(read_problems + ids.problems.len() >= 1);
        }
    }
}

/// Lines of a JSON-lines export in the shapes the reference documents
/// (§5.1): the shipped LTS sample's records, and variants with `user` as a
/// JSON-encoded string, `code` as a string, the console's time text, the
/// legacy `trace_status`, another service's record, a failure whose
/// response carries a CBC code, and a re-delivered duplicate.
fn export_lines() -> Vec<String> {
    let sample = include_str!("../samples/lts-system-trace.jsonl");
    let records: Vec<serde_json::Value> = sample
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut lines: Vec<String> = records.iter().map(|r| r.to_string()).collect();
    let variant = |i: usize, id: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut record = records[i % records.len()].clone();
        record["trace_id"] = id.into();
        edit(&mut record);
        record.to_string()
    };
    lines.push(variant(0, "a1b2c3d4-2e08-11ef-9d2e-6f5a4b3c2d1e", &|r| {
        r["user"] = r["user"].to_string().into();
        r["code"] = "200".into();
    }));
    lines.push(variant(1, "a1b2c3d5-2e08-11ef-9d2e-6f5a4b3c2d1e", &|r| {
        r["time"] = "Nov 16, 2023 10:54:04 GMT+08:00".into();
        r["trace_status"] = r["trace_rating"].take();
        r["response"] = r#"{"error_code":"CBC.0151","error_msg":"access denied"}"#.into();
    }));
    lines.push(variant(2, "a1b2c3d6-2e08-11ef-9d2e-6f5a4b3c2d1e", &|r| {
        r["service_type"] = "ECS".into();
        r["trace_name"] = "deleteServer".into();
        r["resource_type"] = "ecs".into();
        r["request"] = r#"{"servers":[{"id":"616fb98f-46ca-475e-917e-2563e5a8cd19"}]}"#.into();
    }));
    lines.push(lines[0].clone());
    lines
}

/// The scan's counts add up, as `Stats` documents.
fn assert_counts_add_up(stats: &cts_audit::scan::Stats) -> Result<(), TestCaseError> {
    prop_assert_eq!(stats.unique, stats.records - stats.duplicates);
    prop_assert_eq!(
        stats.unique,
        stats.billing + stats.audit_trail + stats.other_service
    );
    prop_assert_eq!(
        stats.billing + stats.audit_trail,
        stats.catalogued + stats.uncatalogued
    );
    prop_assert_eq!(
        stats.unique,
        stats.emitted + stats.filtered_out + stats.unwritten
    );
    prop_assert_eq!(
        stats.error_list.len() as u64 + stats.errors_unlisted,
        stats.errors
    );
    prop_assert_eq!(
        stats.by_severity.values().sum::<u64>(),
        stats.emitted + stats.filtered_out
    );
    Ok(())
}

/// Scans `bytes` written to a file named `name`, on two threads with the
/// candidates in memory and on one thread with every candidate spilled;
/// checks what holds for any input, however damaged, and returns the first
/// scan's stats and problems.
fn scan_both_ways(
    name: &str,
    bytes: &[u8],
) -> Result<(cts_audit::scan::Stats, Vec<cts_audit::scan::ScanError>), TestCaseError> {
    use cts_audit::catalog::Severity;
    use cts_audit::scan::{scan, CollectSink, ScanOptions};
    let dir = std::env::temp_dir().join(format!(
        "cts-audit-damaged-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(name);
    std::fs::write(&file, bytes).unwrap();
    let run = |threads: usize, held_memory: usize| {
        let mut options = ScanOptions::default();
        options.threads = Some(threads);
        options.held_memory = held_memory;
        options.min_severity = Severity::None;
        let mut sink = CollectSink::default();
        let stats = scan(std::slice::from_ref(&file), &options, &mut sink);
        (stats, sink)
    };
    let (stats, sink) = run(2, 32 << 20);
    let (one_thread, one_thread_sink) = run(1, 0);
    std::fs::remove_dir_all(&dir).unwrap();

    assert_counts_add_up(&stats)?;
    let written = sink
        .output
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .count() as u64;
    prop_assert_eq!(written, stats.emitted);
    prop_assert_eq!(sink.problems.len() as u64, stats.errors);
    // Problems name the file, or a member of it when it is an archive.
    prop_assert!(
        sink.problems.iter().all(|p| p.file.starts_with(&file)),
        "{:?}",
        sink.problems
    );
    prop_assert_eq!(&sink.output, &one_thread_sink.output);
    prop_assert_eq!(
        serde_json::to_value(&stats).unwrap(),
        serde_json::to_value(&one_thread).unwrap()
    );
    Ok((stats, sink.problems))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A realistic export with bytes replaced, dropped, inserted or lines
    /// cut short, through the whole scan: nothing panics, every non-blank
    /// line is a record or a record error, the counts add up, every emitted
    /// record is written, and neither the thread count nor spilling the
    /// rule candidates changes a byte of the output.
    #[test]
    fn damaged_exports_are_scanned_whole_and_account_for_every_line(
        edits in prop::collection::vec((0usize..64, (0usize..4096, any::<u8>(), 0u8..4)), 0..16),
        repeat in 1usize..6,
    ) {
        // The first line stays whole, so the file is still told as JSON lines.
        let mut lines: Vec<Vec<u8>> = std::iter::repeat_n(export_lines(), repeat)
            .flatten()
            .map(String::into_bytes)
            .collect();
        let editable = lines.len() - 1;
        for (line, edit) in edits {
            damage(&mut lines[1 + line % editable], &[edit]);
        }
        let text = lines.join(&b'\n');
        let non_blank = text.split(|&b| b == b'\n').filter(|l| !l.trim_ascii().is_empty()).count() as u64;

        let (stats, problems) = scan_both_ways("export.jsonl", &text)?;
        prop_assert_eq!(stats.records + stats.record_errors, non_blank);
        prop_assert_eq!(stats.files, 1);
        for problem in &problems {
            // A damaged line is named by its number.
            prop_assert!(matches!(problem.location, Some(Location::Line(_))), "{:?}", problem);
        }
    }

    /// The same records as an OBS transfer file (a gzipped JSON array),
    /// damaged inside the array or cut short in the gzip stream: nothing
    /// panics, the counts add up, and the output does not depend on the
    /// thread count or on spilling.
    #[test]
    fn damaged_transfer_files_are_scanned_whole(
        text_edits in prop::collection::vec((0usize..16384, any::<u8>(), 0u8..4), 0..12),
        gzip_cut in prop::option::of(0usize..4096),
        pretty in any::<bool>(),
    ) {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let records: Vec<serde_json::Value> = export_lines()
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let mut text = if pretty {
            serde_json::to_vec_pretty(&records).unwrap()
        } else {
            serde_json::to_vec(&records).unwrap()
        };
        // The opening bracket stays, so the file is still told as an array.
        let mut body = text.split_off(1);
        damage(&mut body, &text_edits);
        text.append(&mut body);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(&text).unwrap();
        let mut gz = encoder.finish().unwrap();
        if let Some(cut) = gzip_cut {
            gz.truncate(10 + cut % gz.len().saturating_sub(10).max(1));
        }

        let (stats, _) = scan_both_ways("cts_CloudTrace_ap-southeast-1_2024-06-19T06-25-00Z_47b9d51830deff47.json.gz", &gz)?;
        prop_assert_eq!(stats.files + stats.files_skipped, 1);
        if text_edits.is_empty() {
            // Undamaged, every record is read; cut short, at most those
            // are, and the cut is reported.
            prop_assert!(stats.records <= records.len() as u64);
            match gzip_cut {
                None => prop_assert_eq!((stats.records, stats.errors), (records.len() as u64, 0)),
                Some(_) => prop_assert!(stats.errors >= 1),
            }
        }
    }

    /// The export as the members of a tar archive (JSON lines, and a gzipped
    /// transfer file), plain or gzipped, with bytes of the archive replaced,
    /// dropped, inserted or cut: nothing panics or hangs, the counts add up,
    /// problems name the archive or a member of it, and the output does not
    /// depend on the thread count or on spilling.
    #[test]
    fn damaged_tar_archives_are_scanned_whole(
        edits in prop::collection::vec((0usize..16384, any::<u8>(), 0u8..4), 0..8),
        gzipped in any::<bool>(),
    ) {
        use flate2::{write::GzEncoder, Compression};
        use std::io::Write;
        let gzip = |bytes: &[u8]| {
            let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
            encoder.write_all(bytes).unwrap();
            encoder.finish().unwrap()
        };
        let lines = export_lines();
        let records: Vec<serde_json::Value> =
            lines.iter().map(|line| serde_json::from_str(line).unwrap()).collect();
        let mut tar = tar::Builder::new(Vec::new());
        let mut add = |path: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, path, bytes).unwrap();
        };
        add("lts/export.jsonl", lines.join("\n").as_bytes());
        add(
            "CloudTraces/ap-southeast-1/2024/06/19/system/CBC/x_CloudTrace_ap-southeast-1_2024-06-19T06-25-00Z_47b9d51830deff47.json.gz",
            &gzip(&serde_json::to_vec(&records).unwrap()),
        );
        let mut bytes = tar.into_inner().unwrap();
        damage(&mut bytes, &edits);
        let (name, bytes) = if gzipped { ("bundle.tar.gz", gzip(&bytes)) } else { ("bundle.tar", bytes) };

        let (stats, _) = scan_both_ways(name, &bytes)?;
        // The archive is accounted for: as members read, or as skipped.
        prop_assert!(stats.files + stats.files_skipped + stats.digests_skipped >= 1);
        if edits.is_empty() {
            // Undamaged, both members are read whole (the second repeats the
            // first's traces, so they are duplicates).
            prop_assert_eq!((stats.files, stats.errors), (2, 0));
            prop_assert_eq!(stats.records, 2 * lines.len() as u64);
        }
    }
}
