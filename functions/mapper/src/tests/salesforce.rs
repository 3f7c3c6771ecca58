//! Salesforce changes that need reading back: Outbound Message hints, and the deletes of merged
//! records (their masters read through `queryAll`).

use super::*;

/// An Outbound Message's notification, as the webhook queues it: the id only.
fn account_hint(id: &str, received_at_ms: i64) -> String {
    let hint = ChangeEvent::salesforce_hint("Account", id, format!("n-{id}"), received_at_ms);
    serde_json::to_string(&hint).unwrap()
}

#[tokio::test]
async fn a_hinted_change_is_mapped_with_the_values_salesforce_holds_now() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let (live, gone) = ("0015g00000000AAAAA", "0015g00000000BBBAA");
    let at = shared::time::parse_ms("2026-12-05T10:00:00.000Z").unwrap();
    *salesforce.query_rows.lock().unwrap() = vec![json!({
        "Id": live, "Name": "Acme as Salesforce holds it",
        "CreatedDate": "2026-01-01T00:00:00.000Z",
        "LastModifiedDate": "2026-12-05T09:59:59.000Z",
        "SystemModstamp": "2100-01-01T00:00:00.000Z",
    })
    .as_object()
    .cloned()
    .unwrap()];
    let batch = event(vec![
        ("m1", account_hint(live, at)),
        ("m2", account_hint(gone, at)),
    ]);
    let (response, summary) = mapper.handle_at(batch, at).await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    // One read for both notifications, of the Account's mapped fields; then one of the
    // Recycle Bin for the one no longer found, to tell a merge from a delete.
    let queries = salesforce.queries.lock().unwrap().clone();
    assert_eq!(queries.len(), 2);
    assert_eq!(queries[0].conditions[0].1, vec![live, gone]);
    assert!(queries[0].fields.contains(&"Name".to_string()));
    assert!(!queries[0].include_deleted);
    assert_eq!(queries[1].conditions[0].1, vec![gone]);
    assert!(queries[1].include_deleted);
    assert_eq!((summary.writes, summary.ignored), (1, 1));
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    assert_eq!(cmd.fields["Name"], json!("Acme as Salesforce holds it"));
    // The record's own stamp is in the future: the time written is the notification's arrival.
    assert_eq!(cmd.source_changed_at_ms, at);
    let deleted = store
        .ledger_of("company_account", &format!("sf:{gone}"))
        .unwrap();
    let why = deleted.last_ignored_reason.unwrap();
    assert!(why.contains("deleted"), "{why}");
}

/// The webhook queues an Outbound Message's notifications (up to 100) as one message, a list of
/// hints: one read brings their records back, and the message succeeds or fails whole.
#[tokio::test]
async fn the_hints_of_one_outbound_message_are_read_back_in_one_query() {
    let Harness {
        salesforce, mapper, ..
    } = harness();
    let ids: Vec<String> = (0..100).map(|i| format!("0015g00000{i:03}AAAAA")).collect();
    let hints: Vec<ChangeEvent> = (ids.iter())
        .map(|id| ChangeEvent::salesforce_hint("Account", id, format!("n-{id}"), 1_000))
        .collect();
    let one_message = serde_json::to_string(&hints).unwrap();
    let (response, _) = mapper
        .handle_at(event(vec![("m1", one_message.clone())]), 1_000)
        .await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    let queries = salesforce.queries.lock().unwrap().clone();
    assert_eq!(
        queries[0].conditions[0].1, ids,
        "every hint in the first read"
    );
    assert!(
        queries[1..].iter().all(|q| q.include_deleted),
        "then the Recycle Bin only"
    );

    *salesforce.selects_unavailable.lock().unwrap() = true;
    let (response, _) = mapper
        .handle_at(event(vec![("m1", one_message)]), 1_000)
        .await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m1"]);
}

#[tokio::test]
async fn a_hint_whose_record_cannot_be_read_is_tried_again() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    *salesforce.selects_unavailable.lock().unwrap() = true;
    let batch = event(vec![
        ("m1", account_hint("0015g00000000AAAAA", 1_000)),
        (
            "m2",
            change(
                "G1",
                Operation::Updated,
                json!({"Gsid": "G1", "Name": "Acme"}),
            ),
        ),
    ]);
    let (response, summary) = mapper.handle_at(batch, 1_000).await;
    assert_eq!(shared::fakes::failed_ids(&response), ["m1"]);
    assert_eq!(summary.writes, 1, "the other change is mapped");
    assert_eq!(queue.bodies().len(), 1);
    assert!(store
        .ledger_of("company_account", "0015g00000000AAAAA")
        .is_none());
}

/// The pair of `salesforce_id` as the ledger holds it: Company `gsid`, synced.
fn paired(store: &MemoryStore, gsid: &str, salesforce_id: &str) {
    let key = shared::domain::LedgerKey::Gainsight(gsid.into());
    let mut record = shared::domain::LedgerRecord::new("company_account", key.clone());
    record.salesforce_id = Some(salesforce_id.into());
    record.synced = true;
    let jobs = &mut store.ledger.lock().unwrap();
    jobs.insert(("company_account".into(), key), record);
}

/// An Account change event's message of `change_type` for `ids`.
fn account_event(change_type: &str, ids: &[&str]) -> String {
    account_event_with(change_type, ids, json!({}))
}

