//! The first load in the resync handler, over in-memory ports.

use std::sync::Arc;

use serde_json::json;
use shared::domain::first_load::steps::FirstLoadState;
use shared::domain::{Fields, Jobs};
use shared::fakes::{MemoryGainsight, MemoryQueue, MemorySalesforce, MemoryStore};
use shared::ports::{FirstLoadStore as _, LedgerStore, RunStore as _, SourcePorts};

use super::*;

struct World {
    store: Arc<MemoryStore>,
    queue: Arc<MemoryQueue>,
    gainsight: Arc<MemoryGainsight>,
    salesforce: Arc<MemorySalesforce>,
    resync: Resync,
}

fn rec(v: serde_json::Value) -> Fields {
    v.as_object().cloned().unwrap_or_default()
}

const S1: &str = "001000000000001AAA";
const S3: &str = "001000000000003AAA";

/// G1 names its Account S1; G2 and S3 have no twin.
fn world() -> World {
    let store = Arc::new(MemoryStore::default());
    let queue = Arc::new(MemoryQueue::default());
    let gainsight = Arc::new(MemoryGainsight::default());
    let salesforce = Arc::new(MemorySalesforce::default());
    let companies = vec![
        rec(json!({"Gsid": "G1", "Name": "Acme", "SfdcAccountId": S1})),
        rec(json!({"Gsid": "G2", "Name": "Only in Gainsight"})),
    ];
    (gainsight.records.lock().unwrap()).insert("Company".into(), companies);
    *salesforce.query_rows.lock().unwrap() = vec![
        rec(json!({"Id": S1, "Name": "Acme"})),
        rec(json!({"Id": S3, "Name": "Only in Salesforce"})),
    ];
    let ports = SourcePorts {
        changes: queue.clone(),
        gainsight: gainsight.clone(),
        jobs: Jobs::builtin(),
    };
    let resync = Resync::new(ports, store.clone(), salesforce.clone());
    World {
        store,
        queue,
        gainsight,
        salesforce,
        resync,
    }
}

fn run_load() -> ResyncRequest {
    serde_json::from_value(json!({"job": "company_account", "load": "run"})).unwrap()
}

