//! Handler tests on fakes with an SQS event fixture.

use super::*;
use serde_json::json;
use shared::domain::{ChangeOrigin, Operation, System, WriteCommand};
use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};

struct Harness {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    salesforce: Arc<MemorySalesforce>,
    mapper: MapperFn,
}

fn harness() -> Harness {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let salesforce = Arc::new(MemorySalesforce::default());
    let mapper = MapperFn::new(
        store.clone(),
        store.clone(),
        queue.clone(),
        salesforce.clone(),
        Arc::new(MemoryGainsight::default()),
        Jobs::builtin(),
        shared::domain::schema::standard_schemas(),
    );
    Harness {
        store,
        queue,
        salesforce,
        mapper,
    }
}

/// A Person created in Gainsight on Company `company`, as the webhook queues it.
fn person_change(gsid: &str, company: &str) -> String {
    let record = shared::domain::SourceRecord {
        source: System::Gainsight,
        object: "Person".into(),
        id: gsid.into(),
        fields: json!({"LastName": "L", "Email": format!("{gsid}@x.io"), "CompanyId": company})
            .as_object()
            .cloned()
            .unwrap(),
    };
    let change = ChangeEvent::pushed(record, format!("ev-{gsid}"), Operation::Created, 1, 2);
    serde_json::to_string(&change).unwrap()
}

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
        participants: None,
        load: None,
        waiting_since_ms: None,
        read: Default::default(),
        changed_by: None,
        merge: None,
    })
    .unwrap()
}

fn event(messages: Vec<(&str, String)>) -> SqsEvent {
    shared::fakes::sqs_event(include_str!("../fixtures/sqs_event.json"), messages)
}

/// `messages` on their last delivery (the queue's maxReceiveCount, 5).
fn last_delivery(messages: Vec<(&str, String)>) -> SqsEvent {
    let mut e = event(messages);
    for m in &mut e.records {
        (m.attributes).insert("ApproximateReceiveCount".into(), "5".into());
    }
    e
}

#[tokio::test]
async fn maps_changes_to_write_commands_and_fails_only_the_bad_message() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    let (response, summary) = mapper
        .handle_at(
            event(vec![
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
            ]),
            shared::time::now_ms(),
        )
        .await;
    let failed = shared::fakes::failed_ids(&response);
    assert_eq!(failed, vec!["m2"]);
    assert_eq!(
        summary,
        Summary {
            writes: 1,
            ignored: 1,
            rejected: 0,
            waiting: 0,
            failed_messages: 1,
            echoes: 0
        }
    );
    let sent = queue.bodies();
    let cmd: WriteCommand = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(cmd.object, "Account");
    assert_eq!(cmd.fields["AnnualRevenue"], json!(10));
    let deleted = store.ledger_of("company_account", "G2").unwrap();
    assert_eq!(deleted.ignored_count, 1);
    assert!(deleted.last_ignored_reason.unwrap().contains("deleted"));
    // One run for the job, written once for the whole batch, each record on its own line; the
    // ignored record's history links to it.
    assert_eq!(*store.run_writes.lock().unwrap(), 1);
    let runs = store.runs.lock().unwrap().clone();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(run.job.as_deref(), Some("company_account"));
    assert_eq!((run.succeeded, run.ignored, run.failed), (1, 1, 0));
    assert_eq!(run.log.len(), 2);
    assert_eq!(
        run.log[0].fields,
        ["AnnualRevenue", "Gainsight_Company_Id__c", "Name"]
    );
    assert_eq!(deleted.history[0].run, run.id.to_string());
}

#[tokio::test]
async fn an_echo_of_the_last_write_is_ignored_and_counted() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    let body = change(
        "G1",
        Operation::Updated,
        json!({"Gsid": "G1", "Name": "Acme"}),
    );
    mapper.handle(event(vec![("m1", body.clone())])).await;
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    store
        .record(
            &shared::ports::LedgerWrite::new(
                "company_account",
                shared::domain::LedgerKey::Gainsight("G1".into()),
                LedgerUpdate::Synced {
                    salesforce_id: Some("001".into()),
                    source: System::Gainsight,
                    source_changed_at_ms: 1,
                    fields: cmd.field_states,
                },
                "",
            ),
            2,
        )
        .await
        .unwrap();
    let (_, summary) = mapper
        .handle_at(event(vec![("m2", body)]), shared::time::now_ms())
        .await;
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

