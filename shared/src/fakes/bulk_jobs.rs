//! Bulk API jobs remembered in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::ports::{BulkJobKey, BulkJobs, StoreError};

#[derive(Default)]
pub struct MemoryBulkJobs {
    pub jobs: Mutex<HashMap<BulkJobKey, String>>,
}

#[async_trait]
impl BulkJobs for MemoryBulkJobs {
    async fn submitted(&self, key: &BulkJobKey) -> Result<Option<String>, StoreError> {
        Ok(self.jobs.lock().unwrap().get(key).cloned())
    }

    async fn remember(&self, key: &BulkJobKey, id: &str, _now_ms: i64) -> Result<(), StoreError> {
        self.jobs.lock().unwrap().insert(key.clone(), id.into());
        Ok(())
    }

    async fn forget(&self, key: &BulkJobKey) -> Result<(), StoreError> {
        self.jobs.lock().unwrap().remove(key);
        Ok(())
    }
}
