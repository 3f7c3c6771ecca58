//! What follows a batch's writes: the changes waiting for a pair replayed when it syncs, writes
//! back to the source made on their own when they fail, and no write started too close to the
//! invocation's deadline.

use super::*;

/// A Person waiting for its Company's Account is queued again as soon as the pusher records that
/// Account synced, and taken out of the waiting store.
#[tokio::test]
async fn a_first_sync_replays_the_changes_waiting_for_it() {
    use shared::domain::waiting::{ParentRef, WaitingChange};
    use shared::domain::{ChangeEvent, Operation, SourceRecord};
    let rig = rig();
    let changes = Arc::new(MemoryQueue::default());
    let pusher = rig.pusher.with_replays(rig.store.clone(), changes.clone());
    let person = ChangeEvent::pushed(
        SourceRecord {
            source: System::Gainsight,
            object: "Person".into(),
            id: "P3".into(),
            fields: json!({"CompanyId": "G1"}).as_object().cloned().unwrap(),
        },
        "ev-P3".into(),
        Operation::Created,
        1,
        2,
    );
    let parent = ParentRef {
        system: System::Salesforce,
        object: "Account".into(),
        matches: vec![("Gainsight_Company_Id__c".into(), "G1".into())],
    };
    let waiting = WaitingChange::new(
        "person_contact",
        LedgerKey::Gainsight("P3".into()),
        parent,
        &person,
        "no Account",
        500,
    );
    use shared::ports::WaitingStore;
    rig.store
        .wait(std::slice::from_ref(&waiting))
        .await
        .unwrap();
    let (_, summary) = pusher
        .handle_at(event(vec![("m1", command("G1", "Acme", 1))]), 1_000)
        .await;
    assert_eq!((summary.synced, summary.replayed), (1, 1));
    let replayed: Vec<ChangeEvent> = changes
        .bodies()
        .iter()
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(replayed.len(), 1);
    assert_eq!(replayed[0].record_id, "P3");
    assert_eq!(
        replayed[0].waiting_since_ms,
        Some(500),
        "it remembers since when it waits"
    );
    assert!(
        rig.store.waiting.lock().unwrap().is_empty(),
        "taken out once queued"
    );
    let reads = *rig.store.waiting_reads.lock().unwrap();
    assert_eq!(
        reads, 2,
        "the Account by GSID and the Company by Salesforce id"
    );
    // A later sync asks again (a replay that failed is made good then), and finds nothing.
    let (_, summary) = pusher
        .handle_at(event(vec![("m2", command("G1", "Acme 2", 2))]), 2_000)
        .await;
    assert_eq!((summary.synced, summary.replayed), (1, 0));
    assert_eq!(*rig.store.waiting_reads.lock().unwrap(), reads + 2);
    assert!(rig.store.run_log().contains(
        "replayed: the Salesforce Account where Gainsight_Company_Id__c = G1 has synced"
    ));
}

/// A batch whose invocation has less than the margin left starts no write: its messages go back
/// to the queue, and one on its last delivery has its give-up recorded in the ledger in time,
/// instead of reaching the dead-letter queue with no word in the ledger.
#[tokio::test]
async fn no_write_starts_too_close_to_the_deadline() {
    let rig = rig();
    let mut e = event(vec![
        ("m1", command("G1", "Acme", 1)),
        ("m2", command("G2", "Beta", 1)),
    ]);
    e.records[1]
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let soon = shared::lambda::Deadline::in_ms(DEADLINE_MARGIN_MS - 1_000);
    let (response, summary) = rig.pusher.handle_at_by(e, 1_000, soon).await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "no call started");
    assert_eq!(summary.synced, 0);
    let mut failed = shared::fakes::failed_ids(&response);
    failed.sort();
    assert_eq!(failed, ["m1", "m2"]);
    let g2 = rig
        .store
        .ledger_of("company_account", "G2")
        .expect("recorded");
    let said = g2.last_error.unwrap_or_default();
    assert!(
        g2.error && said.contains("not started: the invocation had less than 15 s left"),
        "{said}"
    );
    assert!(rig.store.ledger_of("company_account", "G1").is_none());
    // With time enough, the same writes go out.
    let later = shared::lambda::Deadline::in_ms(60_000);
    let again = event(vec![("m1", command("G1", "Acme", 1))]);
    let (_, summary) = rig.pusher.handle_at_by(again, 2_000, later).await;
    assert_eq!(summary.synced, 1);
}

