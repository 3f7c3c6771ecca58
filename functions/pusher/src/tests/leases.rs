//! Ordering of one record's writes: a record another pusher is writing waits, a write follows its
//! pair's key move, an update parked for want of a twin goes along with the twin's creation; an
//! older write never lands after a newer one.

use super::*;
use shared::domain::lease::{RecordLease, LEASE_WAIT};
use shared::fakes::failed_ids;

fn lease(gsid: &str) -> RecordLease {
    RecordLease {
        job: "company_account".into(),
        key: LedgerKey::Gainsight(gsid.into()),
    }
}

fn name_of(sf: &MemorySalesforce, gsid: &str) -> Option<serde_json::Value> {
    let records = sf.records.lock().unwrap();
    let key = ("Account".to_string(), gsid.to_string());
    records.get(&key).map(|(_, fields)| fields["Name"].clone())
}

#[tokio::test]
async fn a_record_another_pusher_is_writing_waits_and_its_older_write_never_lands_last() {
    let store = Arc::new(MemoryStore::default());
    let sf = Arc::new(MemorySalesforce::default());
    let writes = Arc::new(MemoryQueue::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        sf.clone(),
        Arc::new(MemoryGainsight::default()),
        Jobs::builtin(),
    )
    .with_deferral(writes.clone(), crate::DEFERRAL);
    // Another pusher is writing G1's newer change.
    let other = store.take_leases(&[lease("G1")], 1_000, 151_000).await;
    assert_eq!(other.unwrap(), [true]);

    let (response, summary) = pusher
        .handle_at(
            event(vec![
                ("m1", command("G1", "Old", 1)),
                ("m2", command("G2", "B", 1)),
            ]),
            2_000,
        )
        .await;
    assert!(response.batch_item_failures.is_empty(), "nothing retried");
    assert_eq!(summary.synced, 1);
    assert_eq!(name_of(&sf, "G1"), None, "G1 is not written meanwhile");
    assert_eq!(name_of(&sf, "G2"), Some(json!("B")));
    let waiting = writes.bodies();
    assert_eq!(waiting.len(), 1);
    assert!(waiting[0].contains("\"Old\""), "{waiting:?}");
    assert_eq!(*writes.delays.lock().unwrap(), vec![LEASE_WAIT]);
    let held: Vec<RecordLease> = store.leases.lock().unwrap().keys().cloned().collect();
    assert_eq!(held, [lease("G1")], "G2's lease was given back");
    let log = store.run_log();
    assert!(
        log.contains("another pusher is writing this record"),
        "{log}"
    );

    // The other pusher writes the newer change and gives the lease back; the waiting older
    // write then finds it in the ledger and is dropped.
    store.release_leases(&[lease("G1")]).await.unwrap();
    pusher
        .handle_at(event(vec![("m3", command("G1", "New", 5))]), 3_000)
        .await;
    let (response, summary) = pusher
        .handle_at(event(vec![("m4", waiting[0].clone())]), 4_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.superseded, 1);
    assert_eq!(name_of(&sf, "G1"), Some(json!("New")));
    assert!(store.leases.lock().unwrap().is_empty());
}

#[tokio::test]
async fn without_leases_nothing_is_written_and_the_batch_goes_back() {
    let rig = rig();
    *rig.store.fail.lock().unwrap() = true;
    let (response, summary) = rig
        .pusher
        .handle_at(
            event(vec![
                ("m1", command("G1", "A", 1)),
                ("m2", command("G2", "B", 1)),
            ]),
            1_000,
        )
        .await;
    let mut failed = failed_ids(&response);
    failed.sort();
    assert_eq!(failed, ["m1", "m2"]);
    assert_eq!(summary.synced, 0);
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "no write without a lease");
}

