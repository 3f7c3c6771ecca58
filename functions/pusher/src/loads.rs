//! Bulk loads in the pusher: a load's Salesforce upserts are staged instead of written, and once
//! the load is quiet, flushes write them a slice at a time through the usual path, where a group
//! at or over the job's bulk threshold goes through one Bulk API 2.0 job. The write backs to
//! Salesforce that follow a load's writes wait for the load too, and the flushes make them after
//! its writes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use shared::domain::load::{self, FlushVerdict, LoadFlush, LoadId, LoadState};
use shared::domain::push::{folded_outcomes, newest_per_record, Pending, SideWrite};
use shared::domain::{LineOutcome, RunLine, Runs, WriteCommand};
use shared::ports::LoadStore;

use crate::{source_id, Pusher, Summary};

/// How long a flush holds its load before another flush may take it over (a flush that died):
/// longer than the pusher's timeout.
const FLUSH_LEASE: Duration = Duration::from_secs(300);

impl Pusher {
    /// Stages the batch's writes that wait for their load and asks for each load's flush after
    /// the quiet period; returns the writes to push now. Without a load store or a queue to send
    /// the flush to, nothing is staged.
    pub(crate) async fn stage_loads(
        &self,
        batch: Vec<Pending>,
        retry: &mut Vec<String>,
        runs: &mut Runs,
        now_ms: i64,
    ) -> Vec<Pending> {
        let (Some((store, quiet)), Some((queue, _))) = (&self.loads, &self.deferral) else {
            return batch;
        };
        let (staged, now): (Vec<Pending>, Vec<Pending>) =
            batch.into_iter().partition(|p| load::stages(&p.command));
        let mut by_load: BTreeMap<LoadId, Vec<Pending>> = BTreeMap::new();
        for p in staged {
            if let Some(load) = p.command.load.clone() {
                by_load.entry(load).or_default().push(p);
            }
        }
        for (load, group) in by_load {
            let writes: Vec<WriteCommand> = group.iter().map(|p| p.command.clone()).collect();
            let staged = match store.stage(&load, &writes, now_ms).await {
                Ok(()) => ask_flush(queue.as_ref(), *quiet, &load).await,
                Err(e) => Err(e.to_string()),
            };
            match staged {
                Ok(()) => self.note_staged(&load, &group, runs),
                Err(failed) => {
                    let why = format!(
                        "bulk load {load} not staged: {failed}; the writes go back to the queue"
                    );
                    tracing::warn!(load = %load, writes = group.len(), "{why}");
                    for p in group {
                        runs.fail(Some(&p.command.job), &why);
                        retry.push(p.message_id);
                    }
                }
            }
        }
        now
    }

    /// Stages the write backs that wait for the load of the write they follow (`(load, write
    /// back)`) and asks for each load's flush; returns those to make now. A group that cannot
    /// be staged is made now as well: nothing waits on a load that will not be flushed.
    pub(crate) async fn stage_sides(
        &self,
        sides: Vec<(Option<LoadId>, SideWrite)>,
        now_ms: i64,
    ) -> Vec<SideWrite> {
        let (Some((store, quiet)), Some((queue, _))) = (&self.loads, &self.deferral) else {
            return sides.into_iter().map(|(_, side)| side).collect();
        };
        let mut now = Vec::new();
        let mut by_load: BTreeMap<LoadId, Vec<SideWrite>> = BTreeMap::new();
        for (load, side) in sides {
            match load.filter(|l| load::stages_side(&side, Some(l))) {
                Some(load) => by_load.entry(load).or_default().push(side),
                None => now.push(side),
            }
        }
        for (load, group) in by_load {
            let staged = match store.stage_sides(&load, &group, now_ms).await {
                Ok(()) => ask_flush(queue.as_ref(), *quiet, &load).await,
                Err(e) => Err(e.to_string()),
            };
            match staged {
                Ok(()) => {
                    tracing::info!(load = %load, write_backs = group.len(), "write backs staged for their bulk load")
                }
                Err(why) => {
                    tracing::warn!(load = %load, write_backs = group.len(), error = %why, "write backs not staged for their bulk load; made now");
                    now.extend(group);
                }
            }
        }
        now
    }

    /// Says in the runs that `group` waits for its load.
    fn note_staged(&self, load: &LoadId, group: &[Pending], runs: &mut Runs) {
        tracing::info!(load = %load, writes = group.len(), "writes staged for their bulk load");
        for p in group {
            let job = Some(p.command.job.as_str());
            if let Some(j) = self.jobs.get(&p.command.job) {
                runs.objects(job, j.object_in(p.command.source), Some(&p.command.object));
            }
            let line = RunLine::new(source_id(&p.command), LineOutcome::Queued)
                .message(format!("staged for bulk load {load}"));
            runs.line(job, line);
        }
    }

