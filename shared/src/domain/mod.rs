//! The sync domain: change events, write commands, ledger records, jobs and the mapping between
//! them. Nothing here knows an SDK or an HTTP client.

pub mod change;
pub mod job;
pub mod ledger;
pub mod mapping;
pub mod write;

pub use change::{ChangeEvent, ChangeOrigin, Operation, System};
pub use job::{DataFlow, FieldMapping, Job, JobError, Jobs, OnCreated, OnUpdated};
pub use ledger::{LedgerRecord, LedgerUpdate, SyncStatus};
pub use mapping::{MapOutcome, Mapper};
pub use write::{RecordKey, WriteCommand};

/// Field values of one record, by API name. Keys are sorted, so serialising is canonical.
pub type Fields = serde_json::Map<String, serde_json::Value>;
