//! Handler tests on fakes with an SQS event fixture.

use super::*;
use serde_json::json;
use shared::domain::{ChangeOrigin, Operation, System, WriteCommand};
use shared::fakes::{MemoryQueue, MemoryStore};

fn change(gsid: &str, op: Operation, fields: serde_json::Value) -> String {
    serde_json::to_string(&ChangeEvent {
        event_id: format!("ev-{gsid}"),
        source: System::Gainsight,
        object: "Company".into(),
        record_id: gsid.into(),
        operation: op,
        occurred_at_ms: 1_700_000_000_000,
        fields: fields.as_object().cloned().unwrap(),
        changed_fields: None,
        origin: ChangeOrigin::Webhook,
        received_at_ms: 1_700_000_000_100,
    })
    .unwrap()
}

fn event(messages: Vec<(&str, String)>) -> SqsEvent {
    shared::fakes::sqs_event(include_str!("../fixtures/sqs_event.json"), messages)
}

#[tokio::test]
async fn maps_changes_to_write_commands_and_fails_only_the_bad_message() {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let mapper = MapperFn::new(store.clone(), queue.clone(), Jobs::builtin());
    let (response, summary) = mapper
        .handle_with_summary(event(vec![
            (
                "m1",
                change(
                    "G1",
                    Operation::Updated,
                    json!({"Gsid": "G1", "Name": "Acme", "Arr": 10}),
                ),
            ),
            ("m2", "{not json".into()),
            (
                "m3",
                change("G2", Operation::Deleted, json!({"Gsid": "G2"})),
            ),
        ]))
        .await;
    let failed = shared::fakes::failed_ids(&response);
    assert_eq!(failed, vec!["m2"]);
    assert_eq!(
        summary,
        Summary {
            writes: 1,
            ignored: 1,
            rejected: 0,
            failed_messages: 1
        }
    );
    let sent = queue.bodies();
    let cmd: WriteCommand = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(cmd.object, "Account");
    assert_eq!(cmd.fields["AnnualRevenue"], json!(10));
    let deleted = store.ledger_of("company_account", "G2").unwrap();
    assert_eq!(deleted.ignored_count, 1);
    assert!(deleted.last_ignored_reason.unwrap().contains("deleted"));
}

#[tokio::test]
async fn an_echo_of_the_last_write_is_ignored_and_counted() {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let mapper = MapperFn::new(store.clone(), queue.clone(), Jobs::builtin());
    let body = change(
        "G1",
        Operation::Updated,
        json!({"Gsid": "G1", "Name": "Acme"}),
    );
    mapper.handle(event(vec![("m1", body.clone())])).await;
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    store
        .record(
            "company_account",
            "G1",
            &LedgerUpdate::Synced {
                salesforce_id: Some("001".into()),
                values_hash: cmd.values_hash,
                source_changed_at_ms: 1,
            },
            2,
        )
        .await
        .unwrap();
    let (_, summary) = mapper.handle_with_summary(event(vec![("m2", body)])).await;
    assert_eq!(summary.ignored, 1);
    assert_eq!(queue.bodies().len(), 1, "no second write");
    assert_eq!(
        store
            .ledger_of("company_account", "G1")
            .unwrap()
            .ignored_count,
        1
    );
}

#[tokio::test]
async fn store_and_queue_failures_send_messages_back() {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let mapper = MapperFn::new(store.clone(), queue.clone(), Jobs::builtin());
    *queue.fail_containing.lock().unwrap() = Some("\"G2\"".into());
    let response = mapper
        .handle(event(vec![
            ("m1", change("G1", Operation::Updated, json!({"Name": "A"}))),
            ("m2", change("G2", Operation::Updated, json!({"Name": "B"}))),
        ]))
        .await;
    let failed = shared::fakes::failed_ids(&response);
    assert_eq!(failed, vec!["m2"]);

    *store.fail.lock().unwrap() = true;
    let response = mapper
        .handle(event(vec![(
            "m3",
            change("G3", Operation::Updated, json!({"Name": "C"})),
        )]))
        .await;
    assert_eq!(response.batch_item_failures.len(), 1);
}
