//! Change events read as Event Relay delivers them through EventBridge.

use super::*;
use crate::domain::change::Reading;
use serde_json::json;

const NOW: i64 = 1_764_928_801_000;
const INTEGRATION_USER: &str = "0055g000000emulAAA";

fn event(v: Value) -> RelayedEvent {
    serde_json::from_value(v).expect("an event")
}

fn fixture() -> Value {
    serde_json::from_str(include_str!("account_update.json")).expect("the fixture parses")
}

fn changes(v: Value) -> Vec<ChangeEvent> {
    match changes_of(event(v), Some(INTEGRATION_USER), NOW) {
        Ok(Relayed::Changes(c)) => c,
        other => panic!("not changes: {other:?}"),
    }
}

#[test]
fn an_update_of_many_records_is_one_change_each_with_only_what_it_carries() {
    let raw = fixture();
    assert!(is_relayed(&raw.to_string()));
    let changes = changes(raw);
    assert_eq!(changes.len(), 2);
    let first = &changes[0];
    assert_eq!(first.record_id, "0015g00000EMUL1AAA");
    assert_eq!(
        (first.object.as_str(), first.source),
        ("Account", System::Salesforce)
    );
    assert_eq!(first.operation, Operation::Updated);
    assert_eq!(first.origin, ChangeOrigin::ChangeDataCapture);
    // The carried field, the nulled one as null, and nothing the event omits (no Name).
    assert_eq!(first.fields["Industry"], json!("Energy"));
    assert_eq!(first.fields["Phone"], Value::Null);
    assert!(!first.fields.contains_key("Name"));
    assert_eq!(first.fields["Id"], json!("0015g00000EMUL1AAA"));
    assert_eq!(
        first.changed_fields.as_deref(),
        Some(
            &[
                "Industry".to_string(),
                "Phone".into(),
                "LastModifiedDate".into()
            ][..]
        )
    );
    assert_eq!(first.occurred_at_ms, 1_764_928_800_000);
    assert_eq!(first.changed_by.as_deref(), Some("0055g000000persAAA"));
    // The same event relayed again has the same ids: it is one change, not two.
    assert_eq!(
        first.event_id,
        "cdc/f5e2c6d4-0a1b-4c3d-8e9f-1a2b3c4d5e6f/0015g00000EMUL1AAA"
    );
    assert_ne!(first.event_id, changes[1].event_id);
    assert_eq!(first.read, Reading::Carried);
}

fn with_header(change: &str, f: impl FnOnce(&mut Value)) -> Value {
    let mut raw = fixture();
    raw["detail"]["payload"]["ChangeEventHeader"]["changeType"] = json!(change);
    f(&mut raw);
    raw
}

#[test]
fn creates_deletes_undeletes_and_gaps() {
    let create = changes(with_header("CREATE", |raw| {
        raw["detail"]["payload"]["Name"] = json!({"FirstName": "Ada", "LastName": "Lovelace"});
    }));
    assert_eq!(create[0].operation, Operation::Created);
    assert_eq!(
        create[0].changed_fields, None,
        "a create carries every field"
    );
    assert_eq!(
        create[0].fields["LastName"],
        json!("Lovelace"),
        "a compound field's parts"
    );

    let delete = changes(with_header("DELETE", |_| {}));
    assert_eq!(delete[0].operation, Operation::Deleted);
    assert_eq!(delete[0].read, Reading::Carried);
    // A restore is recorded, as a delete is, not read back and written.
    let undelete = changes(with_header("UNDELETE", |_| {}));
    assert_eq!(undelete[0].operation, Operation::Restored);
    assert_eq!(undelete[0].read, Reading::Carried);

    for gap in ["GAP_CREATE", "GAP_UPDATE", "GAP_DELETE", "GAP_UNDELETE"] {
        let read = changes(with_header(gap, |_| {}));
        assert!(
            read.iter().all(|c| c.read == Reading::Due),
            "{gap} is read back"
        );
        let restore = gap == "GAP_UNDELETE";
        assert_eq!(read[0].operation == Operation::Restored, restore, "{gap}");
        assert_eq!(read[0].fields.keys().collect::<Vec<_>>(), ["Id"], "{gap}");
    }
}

#[test]
fn an_overflow_asks_for_the_object_to_be_read_again() {
    let raw = with_header("GAP_OVERFLOW", |raw| {
        raw["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = json!([]);
    });
    let read = changes_of(event(raw), Some(INTEGRATION_USER), NOW);
    assert_eq!(
        read,
        Ok(Relayed::Overflow {
            object: "Account".into(),
            since_ms: 1_764_928_800_000
        })
    );
}

#[test]
fn the_integration_users_changes_are_echoes_and_the_future_is_not_believed() {
    let echo = with_header("UPDATE", |raw| {
        raw["detail"]["payload"]["ChangeEventHeader"]["commitUser"] = json!(INTEGRATION_USER);
    });
    let read = changes_of(event(echo), Some(INTEGRATION_USER), NOW);
    assert_eq!(
        read,
        Ok(Relayed::Echo {
            object: "Account".into(),
            records: 2
        })
    );
    let ahead = with_header("UPDATE", |raw| {
        raw["detail"]["payload"]["ChangeEventHeader"]["commitTimestamp"] =
            json!(4_102_444_800_000_i64);
    });
    assert!(changes(ahead).iter().all(|c| c.occurred_at_ms == NOW));
}

#[test]
fn events_without_records_or_with_bad_ids_are_refused() {
    let none = with_header("UPDATE", |raw| {
        raw["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = json!([]);
    });
    assert!(matches!(
        changes_of(event(none), None, NOW),
        Err(CdcError::NoRecords { .. })
    ));
    let bad = with_header("UPDATE", |raw| {
        raw["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = json!(["0015g' OR Id != '"]);
    });
    assert!(matches!(
        changes_of(event(bad), None, NOW),
        Err(CdcError::BadId { .. })
    ));
    let mut headless = fixture();
    headless["detail"]["payload"] = json!({"Name": "x"});
    assert!(matches!(
        changes_of(event(headless), None, NOW),
        Err(CdcError::NoHeader(_))
    ));
}
