//! Changes folded into a newer write of the same record: what the ledger and the run say of each.

use shared::domain::{LedgerUpdate, LineOutcome, Prior, RunLine, Runs, WriteCommand};
use shared::ports::LedgerWrite;

use crate::{source_id, Pusher};

impl Pusher {
    /// Gives each folded change its history entry and run line (not fatal: the write that
    /// carried its values is recorded either way).
    pub(crate) async fn record_folded(
        &self,
        folded: Vec<(&WriteCommand, LedgerUpdate)>,
        runs: &mut Runs,
        now_ms: i64,
    ) {
        if folded.is_empty() {
            return;
        }
        let mut writes = Vec::with_capacity(folded.len());
        for (cmd, update) in folded {
            let line = RunLine::new(source_id(cmd), LineOutcome::Ignored)
                .message(shared::domain::push::FOLDED);
            runs.line(Some(&cmd.job), line);
            writes.push(LedgerWrite {
                run: runs.id_for(Some(&cmd.job)).to_string(),
                job: cmd.job.clone(),
                key: cmd.ledger_key.clone(),
                update,
                prior: Prior::Unread,
            });
        }
        if let Err(e) = self.ledger.record_many(&writes, now_ms).await {
            tracing::warn!(records = writes.len(), error = %e, "folded changes not recorded in the ledger");
        }
    }
}
