//! Properties over generated input: records cut across any block boundary
//! come out whole and in order, and no input, however damaged, panics the
//! reader or breaks the counts.

use cts_audit::input::{Layout, Unit, UnitReader};
use cts_audit::records::{visit_unit, Location, Visitor};
use cts_audit::trace::Trace;
use proptest::prelude::*;

/// Collects trace ids and problems in order.
#[derive(Default)]
struct Ids {
    ids: Vec<String>,
    problems: Vec<(Location, String)>,
}

impl Visitor for Ids {
    const FULL: bool = true;
    fn trace(&mut self, trace: &Trace<'_>, _: Location) {
        self.ids
            .push(trace.trace_id.as_deref().unwrap_or("").to_owned());
    }
    fn problem(&mut self, location: Location, message: String) {
        self.problems.push((location, message));
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
        prop_assert_eq!(&ids.ids, &good);
        prop_assert_eq!(ids.problems.len(), cells.len() - good.len(), "{:?}", ids.problems);
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
