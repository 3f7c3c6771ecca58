//! Writes whose Salesforce twin no longer exists, sent again as creations where the job's
//! `on_missing: create` says so.

use std::time::Duration;

use shared::domain::push::{recreate, recreating, Pending, WriteOutcome};

use crate::Pusher;

impl Pusher {
    /// Turns each write whose twin is gone into the creation of a new twin where its job says
    /// so: the creation goes to the writes queue as a write of its own (retried and recorded
    /// like any), and this write's outcome becomes ignored, saying why. A write stays an error
    /// naming the record gone when its job keeps the error or the creation cannot be queued.
    pub(crate) async fn recreate_gone(&self, settled: &mut [(Pending, WriteOutcome)]) {
        let mut again = Vec::new();
        for (i, (p, outcome)) in settled.iter().enumerate() {
            let (WriteOutcome::Gone { message }, Some(job)) =
                (outcome, self.jobs.get(&p.command.job))
            else {
                continue;
            };
            if let Some(command) = recreate(job, &p.command) {
                let message_id = p.message_id.clone();
                again.push((
                    i,
                    Pending {
                        message_id,
                        command,
                    },
                    message.clone(),
                ));
            }
        }
        if again.is_empty() {
            return;
        }
        let batch: Vec<Pending> = again.iter().map(|(_, p, _)| p.clone()).collect();
        let sent = self.send_later(&batch, Duration::ZERO).await;
        for ((i, _, message), result) in again.into_iter().zip(sent) {
            match result {
                Ok(()) => {
                    let reason = recreating(&settled[i].0.command, &message);
                    tracing::info!(job = %settled[i].0.command.job, ledger_key = %settled[i].0.command.ledger_key, "twin gone; a new one is queued");
                    settled[i].1 = WriteOutcome::Ignored { reason };
                }
                Err(e) => {
                    tracing::warn!(job = %settled[i].0.command.job, error = %e, "twin gone; its creation could not be queued")
                }
            }
        }
    }
}
