//! Integration tests of the DynamoDB ledger store against moto, with the table created by
//! deploying `infra/template.yaml`: writes noted on their way, in-sync notes, many updates in
//! transactions, forwarding notes, parked writes, each side's presence, and links made by hand.

use anyhow::Result;
use shared::domain::{LedgerUpdate, System};
use shared::ports::{LedgerStore, LedgerWrite};

mod common;
use common::{k, load_write, setup};

/// The note that a record's write is on its way: kept where newer, never creating a record,
/// not a version or a history entry, and the versioned writes after it are unaffected.
#[tokio::test]
async fn dynamo_notes_the_writes_queued_on_records_in_the_ledger() -> Result<()> {
    use shared::domain::Prior;
    let (aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let ignored = |key: &str| {
        let update = LedgerUpdate::Ignored {
            reason: "echo".into(),
        };
        LedgerWrite::new("job", k(key), update, "run")
    };
    store
        .record_many(&[ignored("N1"), ignored("N2")], 10)
        .await?;
    let marks = [
        (k("N1"), System::Salesforce, 100),
        (k("N1"), System::Salesforce, 90),
        (k("N1"), System::Gainsight, 70),
        (k("N2"), System::Salesforce, 50),
        (k("ABSENT"), System::Salesforce, 50),
    ];
    aws.moto.reset_requests().await?;
    store.mapped("job", &marks).await?;
    let requests = aws.moto.requests().await?;
    // One transaction for the Salesforce notes (the absent record's refused, then the rest
    // again); the single Gainsight note is a plain update, at half the write units.
    assert_eq!(
        requests.get("dynamodb:TransactWriteItems"),
        Some(&2),
        "{requests:?}"
    );
    assert_eq!(
        requests.get("dynamodb:UpdateItem"),
        Some(&1),
        "{requests:?}"
    );
    let n1 = store.ledger("job", &k("N1")).await?.expect("N1");
    assert_eq!(n1.mapped_at[&System::Salesforce], 100, "the newest kept");
    assert_eq!(n1.mapped_at[&System::Gainsight], 70);
    assert_eq!((n1.version, n1.history.len()), (1, 1));
    assert!(store.ledger("job", &k("ABSENT")).await?.is_none());
    // An older note than the one kept changes nothing.
    store
        .mapped("job", &[(k("N1"), System::Salesforce, 80)])
        .await?;
    let n1 = store.ledger("job", &k("N1")).await?.expect("N1");
    assert_eq!(n1.mapped_at[&System::Salesforce], 100);
    assert!(n1.in_flight_before(System::Salesforce, 101));
    // A versioned write at the version read before the note still applies.
    let w = LedgerWrite {
        prior: Prior::Version(1),
        ..ignored("N1")
    };
    store.record(&w, 20).await?;
    let n1 = store.ledger("job", &k("N1")).await?.expect("N1");
    assert_eq!((n1.version, n1.ignored_count), (2, 2));
    assert_eq!(n1.mapped_at[&System::Salesforce], 100);
    Ok(())
}

/// A change found in sync is recorded only while no write of its source was noted since it was
/// mapped: in a transaction with other updates, or on its own; one that no longer holds is named
/// and left out, and the rest still land.
#[tokio::test]
async fn dynamo_records_a_change_in_sync_only_while_it_holds() -> Result<()> {
    use shared::domain::{InSync, Prior};
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let ignored = |key: &str| {
        let update = LedgerUpdate::Ignored {
            reason: "filtered".into(),
        };
        LedgerWrite::new("job", k(key), update, "run")
    };
    store
        .record_many(&[ignored("S1"), ignored("S2")], 10)
        .await?;
    store
        .mapped("job", &[(k("S2"), System::Gainsight, 200)])
        .await?;
    let in_sync = |key: &str, at: i64, mapped_at: Option<i64>| LedgerWrite {
        prior: Prior::Version(1),
        ..LedgerWrite::new(
            "job",
            k(key),
            LedgerUpdate::InSync {
                reason: "no mapped field changed".into(),
                seen: InSync {
                    source: System::Gainsight,
                    changed_at_ms: at,
                    mapped_at,
                },
            },
            "run-2",
        )
    };
    // S1 as read; S2 was read before the note at 200 (so the note is news to it); S3 is new.
    let writes = [
        in_sync("S1", 300, None),
        in_sync("S2", 300, None),
        LedgerWrite {
            prior: Prior::Absent,
            ..ignored("S3")
        },
    ];
    let superseded = store.record_many(&writes, 20).await?;
    assert_eq!(superseded, vec![1], "S2's note no longer holds");
    let s1 = store.ledger("job", &k("S1")).await?.expect("S1");
    assert_eq!(s1.changed_at(System::Gainsight), Some(300));
    assert_eq!((s1.version, s1.ignored_count), (2, 2));
    let s2 = store.ledger("job", &k("S2")).await?.expect("S2");
    assert_eq!((s2.version, s2.changed_at(System::Gainsight)), (1, None));
    assert!(store.ledger("job", &k("S3")).await?.is_some());
    // Read after the note, S2 is in sync: recorded, one request.
    let superseded = store
        .record_many(&[in_sync("S2", 300, Some(200))], 30)
        .await?;
    assert!(superseded.is_empty());
    let s2 = store.ledger("job", &k("S2")).await?.expect("S2");
    assert_eq!(
        (s2.version, s2.changed_at(System::Gainsight)),
        (2, Some(300))
    );
    // On its own, read again after another write: the note still holds for S1, and a write of
    // a newer change noted since makes it not hold.
    store.record(&in_sync("S1", 400, None), 40).await?;
    let s1 = store.ledger("job", &k("S1")).await?.expect("S1");
    assert_eq!(
        (s1.version, s1.changed_at(System::Gainsight)),
        (3, Some(400))
    );
    store
        .mapped("job", &[(k("S1"), System::Gainsight, 450)])
        .await?;
    let refused = store.record(&in_sync("S1", 500, None), 50).await;
    assert!(
        matches!(refused, Err(shared::ports::StoreError::Superseded(_))),
        "{refused:?}"
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_applies_many_ledger_updates_in_transactions() -> Result<()> {
    use shared::domain::{LedgerUpdate, Outcome, Prior, HISTORY_KEPT};
    use shared::ports::LedgerWrite;
    let (aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let write = |key: &str, prior: Prior, run: &str| LedgerWrite {
        prior,
        ..LedgerWrite::new(
            "job",
            k(key),
            LedgerUpdate::Ignored {
                reason: "echo".into(),
            },
            run,
        )
    };
    // 150 records new to the ledger, one of them twice: a transaction may touch an item once, so
    // the second waits for the next one, at the version the first made; both land.
    let mut writes: Vec<LedgerWrite> = (0..150)
        .map(|i| write(&format!("T{i}"), Prior::Absent, "run-a"))
        .collect();
    writes.push(write("T0", Prior::Absent, "run-b"));
    aws.moto.reset_requests().await?;
    store.record_many(&writes, 10).await?;
    let requests = aws.moto.requests().await?;
    assert_eq!(
        requests.get("dynamodb:TransactWriteItems"),
        Some(&2),
        "{requests:?}"
    );
    assert_eq!(requests.get("dynamodb:UpdateItem"), None, "{requests:?}");
    assert_eq!(requests.get("dynamodb:GetItem"), None, "{requests:?}");
    let t0 = store.ledger("job", &k("T0")).await?.expect("T0");
    assert_eq!((t0.ignored_count, t0.version), (2, 2));
    let runs: Vec<&str> = t0.history.iter().map(|h| h.run.as_str()).collect();
    assert_eq!(runs, ["run-a", "run-b"]);
    assert_eq!(store.list("job", None, 1000).await?.len(), 150);

    // A record that changed since the batch read it (here: said absent, but present) makes the
    // transaction fail; it is read again and written on its own, losing nothing.
    store
        .record_many(&[write("T1", Prior::Absent, "run-c")], 20)
        .await?;
    let t1 = store.ledger("job", &k("T1")).await?.expect("T1");
    assert_eq!((t1.ignored_count, t1.version), (2, 2), "kept its history");
    assert_eq!(t1.history.len(), 2);

    // The history keeps the last ten outcomes, each linked to its run, oldest first.
    for i in 0..12 {
        let update = if i % 2 == 0 {
            LedgerUpdate::Failed {
                message: format!("E{i}"),
            }
        } else {
            LedgerUpdate::Ignored {
                reason: format!("I{i}"),
            }
        };
        let prior = Prior::of(store.ledger("job", &k("H")).await?.as_ref());
        let w = LedgerWrite {
            prior,
            ..LedgerWrite::new("job", k("H"), update, &format!("run-{i}"))
        };
        store.record_many(&[w], 100 + i).await?;
    }
    let h = store.ledger("job", &k("H")).await?.expect("H");
    assert_eq!(h.history.len(), HISTORY_KEPT);
    let first = &h.history[0];
    assert_eq!((first.version, first.run.as_str()), (3, "run-2"));
    let last = &h.history[HISTORY_KEPT - 1];
    assert_eq!(
        (
            last.version,
            last.outcome,
            last.message.as_deref(),
            last.at_ms
        ),
        (12, Outcome::Ignored, Some("I11"), 111)
    );
    Ok(())
}

#[tokio::test]
async fn dynamo_ledger_key_moves_leave_a_forwarding_note() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let job = "company_account";
    // A placeholder stored under the Salesforce Id (an attempt that failed), and a pair never
    // stored under its Salesforce Id at all.
    let failed = LedgerUpdate::Failed {
        message: "UNABLE_TO_LOCK_ROW".into(),
    };
    let placeholder = LedgerWrite::new(job, k("sf:001A"), failed, "run-1");
    store.record(&placeholder, 1_000).await?;
    assert!(store.ledger(job, &k("sf:001A")).await?.is_some());

    let moves = [(k("sf:001A"), k("1PA")), (k("sf:001B"), k("1PB"))];
    store.moved(job, &moves, 2_000).await?;
    assert_eq!(
        store.ledger(job, &k("sf:001A")).await?,
        None,
        "placeholder gone"
    );
    let asked = [k("sf:001A"), k("sf:001B"), k("sf:001C")];
    let found = store.moves_of(job, &asked).await?;
    assert_eq!(found.len(), 2, "001C never moved: {found:?}");
    assert_eq!(found[&k("sf:001A")], k("1PA"));
    assert_eq!(found[&k("sf:001B")], k("1PB"));
    // Two changes of one record in a batch ask for its note twice.
    let twice = [k("sf:001A"), k("sf:001A")];
    assert_eq!(store.moves_of(job, &twice).await?.len(), 1);
    assert!(
        store.moves_of("person_contact", &asked).await?.is_empty(),
        "notes are per job"
    );
    // The notes are no ledger records: listing the job shows none of them.
    assert!(store.list(job, None, 10).await?.is_empty());
    Ok(())
}

#[tokio::test]
async fn dynamo_ledger_keeps_a_parked_write_until_a_write_to_its_system_lands() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let job = "company_account";
    let mut rename = load_write("G1", 20);
    rename.load = None;
    rename.mode = shared::domain::WriteMode::Update;
    let parked = |write: &shared::domain::WriteCommand| LedgerUpdate::Parked {
        reason: "no Account has Gainsight_Company_Id__c = \"G1\"".into(),
        write: Box::new(write.clone()),
    };
    // First as a whole new record, then as an update of an existing one.
    store
        .record(
            &LedgerWrite::new(job, k("G1"), parked(&rename), "run-1"),
            1_000,
        )
        .await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert_eq!(read.parked.get(&System::Salesforce), Some(&rename));
    let mut later = rename.clone();
    later.source_changed_at_ms = 30;
    store
        .record(
            &LedgerWrite::new(job, k("G1"), parked(&later), "run-2"),
            2_000,
        )
        .await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert_eq!(read.parked[&System::Salesforce].source_changed_at_ms, 30);
    assert_eq!(read.ignored_count, 2);

    // A write to Gainsight leaves it; one to Salesforce takes it away.
    let synced = |source: System| LedgerUpdate::Synced {
        salesforce_id: None,
        source,
        source_changed_at_ms: 30,
        fields: Default::default(),
    };
    let to_gainsight = LedgerWrite::new(job, k("G1"), synced(System::Salesforce), "run-3");
    store.record(&to_gainsight, 3_000).await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert!(read.parked.contains_key(&System::Salesforce));
    let to_salesforce = LedgerWrite::new(job, k("G1"), synced(System::Gainsight), "run-4");
    store.record(&to_salesforce, 4_000).await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert!(read.parked.is_empty(), "{:?}", read.parked);
    Ok(())
}

/// A side's record deleted, then restored: each kept as the side's presence, with who and when,
/// on a record new to the ledger and on one already there, through one write and through many.
#[tokio::test]
async fn dynamo_ledger_keeps_what_became_of_each_sides_record() -> Result<()> {
    use shared::domain::{Presence, PresenceState};
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let job = "company_account";
    let update = |state: PresenceState, at_ms: i64| LedgerUpdate::Presence {
        reason: format!("{state:?}"),
        side: System::Salesforce,
        presence: Presence {
            state,
            at_ms,
            by: Some("005U".into()),
        },
    };
    let deleted = update(PresenceState::Deleted, 10);
    store
        .record(&LedgerWrite::new(job, k("G1"), deleted, "run-1"), 1_000)
        .await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    let kept = &read.presence[&System::Salesforce];
    assert_eq!((&kept.state, kept.at_ms), (&PresenceState::Deleted, 10));
    assert_eq!(kept.by.as_deref(), Some("005U"));
    assert_eq!(read.ignored_count, 1);

    let restored = update(PresenceState::Restored, 20);
    let write = LedgerWrite::new(job, k("G1"), restored, "run-2");
    store.record_many(&[write], 2_000).await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert_eq!(
        read.presence[&System::Salesforce].state,
        PresenceState::Restored
    );
    assert!(!read.presence.contains_key(&System::Gainsight));
    let said: Vec<_> = (read.history.iter())
        .filter_map(|h| h.message.as_deref())
        .collect();
    assert_eq!(said, ["Deleted", "Restored"]);
    Ok(())
}

/// A link made by hand and undone (`syncctl import`, `--relink`), each on a record that exists:
/// the Salesforce id is set and indexed, then removed from both, each with its history entry.
/// (An update expression carrying a value it does not use is refused by DynamoDB: the link's
/// first version did.)
#[tokio::test]
async fn dynamo_ledger_links_and_unlinks_by_hand() -> Result<()> {
    let (_aws, clients, resources) = setup().await?;
    let store = clients.state_store(&resources);
    let job = "company_account";
    let sf = "001000000000001AAA";
    let waiting = LedgerUpdate::Waiting {
        reason: "its Company is not synced yet".into(),
    };
    store
        .record(&LedgerWrite::new(job, k("G1"), waiting, "run-1"), 1_000)
        .await?;
    let imported = LedgerUpdate::Imported {
        salesforce_id: sf.into(),
        origin: "the import of links.csv".into(),
    };
    store
        .record(&LedgerWrite::new(job, k("G1"), imported, "run-2"), 2_000)
        .await?;
    assert_eq!(store.key_of_salesforce_id(job, sf).await?, Some(k("G1")));
    let unlinked = LedgerUpdate::Unlinked {
        salesforce_id: sf.into(),
        now_linked_to: "G2".into(),
        origin: "the import of links.csv".into(),
    };
    store
        .record(&LedgerWrite::new(job, k("G1"), unlinked, "run-3"), 3_000)
        .await?;
    let read = store.ledger(job, &k("G1")).await?.expect("recorded");
    assert_eq!(read.salesforce_id, None);
    assert_eq!(store.key_of_salesforce_id(job, sf).await?, None);
    let last = read.history.last().and_then(|h| h.message.clone());
    assert_eq!(
        last.as_deref(),
        Some("unlinked from 001000000000001AAA, which the import of links.csv linked to G2")
    );
    Ok(())
}
