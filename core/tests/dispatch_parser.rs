//! The dispatch document parser takes outside bytes: whatever arrives, it
//! returns a document or `InvalidInput`, and never panics.

use doorstep_core::CoreError;
use doorstep_core::dispatch::parse_document;
use proptest::prelude::*;

const SAMPLE: &str = include_str!("../../tests/scenarios/mall-pickup-run.json");

fn only_invalid_input(result: Result<doorstep_core::dispatch::DispatchDocument, CoreError>) -> Result<(), TestCaseError> {
    match result {
        Ok(_) | Err(CoreError::InvalidInput { .. }) => Ok(()),
        Err(other) => Err(TestCaseError::fail(format!("unexpected error kind: {other:?}"))),
    }
}

#[test]
fn the_sample_parses() {
    let doc = parse_document(SAMPLE.as_bytes()).unwrap();
    assert_eq!(doc.jobs.len(), 10);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_are_rejected_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        only_invalid_input(parse_document(&bytes))?;
    }

    #[test]
    fn a_mutated_sample_is_parsed_or_rejected_cleanly(
        edits in proptest::collection::vec((0..SAMPLE.len(), any::<u8>()), 1..6),
        cut in proptest::option::of(0..SAMPLE.len()),
    ) {
        let mut bytes = SAMPLE.as_bytes().to_vec();
        for (at, byte) in edits {
            bytes[at] = byte;
        }
        if let Some(cut) = cut {
            bytes.truncate(cut);
        }
        only_invalid_input(parse_document(&bytes))?;
    }

    #[test]
    fn any_json_value_in_any_field_is_rejected_cleanly(
        field in 0usize..400,
        value in prop_oneof![
            Just(serde_json::json!(null)),
            any::<i64>().prop_map(|n| serde_json::json!(n)),
            any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(|f| serde_json::json!(f)),
            ".{0,40}".prop_map(|s| serde_json::json!(s)),
            Just(serde_json::json!([])),
            Just(serde_json::json!({})),
        ],
    ) {
        let mut doc: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        let mut pointers = Vec::new();
        collect_pointers(&doc, String::new(), &mut pointers);
        let pointer = &pointers[field % pointers.len()];
        *doc.pointer_mut(pointer).unwrap() = value;
        only_invalid_input(parse_document(doc.to_string().as_bytes()))?;
    }
}

fn collect_pointers(value: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                collect_pointers(child, format!("{at}/{key}"), out);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_pointers(child, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}
