//! Bulk API ingest jobs remembered by what they write, so that a job still running when its
//! writer had to stop is collected by the next writer of the same records, not submitted again.

use async_trait::async_trait;

use super::StoreError;

/// What an ingest job writes, as a digest: its object, operation, key column and rows, the
/// rows in any order. Two writers of the same records with the same values have the same key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BulkJobKey(String);

impl BulkJobKey {
    /// The key of a digest given as text (hex).
    pub fn from_digest(hex: impl Into<String>) -> Self {
        Self(hex.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for BulkJobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Ingest jobs submitted and not yet known to have failed, by what they write.
#[async_trait]
pub trait BulkJobs: Send + Sync {
    /// The id of the job submitted for `key`, if one was and is still remembered.
    async fn submitted(&self, key: &BulkJobKey) -> Result<Option<String>, StoreError>;
    /// Notes that job `id` was submitted (its upload complete) for `key` at `now_ms`; it is
    /// remembered for a day.
    async fn remember(&self, key: &BulkJobKey, id: &str, now_ms: i64) -> Result<(), StoreError>;
    /// Forgets `key`'s job: the next writer of those records submits a new one.
    async fn forget(&self, key: &BulkJobKey) -> Result<(), StoreError>;
}
