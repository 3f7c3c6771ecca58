//! A job's first load, one step per invocation (`{"job", "load": "run"}`): with no load in
//! progress, the invocation reads both systems in bulk (`shared::snapshot`), plans the load
//! (`domain::first_load`), logs every ambiguous and every refused record in its run and stores
//! the steps in chunks; with one in progress, it applies the next chunk (links into the ledger,
//! then writes queued as forced changes carrying the load and the records the plan read) and
//! moves the checkpoint. The answer carries the request to send again while chunks remain; a
//! load killed half way goes on from its checkpoint.

use std::collections::BTreeSet;

use shared::domain::first_load::steps::{self, FirstLoad, FirstLoadState, Next, Read, Step};
use shared::domain::first_load::{self, Action, PlanRows};
use shared::domain::load::LoadId;
use shared::domain::{
    ChangeEvent, Job, LedgerKey, LedgerUpdate, LineOutcome, RunFunction, RunLine, Runs,
    SourceRecord, System,
};
use shared::lambda::store_runs;
use shared::ports::{record_links, LedgerWrite};
use shared::snapshot::{self, Sources};

use crate::request::LoadCommand;
use crate::{Resync, ResyncError, ResyncReport, ResyncRequest};

impl Resync {
    /// Runs or cancels `job`'s first load, one step per invocation.
    pub(crate) async fn first_load(
        &self,
        job: &Job,
        (command, request): (LoadCommand, &ResyncRequest),
        now_ms: i64,
    ) -> Result<ResyncReport, ResyncError> {
        let stored = self.first_loads.first_load(&job.name).await?;
        let (load, run, queued) = match (command, steps::next(stored.as_ref()), stored) {
            (LoadCommand::Cancel, _, stored) => self.cancel_load(job, stored).await?,
            (LoadCommand::Run, Next::Apply(index), Some(load)) => {
                self.apply_chunk(job, load, index, now_ms).await?
            }
            (LoadCommand::Run, ..) => self.plan_load(job, request.from, now_ms).await?,
        };
        let more = command == LoadCommand::Run && load.state == FirstLoadState::Applying;
        Ok(ResyncReport {
            job: job.name.clone(),
            run: run.parse().map_err(crate::RequestError::from)?,
            queued,
            not_found: Vec::new(),
            continuation: more.then(|| request.clone()),
            load: Some(load),
        })
    }

    async fn cancel_load(
        &self,
        job: &Job,
        stored: Option<FirstLoad>,
    ) -> Result<(FirstLoad, String, usize), ResyncError> {
        let mut load = stored
            .filter(|l| l.state == FirstLoadState::Applying)
            .ok_or_else(|| ResyncError::NoLoad(job.name.clone()))?;
        if !self.first_loads.cancel_first_load(&job.name).await? {
            return Err(ResyncError::NoLoad(job.name.clone()));
        }
        tracing::info!(job = %job.name, load = %load.run, done = load.done, chunks = load.chunks, "first load cancelled");
        load.state = FirstLoadState::Cancelled;
        let run = load.run.clone();
        Ok((load, run, 0))
    }

    /// Reads both systems, plans the load and stores its steps; the run lists the records left
    /// alone (ambiguous, or with no twin the load would create) and the writes the target would
    /// refuse, each with why.
    async fn plan_load(
        &self,
        job: &Job,
        from: Option<System>,
        now_ms: i64,
    ) -> Result<(FirstLoad, String, usize), ResyncError> {
        let sources = Sources {
            salesforce: self.bulk.as_ref(),
            salesforce_api: self.salesforce.as_ref(),
            gainsight: self.ports.gainsight.as_ref(),
            ledger: self.ledger.as_ref(),
        };
        let progress = |what: String| tracing::info!(job = %job.name, "{what}");
        let snapshot = snapshot::read(job, sources, &progress).await?;
        let (rows, found) = first_load::plan_keeping_rows(job, &snapshot, from);
        let read = Read {
            gainsight: snapshot.gainsight.len(),
            salesforce: snapshot.salesforce.len(),
        };
        let planned = steps::steps(&rows).count();
        let chunks = planned.div_ceil(steps::CHUNK);
        let seed = format!("first load {}", job.name);
        let mut runs = Runs::new(RunFunction::Resync, "first load: plan", now_ms, &seed);
        let run = runs.id_for(Some(&job.name)).to_string();
        let load = FirstLoad {
            job: job.name.clone(),
            run: run.clone(),
            state: if chunks == 0 {
                FirstLoadState::Done
            } else {
                FirstLoadState::Applying
            },
            chunks,
            done: 0,
            steps: planned,
            counts: first_load::counts(rows.iter()),
            read,
            started_ms: now_ms,
            from,
        };
        self.store_chunks(&load, steps::steps(&rows), (&found, &snapshot))
            .await?;
        drop(snapshot);
        if !self.first_loads.begin_first_load(&load).await? {
            // Another invocation began one meanwhile: that one goes on.
            let current = self.first_loads.first_load(&job.name).await?;
            let current = current.ok_or_else(|| ResyncError::NoLoad(job.name.clone()))?;
            let run = current.run.clone();
            return Ok((current, run, 0));
        }
        log_plan(&mut runs, job, &rows);
        store_runs(self.runs.as_ref(), runs).await;
        tracing::info!(job = %job.name, load = %run, steps = load.steps, chunks = load.chunks, "first load planned");
        Ok((load, run, 0))
    }

