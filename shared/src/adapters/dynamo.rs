//! DynamoDB adapter of the state store: ledger items, event dedup keys with TTL, and cursors, all in
//! the one table the template declares.
//!
//! Layout (pk / sk):
//! - ledger: `LEDGER#{job}` / `{gainsight_id}`; sparse GSI keys `error_job`, `synced_job` carry the
//!   job name only while the record has that status; `salesforce_key` = `{job}#{salesforce_id}`.
//! - dedup: `EVENT#{event_id}` / `EVENT`, with `expires_at` (epoch seconds) for TTL.
//! - cursor: `CURSOR#{job}` / `{stream}`.
//! - secret: `SECRET#{name}` / `SECRET` (see the KMS adapter).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use aws_sdk_dynamodb::Client;

use crate::domain::{LedgerKey, LedgerRecord, LedgerUpdate, SyncStatus};
use crate::ports::{Claim, Cursor, CursorStore, DedupStore, LedgerStore, StoreError};

type Item = HashMap<String, AttributeValue>;

#[derive(Clone, Debug)]
pub struct DynamoStateStore {
    client: Client,
    table: String,
}

impl DynamoStateStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
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

fn get_s(item: &Item, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

fn get_n(item: &Item, name: &str) -> Option<i64> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

impl TryFrom<&Item> for LedgerRecord {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<Self, Self::Error> {
        let corrupt = |message: &str| StoreError::Corrupt {
            key: format!("{:?}/{:?}", get_s(item, "pk"), get_s(item, "sk")),
            message: message.into(),
        };
        // The key says whose record it is; nothing else has to repeat it.
        let job = get_s(item, "pk")
            .and_then(|pk| pk.strip_prefix("LEDGER#").map(str::to_string))
            .ok_or_else(|| corrupt("not a ledger item"))?;
        let key = get_s(item, "sk")
            .ok_or_else(|| corrupt("no sort key"))?
            .parse()
            .map_err(|e: crate::domain::key::BadLedgerKey| corrupt(&e.to_string()))?;
        Ok(LedgerRecord {
            job,
            key,
            salesforce_id: get_s(item, "salesforce_id"),
            synced: item.contains_key("synced_job"),
            error: item.contains_key("error_job"),
            last_sync_at_ms: get_n(item, "last_sync_at"),
            last_error: get_s(item, "last_error"),
            last_error_at_ms: get_n(item, "last_error_at"),
            fields: item
                .iter()
                .filter_map(|(name, value)| {
                    let field = name.strip_prefix(FIELD_STATE_PREFIX)?;
                    let state = serde_json::from_str(value.as_s().ok()?).ok()?;
                    Some((field.to_string(), state))
                })
                .collect(),
            gainsight_changed_at_ms: get_n(item, "gs_changed_at"),
            salesforce_changed_at_ms: get_n(item, "sf_changed_at"),
            ignored_count: get_n(item, "ignored_count").unwrap_or(0) as u64,
            last_ignored_reason: get_s(item, "last_ignored_reason"),
            version: get_n(item, "version").unwrap_or(0) as u64,
        })
    }
}

impl DynamoStateStore {
    /// Pages through a query on the table (`index` None) or an index, up to `limit` ledger records.
    async fn query_ledger(
        &self,
        index: Option<&str>,
        attr: &str,
        value: &str,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_string))
                .key_condition_expression("#k = :v")
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

#[async_trait]
impl DedupStore for DynamoStateStore {
    async fn claim_event(
        &self,
        event_id: &str,
        now_ms: i64,
        reclaim_after_ms: i64,
        ttl_s: i64,
    ) -> Result<Claim, StoreError> {
        // moto (and DynamoDB itself, for up to days) keeps expired items: treat them as absent.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("EVENT#{event_id}")))
            .item("sk", s("EVENT"))
            .item("state", s("pending"))
            .item("claimed_at", n(now_ms))
            .item("expires_at", n(now_ms / 1000 + ttl_s))
            .condition_expression(
                "attribute_not_exists(pk) OR expires_at < :now_s OR (#state = :pending AND claimed_at < :stale)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now_s", n(now_ms / 1000))
            .expression_attribute_values(":pending", s("pending"))
            .expression_attribute_values(":stale", n(now_ms - reclaim_after_ms))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::New),
            Err(err) if is_condition_failure(&err) => Ok(Claim::Duplicate),
            Err(err) => Err(store_error(err)),
        }
    }

    async fn confirm_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("EVENT#{event_id}")))
            .key("sk", s("EVENT"))
            .update_expression("SET #state = :queued")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":queued", s("queued"))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn release_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(format!("EVENT#{event_id}")))
            .key("sk", s("EVENT"))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
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
        let mut unique: Vec<&LedgerKey> = keys.iter().collect();
        unique.sort();
        unique.dedup();
        let mut records = Vec::with_capacity(unique.len());
        // BatchGetItem takes at most 100 keys; unprocessed keys are asked again.
        for chunk in unique.chunks(100) {
            let keys: Vec<Item> = chunk.iter().map(|id| ledger_key(job, id)).collect();
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(keys))
                    .consistent_read(true)
                    .build()
                    .map_err(|e| StoreError::Rejected(e.to_string()))?,
            );
            let mut rounds = 0;
            while let Some(request) = pending.take() {
                rounds += 1;
                if rounds > 8 {
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
                if let Some(items) = out.responses().and_then(|r| r.get(&self.table)) {
                    for item in items {
                        records.push(LedgerRecord::try_from(item)?);
                    }
                }
                pending = out
                    .unprocessed_keys()
                    .and_then(|u| u.get(&self.table))
                    .filter(|k| !k.keys().is_empty())
                    .cloned();
            }
        }
        Ok(records)
    }

    async fn record(
        &self,
        job: &str,
        key: &LedgerKey,
        update: &LedgerUpdate,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(ledger_key(job, key)))
            .expression_attribute_values(":at", n(at_ms))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":one", n(1));
        let common = "version = if_not_exists(version, :zero) + :one";
        let request = match update {
            LedgerUpdate::Synced {
                salesforce_id,
                source,
                source_changed_at_ms,
                fields,
            } => {
                let changed = match source {
                    crate::domain::System::Gainsight => "gs_changed_at",
                    crate::domain::System::Salesforce => "sf_changed_at",
                };
                let mut expr = format!(
                    "SET {common}, synced_job = :job, last_sync_at = :at, {changed} = :changed"
                );
                let mut request = request
                    .expression_attribute_values(":job", s(job))
                    .expression_attribute_values(":changed", n(source_changed_at_ms));
                for (i, (field, state)) in fields.iter().enumerate() {
                    let json = serde_json::to_string(state)
                        .map_err(|e| StoreError::Rejected(e.to_string()))?;
                    expr.push_str(&format!(", #f{i} = :f{i}"));
                    request = request
                        .expression_attribute_names(
                            format!("#f{i}"),
                            format!("{FIELD_STATE_PREFIX}{field}"),
                        )
                        .expression_attribute_values(format!(":f{i}"), s(json));
                }
                if let Some(id) = salesforce_id {
                    expr.push_str(", salesforce_id = :sfid, salesforce_key = :sfkey");
                    request = request
                        .expression_attribute_values(":sfid", s(id))
                        .expression_attribute_values(":sfkey", s(format!("{job}#{id}")));
                }
                // The last attempt succeeded: the record leaves the error status (its last error
                // text stays for the record's history).
                expr.push_str(" REMOVE error_job");
                request.update_expression(expr)
            }
            LedgerUpdate::Failed { message } => request
                .update_expression(format!(
                    "SET {common}, error_job = :job, last_error = :msg, last_error_at = :at"
                ))
                .expression_attribute_values(":job", s(job))
                .expression_attribute_values(":msg", s(message)),
            LedgerUpdate::Ignored { reason } => request
                .update_expression(format!(
                    "SET {common}, last_ignored_reason = :reason, last_ignored_at = :at, \
                     ignored_count = if_not_exists(ignored_count, :zero) + :one"
                ))
                .expression_attribute_values(":reason", s(reason)),
        };
        request.send().await.map_err(store_error)?;
        Ok(())
    }

    async fn forget(&self, job: &str, key: &LedgerKey) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(ledger_key(job, key)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn list(&self, job: &str, limit: usize) -> Result<Vec<LedgerRecord>, StoreError> {
        self.query_ledger(None, "pk", &format!("LEDGER#{job}"), limit)
            .await
    }

    async fn by_status(
        &self,
        job: &str,
        status: SyncStatus,
        limit: usize,
    ) -> Result<Vec<LedgerRecord>, StoreError> {
        let (index, attr) = match status {
            SyncStatus::Error => ("error-index", "error_job"),
            SyncStatus::Synced => ("synced-index", "synced_job"),
        };
        self.query_ledger(Some(index), attr, job, limit).await
    }
}

#[async_trait]
impl CursorStore for DynamoStateStore {
    async fn cursor(&self, job: &str, stream: &str) -> Result<Option<Cursor>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("CURSOR#{job}")))
            .key("sk", s(stream))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item().and_then(|item| {
            Some(Cursor {
                timestamp_ms: get_n(item, "timestamp_ms")?,
                last_id: get_s(item, "last_id")?,
            })
        }))
    }

    async fn put_cursor(&self, job: &str, stream: &str, cursor: &Cursor) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("CURSOR#{job}")))
            .item("sk", s(stream))
            .item("timestamp_ms", n(cursor.timestamp_ms))
            .item("last_id", s(&cursor.last_id))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
