//! Bulk loads: staged, flushed once quiet, written through the usual path.

use super::*;
use shared::domain::load::{LoadId, QUIET_MS};
use shared::fakes::failed_ids;

/// A write of Company `gsid` read for bulk load `run-1`.
fn load_command(gsid: &str, name: &str) -> String {
    let mut cmd: WriteCommand = serde_json::from_str(&command(gsid, name, 1)).unwrap();
    cmd.load = Some(LoadId("run-1".into()));
    serde_json::to_string(&cmd).unwrap()
}

fn flush() -> String {
    r#"{"flush_load":"run-1"}"#.into()
}

struct LoadRig {
    store: Arc<MemoryStore>,
    sf: Arc<MemorySalesforce>,
    gs: Arc<MemoryGainsight>,
    writes: Arc<MemoryQueue>,
    pusher: Pusher,
}

fn load_rig() -> LoadRig {
    let Rig {
        store,
        sf,
        gs,
        pusher,
    } = rig();
    let writes = Arc::new(MemoryQueue::default());
    let pusher = pusher
        .with_deferral(writes.clone(), crate::DEFERRAL)
        .with_loads(store.clone(), Duration::from_millis(QUIET_MS as u64));
    LoadRig {
        store,
        sf,
        gs,
        writes,
        pusher,
    }
}

#[tokio::test]
async fn a_loads_upserts_wait_until_it_is_quiet_then_go_out_together() {
    let rig = load_rig();
    let t0 = 1_000_000;
    let (response, _) = rig
        .pusher
        .handle_at(
            event(vec![
                ("m1", load_command("G1", "A")),
                ("m2", load_command("G2", "B")),
                ("m3", command("G3", "C", 1)),
            ]),
            t0,
        )
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(
        *rig.sf.calls.lock().unwrap(),
        1,
        "only the write of no load"
    );
    assert!(rig.store.ledger_of("company_account", "G1").is_none());
    assert_eq!(rig.writes.bodies(), vec![flush()], "one flush for the load");
    assert_eq!(
        *rig.writes.delays.lock().unwrap(),
        vec![Duration::from_millis(QUIET_MS as u64 + 1_000)]
    );
    let log = rig.store.runs.lock().unwrap()[0].json_lines();
    assert!(log.contains("staged for bulk load run-1"), "{log}");

    // A flush while the load is still growing does nothing: a later one comes.
    rig.pusher
        .handle_at(event(vec![("f0", flush())]), t0 + 5_000)
        .await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), 1);

    let (response, summary) = rig
        .pusher
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 2);
    assert_eq!(*rig.sf.calls.lock().unwrap(), 2, "both in one call");
    for gsid in ["G1", "G2"] {
        let record = rig
            .store
            .ledger_of("company_account", gsid)
            .expect("recorded");
        assert!(record.synced && !record.error, "{gsid}: {record:?}");
    }
    let flushed = || {
        rig.store.loads.lock().unwrap()[&LoadId("run-1".into())]
            .state
            .flushed
    };
    assert!(!flushed(), "the slice written, the next flush asked for");
    assert_eq!(rig.writes.bodies(), vec![flush(), flush()]);
    rig.pusher
        .handle_at(event(vec![("f1b", flush())]), t0 + QUIET_MS + 2_000)
        .await;
    assert!(flushed(), "nothing left: written");
    assert_eq!(*rig.sf.calls.lock().unwrap(), 2);

    // Another flush of a written load writes nothing again.
    rig.pusher
        .handle_at(event(vec![("f2", flush())]), t0 + QUIET_MS + 9_000)
        .await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), 2);
}