/// Company G1's change named `name`, made at `ms`.
fn named_at(name: &str, ms: i64) -> String {
    let body = change(
        "G1",
        Operation::Updated,
        json!({"Gsid": "G1", "Name": name}),
    );
    let mut c: ChangeEvent = serde_json::from_str(&body).unwrap();
    c.occurred_at_ms = ms;
    c.event_id = format!("ev-{ms}");
    serde_json::to_string(&c).unwrap()
}

/// G1 named "Acme" at 100, mapped and its write landed at 150: its ledger key.
async fn synced_at_100(
    mapper: &MapperFn,
    queue: &MemoryQueue,
    store: &MemoryStore,
) -> shared::domain::LedgerKey {
    mapper
        .handle(event(vec![("m1", named_at("Acme", 100))]))
        .await;
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    let synced = LedgerUpdate::Synced {
        salesforce_id: Some("001".into()),
        source: System::Gainsight,
        source_changed_at_ms: 100,
        fields: cmd.field_states,
    };
    let key = shared::domain::LedgerKey::Gainsight("G1".into());
    let write = shared::ports::LedgerWrite::new("company_account", key.clone(), synced, "");
    store.record(&write, 150).await.unwrap();
    key
}

/// A write queued for a record already in the ledger is noted there; a change behind it that
/// sets the value back finds nothing changed, and is queued all the same (with nothing to write
/// and every field carried as unchanged) instead of being ignored.
#[tokio::test]
async fn a_set_back_behind_a_write_on_its_way_is_queued_not_ignored() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    synced_at_100(&mapper, &queue, &store).await;
    mapper
        .handle(event(vec![("m2", named_at("Acme 2", 200))]))
        .await;
    let record = store.ledger_of("company_account", "G1").unwrap();
    assert_eq!(record.mapped_at.get(&System::Gainsight), Some(&200));
    let (_, summary) = mapper
        .handle_at(event(vec![("m3", named_at("Acme", 300))]), 400)
        .await;
    assert_eq!((summary.writes, summary.ignored), (1, 0));
    let bodies = queue.bodies();
    let snapshot: WriteCommand = serde_json::from_str(&bodies[2]).unwrap();
    assert!(snapshot.fields.is_empty(), "{:?}", snapshot.fields);
    assert_eq!(snapshot.unchanged["Name"].value, json!("Acme"));
    assert_eq!(snapshot.source_changed_at_ms, 300);
    let log = store.run_log();
    assert!(
        log.contains("an earlier change of this record is still on its way"),
        "{log}"
    );
    // Everything queued so far landed. The same two changes in one batch, the later one
    // first: mapped in change order, the set back meets the first as a write on its way.
    let landed = LedgerUpdate::Synced {
        salesforce_id: None,
        source: System::Gainsight,
        source_changed_at_ms: 300,
        fields: Default::default(),
    };
    let key = shared::domain::LedgerKey::Gainsight("G1".into());
    let write = shared::ports::LedgerWrite::new("company_account", key, landed, "");
    store.record(&write, 400).await.unwrap();
    assert!(!store
        .ledger_of("company_account", "G1")
        .unwrap()
        .in_flight_before(System::Gainsight, 1_000));
    let (_, summary) = mapper
        .handle_at(
            event(vec![
                ("m5", named_at("Acme", 500)),
                ("m4", named_at("Acme 3", 450)),
            ]),
            600,
        )
        .await;
    assert_eq!((summary.writes, summary.ignored), (2, 0));
    let bodies = queue.bodies();
    let last: WriteCommand = serde_json::from_str(&bodies[4]).unwrap();
    assert_eq!(last.source_changed_at_ms, 500);
    assert!(last.fields.is_empty(), "{:?}", last.fields);
}

