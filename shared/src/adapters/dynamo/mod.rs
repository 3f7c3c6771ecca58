//! DynamoDB adapter of the state store: ledger items, event dedup keys with TTL, and cursors, all in
//! the one table the template declares.
//!
//! Layout (pk / sk):
//! - ledger: `LEDGER#{job}` / the ledger key (`LedgerKey` as text); `error_job` (the sparse
//!   error-index's key) and `synced_job` carry the job name only while the record has that
//!   status (synced records are read from the ledger with a filter: an index of them would copy
//!   nearly every ledger item and every write to it);
//!   `salesforce_key` = `{job}#{salesforce_id}`; `gs_mapped_at` / `sf_mapped_at` note the newest
//!   change of each side whose write the mapper queued, outside the record's versions.
//! - dedup: `EVENT#{event_id}` / `EVENT`, with `expires_at` (epoch seconds) for TTL; `state` is
//!   `pending` from the claim until the delivery's changes are queued, then `queued`.
//! - cursor: `CURSOR#{job}` / `{stream}`.
//! - secret: `SECRET#{name}` / `SECRET` (see the KMS adapter).
//! - run: `RUN#{yyyy-mm-dd}` (UTC day it started) / the run id, with `expires_at` for TTL.
//! - bulk load: `LOAD#{load}` / `META` and `W#{job}#{ledger key}` (see `loads`).
//! - Bulk API ingest job: `BULKJOB#{digest of what it writes}` / `BULKJOB` (see `bulk_jobs`).
//! - parked change: `WAIT#{parent key}` / `{job}#{ledger key}#{change time}#{event id}`, with
//!   `waiting_job` for the sparse `waiting-index` (see `waiting`).

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, DeleteRequest, KeysAndAttributes, Put, PutRequest, TransactWriteItem, Update,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;

use crate::domain::{
    HistoryEntry, LedgerKey, LedgerRecord, LedgerUpdate, SyncStatus, System, HISTORY_KEPT,
};
use crate::ports::{
    applied, Claim, Cursor, CursorStore, DedupStore, LedgerStore, LedgerWrite, Prior, StoreError,
};

mod bulk_jobs;
mod conditional;
mod cursors;
mod dedup;
mod first_loads;
mod items;
mod job_states;
mod leases;
mod loads;
mod moves;
mod runs;
mod waiting;

pub use waiting::WAITING_INDEX;

pub use runs::RUN_TTL_DAYS;

use items::*;

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
    /// How long a run is kept after it ends (seconds).
    run_ttl_s: i64,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            run_ttl_s: RUN_TTL_DAYS * 86_400,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

/// Each field state is its own attribute (`fs#{field}`, compact JSON), so a write replaces the
/// states of the fields it wrote and keeps the others without a read.
const FIELD_STATE_PREFIX: &str = "fs#";

fn ledger_key(job: &str, key: &LedgerKey) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("LEDGER#{job}"))),
        ("sk".into(), s(key.to_string())),
    ])
}

/// Maps SDK failures: throttling, server errors and transport problems are retryable.
pub(crate) fn store_error<E: ProvideErrorMetadata + std::error::Error + 'static>(
    err: SdkError<E>,
) -> StoreError {
    match &err {
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or("Unknown");
            let message = format!("{code}: {}", service.err().message().unwrap_or(""));
            match code {
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
                | "TransactionConflictException" => StoreError::Unavailable(message),
                _ => StoreError::Rejected(message),
            }
        }
        _ => StoreError::Unavailable(format!(
            "{err}: {}",
            std::error::Error::source(&err)
                .map(|e| e.to_string())
                .unwrap_or_default()
        )),
    }
}

fn is_condition_failure<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    matches!(err, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

/// Whether a conditional write was made: `false` when its condition did not hold.
fn written<T, E: ProvideErrorMetadata + std::error::Error + 'static>(
    sent: Result<T, SdkError<E>>,
) -> Result<bool, StoreError> {
    match sent {
        Ok(_) => Ok(true),
        Err(e) if is_condition_failure(&e) => Ok(false),
        Err(e) => Err(store_error(e)),
    }
}

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