/// Writes staged after the load was flushed (a load resumed after a pause longer than the quiet
/// period) are written by the next flush, and only they.
#[tokio::test]
async fn writes_staged_after_a_flush_are_written_by_the_next() {
    let rig = load_rig();
    let t0 = 1_000_000;
    rig.pusher
        .handle_at(event(vec![("m1", load_command("G1", "A"))]), t0)
        .await;
    rig.pusher
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), 1);

    let t1 = t0 + 10 * QUIET_MS;
    rig.pusher
        .handle_at(event(vec![("m2", load_command("G2", "B"))]), t1)
        .await;
    assert!(
        rig.store.ledger_of("company_account", "G2").is_none(),
        "staged"
    );
    let (_, summary) = rig
        .pusher
        .handle_at(event(vec![("f2", flush())]), t1 + QUIET_MS + 1_000)
        .await;
    assert_eq!(summary.synced, 1, "G2 alone: the first flush took G1 out");
    assert_eq!(*rig.sf.calls.lock().unwrap(), 2);
    let g2 = rig
        .store
        .ledger_of("company_account", "G2")
        .expect("written");
    assert!(g2.synced, "{g2:?}");
}

/// Two changes of one record staged apart are one write when the load is flushed: the newer.
#[tokio::test]
async fn two_changes_of_a_record_staged_apart_are_one_write() {
    let rig = load_rig();
    let t0 = 1_000_000;
    let change = |name: &str, at: i64| {
        let mut cmd: WriteCommand = serde_json::from_str(&command("G1", name, at)).unwrap();
        cmd.load = Some(LoadId("run-1".into()));
        serde_json::to_string(&cmd).unwrap()
    };
    for (i, (name, at)) in [("Old", 1), ("New", 2)].into_iter().enumerate() {
        let id = format!("m{i}");
        rig.pusher
            .handle_at(event(vec![(id.as_str(), change(name, at))]), t0 + i as i64)
            .await;
    }
    let (_, summary) = rig
        .pusher
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert_eq!((summary.synced, *rig.sf.calls.lock().unwrap()), (1, 1));
    let accounts = rig.sf.records.lock().unwrap();
    let names: Vec<_> = accounts.values().map(|(_, f)| f["Name"].clone()).collect();
    assert_eq!(names, [json!("New")]);
}

/// `n` Accounts in Salesforce, and the message (id, body) of load `run-1` renaming Account `i`
/// by its Id.
fn accounts_to_rename(rig: &LoadRig, n: usize) -> impl Fn(usize) -> (String, String) {
    let id = |i: usize| format!("001{i:015}");
    let mut accounts = rig.sf.records.lock().unwrap();
    for i in 0..n {
        let fields = shared::domain::Fields::new();
        accounts.insert(("Account".into(), id(i)), (id(i), fields));
    }
    move |i: usize| {
        let mut cmd: WriteCommand =
            serde_json::from_str(&command(&format!("G{i}"), "Renamed", 1)).unwrap();
        cmd.key = RecordKey::Id { value: id(i) };
        cmd.salesforce_id = Some(id(i));
        cmd.load = Some(LoadId("run-1".into()));
        (format!("m{i}"), serde_json::to_string(&cmd).unwrap())
    }
}

/// A load's updates of pairs whose Account Id is known are staged too, and at the job's bulk
/// threshold (2,000) go out as one Bulk API job.
#[tokio::test]
async fn a_loads_updates_by_id_go_out_in_one_bulk_job() {
    let rig = load_rig();
    let n = 2_000;
    let by_id = accounts_to_rename(&rig, n);
    let t0 = 1_000_000;
    for half in [0..n / 2, n / 2..n] {
        let messages: Vec<(String, String)> = half.map(&by_id).collect();
        let messages = (messages.iter())
            .map(|(m, b)| (m.as_str(), b.clone()))
            .collect();
        let (response, _) = rig.pusher.handle_at(event(messages), t0).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "all staged");
    let (_, summary) = (rig.pusher)
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert_eq!(summary.synced, n);
    assert_eq!(*rig.sf.bulk_jobs.lock().unwrap(), 1, "one bulk job");
    let accounts = rig.sf.records.lock().unwrap();
    let renamed = (accounts.values())
        .filter(|(_, f)| f.get("Name") == Some(&json!("Renamed")))
        .count();
    assert_eq!(renamed, n);
}

