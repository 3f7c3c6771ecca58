//! Handler tests on fakes with an SQS event fixture.

use super::*;
use serde_json::json;
use shared::domain::{Jobs, LedgerKey, LedgerUpdate, RecordKey, WriteMode};
use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};

fn command(gsid: &str, name: &str, changed_at: i64) -> String {
    let fields = json!({"Name": name, "Gainsight_Company_Id__c": gsid})
        .as_object()
        .cloned()
        .unwrap();
    serde_json::to_string(&WriteCommand {
        job: "company_account".into(),
        target: System::Salesforce,
        object: "Account".into(),
        key: RecordKey::ExternalId {
            field: "Gainsight_Company_Id__c".into(),
            value: gsid.into(),
        },
        mode: WriteMode::Upsert,
        fields,
        ledger_key: LedgerKey::Gainsight(gsid.into()),
        salesforce_id: None,
        field_states: Default::default(),
        writeback: None,
        source: System::Gainsight,
        conflicts: Default::default(),
        event_id: format!("ev-{gsid}-{changed_at}"),
        source_changed_at_ms: changed_at,
        // Accepted just now, whenever the source changed it.
        received_at_ms: shared::time::now_ms(),
        attachments: Vec::new(),
        skipped: Vec::new(),
        unchanged: Default::default(),
        load: None,
    })
    .unwrap()
}

/// The ledger key of a Salesforce record without a Gainsight twin, as text.
fn sf_only(id: &str) -> String {
    LedgerKey::SalesforceOnly(id.into()).to_string()
}

fn event(bodies: Vec<(&str, String)>) -> SqsEvent {
    shared::fakes::sqs_event(include_str!("../../fixtures/sqs_event.json"), bodies)
}

struct Rig {
    store: Arc<MemoryStore>,
    sf: Arc<MemorySalesforce>,
    gs: Arc<MemoryGainsight>,
    pusher: Pusher,
}

fn rig() -> Rig {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    let gs = Arc::new(MemoryGainsight::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        gs.clone(),
        Jobs::builtin(),
    );
    Rig {
        store,
        sf,
        gs,
        pusher,
    }
}

#[tokio::test]
async fn batches_upserts_into_one_call_and_records_ids() {
    let rig = rig();
    let bodies: Vec<(String, String)> = (0..150)
        .map(|i| (format!("m{i:03}"), command(&format!("G{i}"), "Acme", 1)))
        .collect();
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(
                bodies
                    .iter()
                    .map(|(i, b)| (i.as_str(), b.clone()))
                    .collect(),
            ),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 150);
    assert_eq!(
        *rig.sf.calls.lock().unwrap(),
        1,
        "150 records must go out in one collection call"
    );
    let rec = rig.store.ledger_of("company_account", "G7").unwrap();
    assert!(rec.synced && !rec.error);
    assert!(rec.salesforce_id.unwrap().starts_with("001"));
}

#[tokio::test]
async fn a_rejected_record_is_marked_error_without_failing_the_batch() {
    let rig = rig();
    *rig.sf.reject.lock().unwrap() = Some((
        "G2".into(),
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: ARR must be positive".into(),
    ));
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(vec![
                ("m1", command("G1", "A", 1)),
                ("m2", command("G2", "B", 1)),
            ]),
            shared::time::now_ms(),
        )
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "a rejected record must not be retried"
    );
    assert_eq!((summary.synced, summary.failed_records), (1, 1));
    let bad = rig.store.ledger_of("company_account", "G2").unwrap();
    assert!(bad.error && !bad.synced);
    assert!(bad
        .last_error
        .clone()
        .unwrap()
        .contains("ARR must be positive"));
    // The batch's run: a partial success, one DynamoDB write for the whole batch, the refused
    // record's line carrying Salesforce's message, and the record's history linking to the run.
    assert_eq!(*rig.store.run_writes.lock().unwrap(), 1);
    let run = rig.store.runs.lock().unwrap()[0].clone();
    assert_eq!(run.status, shared::domain::RunStatus::PartialSuccess);
    assert_eq!(
        (
            run.source_object.as_deref(),
            run.destination_object.as_deref()
        ),
        (Some("Company"), Some("Account"))
    );
    let line = run.log.iter().find(|l| l.record == "G2").unwrap();
    assert!(line
        .message
        .as_deref()
        .unwrap()
        .contains("ARR must be positive"));
    assert_eq!(bad.history.last().unwrap().run, run.id.to_string());
}