/// The partition key of an event's dedup claim.
fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}

/// The key of an event's dedup claim.
fn event_key(event_id: &str) -> Item {
    HashMap::from([
        ("pk".to_string(), s(event_pk(event_id))),
        ("sk".to_string(), s("EVENT")),
    ])
}

/// Items a TransactWriteItems request takes.
const TRANSACTION_ITEMS: usize = 100;
/// Requests a BatchWriteItem takes.
const BATCH_WRITE_ITEMS: usize = 25;
/// Rounds of retrying what DynamoDB left unprocessed or a conflicting transaction held up.
const MAX_ROUNDS: usize = 8;

fn rejected(e: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected(e.to_string())
}

/// The writes that mark claimed events as queued.
fn confirm_requests(
    event_ids: &[String],
    claimed_at_ms: i64,
    ttl_s: i64,
) -> Result<Vec<WriteRequest>, StoreError> {
    let requests = event_ids.iter().map(|id| {
        let mut item = event_key(id);
        item.extend([
            ("state".to_string(), s("queued")),
            ("claimed_at".to_string(), n(claimed_at_ms)),
            ("expires_at".to_string(), n(claimed_at_ms / 1000 + ttl_s)),
        ]);
        let put = PutRequest::builder().set_item(Some(item)).build()?;
        Ok::<_, aws_sdk_dynamodb::error::BuildError>(
            WriteRequest::builder().put_request(put).build(),
        )
    });
    requests.collect::<Result<Vec<_>, _>>().map_err(rejected)
}

/// The condition under which a dedup claim is new: no claim yet, an expired one (DynamoDB keeps
/// expired items for up to days), or a pending one never confirmed within the reclaim delay.
const CLAIM_CONDITION: &str =
    "attribute_not_exists(pk) OR expires_at < :now_s OR (#state = :pending AND claimed_at < :stale)";

impl DynamoStateStore {
    /// Claims up to 100 events in one transaction (see [`Self::conditional_puts`]); an event
    /// whose condition failed is a duplicate.
    async fn claim_chunk(
        &self,
        ids: &[String],
        now_ms: i64,
        reclaim_after_ms: i64,
        ttl_s: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut unique: Vec<usize> = (0..ids.len()).collect();
        unique.dedup_by(|a, b| ids[*a] == ids[*b]);
        let written = self
            .conditional_puts(unique.len(), |slot| {
                let claim = ClaimWrite::new(&ids[unique[slot]], now_ms, reclaim_after_ms, ttl_s);
                claim_item(&self.table, claim)
            })
            .await?;
        let refused: Vec<&String> = unique
            .iter()
            .enumerate()
            .filter(|(slot, _)| !written[*slot])
            .map(|(_, &i)| &ids[i])
            .collect();
        let queued = self.queued_events(&refused).await?;
        let mut claims = vec![Claim::Pending; ids.len()];
        for (slot, &i) in unique.iter().enumerate() {
            if written[slot] {
                claims[i] = Claim::New;
            }
        }
        // A repeated id in one request is a duplicate of its first occurrence.
        for (i, claim) in claims.iter_mut().enumerate() {
            if queued.contains(&ids[i]) || unique.binary_search(&i).is_err() {
                *claim = Claim::Duplicate;
            }
        }
        Ok(claims)
    }

    /// Of events whose claim was refused, those already queued (the others are claimed by a
    /// delivery still in flight, or were released meanwhile): one consistent BatchGetItem per
    /// 100, only when some claim was refused.
    async fn queued_events(&self, refused: &[&String]) -> Result<HashSet<String>, StoreError> {
        if refused.is_empty() {
            return Ok(HashSet::new());
        }
        let keys = refused.iter().map(|id| event_key(id)).collect();
        let items = self.batch_get(keys).await?;
        let queued: HashSet<String> = items
            .iter()
            .filter(|item| get_s(item, "state").as_deref() == Some("queued"))
            .filter_map(|item| get_s(item, "pk"))
            .collect();
        Ok(refused
            .iter()
            .filter(|id| queued.contains(&event_pk(id)))
            .map(|id| id.to_string())
            .collect())
    }