/// Stages the renames of `n` Accounts under the load at `t0`, as a backfill's writes arrive.
async fn stage_renames(rig: &LoadRig, n: usize, t0: i64) {
    let by_id = accounts_to_rename(rig, n);
    let messages: Vec<(String, String)> = (0..n).map(&by_id).collect();
    let messages = (messages.iter())
        .map(|(m, b)| (m.as_str(), b.clone()))
        .collect();
    rig.pusher.handle_at(event(messages), t0).await;
}

/// A flush whose Bulk API job is still running keeps its slice staged (nothing goes back to
/// the queue on its own, nothing is recorded) and asks for the slice again; the flush that finds
/// the job done records every write once.
#[tokio::test]
async fn a_flush_whose_bulk_job_is_still_running_flushes_the_same_slice_again() {
    let (rig, n, t0) = (load_rig(), 2_000, 1_000_000);
    stage_renames(&rig, n, t0).await;
    *rig.sf.bulk_running.lock().unwrap() = 2;
    let mut now = t0 + QUIET_MS + 1_000;
    for _ in 0..2 {
        let (response, summary) = (rig.pusher)
            .handle_at(event(vec![("f", flush())]), now)
            .await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(summary.synced, 0);
        let load = rig.store.loads.lock().unwrap()[&LoadId("run-1".into())].clone();
        assert_eq!(load.writes.len(), n, "the slice stays staged");
        assert!(!load.state.flushed);
        assert!(rig.store.ledger_of("company_account", "G1").is_none());
        now += 31_000;
    }
    assert_eq!(rig.writes.bodies(), vec![flush(); 3], "no write on its own");
    let recheck = Duration::from_secs(31);
    assert_eq!(rig.writes.delays.lock().unwrap()[1..], [recheck, recheck]);
    let (_, summary) = (rig.pusher)
        .handle_at(event(vec![("f", flush())]), now)
        .await;
    assert_eq!(summary.synced, n);
    assert_eq!(*rig.sf.bulk_jobs.lock().unwrap(), 1, "one bulk job ended");
    assert!(rig.store.loads.lock().unwrap()[&LoadId("run-1".into())]
        .writes
        .is_empty());
    assert!(rig.store.ledger_of("company_account", "G1").is_some());
}

/// A flush whose invocation has too little time left to write its slice keeps the slice staged
/// and asks for it again, instead of sending its writes back to be made one by one.
#[tokio::test]
async fn a_flush_out_of_time_keeps_its_slice_staged_instead_of_writing_it_record_by_record() {
    let (rig, n, t0) = (load_rig(), 2_000, 1_000_000);
    stage_renames(&rig, n, t0).await;
    let now = t0 + QUIET_MS + 1_000;
    // Less time left than any write is started with.
    let late = shared::lambda::Deadline::in_ms(5_000);
    let (response, summary) = (rig.pusher)
        .handle_at_by(event(vec![("f", flush())]), now, late)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(summary.synced, 0);
    let load = rig.store.loads.lock().unwrap()[&LoadId("run-1".into())].clone();
    assert_eq!(load.writes.len(), n, "the slice stays staged");
    assert_eq!(rig.writes.bodies(), vec![flush(); 2], "no write on its own");
    let (_, summary) = (rig.pusher)
        .handle_at(event(vec![("f", flush())]), now + 31_000)
        .await;
    assert_eq!(summary.synced, n);
    assert_eq!(*rig.sf.bulk_jobs.lock().unwrap(), 1);
}