#[tokio::test]
async fn an_unavailable_target_sends_every_message_back() {
    let rig = rig();
    *rig.sf.unavailable.lock().unwrap() = true;
    let response = rig
        .pusher
        .handle(event(vec![
            ("m1", command("G1", "A", 1)),
            ("m2", command("G2", "B", 1)),
        ]))
        .await;
    assert_eq!(response.batch_item_failures.len(), 2);
    assert!(
        rig.store.ledger_of("company_account", "G1").is_none(),
        "nothing recorded for a retry"
    );
    // The run failed for a technical reason, which is the last line of its log.
    let run = rig.store.runs.lock().unwrap()[0].clone();
    assert_eq!(run.status, shared::domain::RunStatus::Failed);
    let log = run.json_lines();
    let last: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert!(
        last["error"]
            .as_str()
            .unwrap()
            .contains("back to the queue"),
        "{last}"
    );
}

#[tokio::test]
async fn a_rate_limit_defers_the_writes_for_as_long_as_it_asked() {
    let rig = rig();
    let writes = Arc::new(MemoryQueue::default());
    let pusher = rig.pusher.with_deferral(writes.clone(), crate::DEFERRAL);
    *rig.sf.rate_limited.lock().unwrap() = Some(30_000);
    let response = pusher
        .handle(event(vec![
            ("m1", command("G1", "A", 1)),
            ("m2", command("G2", "B", 1)),
        ]))
        .await;
    assert!(
        response.batch_item_failures.is_empty(),
        "sent again, not failed back: a rate limit uses up no delivery"
    );
    assert_eq!(writes.bodies().len(), 2);
    assert_eq!(
        *writes.delays.lock().unwrap(),
        vec![std::time::Duration::from_secs(30)],
        "the Retry-After's 30 s"
    );
    assert!(rig.store.ledger_of("company_account", "G1").is_none());
    let run = rig.store.runs.lock().unwrap()[0].clone();
    let log = run.json_lines();
    assert!(
        log.contains(
            "deferred: Salesforce rate limit hit (HTTP 429): injected; the writes go again in 30 s"
        ),
        "{log}"
    );
}

/// A write held back for more than a week (here by a rate limit) is not held again: it is given
/// up, its ledger record says why, and its message is acknowledged.
#[tokio::test]
async fn a_write_held_back_for_more_than_a_week_is_given_up_not_held_again() {
    let rig = rig();
    let writes = Arc::new(MemoryQueue::default());
    let pusher = rig.pusher.with_deferral(writes.clone(), crate::DEFERRAL);
    *rig.sf.rate_limited.lock().unwrap() = Some(30_000);
    let mut old: WriteCommand = serde_json::from_str(&command("G1", "A", 1)).unwrap();
    old.received_at_ms = shared::time::now_ms() - shared::domain::push::MAX_HOLD_MS - 60_000;
    let response = pusher
        .handle(event(vec![
            ("m1", serde_json::to_string(&old).unwrap()),
            ("m2", command("G2", "B", 1)),
        ]))
        .await;
    assert!(response.batch_item_failures.is_empty(), "both acknowledged");
    assert_eq!(
        writes.bodies().len(),
        1,
        "only the fresh write is held again"
    );
    assert!(writes.bodies()[0].contains("G2"));
    let given_up = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(given_up.error, "{given_up:?}");
    let message = given_up.last_error.unwrap_or_default();
    assert!(
        message.starts_with(
            "not written: held back for more than 7 days (deferred: Salesforce rate limit hit"
        ),
        "{message}"
    );
    assert!(rig.store.ledger_of("company_account", "G2").is_none());
}

#[tokio::test]
async fn only_the_newest_command_per_record_is_written() {
    let rig = rig();
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(vec![
                ("m1", command("G1", "New", 20)),
                ("m2", command("G1", "Old", 10)),
                ("m3", "garbage".into()),
            ]),
            shared::time::now_ms(),
        )
        .await;
    let failed = shared::fakes::failed_ids(&response);
    assert_eq!(failed, vec!["m3"]);
    assert_eq!(summary.superseded, 1);
    let records = rig.sf.records.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records.values().next().unwrap().1["Name"], json!("New"));
}

