//! Bulk loads in the state table: one partition per load, `LOAD#{load}`, holding its state
//! (`META`: when it last grew, written or not, a flush's lease), its staged writes
//! (`W#{job}#{ledger key}#{event id}`, the write command as JSON) and its staged write backs
//! (`S#{stage key}`, the write back as JSON), each taken out once a flush made it. Everything
//! expires with the table's TTL a week after it was staged.

use super::*;
use crate::domain::load::{LoadId, LoadState, Staged};
use crate::domain::push::SideWrite;
use crate::domain::WriteCommand;
use crate::ports::LoadStore;

/// How long a load's items are kept after they were staged.
const LOAD_TTL_S: i64 = 7 * 86_400;
const META: &str = "META";
const WRITE_PREFIX: &str = "W#";
const SIDE_PREFIX: &str = "S#";

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

fn side_sk(side: &SideWrite) -> String {
    format!("{SIDE_PREFIX}{}", side.stage_key())
}

/// A staged item: `sk`, with `body` as JSON under `attribute`.
fn staged_item(
    load: &LoadId,
    (sk, attribute): (String, &str),
    body: &impl serde::Serialize,
    expires_s: i64,
) -> Result<WriteRequest, StoreError> {
    let item = HashMap::from([
        ("pk".into(), partition(load)),
        ("sk".into(), s(sk)),
        (
            attribute.into(),
            s(serde_json::to_string(body).map_err(rejected)?),
        ),
        ("expires_at".into(), n(expires_s)),
    ]);
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(rejected)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

/// The delete of a staged item.
fn delete_staged(load: &LoadId, sk: String) -> Result<WriteRequest, StoreError> {
    let key = HashMap::from([("pk".into(), partition(load)), ("sk".into(), s(sk))]);
    let delete = DeleteRequest::builder()
        .set_key(Some(key))
        .build()
        .map_err(rejected)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

/// The JSON under `attribute` of a staged item, read back.
fn parse_staged<T: serde::de::DeserializeOwned>(
    load: &LoadId,
    item: &Item,
    attribute: &str,
) -> Result<T, StoreError> {
    let text = get_s(item, attribute).unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        key: format!("LOAD#{load}/{:?}", get_s(item, "sk")),
        message: e.to_string(),
    })
}

impl DynamoStateStore {
    /// Stores each `(sk, body)` as a staged item of `load`, its body as JSON under `attribute`,
    /// then notes the growth.
    async fn stage_items<'a, T: serde::Serialize + 'a>(
        &self,
        load: &LoadId,
        (items, attribute): (impl Iterator<Item = (String, &'a T)>, &str),
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let expires_s = now_ms / 1000 + LOAD_TTL_S;
        let requests = items
            .map(|(sk, body)| staged_item(load, (sk, attribute), body, expires_s))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await?;
        self.note_growth(load, now_ms).await
    }

    /// The first staged items of `load` whose keys start with `prefix`, parsed from
    /// `attribute`: at least `most` when there are, then any more that `together` with the last
    /// one taken (the rest of its record's writes). Read a page at a time, so a flush never
    /// reads the whole partition.
    async fn staged_slice<T: serde::de::DeserializeOwned>(
        &self,
        load: &LoadId,
        (prefix, attribute): (&str, &str),
        most: usize,
        together: impl Fn(&T, &T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut taken: Vec<T> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = (self.client.query())
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", partition(load))
                .expression_attribute_values(":prefix", s(prefix))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(store_error)?;
            for item in out.items() {
                let next: T = parse_staged(load, item, attribute)?;
                let full = taken.len() >= most.max(1);
                if full && !taken.last().is_some_and(|last| together(last, &next)) {
                    return Ok(taken);
                }
                taken.push(next);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(taken),
            }
        }
    }

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
        let items = writes.iter().map(|w| (write_sk(w), w));
        self.stage_items(load, (items, "write"), now_ms).await
    }

    async fn stage_sides(
        &self,
        load: &LoadId,
        sides: &[SideWrite],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let items = sides.iter().map(|side| (side_sk(side), side));
        self.stage_items(load, (items, "side"), now_ms).await
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

    async fn staged(&self, load: &LoadId, most: usize) -> Result<Staged, StoreError> {
        let same_record =
            |a: &WriteCommand, b: &WriteCommand| (&a.job, &a.ledger_key) == (&b.job, &b.ledger_key);
        let writes = (self.staged_slice(load, (WRITE_PREFIX, "write"), most, same_record)).await?;
        if !writes.is_empty() {
            return Ok(Staged {
                writes,
                sides: Vec::new(),
            });
        }
        let sides = (self.staged_slice(load, (SIDE_PREFIX, "side"), most, |_, _| false)).await?;
        Ok(Staged { writes, sides })
    }

    async fn finish_load(
        &self,
        load: &LoadId,
        through_ms: i64,
        made: &Staged,
    ) -> Result<(), StoreError> {
        let writes = (made.writes.iter()).map(|w| delete_staged(load, write_sk(w)));
        let sides = (made.sides.iter()).map(|side| delete_staged(load, side_sk(side)));
        let deletes = writes
            .chain(sides)
            .collect::<Result<Vec<_>, StoreError>>()?;
        if !deletes.is_empty() {
            self.batch_write(deletes).await?;
            return self.release_load(load).await;
        }
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
        self.release_load(load).await
    }

    async fn release_load(&self, load: &LoadId) -> Result<(), StoreError> {
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