    /// Applies up to 100 ledger updates in one transaction, each at the version the batch read
    /// (a single one as a plain conditional request: half the write units).
    async fn record_transaction(
        &self,
        chunk: &[(&LedgerWrite, Prior)],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        if let [(write, prior)] = chunk {
            return match self.record_once(write, *prior, at_ms).await? {
                true => Ok(()),
                false => Err(StoreError::Conflict(
                    "ledger records changed since read".into(),
                )),
            };
        }
        let items = chunk
            .iter()
            .map(|(w, prior)| LedgerOp::of(w, *prior, at_ms)?.transact_item(&self.table))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let sent = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(()),
            Err(e) if only_conditions_failed(&e) => Err(StoreError::Conflict(
                "ledger records changed since read".into(),
            )),
            Err(e) => Err(store_error(e)),
        }
    }

    /// Applies one ledger update as a single conditional request; `false` when the record was not
    /// at the version `prior` says (it changed since it was read).
    async fn record_once(
        &self,
        write: &LedgerWrite,
        prior: Prior,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let sent = match LedgerOp::of(write, prior, at_ms)? {
            LedgerOp::Put(item) => self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(ABSENT)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (is_condition_failure(&e), store_error(e))),
            LedgerOp::Update { key, expr } => self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .condition_expression(expr.condition())
                .update_expression(expr.update)
                .set_expression_attribute_names(expr.names)
                .set_expression_attribute_values(Some(expr.values))
                .send()
                .await
                .map(|_| ())
                .map_err(|e| (is_condition_failure(&e), store_error(e))),
        };
        match sent {
            Ok(()) => Ok(true),
            Err((true, _)) => Ok(false),
            Err((false, e)) => Err(e),
        }
    }

    /// Reads items by key, consistently, 100 keys a BatchGetItem; absent items are left out and
    /// keys DynamoDB left unprocessed are asked again.
    async fn batch_get(&self, mut keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        // BatchGetItem refuses a request naming one item twice, and a caller's keys may (a
        // batch holding two changes of one record): each item is asked for once.
        let mut seen = HashSet::new();
        keys.retain(|k| seen.insert((get_s(k, "pk"), get_s(k, "sk"))));
        let mut items = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.to_vec()))
                    .consistent_read(true)
                    .build()
                    .map_err(rejected)?,
            );
            let mut rounds = 0;
            while let Some(request) = pending.take() {
                rounds += 1;
                if rounds > MAX_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem kept leaving keys unprocessed".into(),
                    ));
                }
                let out = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(store_error)?;
                if let Some(got) = out.responses().and_then(|r| r.get(&self.table)) {
                    items.extend(got.iter().cloned());
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
        }
        Ok(items)
    }

    /// Sends write requests 25 at a time, retrying what DynamoDB leaves unprocessed.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for chunk in requests.chunks(BATCH_WRITE_ITEMS) {
            let mut pending = chunk.to_vec();
            for round in 0..=MAX_ROUNDS {
                if pending.is_empty() {
                    break;
                }
                if round == MAX_ROUNDS {
                    return Err(StoreError::Unavailable(
                        "BatchWriteItem kept leaving items unprocessed".into(),
                    ));
                }
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(store_error)?;
                pending = out
                    .unprocessed_items()
                    .and_then(|u| u.get(&self.table))
                    .cloned()
                    .unwrap_or_default();
            }
        }
        Ok(())
    }

    /// Pages through a query on the table (`index` None) or an index, up to `limit` ledger records.
    async fn query_ledger(
        &self,
        (index, filter): (Option<&str>, Option<&str>),
        attr: &str,
        value: &str,
        mut start: Option<Item>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        let mut records = Vec::new();
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression("#k = :v")
                .set_filter_expression(filter.map(str::to_string))
                .expression_attribute_names("#k", attr)
                .expression_attribute_values(":v", s(value))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                if records.len() == limit {
                    return Ok(records);
                }
                records.push(LedgerRecord::try_from(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(records),
            }
        }
    }
}

