//! Record leases in the pusher: a batch writes only the records it holds the lease of, so no two
//! pushers write one record at once and an older write never lands after a newer one. A write
//! whose record another pusher holds, or whose pair moved to a new key since it was mapped, comes
//! again a moment later under the right lease.

use std::collections::HashMap;

use shared::domain::lease::{self, RecordLease, LEASE_WAIT};
use shared::domain::push::Pending;
use shared::domain::{LineOutcome, RunLine, Runs};

use crate::{source_id, Pusher};

impl Pusher {
    /// Takes the leases of `batch`'s records: the writes to make now, with the leases taken.
    /// Writes whose record another pusher holds wait and come again; when no lease could be
    /// taken at all (the store failed), the whole batch goes back to the queue.
    pub(crate) async fn lease(
        &self,
        batch: Vec<Pending>,
        retry: &mut Vec<String>,
        runs: &mut Runs,
        now_ms: i64,
    ) -> (Vec<Pending>, Vec<RecordLease>) {
        if batch.is_empty() {
            return (batch, Vec::new());
        }
        let wanted = lease::leases_for(&batch);
        let until = lease::until_ms(now_ms);
        let answers = match self.leases.take_leases(&wanted, now_ms, until).await {
            Ok(answers) => answers,
            Err(e) => {
                let why = format!(
                    "record leases could not be taken ({e}); the writes go back to the queue"
                );
                tracing::warn!(records = batch.len(), reason = %why, "writes not made");
                for p in batch {
                    runs.fail(Some(&p.command.job), &why);
                    retry.push(p.message_id);
                }
                return (Vec::new(), Vec::new());
            }
        };
        let taken = lease::taken(&wanted, &answers);
        let (now, mut wait) = lease::split_by_lease(batch, &taken);
        // Read under the lease: a move recorded later is made under the same lease, after this
        // write is done.
        let (now, moved) = self.follow_moves(now, retry, runs).await;
        wait.extend(moved);
        self.wait_for_lease(wait, retry, runs).await;
        let held = wanted.into_iter().filter(|l| taken.contains(l)).collect();
        (now, held)
    }

    /// Writes keyed by a Salesforce-only key that has moved to its GSID since they were mapped:
    /// `(unmoved, moved)`, the moved re-keyed to come again under their new key. When the moves
    /// cannot be read, the writes keyed by such keys go back to the queue.
    async fn follow_moves(
        &self,
        batch: Vec<Pending>,
        retry: &mut Vec<String>,
        runs: &mut Runs,
    ) -> (Vec<Pending>, Vec<Pending>) {
        let mut moves = HashMap::new();
        let mut unreadable = Vec::new();
        for (job, keys) in lease::salesforce_only_keys(&batch) {
            match self.ledger.moves_of(&job, &keys).await {
                Ok(found) => moves.extend(
                    found
                        .into_iter()
                        .map(|(from, to)| ((job.clone(), from), to)),
                ),
                Err(e) => {
                    tracing::warn!(job = %job, error = %e, "ledger key moves not read; the writes go back to the queue");
                    unreadable.extend(keys.into_iter().map(|k| (job.clone(), k)));
                }
            }
        }
        let (back, batch): (Vec<Pending>, Vec<Pending>) = batch.into_iter().partition(|p| {
            unreadable.contains(&(p.command.job.clone(), p.command.ledger_key.clone()))
        });
        for p in back {
            let why = "ledger key moves could not be read; the write goes back to the queue";
            runs.fail(Some(&p.command.job), why);
            retry.push(p.message_id);
        }
        lease::follow_moves(batch, &moves)
    }

    /// Sends writes whose record another pusher is writing back to the queue, due again after a
    /// moment (a fresh message, so waiting uses up none of their deliveries); without a queue to
    /// send to, or when sending fails, they come again through the visibility timeout.
    async fn wait_for_lease(&self, wait: Vec<Pending>, retry: &mut Vec<String>, runs: &mut Runs) {
        if wait.is_empty() {
            return;
        }
        tracing::info!(
            records = wait.len(),
            "records being written by another pusher; their writes come again shortly"
        );
        let sent = self.send_later(&wait, LEASE_WAIT).await;
        let said = format!(
            "another pusher is writing this record; the write comes again in {} s",
            LEASE_WAIT.as_secs()
        );
        for (i, p) in wait.into_iter().enumerate() {
            let line = RunLine::new(source_id(&p.command), LineOutcome::Queued).message(&said);
            runs.line(Some(&p.command.job), line);
            if !matches!(sent.get(i), Some(Ok(()))) {
                retry.push(p.message_id);
            }
        }
    }

    /// Gives the leases back once the ledger says what was written; a lease not given back
    /// lapses by itself.
    pub(crate) async fn give_back(&self, leases: &[RecordLease]) {
        if leases.is_empty() {
            return;
        }
        if let Err(e) = self.leases.release_leases(leases).await {
            tracing::warn!(leases = leases.len(), error = %e, "record leases not given back; they lapse by themselves");
        }
    }
}
