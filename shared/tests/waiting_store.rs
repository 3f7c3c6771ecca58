//! The waiting store on DynamoDB (moto, the table deployed from `infra/template.yaml`): changes
//! filed under their parent, and the ledger record that says a change waits.

use anyhow::Result;
use shared::domain::{LedgerUpdate, System};
use shared::ports::{LedgerStore, LedgerWrite};

mod common;
use common::{k, setup};

/// Waiting changes on DynamoDB: filed under their parent, read by parent and by job (the
/// waiting index), parked again in the same slot, and released only while as read; a waiting
/// record's ledger item says so until it syncs.
#[tokio::test]
async fn dynamo_waiting_store_files_changes_under_their_parent() -> Result<()> {
    use shared::domain::waiting::{ParentRef, WaitingChange};
    use shared::domain::{ChangeEvent, Operation, SourceRecord};
    use shared::ports::WaitingStore;
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let change = |id: &str, at: i64| {
        let record = SourceRecord {
            source: System::Gainsight,
            object: "Case".into(),
            id: id.into(),
            fields: serde_json::Map::new(),
        };
        ChangeEvent::pushed(record, format!("ev-{id}-{at}"), Operation::Created, at, at)
    };
    let parent = |company: &str| ParentRef {
        system: System::Salesforce,
        object: "Account".into(),
        matches: vec![("Gainsight_Company_Id__c".into(), company.into())],
    };
    let waiting = |id: &str, at: i64, company: &str, filed: i64| {
        let key = k(id);
        WaitingChange::new(
            "case_case",
            key,
            parent(company),
            &change(id, at),
            "none",
            filed,
        )
    };
    let first = [
        waiting("K1", 1, "C1", 100),
        waiting("K1", 2, "C1", 100),
        waiting("K2", 1, "C2", 100),
    ];
    store.wait(&first).await?;
    let on_c1 = store.waiting_on(&[parent("C1").key()]).await?;
    assert_eq!(
        on_c1,
        first[..2].to_vec(),
        "both changes of K1, in change order"
    );
    assert_eq!(store.waiting_in("case_case").await?.len(), 3);
    assert!(store.waiting_in("person_contact").await?.is_empty());
    // K1's first change parked again since it was read: releasing what was read leaves it.
    let again = WaitingChange::new(
        "case_case",
        k("K1"),
        parent("C1"),
        &first[0].replay(),
        "none",
        200,
    );
    store.wait(std::slice::from_ref(&again)).await?;
    store.release(&on_c1).await?;
    assert_eq!(
        store.waiting_on(&[parent("C1").key()]).await?,
        vec![again.clone()]
    );
    assert_eq!(again.since_ms, 100);

    let waits = LedgerUpdate::Waiting {
        reason: "waiting for company_account C1".into(),
    };
    store
        .record(&LedgerWrite::new("case_case", k("K1"), waits, "run-1"), 300)
        .await?;
    let record = store
        .ledger("case_case", &k("K1"))
        .await?
        .expect("recorded");
    assert_eq!(
        record.waiting.as_deref(),
        Some("waiting for company_account C1")
    );
    let synced = LedgerUpdate::Synced {
        salesforce_id: Some("500A".into()),
        source: System::Gainsight,
        source_changed_at_ms: 2,
        fields: Default::default(),
    };
    store
        .record(
            &LedgerWrite::new("case_case", k("K1"), synced, "run-2"),
            400,
        )
        .await?;
    let record = store
        .ledger("case_case", &k("K1"))
        .await?
        .expect("recorded");
    assert_eq!(record.waiting, None, "synced: no longer waiting");
    Ok(())
}
