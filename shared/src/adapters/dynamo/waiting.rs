//! Parked changes in the state table: one partition per parent, `WAIT#{parent key}`, one item per
//! waiting change (`{job}#{ledger key}#{change time}#{event id}`, the `WaitingChange` as JSON), and
//! the sparse `waiting-index` on `waiting_job` that lists a job's waiting changes for the sweep.

use futures_util::future::join_all;

use super::*;
use crate::domain::waiting::{ParentKey, WaitingChange};
use crate::ports::WaitingStore;

/// The index that lists a job's parked changes.
pub const WAITING_INDEX: &str = "waiting-index";

fn partition(parent: &ParentKey) -> AttributeValue {
    s(format!("WAIT#{parent}"))
}

fn key_of(parked: &WaitingChange) -> Item {
    HashMap::from([
        ("pk".into(), partition(&parked.parent.key())),
        ("sk".into(), s(parked.slot())),
    ])
}

fn parked_item(parked: &WaitingChange) -> Result<Item, StoreError> {
    let mut item = key_of(parked);
    item.insert("waiting_job".into(), s(&parked.job));
    item.insert("filed_at".into(), n(parked.filed_at_ms));
    let json = serde_json::to_string(parked).map_err(rejected)?;
    item.insert("parked".into(), s(json));
    Ok(item)
}

fn parked_of(item: &Item) -> Result<WaitingChange, StoreError> {
    let text = get_s(item, "parked").unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        key: format!("{:?}/{:?}", get_s(item, "pk"), get_s(item, "sk")),
        message: e.to_string(),
    })
}

#[async_trait]
impl WaitingStore for DynamoStateStore {
    async fn wait(&self, parked: &[WaitingChange]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(parked.len());
        for p in parked {
            let put = PutRequest::builder()
                .set_item(Some(parked_item(p)?))
                .build()
                .map_err(rejected)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    async fn waiting_on(&self, parents: &[ParentKey]) -> Result<Vec<WaitingChange>, StoreError> {
        let queries = parents.iter().map(|parent| {
            self.query_all(move |q| {
                q.key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", partition(parent))
                    .consistent_read(true)
            })
        });
        let mut parked = Vec::new();
        for items in join_all(queries).await {
            for item in items? {
                parked.push(parked_of(&item)?);
            }
        }
        Ok(parked)
    }

    async fn waiting_in(&self, job: &str) -> Result<Vec<WaitingChange>, StoreError> {
        let items = self
            .query_all(|q| {
                q.index_name(WAITING_INDEX)
                    .key_condition_expression("waiting_job = :job")
                    .expression_attribute_values(":job", s(job))
            })
            .await?;
        items.iter().map(parked_of).collect()
    }

    async fn release(&self, parked: &[WaitingChange]) -> Result<(), StoreError> {
        let deletes = parked.iter().map(|p| {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key_of(p)))
                .condition_expression("filed_at = :at")
                .expression_attribute_values(":at", n(p.filed_at_ms))
                .send()
        });
        for result in join_all(deletes).await {
            match result {
                Ok(_) => {}
                // Parked again since it was read: that newer wait stays.
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(store_error(e)),
            }
        }
        Ok(())
    }
}