impl DynamoStateStore {
    /// Every item a query answers, page after page; `query` sets its conditions on the table's
    /// query.
    async fn query_all(
        &self,
        query: impl Fn(
            aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
        ) -> aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let request = self.client.query().table_name(&self.table);
            let out = query(request)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(items),
            }
        }
    }
}

#[async_trait]
impl LedgerStore for DynamoStateStore {
    async fn ledger(&self, job: &str, key: &LedgerKey) -> Result<Option<LedgerRecord>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(ledger_key(job, key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(LedgerRecord::try_from).transpose()
    }

    async fn ledgers(
        &self,
        job: &str,
        keys: &[LedgerKey],
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        let keys: Vec<Item> = keys.iter().map(|id| ledger_key(job, id)).collect();
        let items = self.batch_get(keys).await?;
        items.iter().map(LedgerRecord::try_from).collect()
    }

    async fn record(&self, write: &LedgerWrite, at_ms: i64) -> Result<(), StoreError> {
        let mut prior = write.prior;
        for _ in 0..MAX_ROUNDS {
            if prior == Prior::Unread {
                let current = self.ledger(&write.job, &write.key).await?;
                if !write.update.holds_on(current.as_ref()) {
                    return Err(StoreError::Superseded(format!(
                        "{}/{}",
                        write.job, write.key
                    )));
                }
                prior = Prior::of(current.as_ref());
            }
            if self.record_once(write, prior, at_ms).await? {
                return Ok(());
            }
            // Written by someone else since it was read: read it again.
            prior = Prior::Unread;
        }
        Err(StoreError::Conflict(format!(
            "ledger record {}/{}",
            write.job, write.key
        )))
    }

    async fn record_many(
        &self,
        writes: &[LedgerWrite],
        at_ms: i64,
    ) -> Result<Vec<usize>, StoreError> {
        let mut superseded = Vec::new();
        // The version each record is at after the chunks written so far.
        let mut known: HashMap<(&str, &LedgerKey), Prior> = HashMap::new();
        for chunk in distinct_chunks(writes, TRANSACTION_ITEMS) {
            let (positions, chunk): (Vec<usize>, Vec<(&LedgerWrite, Prior)>) = chunk
                .into_iter()
                .map(|(i, w)| {
                    let prior = known.get(&(w.job.as_str(), &w.key)).copied();
                    (i, (w, prior.unwrap_or(w.prior)))
                })
                .unzip();
            match self.record_transaction(&chunk, at_ms).await {
                Ok(()) => {
                    for (w, prior) in &chunk {
                        known.insert((w.job.as_str(), &w.key), next_version(*prior));
                    }
                }
                Err(e) => {
                    // A record changed since the batch read it, or a concurrent write held the
                    // transaction up: the items go one by one, each read again if needed.
                    if matches!(e, StoreError::Conflict(_)) {
                        // Expected with concurrent writers (a webhook and a poll of one record).
                        tracing::info!(
                            records = chunk.len(),
                            "ledger records changed since read; writing one by one"
                        );
                    } else {
                        tracing::warn!(records = chunk.len(), error = %e, "ledger transaction failed; writing one by one");
                    }
                    for (position, (w, prior)) in positions.into_iter().zip(chunk) {
                        let single = LedgerWrite { prior, ..w.clone() };
                        if !applied(self.record(&single, at_ms).await)? {
                            superseded.push(position);
                        }
                        known.insert((w.job.as_str(), &w.key), Prior::Unread);
                    }
                }
            }
        }
        Ok(superseded)
    }

    async fn mapped(
        &self,
        job: &str,
        marks: &[(LedgerKey, System, i64)],
    ) -> Result<(), StoreError> {
        // The newest note per record and source; a transaction touches an item once, so each
        // source's notes go in their own transactions (most batches have one source).
        let mut newest: HashMap<(&LedgerKey, System), i64> = HashMap::new();
        for (key, source, at_ms) in marks {
            let kept = newest.entry((key, *source)).or_insert(*at_ms);
            *kept = (*kept).max(*at_ms);
        }
        for source in [System::Gainsight, System::Salesforce] {
            let notes: Vec<(LedgerKey, System, i64)> = newest
                .iter()
                .filter(|((_, s), _)| *s == source)
                .map(|((key, s), at)| ((*key).clone(), *s, *at))
                .collect();
            for chunk in notes.chunks(TRANSACTION_ITEMS) {
                // A refused note is an older one than the record holds, or a record gone: both
                // leave nothing to do.
                self.conditional_puts(chunk.len(), |slot| {
                    mapped_item(&self.table, job, &chunk[slot])
                })
                .await?;
            }
        }
        Ok(())
    }

    async fn moved(
        &self,
        job: &str,
        moves: &[(LedgerKey, LedgerKey)],
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.batch_write(moves::requests(job, moves, at_ms)?).await
    }

    async fn moves_of(
        &self,
        job: &str,
        keys: &[LedgerKey],
    ) -> Result<HashMap<LedgerKey, LedgerKey>, StoreError> {
        let notes = keys.iter().map(|k| moves::note_key(job, k)).collect();
        let items = self.batch_get(notes).await?;
        Ok(items.iter().filter_map(moves::of_note).collect())
    }

    async fn list(
        &self,
        job: &str,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        let start = start.map(|k| ledger_key(job, k));
        self.query_ledger((None, None), "pk", &format!("LEDGER#{job}"), start, limit)
            .await
    }

    async fn by_status(
        &self,
        job: &str,
        status: SyncStatus,
        start: Option<&LedgerKey>,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        if status == SyncStatus::Synced {
            // Nearly every record is synced: an index of them would copy the whole ledger (and
            // every write to it), so they are read from the ledger itself, filtered.
            let start = start.map(|k| ledger_key(job, k));
            let filter = Some("attribute_exists(synced_job)");
            let pk = format!("LEDGER#{job}");
            return self
                .query_ledger((None, filter), "pk", &pk, start, limit)
                .await;
        }
        // Sparse: only records in error carry `error_job`. An index's start key carries the
        // index key and the table key.
        let start = start.map(|k| {
            let mut key = ledger_key(job, k);
            key.insert("error_job".to_string(), s(job));
            key
        });
        self.query_ledger((Some("error-index"), None), "error_job", job, start, limit)
            .await
    }

    async fn key_of_salesforce_id(
        &self,
        job: &str,
        salesforce_id: &str,
    ) -> Result<Option<LedgerKey>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("salesforce-index")
            .key_condition_expression("salesforce_key = :v")
            .expression_attribute_values(":v", s(format!("{job}#{salesforce_id}")))
            .send()
            .await
            .map_err(store_error)?;
        let Some(item) = out.items().first() else {
            return Ok(None);
        };
        get_s(item, "sk")
            .and_then(|k| k.parse::<LedgerKey>().ok())
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt {
                key: format!("{job}#{salesforce_id}"),
                message: "salesforce-index entry without a ledger key".into(),
            })
    }
}

/// A transaction cancelled only because records were not at the versions read (a concurrent
/// writer), as opposed to throttling or a fault.
fn only_conditions_failed(
    e: &aws_sdk_dynamodb::error::SdkError<
        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError,
    >,
) -> bool {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError as E;
    let Some(E::TransactionCanceledException(cancelled)) = e.as_service_error() else {
        return false;
    };
    let codes: Vec<&str> = cancelled
        .cancellation_reasons()
        .iter()
        .filter_map(|r| r.code())
        .collect();
    codes.contains(&"ConditionalCheckFailed")
        && codes
            .iter()
            .all(|c| matches!(*c, "ConditionalCheckFailed" | "None"))
}