#[tokio::test]
async fn writes_of_one_pair_to_both_systems_share_one_lease() {
    let rig = rig();
    // Salesforce's change of the pair, to be written to its Company.
    let mut to_gainsight: WriteCommand = serde_json::from_str(&command("G1", "B", 2)).unwrap();
    to_gainsight.target = System::Gainsight;
    to_gainsight.source = System::Salesforce;
    to_gainsight.object = "Company".into();
    to_gainsight.key = RecordKey::Id { value: "G1".into() };
    to_gainsight.fields = json!({"Name": "B"}).as_object().cloned().unwrap();
    let (response, _) = rig
        .pusher
        .handle_at(
            event(vec![
                ("m1", command("G1", "A", 1)),
                ("m2", serde_json::to_string(&to_gainsight).unwrap()),
            ]),
            1_000,
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    let (taken, refused) = *rig.store.lease_counts.lock().unwrap();
    assert_eq!((taken, refused), (1, 0));
    assert!(rig.store.leases.lock().unwrap().is_empty(), "given back");
}

/// Contact 003A's change to its Person, made at `at` with LastName `last`.
fn contact_change(last: &str, at: i64) -> String {
    let mut cmd: WriteCommand =
        serde_json::from_str(&person_command("a@x.io", "003A", WriteMode::Upsert)).unwrap();
    cmd.fields.insert("LastName".into(), json!(last));
    cmd.source_changed_at_ms = at;
    cmd.event_id = format!("ev-003A-{at}");
    serde_json::to_string(&cmd).unwrap()
}

#[tokio::test]
async fn a_write_mapped_before_its_pair_got_a_gsid_follows_the_move_and_never_undoes_a_newer_one() {
    let store = Arc::new(MemoryStore::default());
    let gs = Arc::new(MemoryGainsight::default());
    let writes = Arc::new(MemoryQueue::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), store.clone()),
        Arc::new(MemorySalesforce::default()),
        gs.clone(),
        Jobs::builtin(),
    )
    .with_deferral(writes.clone(), crate::DEFERRAL);
    // The newer change creates the Person; the pair moves from sf:003A to the new GSID.
    pusher
        .handle_at(event(vec![("m1", contact_change("New", 5))]), 1_000)
        .await;
    let people = || {
        gs.records
            .lock()
            .unwrap()
            .get("Person")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(people().len(), 1);
    let gsid = people()[0]["Gsid"].as_str().unwrap().to_string();
    let moved = store.moves.lock().unwrap().clone();
    let from = (
        "person_contact".to_string(),
        LedgerKey::SalesforceOnly("003A".into()),
    );
    assert_eq!(moved.get(&from), Some(&LedgerKey::Gainsight(gsid.clone())));

    // An older change, mapped before the move and still keyed sf:003A, is not written under
    // the old key: it comes again under the GSID ...
    let (response, summary) = pusher
        .handle_at(event(vec![("m2", contact_change("Old", 1))]), 2_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 0);
    let again = writes.bodies();
    assert_eq!(again.len(), 1);
    let rekeyed: WriteCommand = serde_json::from_str(&again[0]).unwrap();
    assert_eq!(rekeyed.ledger_key, LedgerKey::Gainsight(gsid.clone()));
    // ... where the ledger shows a newer change was written: dropped, the Person keeps "New".
    let (_, summary) = pusher
        .handle_at(event(vec![("m3", again[0].clone())]), 3_000)
        .await;
    assert_eq!(summary.superseded, 1);
    assert_eq!(people().len(), 1, "never a second Person");
    assert_eq!(people()[0]["LastName"], json!("New"));
}

#[tokio::test]
async fn an_update_that_arrives_before_the_twins_creation_is_carried_by_the_creation() {
    let rig = rig();
    let mut rename: WriteCommand = serde_json::from_str(&command("G1", "Renamed", 20)).unwrap();
    rename.mode = WriteMode::Update;
    // The rename is pushed first: no Account has G1 yet, so it is ignored and parked.
    let (_, summary) = rig
        .pusher
        .handle_at(
            event(vec![("m1", serde_json::to_string(&rename).unwrap())]),
            1_000,
        )
        .await;
    assert_eq!(summary.ignored, 1);
    let record = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(record
        .last_ignored_reason
        .unwrap()
        .contains("never creates"));
    assert_eq!(record.parked.len(), 1);

    // The Company's creation (older, held up by retries) lands with the rename's name.
    let (_, summary) = rig
        .pusher
        .handle_at(event(vec![("m2", command("G1", "Made", 10))]), 2_000)
        .await;
    assert_eq!(summary.synced, 1);
    assert_eq!(name_of(&rig.sf, "G1"), Some(json!("Renamed")));
    let record = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(record.synced && record.parked.is_empty());
    assert_eq!(record.gainsight_changed_at_ms, Some(20));
}

#[tokio::test]
async fn a_field_set_back_while_its_change_was_in_flight_ends_with_the_newest_value() {
    let rig = rig();
    let account = |name: &str, phone: &str| json!({"Name": name, "Phone": phone, "Gainsight_Company_Id__c": "G1"});
    let push = |cmd: WriteCommand, id: &'static str| {
        let body = serde_json::to_string(&cmd).unwrap();
        rig.pusher.handle_at(event(vec![(id, body)]), 1_000)
    };
    // Synced once with Phone 1.
    push(
        mapped(System::Salesforce, "001A", 100, account("Acme", "1"), None),
        "m0",
    )
    .await;
    let synced = rig.store.ledger_of("company_account", "G1").unwrap();
    // A person sets Phone 2, then back to 1 with a new name; both mapped before either landed,
    // so the second found Phone unchanged.
    let two = mapped(
        System::Salesforce,
        "001A",
        200,
        account("Acme", "2"),
        Some(&synced),
    );
    let back = mapped(
        System::Salesforce,
        "001A",
        300,
        account("Acme 2", "1"),
        Some(&synced),
    );
    assert!(!back.fields.contains_key("Phone"), "{:?}", back.fields);
    push(two, "m1").await;
    push(back, "m2").await;
    let updates = rig.gs.updates.lock().unwrap().clone();
    let last = &updates.last().unwrap().1;
    assert_eq!(last["Phone"], json!("1"), "{updates:?}");
    assert_eq!(last["Name"], json!("Acme 2"));
}