/// The Persons a load creates from Contacts are written at once; the write backs of their GSIDs
/// to the Contacts wait for the load, and its flush makes all 2,000 in one Bulk API job instead
/// of 10 Collections calls.
#[tokio::test]
async fn a_loads_write_backs_wait_for_it_and_go_out_in_one_bulk_job() {
    let rig = load_rig();
    let n = 2_000;
    let id = |i: usize| format!("003{i:015}");
    {
        let mut contacts = rig.sf.records.lock().unwrap();
        for i in 0..n {
            let fields = shared::domain::Fields::new();
            contacts.insert(("Contact".into(), id(i)), (id(i), fields));
        }
    }
    let create = |i: usize| {
        let body = person_command(&format!("p{i}@x.io"), &id(i), WriteMode::Upsert);
        let mut cmd: WriteCommand = serde_json::from_str(&body).unwrap();
        cmd.load = Some(LoadId("run-1".into()));
        (format!("m{i}"), serde_json::to_string(&cmd).unwrap())
    };
    let t0 = 1_000_000;
    for half in [0..n / 2, n / 2..n] {
        let messages: Vec<(String, String)> = half.map(create).collect();
        let messages = (messages.iter())
            .map(|(m, b)| (m.as_str(), b.clone()))
            .collect();
        let (response, summary) = rig.pusher.handle_at(event(messages), t0).await;
        assert!(response.batch_item_failures.is_empty());
        assert_eq!(summary.synced, n / 2);
    }
    assert_eq!(rig.gs.records.lock().unwrap()["Person"].len(), n);
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "the write backs wait");
    assert_eq!(rig.writes.bodies(), vec![flush(), flush()]);
    let staged = rig.store.loads.lock().unwrap()[&LoadId("run-1".into())].clone();
    assert_eq!((staged.writes.len(), staged.sides.len()), (0, n));

    let (response, _) = (rig.pusher)
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert!(response.batch_item_failures.is_empty());
    assert_eq!(*rig.sf.bulk_jobs.lock().unwrap(), 1, "one bulk job");
    let learnt = (rig.sf.records.lock().unwrap().values())
        .filter(|(_, f)| {
            f.get("Gainsight_Person_Id__c")
                .is_some_and(|v| v.is_string())
        })
        .count();
    assert_eq!(learnt, n, "every Contact learnt its Person's GSID");
    rig.pusher
        .handle_at(event(vec![("f2", flush())]), t0 + QUIET_MS + 2_000)
        .await;
    let load = rig.store.loads.lock().unwrap()[&LoadId("run-1".into())].clone();
    assert!(load.sides.is_empty() && load.state.flushed);
}

/// A load larger than a flush's slice is written a slice at a time, each flush asking for the
/// next; a record's two staged changes stay in one slice and go as one write, and the flush
/// that finds nothing left marks the load written.
#[tokio::test]
async fn a_load_larger_than_a_slice_is_written_a_slice_at_a_time() {
    let mut rig = load_rig();
    rig.pusher = rig.pusher.with_flush_slice(2);
    let t0 = 1_000_000;
    let mut messages: Vec<(String, String)> = (1..=5)
        .map(|i| (format!("m{i}"), load_command(&format!("G{i}"), "A")))
        .collect();
    let mut newer: WriteCommand = serde_json::from_str(&load_command("G2", "B")).unwrap();
    (newer.event_id, newer.source_changed_at_ms) = ("e-newer".into(), 5);
    messages.push(("m6".into(), serde_json::to_string(&newer).unwrap()));
    let messages = messages
        .iter()
        .map(|(m, b)| (m.as_str(), b.clone()))
        .collect();
    rig.pusher.handle_at(event(messages), t0).await;
    let (mut now, mut flushes, mut written) = (t0 + QUIET_MS + 1_000, 0, Vec::new());
    while !rig.store.loads.lock().unwrap()[&LoadId("run-1".into())]
        .state
        .flushed
    {
        let calls = *rig.sf.calls.lock().unwrap();
        let (response, summary) = (rig.pusher)
            .handle_at(event(vec![("f", flush())]), now)
            .await;
        assert!(response.batch_item_failures.is_empty());
        written.push((summary.synced, *rig.sf.calls.lock().unwrap() - calls));
        (now, flushes) = (now + 1_000, flushes + 1);
        assert!(flushes <= 10, "the load never ends: {written:?}");
    }
    // G1 and G2 (both its changes, folded into one write), G3 and G4, G5, then nothing left.
    assert_eq!(written, vec![(2, 1), (2, 1), (1, 1), (0, 0)]);
    let g2 = rig
        .sf
        .records
        .lock()
        .unwrap()
        .values()
        .find(|(_, f)| f.get("Gainsight_Company_Id__c") == Some(&"G2".into()))
        .cloned();
    assert_eq!(
        g2.map(|(_, f)| f["Name"].clone()),
        Some("B".into()),
        "the newer change"
    );
    assert_eq!(
        rig.writes.bodies().len(),
        1 + 3,
        "the load's flush, then one per slice written"
    );
}

