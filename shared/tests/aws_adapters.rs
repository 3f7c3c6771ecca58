//! Integration tests of the DynamoDB, SQS and KMS adapters against moto, with the table, queues
//! and key created by deploying `infra/template.yaml`.

use anyhow::Result;
use aws_sdk_dynamodb::types::AttributeValue;
use shared::domain::LedgerKey;
use shared::domain::{FieldState, LedgerUpdate, SyncStatus, System};
use shared::ports::{
    Claim, Cursor, CursorStore, DedupStore, LedgerStore, LedgerWrite, Queue, Secrets, SecretsError,
};

use shared::secret::Secret;

mod common;
use common::{k, load_write, setup};

#[tokio::test]
async fn dynamo_state_store_round_trips_ledger_dedup_and_cursors() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);

    // Dedup: the first claim wins, a second is pending while the first is unconfirmed, a
    // released claim can be taken again, and an unconfirmed claim older than the reclaim window
    // is handed out again.
    assert_eq!(
        store.claim_event("e1", 1_000_000, 60_000, 3600).await?,
        Claim::New
    );
    assert_eq!(
        store.claim_event("e1", 1_000_001, 60_000, 3600).await?,
        Claim::Pending
    );
    store.release_event("e1").await?;
    assert_eq!(
        store.claim_event("e1", 1_000_002, 60_000, 3600).await?,
        Claim::New
    );
    assert_eq!(
        store
            .claim_event("e1", 1_000_002 + 60_001, 60_000, 3600)
            .await?,
        Claim::New,
        "stale pending claim is reclaimed"
    );
    store.confirm_event("e1").await?;
    assert_eq!(
        store
            .claim_event("e1", 1_000_002 + 120_000, 60_000, 3600)
            .await?,
        Claim::Duplicate,
        "confirmed stays duplicate"
    );
    // moto never expires TTL items; the adapter treats expired ones as absent.
    assert_eq!(
        store
            .claim_event("e1", 1_000_002 + 3_700_000, 60_000, 3600)
            .await?,
        Claim::New,
        "expired key is free again"
    );

    // Ledger: synced then failed keeps both statuses; GSIs find them.
    let state = |hash: u64, at: i64| FieldState {
        gainsight: hash,
        salesforce: hash + 1,
        from: System::Gainsight,
        changed_at_ms: at,
        synced_at_ms: at + 1,
    };
    let synced = LedgerUpdate::Synced {
        salesforce_id: Some("001000000000001AAA".into()),
        source: System::Gainsight,
        source_changed_at_ms: 5,
        fields: [
            ("Name".to_string(), state(1, 5)),
            ("Arr".to_string(), state(2, 5)),
        ]
        .into(),
    };
    store
        .record(
            &LedgerWrite::new("job", k("G1"), synced.clone(), "run-t"),
            10,
        )
        .await?;
    // A later write of one field replaces its state and keeps the other's.
    let one_field = LedgerUpdate::Synced {
        salesforce_id: None,
        source: System::Salesforce,
        source_changed_at_ms: 7,
        fields: [("Name".to_string(), state(3, 7))].into(),
    };
    store
        .record(
            &LedgerWrite::new("job", k("G1"), one_field.clone(), "run-t"),
            10,
        )
        .await?;
    let g1 = store.ledger("job", &k("G1")).await?.expect("G1 recorded");
    assert_eq!(g1.fields["Name"], state(3, 7));
    assert_eq!(g1.fields["Arr"], state(2, 5));
    assert_eq!(
        (g1.gainsight_changed_at_ms, g1.salesforce_changed_at_ms),
        (Some(5), Some(7))
    );
    assert_eq!(g1.salesforce_id.as_deref(), Some("001000000000001AAA"));
    store
        .record(
            &LedgerWrite::new(
                "job",
                k("G1"),
                LedgerUpdate::Failed {
                    message: "UNABLE_TO_LOCK_ROW".into(),
                },
                "run-t",
            ),
            20,
        )
        .await?;
    store
        .record(
            &LedgerWrite::new(
                "job",
                k("G2"),
                LedgerUpdate::Ignored {
                    reason: "echo".into(),
                },
                "run-t",
            ),
            30,
        )
        .await?;
    store
        .record(
            &LedgerWrite::new(
                "job",
                k("G2"),
                LedgerUpdate::Ignored {
                    reason: "echo again".into(),
                },
                "run-t",
            ),
            31,
        )
        .await?;
    let g1 = store.ledger("job", &k("G1")).await?.expect("G1 recorded");
    assert!(g1.synced && g1.error, "statuses are not exclusive: {g1:?}");
    assert_eq!(g1.salesforce_id.as_deref(), Some("001000000000001AAA"));
    assert_eq!(g1.last_error.as_deref(), Some("UNABLE_TO_LOCK_ROW"));
    assert_eq!((g1.last_sync_at_ms, g1.version), (Some(10), 3));
    // The Salesforce index finds a pair by its Salesforce Id: the key alone, or the record.
    let sfid = "001000000000001AAA";
    assert_eq!(
        store.key_of_salesforce_id("job", sfid).await?,
        Some(k("G1"))
    );
    let by_sf = store
        .by_salesforce_id("job", sfid)
        .await?
        .expect("G1 by Id");
    assert_eq!(by_sf.key, k("G1"));
    assert_eq!(
        store
            .key_of_salesforce_id("job", "001000000000404AAA")
            .await?,
        None
    );
    let g2 = store.ledger("job", &k("G2")).await?.expect("G2 recorded");
    assert_eq!((g2.ignored_count, g2.synced, g2.error), (2, false, false));

    let errors = store.by_status("job", SyncStatus::Error, None, 10).await?;
    assert_eq!(
        errors.iter().map(|r| r.key.to_string()).collect::<Vec<_>>(),
        vec!["G1"]
    );
    assert_eq!(
        store
            .by_status("job", SyncStatus::Synced, None, 10)
            .await?
            .len(),
        1
    );
    store
        .record(
            &LedgerWrite::new("job", k("G1"), synced.clone(), "run-t"),
            40,
        )
        .await?;
    assert!(
        store
            .by_status("job", SyncStatus::Error, None, 10)
            .await?
            .is_empty(),
        "a later success clears error"
    );

    // Batched reads: 150 ids (two BatchGetItem pages), absent ones left out.
    let mut ids: Vec<LedgerKey> = (0..150).map(|i| k(&format!("X{i}"))).collect();
    ids.push(k("G1"));
    ids.push(k("G2"));
    let got = store.ledgers("job", &ids).await?;
    assert_eq!(got.len(), 2);
    assert_eq!(store.list("job", None, 100).await?.len(), 2);
    assert_eq!(store.list("job", None, 1).await?.len(), 1);
    // A Salesforce-only pair is kept under its own key and read back as one.
    let placeholder = LedgerKey::SalesforceOnly("001A".into());
    store
        .record(
            &LedgerWrite::new("job", placeholder.clone(), synced.clone(), "run-t"),
            50,
        )
        .await?;
    let read = store
        .ledger("job", &placeholder)
        .await?
        .expect("placeholder");
    assert_eq!(read.key, placeholder);
    assert_eq!(store.list("job", None, 100).await?.len(), 3);

    // Cursors.
    assert_eq!(store.cursor("job", "gainsight").await?, None);
    let c = Cursor {
        timestamp_ms: 123,
        last_id: "G9".into(),
    };
    store.put_cursor("job", "gainsight", &c).await?;
    assert_eq!(store.cursor("job", "gainsight").await?, Some(c));
    Ok(())
}

