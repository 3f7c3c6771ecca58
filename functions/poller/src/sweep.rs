//! The poller's sweep of a job's waiting changes (`domain::waiting`): a change that nothing
//! replayed is queued again to look its parent up once more, and one that waited longer than
//! the job allows becomes an error in the ledger naming the parent and what to do.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::domain::waiting::{sweep, Sweep, WaitingChange};
use shared::domain::{Job, LedgerKey, LedgerUpdate, LineOutcome, RunLine, Runs};
use shared::ports::{LedgerStore, LedgerWrite, Queue, StoreError, WaitingStore};

/// What a sweep did.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Waiting changes queued again to look their parent up.
    pub rechecked: usize,
    /// Records whose wait ended in an error.
    pub expired: usize,
    /// Changes still waiting, recently looked up.
    pub waiting: usize,
}

/// The ports a sweep uses.
pub(crate) struct SweepPorts<'a> {
    pub waiting: &'a dyn WaitingStore,
    pub ledger: &'a dyn LedgerStore,
    pub changes: &'a dyn Queue,
}

/// Sweeps `job`'s waiting changes as of `now_ms`.
pub(crate) async fn sweep_job(
    ports: SweepPorts<'_>,
    job: &Job,
    now_ms: i64,
    runs: &mut Runs,
) -> Result<SweepReport, StoreError> {
    let mut report = SweepReport::default();
    let (mut recheck, mut expire) = (Vec::new(), BTreeMap::new());
    for w in ports.waiting.waiting_in(&job.name).await? {
        match sweep(&w, now_ms, job.wait_for_parent_hours()) {
            Sweep::Wait => report.waiting += 1,
            Sweep::Recheck => recheck.push(w),
            Sweep::Expire { message } => {
                expire
                    .entry(w.key.clone())
                    .or_insert_with(|| (message, Vec::new()))
                    .1
                    .push(w);
            }
        }
    }
    report.rechecked = requeue(&ports, recheck, runs).await?;
    report.expired = give_up(&ports, job, expire, (now_ms, runs)).await?;
    Ok(report)
}

/// Queues the changes again (the mapper parks them anew while their parent is missing), then
/// takes the queued ones out; how many were queued.
async fn requeue(
    ports: &SweepPorts<'_>,
    recheck: Vec<WaitingChange>,
    runs: &mut Runs,
) -> Result<usize, StoreError> {
    if recheck.is_empty() {
        return Ok(0);
    }
    let sent = shared::enqueue::replay_waiting(ports.changes, recheck).await;
    for w in &sent {
        let line = RunLine::new(&w.change.record_id, LineOutcome::Queued)
            .message(format!("looked up again: it waits for {}", w.parent));
        runs.line(Some(&w.job), line);
    }
    ports.waiting.release(&sent).await?;
    Ok(sent.len())
}

/// Records each expired record's error in the ledger, then takes its changes out; how many
/// records.
async fn give_up(
    ports: &SweepPorts<'_>,
    job: &Job,
    expire: BTreeMap<LedgerKey, (String, Vec<WaitingChange>)>,
    (now_ms, runs): (i64, &mut Runs),
) -> Result<usize, StoreError> {
    if expire.is_empty() {
        return Ok(0);
    }
    let run = runs.id_for(Some(&job.name)).to_string();
    let mut writes = Vec::with_capacity(expire.len());
    for (key, (message, changes)) in &expire {
        let record = changes.first().map(|w| w.change.record_id.as_str());
        let line = RunLine::new(record.unwrap_or_default(), LineOutcome::Error).message(message);
        runs.line(Some(&job.name), line);
        let update = LedgerUpdate::Failed {
            message: message.clone(),
        };
        writes.push(LedgerWrite::new(&job.name, key.clone(), update, &run));
    }
    ports.ledger.record_many(&writes, now_ms).await?;
    let done: Vec<WaitingChange> = expire.into_values().flat_map(|(_, w)| w).collect();
    ports.waiting.release(&done).await?;
    Ok(writes.len())
}
