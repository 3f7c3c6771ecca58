//! Common crate of the sync functions: the domain (changes, write commands, ledger, jobs and
//! mapping), the ports the functions depend on, and their AWS / HTTP adapters.
//!
//! # Layout
//!
//! - `domain`: the rules, as pure functions with no SDK or HTTP type in sight.
//!   - `change`: a change observed in one system (`ChangeEvent`), with a constructor per origin.
//!   - `job`: sync jobs loaded from YAML; `job::validate` checks a job on its own,
//!     `job::describe_check` against the systems' describes, `job::lines` finds each error's line.
//!   - `schema`: what the describes say of each field, and the per-value checks and conversions.
//!   - `mapping`: the mapping engine, a change through its stages to write commands
//!     (`mapping::draft` holds the write in progress, `mapping::lookups` the batch's lookups).
//!   - `write`: a write command for one target record.
//!   - `push`: the pusher's rules: newest command per record, stale drop, conflicts settled at
//!     write time (`push::conflicts`), group plans (`push::plan`), and what an outcome makes of
//!     the ledger.
//!   - `ledger`: the ledger record of a pair, how an update changes it, and its last 10 outcomes.
//!   - `run`: runs (execution activities): what one invocation did for one job, record by record.
//!   - `key`: `LedgerKey`, the GSID of a pair or its Salesforce id until it has one.
//!   - `lease`: which record leases a pusher batch needs, and writes that follow a key's move.
//!   - `waiting`: changes parked until the record they refer to syncs: which parent a change
//!     waits for, which parents a synced pair is, and when a wait is re-checked or ends.
//!   - `job_state`: whether a job runs (active, paused by an operator, deactivated after refused
//!     credentials), the transitions allowed, and which job stops a change.
//! - `ports`: small async traits, one concern each: `DedupStore`, `LedgerStore`, `LeaseStore`,
//!   `CursorStore`, `RunStore`, `LoadStore`, `WaitingStore`, `JobStates` (with the functions'
//!   10-second `JobStateCache`), `Queue`, `Secrets`, `SalesforceApi` (typed
//!   `SfSelect` reads), `GainsightApi` (typed `GsCondition`s), `FileUploads`.
//! - `adapters`: the ports on DynamoDB, SQS and KMS (AWS SDK) and on the Salesforce and Gainsight
//!   REST APIs (reqwest). SOQL text is written only in `adapters::salesforce`.
//! - `enqueue`: claim, send, confirm or release: how the webhook and the poller queue changes once
//!   (the webhook's run is stored with its confirmation).
//! - `resolve`: describes loaded at cold start, and lookups run one query per derived mapping.
//! - `snapshot`: what both systems hold for a job's first load, read in bulk.
//! - `scratch`: bytes too many to hold in memory, in an unnamed temporary file (a load's records).
//! - `config`, `secret`, `signature`, `telemetry`, `time`, `lambda`: typed environment, redacted
//!   secrets and a checked secret's versions (the previous one accepted for an overlap after a
//!   rotation), webhook HMAC, JSON logs, instants (through `jiff`), SQS batch helpers.
//! - `fakes` (feature `fakes`): in-memory ports for the functions' unit tests.
//!
//! # How a change flows
//!
//! 1. The webhook (a Gainsight rule's event, a Salesforce Outbound Message) or the poller turns
//!    what a source says into `ChangeEvent`s and queues them on `changes` through `enqueue`.
//! 2. The mapper reads the batch's ledger records (`LedgerStore`) and lookups (`resolve`), runs
//!    `domain::mapping`, records ignored and rejected changes in the ledger, parks the changes
//!    whose parent is missing (`WaitingStore`), and queues `WriteCommand`s on `writes`.
//! 3. The pusher folds the commands of each record, takes the records' leases (`LeaseStore`),
//!    then under them drops stale commands, carries parked updates and unchanged fields that
//!    changed since, and settles late conflicts (`domain::push`), writes each group through
//!    `SalesforceApi` / `GainsightApi`, and applies each outcome's `LedgerEffect`: the ledger
//!    update, the move of a Salesforce-only key to its new GSID (a forwarding note is left), and
//!    the twin's id written back to the source; then it gives the leases back.
//! 4. Resync re-reads chosen records where they live and queues them as forced changes.
//!
//! Every step leaves a run per job (`domain::run`, stored through `RunStore` once per invocation),
//! and every ledger update a history entry linked to its run: what `syncctl` shows operators.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod enqueue;
pub mod lambda;
pub mod participants;
pub mod ports;
pub mod resolve;
pub mod scratch;
pub mod secret;
pub mod signature;
pub mod snapshot;
pub mod telemetry;
pub mod time;

#[cfg(feature = "fakes")]
pub mod fakes;
#[cfg(feature = "fuzz")]
pub mod fuzz;