#[tokio::test]
async fn sqs_queue_sends_in_batches_of_ten() -> Result<()> {
    let (aws, clients, resources) = setup().await?;
    let queue = clients.queue(&resources.changes_queue_url);
    let bodies: Vec<String> = (0..25).map(|i| format!("{{\"n\":{i}}}")).collect();
    let results = queue.send(&bodies).await;
    assert_eq!(results.len(), 25);
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(aws.queue_depth("ChangesQueue").await?, 25);

    // A queue that does not exist fails every message, retryably.
    let missing = clients.queue(&format!("{}/nope", aws.moto.endpoint));
    let results = missing.send(&bodies[..3]).await;
    assert!(results.iter().all(|r| r.is_err()));
    Ok(())
}

/// The key of a secret's item, as the storage layout documents it (dynamo.rs).
fn secret_item(name: &str) -> std::collections::HashMap<String, AttributeValue> {
    std::collections::HashMap::from([
        (
            "pk".to_string(),
            AttributeValue::S(format!("SECRET#{name}")),
        ),
        ("sk".to_string(), AttributeValue::S("SECRET".into())),
    ])
}

#[tokio::test]
async fn kms_secrets_store_only_ciphertext_and_bind_it_to_the_name() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let secrets = clients.secrets(&resources);
    secrets
        .put("gainsight-access-key", &Secret::new("gs-plaintext-key"))
        .await?;
    assert_eq!(
        secrets.get("gainsight-access-key").await?.expose(),
        "gs-plaintext-key"
    );
    assert!(matches!(
        secrets.get("never-stored").await,
        Err(SecretsError::NotFound(_))
    ));

    // The stored item holds ciphertext, not the plaintext.
    let item = clients
        .dynamo
        .get_item()
        .table_name(&resources.table_name)
        .set_key(Some(secret_item("gainsight-access-key")))
        .send()
        .await?;
    let blob = item
        .item()
        .and_then(|i| i.get("ciphertext"))
        .and_then(|v| v.as_b().ok())
        .expect("ciphertext stored");
    assert!(!String::from_utf8_lossy(blob.as_ref()).contains("gs-plaintext-key"));

    // Copying the ciphertext under another name fails: the encryption context names the secret.
    clients
        .dynamo
        .put_item()
        .table_name(&resources.table_name)
        .set_item(Some(secret_item("webhook-secret")))
        .item("ciphertext", AttributeValue::B(blob.clone()))
        .send()
        .await?;
    assert!(matches!(
        secrets.get("webhook-secret").await,
        Err(SecretsError::Decrypt { .. })
    ));
    Ok(())
}

