//! A record's story for a test's failure message: what the ledger and the runs say of it.

use crate::Stack;

impl Stack {
    /// What the product knows of `key` in `job`, for a test's failure message: its ledger record,
    /// every run line naming it in the last 15 minutes and the queues' depths.
    pub async fn story(&self, job: &str, key: &str) -> String {
        use shared::ports::RunStore;
        let mut said = vec![format!("{job} {key}:")];
        // Lines name a record by its id where the change came from: either side's.
        let mut ids = vec![key.to_string()];
        match self.ledger_of(job, key).await {
            Ok(record) => {
                ids.extend(record.as_ref().and_then(|r| r.salesforce_id.clone()));
                said.push(format!("  ledger: {record:?}"))
            }
            Err(e) => said.push(format!("  ledger unread: {e:#}")),
        }
        let now = shared::time::now_ms();
        let summaries = self
            .store
            .runs(now - 900_000, now)
            .await
            .unwrap_or_default();
        for summary in summaries {
            let Ok(Some(run)) = self.store.run(&summary.id).await else {
                continue;
            };
            for line in run.log.iter().filter(|l| ids.contains(&l.record)) {
                said.push(format!("  run {} ({}): {line:?}", run.id, run.event));
            }
        }
        for queue in ["ChangesQueue", "WritesQueue"] {
            let depth = self.aws.queue_depth(queue).await.unwrap_or_default();
            said.push(format!("  {queue}: {depth} messages"));
        }
        said.join("\n")
    }
}
