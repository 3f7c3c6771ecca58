//! The sync domain: change events, write commands, ledger records, jobs and the mapping between
//! them. Nothing here knows an SDK or an HTTP client.

pub mod budget;
pub mod cdc;
pub mod change;
pub mod first_load;
pub mod job;
pub mod job_state;
pub mod key;
pub mod lease;
pub mod ledger;
pub mod link;
pub mod load;
pub mod mapping;
pub mod merge;
pub mod push;
pub mod run;
pub mod schedule;
pub mod schema;
pub mod timeline;
pub mod waiting;
pub mod write;

pub use change::{ChangeEvent, ChangeOrigin, Operation, SourceRecord, System};
pub use job::{
    ConflictRule, DataFlow, DerivedMapping, FieldMapping, Identifier, Job, JobError, Jobs,
    OnCreated, OnMissing, OnMultipleMatches, OnNoMatch, OnUpdated, UnknownJob,
};
pub use key::LedgerKey;
pub use ledger::{
    DeadLetter, FieldState, HistoryEntry, InSync, LedgerBatch, LedgerRecord, LedgerUpdate, Outcome,
    Presence, PresenceState, Prior, SyncStatus, HISTORY_KEPT,
};
pub use mapping::{LookupRequest, Lookups, MapOutcome, Mapper};
pub use run::{LineOutcome, Run, RunFunction, RunId, RunLine, RunStatus, Runs};
pub use schema::{FieldKind, FieldSchema, ObjectSchema, Schemas};
pub use write::{FieldConflict, RecordKey, Unchanged, WriteCommand, WriteMode, Writeback};

/// Field values of one record, by API name. Keys are sorted, so serialising is canonical.
pub type Fields = serde_json::Map<String, serde_json::Value>;