#[tokio::test]
async fn store_and_queue_failures_send_messages_back() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
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

#[tokio::test]
async fn derived_lookups_are_one_query_per_batch_and_no_match_is_rejected() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    *salesforce.query_rows.lock().unwrap() =
        vec![json!({"Id": "001A", "Gainsight_Company_Id__c": "C1"})
            .as_object()
            .cloned()
            .unwrap()];
    let person = person_change;
    let (response, summary) = mapper
        .handle_at(
            event(vec![
                ("m1", person("P1", "C1")),
                ("m2", person("P2", "C1")),
                ("m3", person("P3", "C9")),
            ]),
            shared::time::now_ms(),
        )
        .await;
    // C9's Account may still be on its way: P3 is tried again, not yet held against it.
    assert_eq!(shared::fakes::failed_ids(&response), ["m3"]);
    assert_eq!((summary.writes, summary.rejected), (2, 0));
    assert!(store.ledger_of("person_contact", "P3").is_none());
    let log = store.run_log();
    assert!(log.contains("the change is tried again"), "{log}");
    // On its last delivery it is rejected, saying so.
    let last = last_delivery(vec![("m3", person("P3", "C9"))]);
    let (response, summary) = mapper.handle_at(last, shared::time::now_ms()).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.rejected, 1);
    let selects = salesforce.queries.lock().unwrap().clone();
    assert_eq!(
        selects.len(),
        2,
        "one lookup query for three records, one for the retried one: {selects:?}"
    );
    let mut values = selects[0].conditions[0].1.clone();
    values.sort();
    assert_eq!(values, ["C1", "C9"]);
    for body in queue.bodies() {
        let cmd: WriteCommand = serde_json::from_str(&body).unwrap();
        assert_eq!(cmd.fields["AccountId"], json!("001A"));
    }
    let p3 = store.ledger_of("person_contact", "P3").unwrap();
    assert!(p3.error);
    let said = p3.last_error.unwrap();
    assert!(said.contains("found no Account where Gainsight_Company_Id__c = \"C9\""));
    assert!(said.contains("tried on 5 deliveries"), "{said}");
}

/// A Person whose Company has no Account yet waits for it, whatever the delivery: parked under
/// that Account, acknowledged, its ledger record saying what it waits for, its run line too.
#[tokio::test]
async fn a_change_whose_parent_is_missing_waits_for_it_instead_of_using_up_deliveries() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let mapper = mapper.with_waiting(store.clone());
    let person = person_change("P3", "C9");
    for delivery in ["1", "5"] {
        let mut e = event(vec![("m3", person.clone())]);
        e.records[0]
            .attributes
            .insert("ApproximateReceiveCount".into(), delivery.into());
        let (response, summary) = mapper.handle_at(e, 1_000).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "delivery {delivery}"
        );
        assert_eq!(
            (summary.waiting, summary.rejected),
            (1, 0),
            "delivery {delivery}"
        );
    }
    assert!(queue.bodies().is_empty());
    let queries = salesforce.queries.lock().unwrap().len();
    assert_eq!(
        queries, 4,
        "each delivery: the lookup, and the re-check after parking"
    );
    let p3 = store.ledger_of("person_contact", "P3").unwrap();
    assert!(!p3.error, "waiting is not an error");
    assert_eq!(
        p3.waiting.as_deref(),
        Some("waiting for company_account the Salesforce Account where Gainsight_Company_Id__c = C9: the change is replayed when it syncs")
    );
    let waiting = store.waiting.lock().unwrap().clone();
    assert_eq!(
        waiting.len(),
        1,
        "parked again in the same slot: {waiting:?}"
    );
    let (parent, _) = waiting.keys().next().unwrap();
    assert_eq!(parent, "salesforce/Account/Gainsight_Company_Id__c=C9");
    assert!(store.run_log().contains("waiting for company_account"));
}