/// A write back that fails is not lost: it goes to the writes queue on its own, is made when
/// that message comes, and marks its pair error when it still fails on its last delivery.
#[tokio::test]
async fn a_write_back_that_fails_is_retried_on_its_own_then_marked() {
    let rig = rig();
    let writes = Arc::new(MemoryQueue::default());
    let pusher = rig.pusher.with_deferral(writes.clone(), DEFERRAL);
    let mut cmd: WriteCommand = serde_json::from_str(&command("G1", "Acme", 1)).unwrap();
    cmd.writeback = Some(shared::domain::Writeback {
        system: System::Gainsight,
        object: "Company".into(),
        field: "SfdcAccountId".into(),
    });
    *rig.gs.updates_unavailable.lock().unwrap() = true;
    let body = serde_json::to_string(&cmd).unwrap();
    let (response, summary) = pusher.handle_at(event(vec![("m1", body)]), 1_000).await;
    assert!(
        response.batch_item_failures.is_empty(),
        "the write itself synced"
    );
    assert_eq!(summary.synced, 1);
    let queued = writes.bodies();
    assert_eq!(queued.len(), 1, "the write back queued on its own");
    assert!(queued[0].contains("\"side_write\"") && queued[0].contains("SfdcAccountId"));

    // It comes back while Gainsight is still down: delivered again.
    let (response, _) = pusher
        .handle_at(event(vec![("s1", queued[0].clone())]), 2_000)
        .await;
    assert_eq!(shared::fakes::failed_ids(&response), ["s1"]);
    // A Contact waits for the Company that holds this Account's id: the write back is its
    // parent coming, and replays it.
    let side: serde_json::Value = serde_json::from_str(&queued[0]).unwrap();
    let account = side["side_write"]["fields"]["SfdcAccountId"]
        .as_str()
        .unwrap()
        .to_string();
    let changes = Arc::new(MemoryQueue::default());
    let pusher = pusher.with_replays(rig.store.clone(), changes.clone());
    park_contact_waiting_for_company(&rig.store, &account).await;
    // Gainsight is back: made, nothing left.
    *rig.gs.updates_unavailable.lock().unwrap() = false;
    let (response, _) = pusher
        .handle_at(event(vec![("s1", queued[0].clone())]), 3_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(changes.bodies().len(), 1, "the waiting Contact replayed");
    let updates = rig.gs.updates.lock().unwrap().clone();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].1["Gsid"], json!("G1"));
    assert!(!rig.store.ledger_of("company_account", "G1").unwrap().error);

    // Down on its last delivery: the pair says what was not written.
    *rig.gs.updates_unavailable.lock().unwrap() = true;
    let mut e = event(vec![("s2", queued[0].clone())]);
    e.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let (response, _) = pusher.handle_at(e, 4_000).await;
    assert!(response.batch_item_failures.is_empty());
    let g1 = rig.store.ledger_of("company_account", "G1").unwrap();
    let said = g1.last_error.unwrap_or_default();
    assert!(
        g1.error
            && said.starts_with(
                "synced, but the Gainsight Company G1 was not updated (SfdcAccountId)"
            ),
        "{said}"
    );
}

/// A Contact change parked until the Company whose SfdcAccountId is `account` syncs.
async fn park_contact_waiting_for_company(store: &MemoryStore, account: &str) {
    use shared::domain::waiting::{ParentRef, WaitingChange};
    use shared::domain::{ChangeEvent, Operation, SourceRecord};
    use shared::ports::WaitingStore;
    let contact = ChangeEvent::pushed(
        SourceRecord {
            source: System::Salesforce,
            object: "Contact".into(),
            id: "003000000000001AAA".into(),
            fields: json!({"AccountId": account}).as_object().cloned().unwrap(),
        },
        "ev-003".into(),
        Operation::Created,
        1,
        1,
    );
    let parent = ParentRef {
        system: System::Gainsight,
        object: "Company".into(),
        matches: vec![("SfdcAccountId".into(), account.into())],
    };
    let key = LedgerKey::SalesforceOnly("003000000000001AAA".into());
    let waiting = WaitingChange::new("person_contact", key, parent, &contact, "none", 1);
    store.wait(&[waiting]).await.unwrap();
}

/// A paused job's write and write back both wait in the writes queue as fresh messages: nothing
/// is written to Salesforce or Gainsight, no message is failed back to SQS.
#[tokio::test]
async fn writes_and_write_backs_of_a_paused_job_wait_unwritten() {
    use shared::domain::job_state::JobCommand;
    let rig = rig();
    let writes = Arc::new(MemoryQueue::default());
    let states = shared::ports::JobStateCache::new(rig.store.clone());
    let pusher = (rig.pusher)
        .with_deferral(writes.clone(), DEFERRAL)
        .with_job_states(states);
    let pause = JobCommand::Pause {
        why: "org upgrade".into(),
    };
    shared::ports::change_job_state(rig.store.as_ref(), "company_account", &pause, ("ops", 1))
        .await
        .unwrap();
    let side = shared::domain::load::SideWriteMessage {
        side_write: shared::domain::push::SideWrite::new(
            ("company_account", &"G2".parse().unwrap()),
            (System::Gainsight, "Company"),
            ("Gsid", "G2"),
            ("SfdcAccountId", json!("001000000000002AAA")),
        ),
    };
    let side = serde_json::to_string(&side).unwrap();
    let bodies = vec![("m1", command("G1", "Acme", 1)), ("s1", side)];
    let (response, summary) = pusher.handle_at(event(bodies), 1_000).await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 0);
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "no Salesforce call");
    assert!(
        rig.gs.updates.lock().unwrap().is_empty(),
        "no Gainsight write"
    );
    let waiting = writes.bodies();
    assert_eq!(waiting.len(), 2, "{waiting:?}");
    assert!(waiting.iter().any(|b| b.contains("\"side_write\"")));
    assert!(waiting
        .iter()
        .any(|b| b.contains("\"ledger_key\"") && !b.contains("\"side_write\"")));
}
