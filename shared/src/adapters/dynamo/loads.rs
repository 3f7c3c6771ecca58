//! Bulk loads in the state table: one partition per load, `LOAD#{load}`, holding its state
//! (`META`: when it last grew, written or not, a flush's lease) and its staged writes
//! (`W#{job}#{ledger key}#{event id}`, the write command as JSON), each taken out once a flush
//! made it. Everything expires with the
//! table's TTL a week after it was staged.

use super::*;
use crate::domain::load::{LoadId, LoadState};
use crate::domain::WriteCommand;
use crate::ports::LoadStore;

/// How long a load's items are kept after they were staged.
const LOAD_TTL_S: i64 = 7 * 86_400;
const META: &str = "META";
const WRITE_PREFIX: &str = "W#";

fn partition(load: &LoadId) -> AttributeValue {
    s(format!("LOAD#{load}"))
}

fn meta_key(load: &LoadId) -> Item {
    HashMap::from([("pk".into(), partition(load)), ("sk".into(), s(META))])
}

fn write_sk(write: &WriteCommand) -> String {
    format!(
        "{WRITE_PREFIX}{}#{}#{}",
        write.job, write.ledger_key, write.event_id
    )
}

fn write_item(load: &LoadId, write: &WriteCommand, expires_s: i64) -> Result<Item, StoreError> {
    Ok(HashMap::from([
        ("pk".into(), partition(load)),
        ("sk".into(), s(write_sk(write))),
        (
            "write".into(),
            s(serde_json::to_string(write).map_err(rejected)?),
        ),
        ("expires_at".into(), n(expires_s)),
    ]))
}

impl DynamoStateStore {
    /// Notes that `load` grew at `now_ms`, so is unwritten.
    async fn note_growth(&self, load: &LoadId, now_ms: i64) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(load)))
            .update_expression("SET last_staged_ms = :now, flushed = :no, expires_at = :exp")
            .expression_attribute_values(":now", n(now_ms))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":exp", n(now_ms / 1000 + LOAD_TTL_S))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl LoadStore for DynamoStateStore {
    async fn stage(
        &self,
        load: &LoadId,
        writes: &[WriteCommand],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let expires_s = now_ms / 1000 + LOAD_TTL_S;
        let requests = writes
            .iter()
            .map(|w| {
                let put = PutRequest::builder()
                    .set_item(Some(write_item(load, w, expires_s)?))
                    .build()
                    .map_err(rejected)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await?;
        self.note_growth(load, now_ms).await
    }

    async fn load_state(&self, load: &LoadId) -> Result<Option<LoadState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(load)))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        Ok(out.item().map(|item| LoadState {
            last_staged_ms: get_n(item, "last_staged_ms").unwrap_or_default(),
            flushed: item
                .get("flushed")
                .and_then(|v| v.as_bool().ok())
                .copied()
                .unwrap_or(false),
        }))
    }

    async fn claim_load(
        &self,
        load: &LoadId,
        (quiet_before_ms, now_ms, lease_ms): (i64, i64, i64),
    ) -> Result<bool, StoreError> {
        let sent = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(meta_key(load)))
            .update_expression("SET lease_until_ms = :lease")
            .condition_expression(
                "attribute_exists(pk) AND flushed = :no AND last_staged_ms <= :quiet AND (attribute_not_exists(lease_until_ms) OR lease_until_ms < :now)",
            )
            .expression_attribute_values(":lease", n(now_ms + lease_ms))
            .expression_attribute_values(":no", AttributeValue::Bool(false))
            .expression_attribute_values(":quiet", n(quiet_before_ms))
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        written(sent)
    }

    async fn staged(&self, load: &LoadId) -> Result<Vec<WriteCommand>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", partition(load))
                    .expression_attribute_values(":prefix", s(WRITE_PREFIX))
                    .consistent_read(true)
            })
            .await?;
        (items.iter())
            .map(|item| {
                let text = get_s(item, "write").unwrap_or_default();
                serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
                    key: format!("LOAD#{load}/{:?}", get_s(item, "sk")),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    async fn finish_load(
        &self,
        load: &LoadId,
        through_ms: i64,
        made: &[WriteCommand],
    ) -> Result<(), StoreError> {
        let deletes = (made.iter())
            .map(|w| {
                let key = HashMap::from([
                    ("pk".into(), partition(load)),
                    ("sk".into(), s(write_sk(w))),
                ]);
                let delete = DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map_err(rejected)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(deletes).await?;
        // Written, unless the load grew during the flush: then its grower's flush writes the rest.
        let whole = (self.client.update_item())
            .table_name(&self.table)
            .set_key(Some(meta_key(load)))
            .update_expression("SET flushed = :yes REMOVE lease_until_ms")
            .condition_expression("last_staged_ms = :t")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":t", n(through_ms))
            .send()
            .await;
        if written(whole)? {
            return Ok(());
        }
        (self.client.update_item())
            .table_name(&self.table)
            .set_key(Some(meta_key(load)))
            .update_expression("REMOVE lease_until_ms")
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
