//! A pair whose Salesforce twin was deleted: an error by default, a new twin where the job's
//! `on_missing: create` says so.

use super::*;
use shared::domain::{Job, OnMissing, Outcome};

/// An update of G1's Account by an Id Salesforce no longer has.
fn update_of_a_deleted_account() -> String {
    let mut cmd: WriteCommand = serde_json::from_str(&command("G1", "Acme", 5)).unwrap();
    cmd.key = RecordKey::Id {
        value: "001GONE".into(),
    };
    cmd.mode = WriteMode::Update;
    cmd.salesforce_id = Some("001GONE".into());
    cmd.fields.remove("Gainsight_Company_Id__c");
    serde_json::to_string(&cmd).unwrap()
}

fn pusher(on_missing: OnMissing) -> (Rig, Arc<MemoryQueue>, Pusher) {
    let rig = rig();
    let jobs: Vec<Job> = (Jobs::builtin().iter().cloned())
        .map(|mut j| {
            j.on_missing = on_missing;
            j
        })
        .collect();
    let writes = Arc::new(MemoryQueue::default());
    let pusher = Pusher::new(
        (rig.store.clone(), rig.store.clone(), rig.store.clone()),
        rig.sf.clone(),
        rig.gs.clone(),
        Jobs::new(jobs).unwrap(),
    )
    .with_deferral(writes.clone(), crate::DEFERRAL);
    (rig, writes, pusher)
}

#[tokio::test]
async fn a_deleted_twin_is_an_error_naming_it_by_default() {
    let (rig, writes, pusher) = pusher(OnMissing::Error);
    let response = pusher
        .handle(event(vec![("m1", update_of_a_deleted_account())]))
        .await;
    assert!(response.batch_item_failures.is_empty(), "not retried");
    assert!(writes.bodies().is_empty(), "nothing created");
    let ledger = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(ledger.error);
    let error = ledger.last_error.unwrap_or_default();
    assert!(
        error.contains("001GONE of this pair no longer exists"),
        "{error}"
    );
}

#[tokio::test]
async fn a_deleted_twin_is_created_again_and_the_pair_learns_its_new_id() {
    let (rig, writes, pusher) = pusher(OnMissing::Create);
    let response = pusher
        .handle(event(vec![("m1", update_of_a_deleted_account())]))
        .await;
    assert!(response.batch_item_failures.is_empty());
    let ledger = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(!ledger.error, "{ledger:?}");
    assert_eq!(
        ledger.history.last().map(|h| h.outcome),
        Some(Outcome::Ignored)
    );
    let said = ledger.last_ignored_reason.clone().unwrap_or_default();
    assert!(said.contains("a new one is created"), "{said}");
    // The creation is a write of its own on the writes queue, sent at once.
    let bodies = writes.bodies();
    assert_eq!(bodies.len(), 1);
    assert_eq!(*writes.delays.lock().unwrap(), [std::time::Duration::ZERO]);
    let response = pusher.handle(event(vec![("m2", bodies[0].clone())])).await;
    assert!(response.batch_item_failures.is_empty());
    let (new_id, fields) =
        rig.sf.records.lock().unwrap()[&("Account".to_string(), "G1".to_string())].clone();
    assert_eq!(fields["Name"], "Acme");
    let ledger = rig.store.ledger_of("company_account", "G1").unwrap();
    assert!(ledger.synced && !ledger.error);
    assert_eq!(ledger.salesforce_id.as_deref(), Some(new_id.as_str()));
    // The Company learns its new Account's Id.
    let updates = rig.gs.updates.lock().unwrap().clone();
    assert!(
        updates
            .iter()
            .any(|(object, f)| object == "Company" && f["SfdcAccountId"] == new_id.as_str()),
        "{updates:?}"
    );
}