/// A field set back while the write setting it is queued by another invocation: the set back
/// was mapped against the ledger before that write was noted, so it found every value as last
/// synced. Its in-sync note no longer holds once the write is noted, so it is mapped again
/// against the ledger as it is now, in the same invocation, and goes as a snapshot after it.
#[tokio::test]
async fn a_set_back_found_in_sync_while_another_invocation_queued_the_change_goes_too() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    let key = synced_at_100(&mapper, &queue, &store).await;
    // "Acme 2" at 200 is being mapped by another invocation: its write is noted after this
    // one read the ledger and before it records the set back at 300.
    let noted = key.clone();
    *store.meanwhile.lock().unwrap() = Some(Box::new(move |ledger| {
        let record = ledger
            .get_mut(&("company_account".to_string(), noted))
            .unwrap();
        record.mapped(System::Gainsight, 200);
    }));
    let (response, summary) = mapper
        .handle_at(event(vec![("m3", named_at("Acme", 300))]), 400)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.writes, 1, "mapped again: a snapshot");
    let bodies = queue.bodies();
    assert_eq!(bodies.len(), 2);
    let snapshot: WriteCommand = serde_json::from_str(&bodies[1]).unwrap();
    assert!(snapshot.fields.is_empty(), "{:?}", snapshot.fields);
    assert_eq!(snapshot.unchanged["Name"].value, json!("Acme"));
    assert_eq!(snapshot.source_changed_at_ms, 300);
    let record = store.ledger_of("company_account", "G1").unwrap();
    assert_eq!(record.ignored_count, 0, "the in-sync note was not recorded");
    assert_eq!(record.changed_at(System::Gainsight), Some(100));
}

/// The other order: the set back is recorded in sync first, so the older change's write, noted
/// and queued after it, is stale when the pusher meets it.
#[tokio::test]
async fn a_set_back_recorded_in_sync_first_makes_the_older_write_stale() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    synced_at_100(&mapper, &queue, &store).await;
    let (_, summary) = mapper
        .handle_at(event(vec![("m3", named_at("Acme", 300))]), 400)
        .await;
    assert_eq!((summary.writes, summary.ignored), (0, 1));
    let record = store.ledger_of("company_account", "G1").unwrap();
    assert_eq!(record.changed_at(System::Gainsight), Some(300));
    // The older change, mapped by an invocation that read the ledger before the note, is
    // queued: the pusher's staleness check drops it.
    let older = {
        let body = named_at("Acme 2", 200);
        let c: ChangeEvent = serde_json::from_str(&body).unwrap();
        let mut ledger = record.clone();
        ledger.gainsight_changed_at_ms = Some(100);
        let jobs = Jobs::builtin();
        let mapper = shared::domain::Mapper::new(jobs.get("company_account").unwrap(), None);
        let shared::domain::MapOutcome::Write(cmds) =
            mapper.map(&c, Some(&ledger), &Default::default())
        else {
            panic!("a write expected")
        };
        cmds.into_iter().next().unwrap()
    };
    let mut ledgers = LedgerBatch::default();
    ledgers.extend([record]);
    let pending = shared::domain::push::Pending {
        message_id: "m2".into(),
        command: older,
    };
    let fresh = shared::domain::push::drop_stale(vec![pending], &ledgers);
    assert_eq!((fresh.fresh.len(), fresh.stale.len()), (0, 1));
}