#[tokio::test]
async fn dynamo_claims_many_events_in_transactions_and_settles_them_in_batches() -> Result<()> {
    let (aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let now = 2_000_000;
    assert_eq!(
        store.claim_event("b1", now, 60_000, 3600).await?,
        Claim::New
    );
    // 150 ids: two transactions; the one already claimed (and not confirmed) is pending, the
    // rest are new.
    let ids: Vec<String> = (0..150).map(|i| format!("b{i}")).collect();
    aws.moto.reset_requests().await?;
    let claims = store.claim_events(&ids, now, 60_000, 3600).await?;
    assert_eq!(claims[1], Claim::Pending);
    assert_eq!(claims.iter().filter(|c| **c == Claim::New).count(), 149);
    let requests = aws.moto.requests().await?;
    // One cancelled transaction (b1 is refused) and its retry, then the second chunk; one read
    // tells b1's claim apart from a queued one.
    assert_eq!(
        requests.get("dynamodb:TransactWriteItems"),
        Some(&3),
        "{requests:?}"
    );
    assert_eq!(
        requests.get("dynamodb:BatchGetItem"),
        Some(&1),
        "{requests:?}"
    );
    store.confirm_events(&ids[..100], now, 3600).await?;
    store.release_events(&ids[100..]).await?;
    // Confirmed claims stay taken even after the reclaim window; released ones are free again.
    let later = now + 120_000;
    let again = store.claim_events(&ids, later, 60_000, 3600).await?;
    assert!(again[..100].iter().all(|c| *c == Claim::Duplicate));
    assert!(again[100..].iter().all(|c| *c == Claim::New));
    Ok(())
}

#[tokio::test]
async fn dynamo_load_store_stages_claims_once_and_finishes() -> Result<()> {
    use shared::domain::load::LoadId;
    use shared::domain::push::SideWrite;
    use shared::ports::LoadStore;
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let load = LoadId("run-1".into());
    assert_eq!(store.load_state(&load).await?, None);
    assert!(
        !store.claim_load(&load, (10_000, 10_000, 500)).await?,
        "nothing staged"
    );

    let first: Vec<_> = (0..30)
        .map(|i| load_write(&format!("G{i:02}"), 1))
        .collect();
    store.stage(&load, &first, 1_000).await?;
    // The same change staged again (a chunk applied twice) replaces itself; a later change of
    // a record is a write of its own.
    store.stage(&load, &first[..5], 1_500).await?;
    store.stage(&load, &[load_write("G07", 2)], 2_000).await?;
    let state = store.load_state(&load).await?.expect("staged");
    assert_eq!((state.last_staged_ms, state.flushed), (2_000, false));

    assert!(
        !store.claim_load(&load, (1_999, 5_000, 500)).await?,
        "it grew after the quiet mark"
    );
    assert!(store.claim_load(&load, (2_000, 5_000, 500)).await?);
    assert!(
        !store.claim_load(&load, (2_000, 5_100, 500)).await?,
        "held by the first flush"
    );
    assert!(
        store.claim_load(&load, (2_000, 5_600, 500)).await?,
        "a lapsed lease is taken over"
    );

    // Write backs that followed the load's writes are staged beside them; staged twice, one.
    let side = |i: usize| {
        let key = k(&format!("G{i:02}"));
        SideWrite::new(
            ("company_account", &key),
            (System::Salesforce, "Account"),
            ("Id", &format!("001{i:015}")),
            ("Gainsight_Company_Id__c", format!("G{i:02}").into()),
        )
    };
    let sides: Vec<SideWrite> = (0..3).map(side).collect();
    store.stage_sides(&load, &sides, 2_000).await?;
    store.stage_sides(&load, &sides[..1], 2_000).await?;

    // Slices of 8: the writes first, G07's two changes in one slice (so that slice has 9).
    let keys = |slice: &shared::domain::load::Staged| -> Vec<LedgerKey> {
        slice.writes.iter().map(|w| w.ledger_key.clone()).collect()
    };
    let named = |range: std::ops::Range<usize>| -> Vec<LedgerKey> {
        range.map(|i| k(&format!("G{i:02}"))).collect()
    };
    let staged = store.staged(&load, 8).await?;
    assert_eq!(
        keys(&staged),
        [named(0..8), named(7..8)].concat(),
        "both changes of G07"
    );
    assert!(
        staged.sides.is_empty(),
        "write backs once the writes are made"
    );
    store.finish_load(&load, 2_000, &staged).await?;
    let state = store.load_state(&load).await?.expect("kept");
    assert!(!state.flushed, "a slice made, more left");
    assert!(
        store.claim_load(&load, (2_000, 5_700, 500)).await?,
        "the slice's flush gave its claim back"
    );
    let staged = store.staged(&load, 8).await?;
    assert_eq!(keys(&staged), named(8..16));
    store.finish_load(&load, 2_000, &staged).await?;
    let mut rest = Vec::new();
    loop {
        let slice = store.staged(&load, 8).await?;
        if !slice.writes.is_empty() {
            rest.extend(keys(&slice));
            store.finish_load(&load, 2_000, &slice).await?;
            continue;
        }
        assert_eq!(slice.sides, sides, "each write back once, as staged");
        // Staged while the flush wrote: kept for the next flush, and the load stays unwritten.
        store.stage(&load, &[load_write("G40", 3)], 5_700).await?;
        store.stage_sides(&load, &[side(40)], 5_700).await?;
        store.finish_load(&load, 2_000, &slice).await?;
        break;
    }
    assert_eq!(rest, named(16..30));
    let state = store.load_state(&load).await?.expect("kept");
    assert_eq!((state.flushed, state.last_staged_ms), (false, 5_700));
    let left = store.staged(&load, 8).await?;
    assert_eq!(
        keys(&left),
        [k("G40")],
        "only what the flushes did not make"
    );
    store.finish_load(&load, 2_000, &left).await?;
    let left = store.staged(&load, 8).await?;
    assert_eq!(left.sides, [side(40)], "only the write back staged since");
    store.finish_load(&load, 2_000, &left).await?;
    let nothing = store.staged(&load, 8).await?;
    assert!(nothing.is_empty());
    store.finish_load(&load, 2_000, &nothing).await?;
    let state = store.load_state(&load).await?.expect("kept");
    assert!(
        !state.flushed,
        "grown since the claim: the grower's flush marks it"
    );
    assert!(store.claim_load(&load, (5_700, 9_000, 500)).await?);
    store.finish_load(&load, 5_700, &nothing).await?;
    let state = store.load_state(&load).await?.expect("kept");
    assert!(state.flushed);
    assert_eq!(store.staged(&load, 8).await?, Default::default());
    assert!(
        !store.claim_load(&load, (9_000, 9_500, 500)).await?,
        "written already"
    );

    // Staged after the flush (a load resumed later): unwritten again, and claimable once quiet.
    store.stage(&load, &[load_write("G41", 4)], 10_000).await?;
    let state = store.load_state(&load).await?.expect("kept");
    assert_eq!((state.flushed, state.last_staged_ms), (false, 10_000));
    assert!(store.claim_load(&load, (10_000, 12_000, 500)).await?);
    assert_eq!(store.staged(&load, 8).await?.writes.len(), 1);
    Ok(())
}

#[tokio::test]
async fn dynamo_lease_store_lets_one_holder_write_a_record_at_a_time() -> Result<()> {
    use shared::domain::lease::RecordLease;
    use shared::ports::LeaseStore;
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let lease = |job: &str, key: &str| RecordLease {
        job: job.into(),
        key: k(key),
    };

    // One lease: a single conditional put; held until its time is up, then free again.
    let one = [lease("company_account", "G1")];
    assert_eq!(store.take_leases(&one, 1_000, 2_000).await?, [true]);
    assert_eq!(store.take_leases(&one, 1_500, 2_500).await?, [false]);
    assert_eq!(
        store.take_leases(&one, 2_001, 3_000).await?,
        [true],
        "a lapsed lease is taken over"
    );

    // Many leases in one transaction: the held one is refused, the others are taken; 150 leases
    // go out as two transactions.
    let mut many: Vec<RecordLease> = (0..150)
        .map(|i| lease("company_account", &format!("G{i:03}")))
        .collect();
    many.push(lease("company_account", "G1"));
    many.push(lease("person_contact", "sf:003A"));
    let answers = store.take_leases(&many, 2_500, 9_000).await?;
    assert_eq!(answers.len(), 152);
    assert!(answers[..150].iter().all(|t| *t), "free leases taken");
    assert_eq!(answers[150..], [false, true], "G1 is held until 3000");

    // Given back, a lease is free at once; one not given back stays held.
    store.release_leases(&many[..150]).await?;
    let again = store.take_leases(&many[..3], 2_600, 9_000).await?;
    assert_eq!(again, [true, true, true]);
    assert_eq!(
        store.take_leases(&many[151..], 2_600, 9_000).await?,
        [false]
    );
    Ok(())
}

/// A flush that gives its claim back without taking anything out lets the next flush claim the
/// same slice at once, before the claim would have lapsed.
#[tokio::test]
async fn dynamo_load_store_gives_a_claim_back_keeping_the_slice() -> Result<()> {
    use shared::domain::load::LoadId;
    use shared::ports::LoadStore;
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let load = LoadId("run-1".into());
    let writes: Vec<_> = (0..3).map(|i| load_write(&format!("G{i}"), 1)).collect();
    store.stage(&load, &writes, 1_000).await?;
    let lease = (5_000, 5_000, 60_000);
    assert!(store.claim_load(&load, lease).await?);
    assert!(!store.claim_load(&load, lease).await?, "held");
    store.release_load(&load).await?;
    assert!(store.claim_load(&load, lease).await?, "given back");
    assert_eq!(
        store.staged(&load, 10).await?.writes.len(),
        3,
        "nothing taken out"
    );
    Ok(())
}
