//! Changes that fail on their last delivery: recorded in the ledger as given up, with why, before
//! SQS moves them to the changes dead-letter queue, so that none is there unrecorded.

use shared::domain::{ChangeEvent, DeadLetter, LedgerUpdate, LineOutcome, Mapper, RunLine, Runs};
use shared::ports::LedgerWrite;

use crate::MapperFn;

/// Messages to try again, each with why it failed.
pub(crate) type Failures = Vec<(String, String)>;

/// Whether message `id` is among `failures`.
pub(crate) fn failing(failures: &Failures, id: &str) -> bool {
    failures.iter().any(|(f, _)| f == id)
}

impl MapperFn {
    /// Records, for each job reading a change of `on_last` (the batch's changes on their last
    /// delivery) that is among `failed`, that it was given up and the last reason it failed; the
    /// run says so too. A record that cannot be written is only logged: the message is kept in
    /// the dead-letter queue either way.
    pub(crate) async fn give_up(
        &self,
        failed: &Failures,
        on_last: Vec<(String, ChangeEvent)>,
        now_ms: i64,
        runs: &mut Runs,
    ) {
        let mut writes = Vec::new();
        for (id, change) in on_last {
            let Some((_, why)) = failed.iter().rev().find(|(f, _)| *f == id) else {
                continue;
            };
            let message = DeadLetter::Changes.gave_up(self.max_receives, why);
            writes.extend(self.gave_up_per_job(&change, &message, runs));
        }
        if writes.is_empty() {
            return;
        }
        tracing::warn!(
            records = writes.len(),
            "changes given up on their last delivery"
        );
        if let Err(e) = self.ledger.record_many(&writes, now_ms).await {
            tracing::error!(records = writes.len(), error = %e, "changes given up not recorded; they are kept in the changes dead-letter queue");
        }
    }

    /// The ledger entries and run lines of one change given up, one per job reading it.
    fn gave_up_per_job(
        &self,
        change: &ChangeEvent,
        message: &str,
        runs: &mut Runs,
    ) -> Vec<LedgerWrite> {
        let mut writes = Vec::new();
        for job in self.jobs.for_change(change) {
            let Some(key) = Mapper::new(job, Some(&self.schemas)).ledger_key(change) else {
                continue;
            };
            let run_job = Some(job.name.as_str());
            let target = job.object_in(change.source.other());
            runs.objects(run_job, &change.object, Some(target));
            let line = RunLine::new(&change.record_id, LineOutcome::Error).message(message);
            runs.line(run_job, line);
            let run = runs.id_for(run_job).to_string();
            let update = LedgerUpdate::Failed {
                message: message.to_string(),
            };
            writes.push(LedgerWrite::new(&job.name, key, update, &run));
        }
        writes
    }
}