#[tokio::test]
async fn a_locked_row_is_recorded_and_retried() {
    let rig = rig();
    *rig.sf.reject.lock().unwrap() = Some((
        "G1".into(),
        "UNABLE_TO_LOCK_ROW: unable to obtain exclusive access".into(),
    ));
    let response = rig
        .pusher
        .handle(event(vec![
            ("m1", command("G1", "A", 1)),
            ("m2", command("G2", "B", 1)),
        ]))
        .await;
    let failed = shared::fakes::failed_ids(&response);
    assert_eq!(
        failed,
        vec!["m1"],
        "the locked record goes back to the queue"
    );
    assert!(rig.store.ledger_of("company_account", "G1").unwrap().error);

    *rig.sf.reject.lock().unwrap() = None;
    let response = rig
        .pusher
        .handle(event(vec![("m1", command("G1", "A", 1))]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let rec = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(
        rec.synced && !rec.error,
        "the retry's success clears the error status"
    );
}

#[tokio::test]
async fn a_write_older_than_the_last_written_change_is_dropped() {
    let rig = rig();
    rig.pusher
        .handle(event(vec![("m1", command("G1", "New", 20))]))
        .await;
    let calls = *rig.sf.calls.lock().unwrap();
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(vec![("m2", command("G1", "Old", 10))]),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.superseded, 1);
    assert_eq!(
        *rig.sf.calls.lock().unwrap(),
        calls,
        "no call for a stale write"
    );
    assert_eq!(
        rig.sf.records.lock().unwrap().values().next().unwrap().1["Name"],
        json!("New")
    );

    // An equally old change (a redelivery) is written again: idempotent, and never lost.
    rig.pusher
        .handle(event(vec![("m3", command("G1", "New", 20))]))
        .await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), calls + 1);
}

#[tokio::test]
async fn an_unreadable_ledger_sends_the_writes_back() {
    let rig = rig();
    *rig.store.fail.lock().unwrap() = true;
    let response = rig
        .pusher
        .handle(event(vec![("m1", command("G1", "A", 1))]))
        .await;
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0);
}

fn person_command(email: &str, sfid: &str, mode: WriteMode) -> String {
    serde_json::to_string(&WriteCommand {
        job: "person_contact".into(),
        target: System::Gainsight,
        object: "Person".into(),
        key: RecordKey::ExternalId {
            field: "Email".into(),
            value: email.into(),
        },
        mode,
        fields: json!({"LastName": "L", "Email": email, "SfdcContactId": sfid})
            .as_object()
            .cloned()
            .unwrap(),
        ledger_key: LedgerKey::SalesforceOnly(sfid.into()),
        salesforce_id: Some(sfid.into()),
        field_states: Default::default(),
        writeback: Some(shared::domain::Writeback {
            system: System::Salesforce,
            object: "Contact".into(),
            field: "Gainsight_Person_Id__c".into(),
        }),
        source: System::Salesforce,
        conflicts: Default::default(),
        event_id: format!("ev-{sfid}"),
        source_changed_at_ms: 1,
        received_at_ms: shared::time::now_ms(),
        attachments: Vec::new(),
        skipped: Vec::new(),
        unchanged: Default::default(),
        load: None,
    })
    .unwrap()
}