/// A batch whose invocation is about to end runs no lookup: the changes that need one go back to
/// the queue (not parked: their parent was never looked for), and the rest are mapped and queued
/// as usual; on a last delivery the change is given up, saying why.
#[tokio::test]
async fn lookups_are_not_started_near_the_deadline() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let mapper = mapper.with_waiting(store.clone());
    let person = person_change("P1", "C1");
    let company = change("G1", Operation::Created, json!({"Name": "Acme"}));
    let soon = shared::lambda::Deadline::in_ms(DEADLINE_MARGIN_MS - 1_000);
    let e = event(vec![("m1", person), ("m2", company)]);
    let (response, summary) = mapper.handle_at_by(e, 1_000, soon).await;
    assert!(
        salesforce.queries.lock().unwrap().is_empty(),
        "no lookup started"
    );
    assert_eq!(shared::fakes::failed_ids(&response), ["m1"]);
    assert_eq!(summary.writes, 1, "the Company needs no lookup");
    assert_eq!(queue.bodies().len(), 1);
    assert!(store.waiting.lock().unwrap().is_empty(), "not parked");
    assert!(store.ledger_of("person_contact", "P1").is_none());

    let last = last_delivery(vec![("m1", person_change("P1", "C1"))]);
    let (response, _) = mapper.handle_at_by(last, 2_000, soon).await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m1"]);
    let said = (store.ledger_of("person_contact", "P1"))
        .and_then(|r| r.last_error)
        .unwrap_or_default();
    assert!(
        said.contains("cut off near the invocation's deadline"),
        "{said}"
    );
}

/// The parent syncs between the batch's lookup and the parking (its pusher looked for waiting
/// changes before this one was there): the mapper looks the parent up once more after parking,
/// finds it, takes the change out of the waiting store and maps it at once.
#[tokio::test]
async fn a_parent_that_syncs_while_its_child_is_being_parked_is_found() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let mapper = mapper.with_waiting(store.clone());
    *salesforce.rows_after_first.lock().unwrap() =
        Some(vec![json!({"Id": "001A", "Gainsight_Company_Id__c": "C9"})
            .as_object()
            .cloned()
            .unwrap()]);
    let person = person_change("P3", "C9");
    let (response, summary) = mapper.handle_at(event(vec![("m3", person)]), 1_000).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!((summary.waiting, summary.writes), (1, 1));
    assert_eq!(
        salesforce.queries.lock().unwrap().len(),
        2,
        "the lookup, then the re-check"
    );
    assert!(store.waiting.lock().unwrap().is_empty(), "taken out again");
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    assert_eq!(cmd.fields["AccountId"], json!("001A"));
}

/// The second lookup after parking fails (a timeout): whether the parent synced meanwhile is not
/// known, and its pusher may have looked for waiting changes before this one was parked. The
/// message is tried again (the change stays parked meanwhile) instead of being acknowledged on a
/// guess; on its last delivery it is acknowledged, left to the poller's re-check.
#[tokio::test]
async fn a_parked_change_whose_second_lookup_fails_is_tried_again() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let mapper = mapper.with_waiting(store.clone());
    *salesforce.selects_time_out_after_first.lock().unwrap() = true;
    let person = person_change("P3", "C9");
    let (response, summary) = mapper
        .handle_at(event(vec![("m3", person.clone())]), 1_000)
        .await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m3"]);
    assert_eq!(summary.waiting, 1, "parked meanwhile");
    assert_eq!(store.waiting.lock().unwrap().len(), 1);
    assert!(queue.bodies().is_empty());

    salesforce.queries.lock().unwrap().clear();
    let last = last_delivery(vec![("m3", person)]);
    let (response, _) = mapper.handle_at(last, 2_000).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the last delivery is acknowledged: the change waits parked"
    );
    assert_eq!(store.waiting.lock().unwrap().len(), 1);
}

/// A change whose lookup fails on its last delivery (Salesforce unavailable) goes to the changes
/// dead-letter queue, and the ledger says so first: given up, why, where it waits and what to do.
/// Before, it reached the dead-letter queue with no ledger record (how two Gainsight Cases of a
/// 10,000-change soak were lost: their Account lookups had found nothing on four deliveries, and
/// the lookup of the fifth met an injected fault).
#[tokio::test]
async fn a_change_failing_on_its_last_delivery_is_recorded_as_given_up() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let mapper = mapper.with_waiting(store.clone());
    *salesforce.selects_unavailable.lock().unwrap() = true;
    let first = event(vec![("m3", person_change("P3", "C9"))]);
    let (response, _) = mapper.handle_at(first, 1_000).await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m3"]);
    assert!(
        store.ledger_of("person_contact", "P3").is_none(),
        "an earlier delivery is only tried again"
    );

    let last = last_delivery(vec![("m3", person_change("P3", "C9"))]);
    let (response, _) = mapper.handle_at(last, 2_000).await;
    assert_eq!(
        shared::fakes::failed_ids(&response),
        ["m3"],
        "SQS moves it to the dead-letter queue"
    );
    assert!(queue.bodies().is_empty());
    let p3 = store.ledger_of("person_contact", "P3").unwrap();
    assert!(p3.error);
    let said = p3.last_error.unwrap();
    assert!(said.starts_with("gave up after 5 deliveries: "), "{said}");
    assert!(said.contains("503"), "the cause: {said}");
    assert!(said.contains("changes dead-letter queue"), "{said}");
    let log = store.run_log();
    assert!(log.contains("gave up after 5 deliveries"), "{log}");
}