/// The same, carrying `fields` (their names listed as changed), with an event id of its own.
fn account_event_with(change_type: &str, ids: &[&str], fields: serde_json::Value) -> String {
    let mut payload = fields.as_object().cloned().unwrap_or_default();
    let changed: Vec<&String> = payload.keys().collect();
    let header = json!({
        "entityName": "Account", "recordIds": ids, "changeType": change_type,
        "commitTimestamp": 1_764_900_000_000_i64, "commitUser": "005P", "changedFields": changed,
    });
    payload.insert("ChangeEventHeader".into(), header);
    let event = ids.join("-");
    json!({
        "id": format!("e-{event}"), "detail-type": "AccountChangeEvent",
        "source": "aws.partner/salesforce.com/x/y",
        "detail": {"id": format!("u-{event}"), "payload": payload}
    })
    .to_string()
}

#[tokio::test]
async fn a_merged_accounts_pair_moves_to_the_master_or_waits_for_an_operator() {
    let Harness {
        store,
        queue,
        salesforce,
        mapper,
    } = harness();
    let (loser, master) = ("0015g00000000LLLAA", "0015g00000000MMMAA");
    let (other, other_master) = ("0015g00000000OOOAA", "0015g00000000PPPAA");
    paired(&store, "G1", loser);
    paired(&store, "G3", other);
    paired(&store, "G4", other_master);
    let row = |v: serde_json::Value| v.as_object().cloned().unwrap();
    *salesforce.query_rows.lock().unwrap() = vec![
        row(json!({"Id": loser, "MasterRecordId": master})),
        row(json!({"Id": other, "MasterRecordId": other_master})),
        row(json!({"Id": master, "Name": "Acme merged",
            "CreatedDate": "2026-01-01T00:00:00.000Z", "LastModifiedDate": "2026-12-05T02:00:00.000Z"})),
    ];
    let batch = event(vec![("m1", account_event("DELETE", &[loser, other]))]);
    let (response, summary) = mapper.handle_at(batch, 1_764_900_001_000).await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    assert_eq!((summary.writes, summary.rejected), (1, 1), "{summary:?}");
    let cmd: WriteCommand = serde_json::from_str(&queue.bodies()[0]).unwrap();
    assert_eq!(
        cmd.key,
        shared::domain::RecordKey::Id { value: "G1".into() }
    );
    assert_eq!(cmd.fields["SfdcAccountId"], json!(master));
    assert_eq!(cmd.fields["Name"], json!("Acme merged"));
    assert!(cmd.writeback.is_some(), "the master learns the GSID");
    let moved = store.ledger_of("company_account", "G1").unwrap();
    let why = moved.last_ignored_reason.unwrap();
    assert!(
        why.contains(&format!("{loser} was merged into {master}")),
        "{why}"
    );
    assert!(why.contains("by user 005P"), "{why}");
    let both = store.ledger_of("company_account", "G3").unwrap();
    assert!(both.error);
    let said = both.last_error.unwrap();
    assert!(said.contains("G3 paired with"), "{said}");
    assert!(said.contains("G4 with"), "{said}");
    let queries = salesforce.queries.lock().unwrap().clone();
    assert_eq!(
        queries.len(),
        2,
        "one queryAll of the deletes, one read of the master"
    );
    assert!(queries[0].include_deleted);
    assert_eq!(queries[1].conditions[0].1, vec![master]);
}

/// A change event names only the Account's Id and the fields that changed: the pair is found by
/// the forwarding note its move to the GSID left (one batched read), so the write goes to the
/// Company by its GSID with no writeback of the GSID to Salesforce.
#[tokio::test]
async fn a_change_event_finds_its_pair_by_the_salesforce_ids_note() {
    let Harness {
        store,
        queue,
        mapper,
        ..
    } = harness();
    let (paired_id, new_id) = ("0015g00000000NNNAA", "0015g00000000XXXAA");
    let moved = [(
        shared::domain::LedgerKey::SalesforceOnly(paired_id.into()),
        shared::domain::LedgerKey::Gainsight("G7".into()),
    )];
    shared::ports::LedgerStore::moved(&*store, "company_account", &moved, 0)
        .await
        .unwrap();
    let update = |id: &str| account_event_with("UPDATE", &[id], json!({"Phone": "555-0100"}));
    let batch = event(vec![("m1", update(paired_id)), ("m2", update(new_id))]);
    let (response, summary) = mapper.handle_at(batch, 1_764_900_001_000).await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    assert_eq!(summary.writes, 2);
    let cmds: Vec<WriteCommand> = (queue.bodies().iter())
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    let of = |id: &str| cmds.iter().find(|c| c.salesforce_id.as_deref() == Some(id));
    let paired = of(paired_id).expect("the paired Account's write");
    assert_eq!(
        paired.key,
        shared::domain::RecordKey::Id { value: "G7".into() }
    );
    assert_eq!(paired.writeback, None, "the GSID is not written back again");
    let new = of(new_id).expect("the unpaired Account's write");
    assert!(
        new.writeback.is_some(),
        "a record never paired learns its GSID"
    );
}

/// An Account a person just created has no pair to look for: its change event costs no read of
/// the forwarding notes; an update of one does.
#[tokio::test]
async fn a_created_record_costs_no_read_of_the_notes() {
    let Harness { store, mapper, .. } = harness();
    let created = account_event_with("CREATE", &["0015g00000000CCCAA"], json!({"Name": "New"}));
    let (response, summary) =
        (mapper.handle_at(event(vec![("m1", created)]), 1_764_900_001_000)).await;
    assert!(shared::fakes::failed_ids(&response).is_empty());
    assert_eq!(summary.writes, 1);
    assert_eq!(*store.move_reads.lock().unwrap(), 0);
    let update = account_event_with("UPDATE", &["0015g00000000UUUAA"], json!({"Phone": "1"}));
    mapper
        .handle_at(event(vec![("m2", update)]), 1_764_900_002_000)
        .await;
    assert_eq!(*store.move_reads.lock().unwrap(), 1);
}
