//! Bulk API ingest jobs in the state table: `BULKJOB#{key}` / `BULKJOB`, holding the id of the
//! job submitted for what the key digests, and expiring with the table's TTL a day later
//! (Salesforce keeps a job's results for seven days).

use super::*;
use crate::ports::{BulkJobKey, BulkJobs};

/// How long a submitted job is remembered.
const REMEMBERED_S: i64 = 86_400;

fn job_key(key: &BulkJobKey) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("BULKJOB#{key}"))),
        ("sk".into(), s("BULKJOB")),
    ])
}

#[async_trait]
impl BulkJobs for DynamoStateStore {
    async fn submitted(&self, key: &BulkJobKey) -> Result<Option<String>, StoreError> {
        let out = (self.client.get_item())
            .table_name(&self.table)
            .set_key(Some(job_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let now_s = crate::time::now_ms() / 1000;
        // TTL deletes late; an expired item is as good as gone.
        let live = |item: &Item| get_n(item, "expires_at").is_none_or(|at| at > now_s);
        Ok((out.item().filter(|item| live(item)))
            .and_then(|item| item.get("job_id"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    async fn remember(&self, key: &BulkJobKey, id: &str, now_ms: i64) -> Result<(), StoreError> {
        let mut item = job_key(key);
        item.insert("job_id".into(), s(id));
        item.insert("expires_at".into(), n(now_ms / 1000 + REMEMBERED_S));
        (self.client.put_item())
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn forget(&self, key: &BulkJobKey) -> Result<(), StoreError> {
        (self.client.delete_item())
            .table_name(&self.table)
            .set_key(Some(job_key(key)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