mod salesforce;

/// `mapper` reading the job states from `store`, and the changes queue stopped jobs' changes
/// wait in.
fn with_job_states(mapper: MapperFn, store: &Arc<MemoryStore>) -> (MapperFn, Arc<MemoryQueue>) {
    let changes = Arc::new(MemoryQueue::default());
    let mapper = mapper.with_job_states(Stopped {
        states: shared::ports::JobStateCache::new(store.clone()),
        changes: changes.clone(),
        delay: STOPPED_DELAY,
    });
    (mapper, changes)
}

/// A change of a paused job is neither mapped nor failed: it goes back to the changes queue as a
/// fresh message, delivered again after the stopped delay; nothing is written for it.
#[tokio::test]
async fn a_change_of_a_stopped_job_waits_on_the_changes_queue() {
    use shared::domain::job_state::JobCommand;
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    let (mapper, changes) = with_job_states(mapper, &store);
    let pause = JobCommand::Pause {
        why: "org upgrade".into(),
    };
    shared::ports::change_job_state(store.as_ref(), "company_account", &pause, ("ops", 1))
        .await
        .unwrap();
    let company = change(
        "G1",
        Operation::Updated,
        json!({"Gsid": "G1", "Name": "Acme"}),
    );
    let (response, summary) = mapper
        .handle_at(event(vec![("m1", company.clone())]), shared::time::now_ms())
        .await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    let waiting: Vec<ChangeEvent> = (changes.bodies().iter())
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].record_id, "G1");
    assert_eq!(*changes.delays.lock().unwrap(), vec![STOPPED_DELAY]);
    assert!(queue.bodies().is_empty(), "nothing written");
    assert_eq!((summary.writes, summary.failed_messages), (0, 0));
    let run = store.runs.lock().unwrap().clone();
    let said = run.iter().flat_map(|r| r.log.iter()).find_map(|l| {
        l.message
            .clone()
            .filter(|m| m.contains("waiting: job company_account is paused"))
    });
    assert!(said.is_some_and(|m| m.contains("org upgrade")), "{run:?}");
}

/// Salesforce refuses the credentials for a lookup: the job is deactivated by the mapper, the
/// message is tried again, and on its next delivery waits on the changes queue instead of
/// failing towards the dead-letter queue.
#[tokio::test]
async fn refused_credentials_deactivate_the_job_and_its_changes_wait() {
    use shared::domain::job_state::JobState;
    let Harness {
        store,
        salesforce,
        mapper,
        ..
    } = harness();
    let (mapper, changes) = with_job_states(mapper, &store);
    *salesforce.selects_unauthorised.lock().unwrap() = true;
    let person = person_change("P1", "G9");
    let (response, _) = mapper
        .handle_at(event(vec![("m1", person.clone())]), 1_000)
        .await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m1"], "tried again");
    let states = store.job_states.lock().unwrap().clone();
    let status = &states["person_contact"];
    assert_eq!(
        (status.state, status.by.as_str()),
        (JobState::Deactivated, "mapper")
    );
    assert!(changes.bodies().is_empty());
    let (response, _) = mapper.handle_at(event(vec![("m1", person)]), 2_000).await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    assert_eq!(changes.bodies().len(), 1, "the change waits");
}