    /// Writes the next slice of `load` if it is quiet and unwritten (`load::FLUSH_SLICE` staged
    /// items: its writes, then once they are made its write backs), takes the slice out and
    /// asks for the next flush at once; a flush that finds nothing left marks the load written.
    /// Writes that must be tried again go back to the queue as writes of their own (no longer
    /// of the load). While another flush holds the load, a new flush is sent for after the
    /// quiet period, in case that one dies (a fresh message, so waiting uses up no delivery).
    /// `Err` when the flush message itself should come again.
    pub(crate) async fn flush_load(
        &self,
        load: &LoadId,
        runs: &mut Runs,
        summary: &mut Summary,
        clock: crate::Clock,
    ) -> Result<(), String> {
        let (Some((store, quiet)), Some((queue, _))) = (&self.loads, &self.deferral) else {
            return Ok(());
        };
        let now_ms = clock.now_ms;
        let state = match take_load(store.as_ref(), load, now_ms, quiet.as_millis() as i64).await? {
            Take::Write(state) => state,
            Take::Nothing => return Ok(()),
            Take::Held => return self.ask_again(load, queue.as_ref(), *quiet).await,
        };
        let staged = (store.staged(load, self.flush_slice).await).map_err(|e| e.to_string())?;
        let through = state.last_staged_ms;
        if staged.is_empty() {
            tracing::info!(load = %load, "bulk load written");
            return (store.finish_load(load, through, &staged).await).map_err(|e| e.to_string());
        }
        let stopped = self.stopped_jobs(now_ms).await;
        let job = (staged.writes.iter().map(|w| &w.job)).find(|j| stopped.contains_key(*j));
        if let Some(job) = job {
            // Staged as it is until the job runs again.
            let why = format!("waiting: {}", stopped[job].stopped_line(job));
            tracing::info!(load = %load, job = %job, "bulk load of a stopped job waits");
            runs.fail(Some(job), &why);
            (store.release_load(load).await).map_err(|e| e.to_string())?;
            let wait = crate::STOPPED_DELAY.min(self.deferral_delay(None));
            return ask_flush(queue.as_ref(), wait, load).await;
        }
        let slice = (load, &staged.writes[..], queue.as_ref());
        let made = match self.flush_writes(slice, (runs, summary), clock).await? {
            Slice::Made => self.flush_sides(&staged.sides, runs, now_ms).await,
            Slice::Running => Slice::Running,
        };
        if made == Slice::Running {
            // Staged as it was, so that the next flush writes the same slice and collects the
            // job instead of submitting it again.
            tracing::info!(load = %load, writes = staged.writes.len(), write_backs = staged.sides.len(), "bulk job of the load still running; the slice is flushed again");
            (store.release_load(load).await).map_err(|e| e.to_string())?;
            return ask_flush(queue.as_ref(), self.bulk_recheck, load).await;
        }
        tracing::info!(load = %load, writes = staged.writes.len(), write_backs = staged.sides.len(), "bulk load slice written");
        (store.finish_load(load, through, &staged).await).map_err(|e| e.to_string())?;
        ask_flush(queue.as_ref(), Duration::ZERO, load).await
    }

    /// Makes a slice's writes through the usual path; those that must be tried again go back
    /// to the queue as writes of their own, unless a Bulk API job of the slice is still
    /// running: then nothing goes back and the slice is flushed again (its writes already
    /// recorded are dropped as written, the running job's collected). `Err` when writes could
    /// not go back: the load stays unwritten and, once the lease lapses, a flush writes the
    /// slice again (upserts on external ids, so nothing is created twice).
    async fn flush_writes(
        &self,
        (load, writes, queue): (&LoadId, &[WriteCommand], &dyn shared::ports::Queue),
        (runs, summary): (&mut Runs, &mut Summary),
        clock: crate::Clock,
    ) -> Result<Slice, String> {
        let on_its_own = |command: &WriteCommand| WriteCommand {
            load: None,
            ..command.clone()
        };
        let ids: HashMap<String, usize> = (0..writes.len())
            .map(|i| (format!("{load}#{i}"), i))
            .collect();
        let batch = (ids.iter())
            .map(|(id, &i)| Pending {
                message_id: id.clone(),
                command: on_its_own(&writes[i]),
            })
            .collect();
        // Two changes of one record staged apart go as one write, as in any batch.
        let folded = newest_per_record(batch);
        let mut retry = Vec::new();
        // A flush's writes are never on a last delivery: those it cannot make go again as
        // writes of their own.
        let mut last = crate::LastDeliveries::default();
        self.push(folded.kept, &mut retry, runs, &mut last, summary, clock)
            .await;
        if last.any_running() {
            return Ok(Slice::Running);
        }
        let outcomes = folded_outcomes(&folded.folded, &retry);
        self.record_folded(outcomes, runs, clock.now_ms).await;
        let again: Vec<String> = (retry.iter())
            .filter_map(|id| ids.get(id).map(|&i| on_its_own(&writes[i])))
            .filter_map(|command| serde_json::to_string(&command).ok())
            .collect();
        if !queue.send(&again).await.iter().any(Result::is_err) {
            return Ok(Slice::Made);
        }
        Err(format!(
            "{} writes of bulk load {load} could not go back to the queue",
            again.len()
        ))
    }