    /// Stores the load's steps a chunk at a time as they are made, each write carrying its
    /// record as `snapshot` holds it, so that one chunk's steps and records at a time are in
    /// memory.
    async fn store_chunks(
        &self,
        load: &FirstLoad,
        mut steps: impl Iterator<Item = Step>,
        (found, snapshot): (&steps::RecordRows, &first_load::Snapshot),
    ) -> Result<(), ResyncError> {
        for index in 0..load.chunks {
            let mut chunk: Vec<Step> = steps.by_ref().take(steps::CHUNK).collect();
            found.carry(&mut chunk, snapshot);
            (self.first_loads.put_first_load_chunk(load, index, &chunk)).await?;
        }
        Ok(())
    }

    /// Applies chunk `index` of `load` and moves its checkpoint.
    async fn apply_chunk(
        &self,
        job: &Job,
        mut load: FirstLoad,
        index: usize,
        now_ms: i64,
    ) -> Result<(FirstLoad, String, usize), ResyncError> {
        let steps = (self.first_loads)
            .first_load_chunk(&job.name, &load.run, index)
            .await?;
        let event = format!(
            "first load {}: chunk {} of {}",
            load.run,
            index + 1,
            load.chunks
        );
        let seed = format!("{} {index}", load.run);
        let mut runs = Runs::new(RunFunction::Resync, &event, now_ms, &seed);
        let run = runs.id_for(Some(&job.name)).to_string();
        let applied = self
            .apply_steps(job, &load, &steps, (&mut runs, &run), now_ms)
            .await;
        if let Err(e) = &applied {
            runs.fail(Some(&job.name), e.to_string());
        }
        store_runs(self.runs.as_ref(), runs).await;
        let queued = applied?;
        let state = steps::after_chunk(index, load.chunks);
        let moved = (self.first_loads)
            .advance_first_load(&job.name, &load.run, (index, state))
            .await?;
        if moved {
            (load.done, load.state) = (index + 1, state);
        } else if let Some(now) = self.first_loads.first_load(&job.name).await? {
            // Another invocation applied it too, or the load was cancelled meanwhile.
            load = now;
        }
        tracing::info!(job = %job.name, load = %load.run, chunk = index + 1, chunks = load.chunks, queued, moved, "first load chunk applied");
        Ok((load, run, queued))
    }