/// A write back staged for a load but refused when the flush makes it marks its pair error,
/// saying what was not written.
#[tokio::test]
async fn a_loads_write_back_refused_at_the_flush_marks_its_pair_error() {
    let rig = load_rig();
    let mut cmd: WriteCommand =
        serde_json::from_str(&person_command("a@x.io", "003GONE", WriteMode::Upsert)).unwrap();
    cmd.load = Some(LoadId("run-1".into()));
    let t0 = 1_000_000;
    let body = serde_json::to_string(&cmd).unwrap();
    rig.pusher.handle_at(event(vec![("m1", body)]), t0).await;
    let gsid = rig.gs.records.lock().unwrap()["Person"][0]["Gsid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!rig.store.ledger_of("person_contact", &gsid).unwrap().error);
    rig.pusher
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert_eq!(*rig.sf.calls.lock().unwrap(), 1, "one Collections call");
    let pair = rig.store.ledger_of("person_contact", &gsid).unwrap();
    assert!(pair.error, "{pair:?}");
    let log = rig.store.run_log();
    assert!(log.contains("003GONE"), "{log}");
}

#[tokio::test]
async fn a_flushed_write_that_must_be_tried_again_goes_back_as_a_write_of_its_own() {
    let rig = load_rig();
    let t0 = 1_000_000;
    rig.pusher
        .handle_at(event(vec![("m1", load_command("G1", "A"))]), t0)
        .await;
    *rig.sf.unavailable.lock().unwrap() = true;
    let (response, _) = rig
        .pusher
        .handle_at(event(vec![("f1", flush())]), t0 + QUIET_MS + 1_000)
        .await;
    assert!(response.batch_item_failures.is_empty(), "the flush is done");
    let bodies = rig.writes.bodies();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[2], flush(), "the next slice asked for");
    let again: WriteCommand = serde_json::from_str(&bodies[1]).unwrap();
    assert_eq!(again.ledger_key, LedgerKey::Gainsight("G1".into()));
    assert_eq!(again.load, None, "a write of its own, not staged again");
}

#[tokio::test]
async fn a_load_that_cannot_be_staged_sends_its_writes_back() {
    let rig = load_rig();
    *rig.store.fail.lock().unwrap() = true;
    let (response, _) = rig
        .pusher
        .handle_at(event(vec![("m1", load_command("G1", "A"))]), 1_000)
        .await;
    assert_eq!(failed_ids(&response), vec!["m1"]);
    assert!(
        rig.writes.bodies().is_empty(),
        "no flush for nothing staged"
    );
}

#[tokio::test]
async fn a_flush_finding_the_load_held_asks_again_later_without_failing() {
    use shared::ports::LoadStore;
    let rig = load_rig();
    let t0 = 1_000_000;
    rig.pusher
        .handle_at(event(vec![("m1", load_command("G1", "A"))]), t0)
        .await;
    let later = t0 + QUIET_MS + 1_000;
    let load = LoadId("run-1".into());
    // Another flush claimed it a moment ago and is writing it.
    assert!(rig
        .store
        .claim_load(&load, (later - QUIET_MS, later - 10, 300_000))
        .await
        .unwrap());
    let (response, _) = rig
        .pusher
        .handle_at(event(vec![("f1", flush())]), later)
        .await;
    assert!(response.batch_item_failures.is_empty(), "not a failure");
    assert_eq!(*rig.sf.calls.lock().unwrap(), 0, "the holder writes it");
    assert_eq!(rig.writes.bodies(), vec![flush(), flush()], "asked again");
    assert_eq!(
        rig.writes.delays.lock().unwrap().last(),
        Some(&Duration::from_millis(QUIET_MS as u64))
    );
    let runs = rig.store.runs.lock().unwrap().clone();
    assert!(
        runs.iter().all(|r| r.error.is_none()),
        "no failed run: {runs:?}"
    );
}