fn queued(queue: &MemoryQueue) -> Vec<(System, String)> {
    let mut ids: Vec<(System, String)> = (queue.bodies().iter())
        .map(|b| serde_json::from_str::<ChangeEvent>(b).unwrap())
        .map(|c| (c.source, c.record_id))
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_load_is_planned_then_applied_chunk_by_chunk_and_then_finds_everything_linked() {
    let w = world();
    let planned = w.resync.handle_at(run_load(), 10).await.unwrap();
    let load = planned.load.clone().expect("the load");
    assert_eq!((load.chunks, load.done, load.steps), (1, 0, 3));
    assert_eq!(
        (
            load.counts.link_by_identifier,
            load.counts.create_in_salesforce,
            load.counts.create_in_gainsight
        ),
        (1, 1, 1)
    );
    assert!(w.queue.bodies().is_empty(), "planning writes nothing");
    let (_, read) = w.gainsight.queries.lock().unwrap()[0].clone();
    assert_eq!(
        read.order_by,
        [("Gsid".to_string(), true)],
        "pages by offset need an order"
    );
    let next = planned.continuation.expect("chunks remain");
    let calls = *w.salesforce.calls.lock().unwrap();

    let applied = w.resync.handle_at(next, 11).await.unwrap();
    assert_eq!(
        *w.salesforce.calls.lock().unwrap(),
        calls,
        "the writes carry the records the plan read: nothing read again"
    );
    let load = applied.load.expect("the load");
    assert_eq!((load.done, load.state), (1, FirstLoadState::Done));
    assert!(applied.continuation.is_none());
    let pair = (w
        .store
        .ledger("company_account", &LedgerKey::Gainsight("G1".into())))
    .await
    .unwrap()
    .expect("linked");
    assert_eq!(pair.salesforce_id.as_deref(), Some(S1));
    let from = [LedgerKey::SalesforceOnly(S1.into())];
    let notes = w.store.moves_of("company_account", &from).await.unwrap();
    assert_eq!(
        notes.values().collect::<Vec<_>>(),
        [&LedgerKey::Gainsight("G1".into())],
        "the Salesforce Id forwards to its pair"
    );
    assert_eq!(
        queued(&w.queue),
        [
            (System::Gainsight, "G2".to_string()),
            (System::Salesforce, S3.to_string())
        ]
    );
    let changes: Vec<ChangeEvent> = (w.queue.bodies().iter())
        .map(|b| serde_json::from_str(b).unwrap())
        .collect();
    assert!(changes
        .iter()
        .all(|c| c.load == Some(LoadId(load.run.clone()))));

    // Run again: a new plan, which finds the pair in the ledger.
    let again = w.resync.handle_at(run_load(), 12).await.unwrap();
    let counts = again.load.expect("a new load").counts;
    assert_eq!((counts.already_linked, counts.link_by_identifier), (1, 0));
}

#[tokio::test]
async fn a_chunk_applied_twice_moves_the_checkpoint_once_and_a_cancelled_load_stops() {
    let w = world();
    let planned = w.resync.handle_at(run_load(), 10).await.unwrap();
    let load = planned.load.unwrap();
    // Killed after its writes, before its checkpoint: the next invocation applies it again.
    let steps = (w.store.first_load_chunk("company_account", &load.run, 0))
        .await
        .unwrap();
    let resync = &w.resync;
    let job = resync.ports.jobs.named("company_account").unwrap();
    let mut runs = Runs::new(RunFunction::Resync, "x", 10, "x");
    (resync.apply_steps(job, &load, &steps, (&mut runs, "r"), 10))
        .await
        .unwrap();
    let applied = resync.handle_at(run_load(), 11).await.unwrap();
    assert_eq!(applied.load.unwrap().done, 1);
    assert_eq!(
        queued(&w.queue).len(),
        4,
        "the same two records queued again"
    );
    let pair = (w
        .store
        .ledger("company_account", &LedgerKey::Gainsight("G1".into())))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(pair.salesforce_id.as_deref(), Some(S1));

    let cancel: ResyncRequest =
        serde_json::from_value(json!({"job": "company_account", "load": "cancel"})).unwrap();
    let err = w.resync.handle_at(cancel.clone(), 12).await.unwrap_err();
    assert!(
        err.to_string().contains("no first load in progress"),
        "{err}"
    );
    w.resync.handle_at(run_load(), 13).await.unwrap();
    let cancelled = w.resync.handle_at(cancel, 14).await.unwrap();
    let load = cancelled.load.unwrap();
    assert_eq!(
        (load.state, cancelled.continuation),
        (FirstLoadState::Cancelled, None)
    );
}

/// Written only from Gainsight: G2 gets its Account, S3 stays alone, and the pair is linked.
#[tokio::test]
async fn a_load_from_one_side_creates_nothing_on_that_side() {
    let w = world();
    let request: ResyncRequest = serde_json::from_value(
        json!({"job": "company_account", "load": "run", "from": "gainsight"}),
    )
    .unwrap();
    let planned = w.resync.handle_at(request, 10).await.unwrap();
    let load = planned.load.clone().unwrap();
    assert_eq!(load.from, Some(System::Gainsight));
    let c = &load.counts;
    assert_eq!(
        (
            c.link_by_identifier,
            c.create_in_salesforce,
            c.create_in_gainsight,
            c.no_twin
        ),
        (1, 1, 0, 1)
    );
    w.resync
        .handle_at(planned.continuation.unwrap(), 11)
        .await
        .unwrap();
    assert_eq!(queued(&w.queue), [(System::Gainsight, "G2".to_string())]);
    let run = w
        .store
        .run(&load.run.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(
        run.log.iter().any(|l| l.record == S3
            && l.message
                .as_deref()
                .unwrap_or_default()
                .contains("writes only from Gainsight")),
        "{:?}",
        run.log
    );
}

/// Writes stored without their records (a load planned before steps carried them) are read
/// again where they live; one no longer there is listed, not written.
#[tokio::test]
async fn writes_without_their_records_are_read_again_and_a_deleted_one_is_listed() {
    let w = world();
    let write = |from, id: &str| Step::Write {
        from,
        id: id.into(),
        record: None,
    };
    let steps = vec![
        write(System::Gainsight, "G2"),
        write(System::Salesforce, S3),
        write(System::Gainsight, "G9"),
    ];
    let load = FirstLoad {
        job: "company_account".into(),
        run: "20261206T000000Z-resync-1".into(),
        state: FirstLoadState::Applying,
        chunks: 1,
        done: 0,
        steps: 3,
        counts: Default::default(),
        read: Read::default(),
        started_ms: 1,
        from: None,
    };
    w.store
        .put_first_load_chunk(&load, 0, &steps)
        .await
        .unwrap();
    assert!(w.store.begin_first_load(&load).await.unwrap());
    let applied = w.resync.handle_at(run_load(), 11).await.unwrap();
    assert_eq!(applied.queued, 2);
    assert_eq!(
        queued(&w.queue),
        [
            (System::Gainsight, "G2".to_string()),
            (System::Salesforce, S3.to_string())
        ]
    );
    let run = w.store.run(&applied.run).await.unwrap().unwrap();
    assert!(
        run.log.iter().any(|l| l.record == "G9"
            && l.message.as_deref() == Some("deleted since the load was planned: not written")),
        "{:?}",
        run.log
    );
}