/// Phone set to 2 and back to 1 with nothing else changed: the second change found every value
/// as last synced, but the ledger noted the first one's write on its way, so it came as a
/// snapshot with nothing to write. Whichever lands first, Gainsight ends with Phone 1.
#[tokio::test]
async fn a_field_set_back_alone_while_its_change_was_in_flight_ends_with_the_newest_value() {
    for snapshot_first in [false, true] {
        let rig = rig();
        let account =
            |phone: &str| json!({"Name": "Acme", "Phone": phone, "Gainsight_Company_Id__c": "G1"});
        let push = |cmd: &WriteCommand, id: &'static str| {
            let body = serde_json::to_string(cmd).unwrap();
            rig.pusher.handle_at(event(vec![(id, body)]), 1_000)
        };
        push(
            &mapped(System::Salesforce, "001A", 100, account("1"), None),
            "m0",
        )
        .await;
        let mut synced = rig.store.ledger_of("company_account", "G1").unwrap();
        let two = mapped(System::Salesforce, "001A", 200, account("2"), Some(&synced));
        // What the mapper notes on the record as it queues that write.
        synced.mapped(System::Salesforce, 200);
        let back = mapped(System::Salesforce, "001A", 300, account("1"), Some(&synced));
        assert!(back.fields.is_empty(), "{:?}", back.fields);
        let calls_before = rig.gs.updates.lock().unwrap().len();
        if snapshot_first {
            push(&back, "m2").await;
            assert_eq!(
                rig.gs.updates.lock().unwrap().len(),
                calls_before,
                "nothing to write: no call"
            );
            push(&two, "m1").await;
        } else {
            push(&two, "m1").await;
            push(&back, "m2").await;
        }
        let updates = rig.gs.updates.lock().unwrap().clone();
        let phone = updates.last().map(|u| u.1["Phone"].clone());
        assert_eq!(
            phone,
            Some(json!("1")),
            "snapshot first: {snapshot_first}; {updates:?}"
        );
        let record = rig.store.ledger_of("company_account", "G1").unwrap();
        assert_eq!(record.salesforce_changed_at_ms, Some(300));
    }
}

/// A write whose record leases cannot be taken (the lease store down) on its last delivery goes
/// to the writes dead-letter queue, and the ledger says so first; an earlier delivery only goes
/// back to the queue. Before, any failure but a target's answer reached the dead-letter queue
/// with no ledger record.
#[tokio::test]
async fn a_write_sent_back_on_its_last_delivery_for_any_reason_is_recorded_as_given_up() {
    let store = Arc::new(MemoryStore::default());
    let leases = Arc::new(MemoryStore::default());
    *leases.fail.lock().unwrap() = true;
    let sf = Arc::new(MemorySalesforce::default());
    let pusher = Pusher::new(
        (store.clone(), store.clone(), leases),
        sf.clone(),
        Arc::new(MemoryGainsight::default()),
        Jobs::builtin(),
    );
    let first = event(vec![("m1", command("G1", "Acme", 1))]);
    let (response, _) = pusher.handle_at(first, 1_000).await;
    assert_eq!(failed_ids(&response), ["m1"]);
    assert!(store.ledger_of("company_account", "G1").is_none());

    let mut last = event(vec![("m1", command("G1", "Acme", 1))]);
    last.records[0]
        .attributes
        .insert("ApproximateReceiveCount".into(), "5".into());
    let (response, _) = pusher.handle_at(last, 2_000).await;
    assert_eq!(failed_ids(&response), ["m1"], "to the dead-letter queue");
    assert_eq!(*sf.calls.lock().unwrap(), 0, "never written");
    let g1 = store.ledger_of("company_account", "G1").expect("recorded");
    let said = g1.last_error.unwrap_or_default();
    assert!(g1.error, "{said}");
    assert!(
        said.starts_with("gave up after 5 deliveries: the write did not complete on any delivery"),
        "{said}"
    );
    assert!(said.contains("writes dead-letter queue"), "{said}");
    let log = store.run_log();
    assert!(log.contains("record leases could not be taken"), "{log}");
}