#[tokio::test]
async fn gainsight_writes_wait_while_its_minute_is_over_budget_and_salesforce_ones_go_on() {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    let gs = Arc::new(MemoryGainsight::default());
    *gs.window.lock().unwrap() = Some(shared::domain::budget::WindowUsage {
        usage: shared::domain::budget::ApiUsage { used: 85, max: 100 },
        age: std::time::Duration::from_secs(20),
    });
    let writes = Arc::new(MemoryQueue::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        gs.clone(),
        Jobs::builtin(),
    )
    .with_deferral(writes.clone(), crate::DEFERRAL);
    let response = pusher
        .handle(event(vec![
            ("m1", person_command("a@x.io", "003A", WriteMode::Upsert)),
            ("m2", command("G1", "A", 1)),
        ]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert!(
        gs.records.lock().unwrap().get("Person").is_none(),
        "no Gainsight write"
    );
    assert_eq!(
        *sf.calls.lock().unwrap(),
        1,
        "the Salesforce write went out"
    );
    assert_eq!(writes.bodies().len(), 1);
    assert!(writes.bodies()[0].contains("003A"));
    assert_eq!(
        *writes.delays.lock().unwrap(),
        vec![std::time::Duration::from_secs(40)],
        "until the window seen 20 s ago has ended"
    );
    let log = store.run_log();
    assert!(
        log.contains("deferred: Gainsight reported 85 of its 100 calls a minute used"),
        "{log}"
    );
}

#[tokio::test]
async fn gainsight_upsert_by_email_updates_matches_inserts_the_rest_and_writes_gsids_back() {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    let gs = Arc::new(MemoryGainsight::default());
    gs.records.lock().unwrap().insert(
        "Person".into(),
        vec![
            json!({"Gsid": "1PEXISTING", "Email": "old@x.io", "LastName": "O"})
                .as_object()
                .cloned()
                .unwrap(),
        ],
    );
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        gs.clone(),
        Jobs::builtin(),
    );
    let (response, summary) = pusher
        .handle_at(
            event(vec![
                ("m1", person_command("OLD@x.io", "003A", WriteMode::Upsert)),
                ("m2", person_command("new@x.io", "003B", WriteMode::Upsert)),
                ("m3", person_command("none@x.io", "003C", WriteMode::Update)),
            ]),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.synced, summary.ignored), (2, 1));
    // One key query per group: the two upserts share one, the update-only command has its own.
    assert_eq!(gs.queries.lock().unwrap().len(), 2);
    // Matched by email (case-insensitively): the ledger moves from sf:003A to the GSID.
    let matched = store.ledger_of("person_contact", "1PEXISTING").unwrap();
    assert_eq!(matched.salesforce_id.as_deref(), Some("003A"));
    assert!(store
        .ledger_of("person_contact", &sf_only("003A"))
        .is_none());
    let people = gs.records.lock().unwrap()["Person"].clone();
    assert_eq!(people.len(), 2, "one inserted, none duplicated");
    let ignored = store.ledger_of("person_contact", &sf_only("003C")).unwrap();
    assert!(ignored
        .last_ignored_reason
        .unwrap()
        .contains("never creates"));
    // Both Contacts learn their GSIDs in one Salesforce call.
    assert_eq!(*sf.calls.lock().unwrap(), 1);
}

#[tokio::test]
async fn an_update_only_write_finds_ids_in_one_query_and_never_creates() {
    let rig = rig();
    let update = |gsid: &str| {
        let mut cmd: WriteCommand = serde_json::from_str(&command(gsid, "Renamed", 5)).unwrap();
        cmd.mode = WriteMode::Update;
        serde_json::to_string(&cmd).unwrap()
    };
    // G1 exists in Salesforce (a prior upsert); G2 does not.
    rig.pusher
        .handle(event(vec![("m0", command("G1", "Acme", 1))]))
        .await;
    let id = rig
        .store
        .ledger_of("company_account", "G1")
        .unwrap()
        .salesforce_id
        .unwrap();
    *rig.sf.query_rows.lock().unwrap() = vec![json!({"Id": id, "Gainsight_Company_Id__c": "G1"})
        .as_object()
        .cloned()
        .unwrap()];
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(vec![("m1", update("G1")), ("m2", update("G2"))]),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.synced, summary.ignored), (1, 1));
    let queries = rig.sf.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    let mut values = queries[0].conditions[0].1.clone();
    values.sort();
    assert_eq!(values, ["G1", "G2"], "{queries:?}");
    let g2 = rig.store.ledger_of("company_account", "G2").unwrap();
    assert!(!g2.synced && g2.last_ignored_reason.unwrap().contains("never creates"));
    let stored = rig.sf.records.lock().unwrap();
    assert_eq!(stored.len(), 1, "nothing created for G2");
    assert!(stored.values().any(|(_, f)| f["Name"] == json!("Renamed")));
}

/// A change mapped by the real engine (standard jobs and describes), as the mapper queues it.
fn mapped(
    source: System,
    id: &str,
    at: i64,
    fields: serde_json::Value,
    ledger: Option<&shared::domain::LedgerRecord>,
) -> WriteCommand {
    use shared::domain::{ChangeEvent, ChangeOrigin, Jobs, Lookups, MapOutcome, Mapper, Operation};
    let jobs = Jobs::builtin();
    let schemas = shared::domain::schema::standard_schemas();
    let change = ChangeEvent {
        event_id: format!("ev-{id}-{at}"),
        source,
        object: if source == System::Gainsight {
            "Company"
        } else {
            "Account"
        }
        .into(),
        record_id: id.into(),
        operation: Operation::Updated,
        occurred_at_ms: at,
        fields: fields.as_object().cloned().unwrap(),
        changed_fields: None,
        origin: ChangeOrigin::Webhook,
        received_at_ms: at,
        participants: None,
        load: None,
        waiting_since_ms: None,
        read: Default::default(),
        changed_by: None,
        merge: None,
    };
    let job = jobs.get("company_account").unwrap();
    match Mapper::new(job, Some(&schemas)).map(&change, ledger, &Lookups::default()) {
        MapOutcome::Write(mut cmds) => cmds.remove(0),
        other => panic!("expected a write, got {other:?}"),
    }
}

