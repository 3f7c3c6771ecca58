//! Reading a Salesforce object in bulk (Bulk API 2.0 query jobs), set by set, each set's rows
//! made one at a time.

use async_trait::async_trait;

use super::{ApiError, SfSelect};
use crate::domain::Fields;

/// A Bulk API 2.0 query job: its id, the checkpoint of a long read with its set's locator.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BulkReadJob(pub String);

/// One set of a bulk read's rows (every value as text, an empty cell as null), and the locator
/// of the next set, if any.
pub struct BulkSet {
    pub rows: BulkRows,
    pub next: Option<String>,
}

/// A set's rows, made one at a time as they are taken: a set of a few hundred thousand rows is
/// held as the text it came as, not as that many records. A row the answer holds malformed is
/// an error in its place.
pub struct BulkRows(Box<dyn Iterator<Item = Result<Fields, ApiError>> + Send>);

impl BulkRows {
    pub fn new(rows: impl Iterator<Item = Result<Fields, ApiError>> + Send + 'static) -> Self {
        Self(Box::new(rows))
    }
}

impl Iterator for BulkRows {
    type Item = Result<Fields, ApiError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl From<Vec<Fields>> for BulkRows {
    fn from(rows: Vec<Fields>) -> Self {
        Self::new(rows.into_iter().map(Ok))
    }
}

/// Reading a Salesforce object in bulk: one query job, then its results set by set, each set
/// naming the next, so that a long read can stop and go on from the last set it read.
#[async_trait]
pub trait SalesforceBulkRead: Send + Sync {
    /// Starts a query job for `select` (the Recycle Bin's records too with `include_deleted`).
    async fn start_bulk_read(&self, select: &SfSelect) -> Result<BulkReadJob, ApiError>;
    /// The set after `locator` (`None`: the first, once the job is complete), at most `max`
    /// rows.
    async fn bulk_read_set(
        &self,
        job: &BulkReadJob,
        locator: Option<&str>,
        max: usize,
    ) -> Result<BulkSet, ApiError>;
}