    /// Links, then writes: each write's record, as the plan read it, queued as a forced change
    /// as of its modification stamp (so a change written since makes it stale) carrying the
    /// load (its planning run), so the pusher stages the load's Salesforce writes and makes
    /// them together once the load is quiet: through Bulk API jobs at or over the job's bulk
    /// threshold.
    async fn apply_steps(
        &self,
        job: &Job,
        load: &FirstLoad,
        steps: &[Step],
        (runs, run): (&mut Runs, &str),
        now_ms: i64,
    ) -> Result<usize, ResyncError> {
        let origin = format!("first load {}", load.run);
        let links: Vec<LedgerWrite> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Link {
                    gsid,
                    salesforce_id,
                    by,
                } => {
                    let update = LedgerUpdate::Imported {
                        salesforce_id: salesforce_id.clone(),
                        origin: format!("{origin}, {by}"),
                    };
                    let key = LedgerKey::Gainsight(gsid.clone());
                    Some(LedgerWrite::new(&job.name, key, update, run))
                }
                Step::Write { .. } => None,
            })
            .collect();
        record_links(self.ledger.as_ref(), &links, now_ms).await?;
        for link in &links {
            let line = RunLine::new(link.key.to_string(), LineOutcome::Synced)
                .message("linked in the ledger, nothing written");
            runs.line(Some(&job.name), line);
        }
        let bulk = LoadId(load.run.clone());
        let queued = (self.queue_writes(job, steps, (runs, run), (&bulk, now_ms))).await?;
        Ok(links.len() + queued)
    }

    async fn queue_writes(
        &self,
        job: &Job,
        steps: &[Step],
        (runs, run): (&mut Runs, &str),
        (bulk, now_ms): (&LoadId, i64),
    ) -> Result<usize, ResyncError> {
        let (records, missing) = self.records_of(job, steps).await?;
        let changes: Vec<ChangeEvent> = (records.into_iter())
            .map(|record| ChangeEvent {
                load: Some(bulk.clone()),
                ..ChangeEvent::forced_as_read(record, run, now_ms)
            })
            .collect();
        self.send(&changes).await?;
        for change in &changes {
            runs.line(
                Some(&job.name),
                RunLine::new(&change.record_id, LineOutcome::Queued),
            );
        }
        for id in missing {
            let line = RunLine::new(id, LineOutcome::Error)
                .message("deleted since the load was planned: not written");
            runs.line(Some(&job.name), line);
        }
        Ok(changes.len())
    }

    /// The records of the chunk's writes: those the steps carry as the plan read them, the
    /// others read again where they live; and the ids no longer found there.
    async fn records_of(
        &self,
        job: &Job,
        steps: &[Step],
    ) -> Result<(Vec<SourceRecord>, Vec<String>), ResyncError> {
        let mut records = Vec::new();
        let (mut gainsight, mut salesforce) = (BTreeSet::new(), BTreeSet::new());
        for step in steps {
            match step {
                Step::Write {
                    from,
                    record: Some(fields),
                    ..
                } => records.extend(crate::read::source_record(job, *from, fields.clone())),
                Step::Write { from, id, .. } => {
                    match from {
                        System::Gainsight => gainsight.insert(id.clone()),
                        System::Salesforce => salesforce.insert(id.clone()),
                    };
                }
                Step::Link { .. } => {}
            }
        }
        let mut read = self.read_gainsight(job, &gainsight).await?;
        read.extend(self.read_salesforce(job, &salesforce).await?);
        read.retain(|r| match r.source {
            System::Gainsight => gainsight.contains(&r.id),
            System::Salesforce => salesforce.contains(&r.id),
        });
        let found: BTreeSet<&str> = read.iter().map(|r| r.id.as_str()).collect();
        let missing = (gainsight.iter().chain(&salesforce))
            .filter(|id| !found.contains(id.as_str()))
            .cloned()
            .collect();
        records.extend(read);
        Ok((records, missing))
    }
}

/// The plan's rows that nothing will be done for, in the planning run with the reason.
fn log_plan(runs: &mut Runs, job: &Job, rows: &PlanRows) {
    runs.objects(
        Some(&job.name),
        &job.gainsight.object,
        Some(&job.salesforce.object),
    );
    for row in rows.iter() {
        let (outcome, message) = match (&row.action, &row.refused) {
            (Action::Ambiguous { candidates, why }, _) => (
                LineOutcome::Ignored,
                format!("ambiguous, left alone: {why}: {}", candidates.join(", ")),
            ),
            (Action::NoTwin(side), _) => (
                LineOutcome::Ignored,
                format!(
                    "no twin, and the job does not create from {}: left alone",
                    side.label()
                ),
            ),
            (Action::NotLoaded(side), _) => (
                LineOutcome::Ignored,
                format!(
                    "no twin, and this load writes only from {}: left alone",
                    side.other().label()
                ),
            ),
            (_, Some(why)) => (
                LineOutcome::Error,
                format!(
                    "refused by validation, not written: {why}; fix the record, then `syncctl resync --job {} --ids {}`",
                    job.name,
                    row.gsid.as_ref().or(row.salesforce_id.as_ref()).map_or("", |id| id.as_str())
                ),
            ),
            _ => continue,
        };
        let id = row.gsid.as_ref().or(row.salesforce_id.as_ref());
        if let Some(id) = id {
            let line = RunLine::new(id, outcome).message(message);
            runs.line(Some(&job.name), line);
        }
    }
}

#[cfg(test)]
mod tests;