#[tokio::test]
async fn opposite_changes_in_one_batch_are_settled_by_the_rule_before_writing() {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    let gs = Arc::new(MemoryGainsight::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        gs.clone(),
        Jobs::builtin(),
    );
    // Name (newest): Gainsight renamed at 100, Salesforce at 200; both mapped before either landed.
    let to_sf = mapped(
        System::Gainsight,
        "G1",
        100,
        json!({"Name": "GS name", "SfdcAccountId": "001A"}),
        None,
    );
    let to_gs = mapped(
        System::Salesforce,
        "001A",
        200,
        json!({"Name": "SF name", "Gainsight_Company_Id__c": "G1"}),
        None,
    );
    let (response, summary) = pusher
        .handle_at(
            event(vec![
                ("m1", serde_json::to_string(&to_sf).unwrap()),
                ("m2", serde_json::to_string(&to_gs).unwrap()),
            ]),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.synced, summary.ignored), (1, 1));
    assert_eq!(
        *sf.calls.lock().unwrap(),
        0,
        "the losing write never reaches Salesforce"
    );
    let updates = gs.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].1["Name"], json!("SF name"));
    let ledger = store.ledger_of("company_account", "G1").unwrap();
    assert!(ledger.synced);
    assert_eq!(
        ledger.last_ignored_reason.as_deref(),
        Some("conflict on Name: both sides changed it; newest keeps the salesforce value")
    );
}

#[tokio::test]
async fn a_conflict_with_a_write_that_landed_meanwhile_drops_the_loser_and_restores_the_winner() {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    sf.records.lock().unwrap().insert(
        ("Account".into(), "001A".into()),
        (
            "001A".into(),
            json!({"Industry": "Energy", "Name": "GS name"})
                .as_object()
                .cloned()
                .unwrap(),
        ),
    );
    let gs = Arc::new(MemoryGainsight::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        gs.clone(),
        Jobs::builtin(),
    );
    // Gainsight's change (at 100) lands on the Account at 150...
    let from_gs = mapped(
        System::Gainsight,
        "G1",
        100,
        json!({"Name": "GS name", "Industry": "Energy", "SfdcAccountId": "001A"}),
        None,
    );
    let mut states = from_gs.field_states.clone();
    states.values_mut().for_each(|s| s.synced_at_ms = 150);
    store
        .record(
            &shared::ports::LedgerWrite::new(
                "company_account",
                LedgerKey::Gainsight("G1".into()),
                LedgerUpdate::Synced {
                    salesforce_id: Some("001A".into()),
                    source: System::Gainsight,
                    source_changed_at_ms: 100,
                    fields: states,
                },
                "",
            ),
            150,
        )
        .await
        .unwrap();
    // ...after Salesforce's own edits at 90, mapped before that landed.
    let from_sf = mapped(
        System::Salesforce,
        "001A",
        90,
        json!({"Name": "SF name", "Industry": "Retail", "Gainsight_Company_Id__c": "G1"}),
        None,
    );
    let (response, summary) = pusher
        .handle_at(
            event(vec![("m1", serde_json::to_string(&from_sf).unwrap())]),
            shared::time::now_ms(),
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 1);
    // Name (newest): Gainsight's edit at 100 beats Salesforce's at 90, so it is not written.
    // Industry (salesforce_wins): written to Gainsight, and restored on the Account, where
    // Gainsight's write had overwritten it.
    let updates = gs.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].1["Industry"], json!("Retail"));
    assert!(updates[0].1.get("Name").is_none(), "{:?}", updates[0].1);
    let account = sf.records.lock().unwrap()[&("Account".to_string(), "001A".to_string())]
        .1
        .clone();
    assert_eq!(account["Industry"], json!("Retail"));
    assert_eq!(account["Name"], json!("GS name"));
    let ledger = store.ledger_of("company_account", "G1").unwrap();
    assert_eq!(ledger.fields["Industry"].from, System::Salesforce);
    assert_eq!(ledger.fields["Name"].from, System::Gainsight);
}

mod fold;
mod gone;
mod leases;
mod loads;
mod replays;