    /// Makes a load's staged write backs (one Bulk API job per object when they reach the
    /// job's bulk threshold); those that fail go to the writes queue on their own, as any write
    /// back that failed, and the changes waiting on the ids written go again.
    async fn flush_sides(&self, sides: &[SideWrite], runs: &mut Runs, now_ms: i64) -> Slice {
        if sides.is_empty() {
            return Slice::Made;
        }
        let failed = self.write_sides(sides.to_vec()).await;
        if failed.iter().any(|f| f.running) {
            return Slice::Running;
        }
        tracing::info!(write_backs = sides.len(), "bulk load's write backs made");
        let refused: std::collections::HashSet<String> =
            failed.iter().map(|f| f.side.stage_key()).collect();
        let parents: Vec<_> = (sides.iter())
            .filter(|w| !refused.contains(&w.stage_key()))
            .flat_map(|w| self.parents_written(w))
            .collect();
        self.send_sides_alone(failed, runs, now_ms).await;
        self.replay_waiting(&parents, runs).await;
        Slice::Made
    }
}

/// What became of a flush's slice.
#[derive(Debug, PartialEq, Eq)]
enum Slice {
    /// Made: taken out of the load.
    Made,
    /// A Bulk API job of it is still running: the slice stays staged.
    Running,
}

impl Pusher {
    /// Sends `load`'s flush again for after `quiet`.
    async fn ask_again(
        &self,
        load: &LoadId,
        queue: &dyn shared::ports::Queue,
        quiet: Duration,
    ) -> Result<(), String> {
        tracing::info!(load = %load, "bulk load held by another flush; asking again later");
        let again = serde_json::to_string(&LoadFlush {
            flush_load: load.clone(),
        })
        .unwrap_or_default();
        match queue.send_later(&[again], quiet).await.into_iter().next() {
            Some(Ok(())) => Ok(()),
            other => Err(format!(
                "bulk load {load}'s flush not sent again: {other:?}"
            )),
        }
    }
}

/// Sends `load`'s flush for a second after `quiet`: after the quiet period, one per load per
/// invocation that staged under it, so the last one sent finds the load quiet; or, with no
/// quiet, for the next slice of a load being written.
async fn ask_flush(
    queue: &dyn shared::ports::Queue,
    quiet: Duration,
    load: &LoadId,
) -> Result<(), String> {
    let flush = serde_json::to_string(&LoadFlush {
        flush_load: load.clone(),
    })
    .map_err(|e| e.to_string())?;
    let sent = queue
        .send_later(&[flush], quiet + Duration::from_secs(1))
        .await;
    match sent.into_iter().next() {
        Some(Ok(())) => Ok(()),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the queue answered nothing".into()),
    }
}

/// What a flush does with its load.
enum Take {
    /// Claimed: this flush writes everything staged, the load being as this state says.
    Write(LoadState),
    /// Written already, or still growing (its grower sent a later flush).
    Nothing,
    /// Another flush holds it.
    Held,
}

/// Whether this flush writes `load` now: unwritten, quiet, and claimed by it.
async fn take_load(
    store: &dyn LoadStore,
    load: &LoadId,
    now_ms: i64,
    quiet_ms: i64,
) -> Result<Take, String> {
    let state = store.load_state(load).await.map_err(|e| e.to_string())?;
    if load::flush_verdict(state, now_ms, quiet_ms) != FlushVerdict::Write {
        return Ok(Take::Nothing);
    }
    let lease = (now_ms - quiet_ms, now_ms, FLUSH_LEASE.as_millis() as i64);
    let claimed = store.claim_load(load, lease).await;
    let state = store.load_state(load).await.map_err(|e| e.to_string())?;
    if claimed.map_err(|e| e.to_string())? {
        return Ok(match state {
            Some(state) => Take::Write(state),
            None => Take::Nothing,
        });
    }
    Ok(match load::flush_verdict(state, now_ms, quiet_ms) {
        FlushVerdict::Write => Take::Held,
        _ => Take::Nothing,
    })
}
