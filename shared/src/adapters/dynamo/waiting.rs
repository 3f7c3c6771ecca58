//! Parked changes in the state table: one partition per parent, `WAIT#{parent key}`, one item per
//! waiting change (`{job}#{ledger key}#{change time}#{event id}`, the `WaitingChange` as JSON), a
//! marker item (`#`, its `marked` naming the parking that wrote it) saying something waited there,
//! and the sparse `waiting-index` on `waiting_job` that lists a job's waiting changes for the
//! sweep. A synced pair asks for its parents' markers in one BatchGetItem per 100 and queries
//! only the partitions that have one, so a load of records nothing waits for queries nothing.

use futures_util::future::join_all;

use super::*;
use crate::domain::waiting::{ParentKey, WaitingChange};
use crate::ports::WaitingStore;

/// The index that lists a job's parked changes.
pub const WAITING_INDEX: &str = "waiting-index";

fn partition(parent: &ParentKey) -> AttributeValue {
    s(format!("WAIT#{parent}"))
}

/// The sort key of a parent's marker: before every slot.
const MARKER: &str = "#";

/// How long a marker outlives the last change parked under it (the longest wait a job allows,
/// 720 hours, and a day).
const MARKER_TTL_S: i64 = 31 * 86_400;

fn marker(parent: &ParentKey) -> Item {
    HashMap::from([("pk".into(), partition(parent)), ("sk".into(), s(MARKER))])
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

fn put_request(item: Item) -> Result<WriteRequest, StoreError> {
    let put = PutRequest::builder()
        .set_item(Some(item))
        .build()
        .map_err(rejected)?;
    Ok(WriteRequest::builder().put_request(put).build())
}

fn parked_of(item: &Item) -> Result<WaitingChange, StoreError> {
    let text = get_s(item, "parked").unwrap_or_default();
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt {
        key: format!("{:?}/{:?}", get_s(item, "pk"), get_s(item, "sk")),
        message: e.to_string(),
    })
}

/// Partitions of waiting changes read at once.
const PARTITIONS_AT_ONCE: usize = 8;

impl DynamoStateStore {
    /// The changes filed under `parent`, its marker left out.
    async fn read_partition(&self, parent: &ParentKey) -> Result<Vec<Item>, StoreError> {
        self.query_all(|q| {
            q.key_condition_expression("pk = :pk AND sk > :marker")
                .expression_attribute_values(":pk", partition(parent))
                .expression_attribute_values(":marker", s(MARKER))
                .consistent_read(true)
        })
        .await
    }

    /// Deletes a parent's marker once nothing waits under it, so its later syncs read nothing;
    /// only the marker as it was read (`seen`, its `marked` value): a change parked since then
    /// wrote it again, and its marker must stay for the replay to find it.
    async fn forget_marker(&self, parent: &ParentKey, seen: Option<&str>) {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(marker(parent)));
        let delete = match seen {
            Some(value) => delete
                .condition_expression("marked = :seen")
                .expression_attribute_values(":seen", s(value)),
            None => delete.condition_expression("attribute_not_exists(marked)"),
        };
        if let Err(e) = delete.send().await {
            tracing::debug!(parent = %parent, error = %store_error(e), "marker kept");
        }
    }
}

#[async_trait]
impl WaitingStore for DynamoStateStore {
    async fn wait(&self, parked: &[WaitingChange]) -> Result<(), StoreError> {
        let mut requests = Vec::with_capacity(parked.len() * 2);
        let mut parents = Vec::new();
        for p in parked {
            let parent = p.parent.key();
            if !parents.contains(&parent) {
                let mut item = marker(&parent);
                item.insert("expires_at".into(), n(p.filed_at_ms / 1000 + MARKER_TTL_S));
                // Which parking wrote it, so that it is deleted only as it was read.
                item.insert(
                    "marked".into(),
                    s(format!("{}#{}", p.filed_at_ms, p.slot())),
                );
                requests.push(put_request(item)?);
                parents.push(parent);
            }
            requests.push(put_request(parked_item(p)?)?);
        }
        self.batch_write(requests).await
    }

    async fn waiting_on(&self, parents: &[ParentKey]) -> Result<Vec<WaitingChange>, StoreError> {
        let mut distinct: Vec<&ParentKey> = parents.iter().collect();
        distinct.sort();
        distinct.dedup();
        let markers = self
            .batch_get(distinct.iter().map(|p| marker(p)).collect())
            .await?;
        let marked_pks: HashMap<String, Option<String>> = markers
            .iter()
            .filter_map(|m| Some((get_s(m, "pk")?, get_s(m, "marked"))))
            .collect();
        let marked: Vec<(&ParentKey, Option<&str>)> = distinct
            .into_iter()
            .filter_map(|p| Some((p, marked_pks.get(&format!("WAIT#{p}"))?.as_deref())))
            .collect();
        // A few partitions at a time; one that cannot be read is left for the next sync of its
        // parent or the poller's re-check, not held against the others.
        let mut parked = Vec::new();
        for chunk in marked.chunks(PARTITIONS_AT_ONCE) {
            let reads = join_all(chunk.iter().map(|(parent, _)| self.read_partition(parent))).await;
            for ((parent, seen), items) in chunk.iter().zip(reads) {
                match items {
                    Ok(items) if items.is_empty() => self.forget_marker(parent, *seen).await,
                    Ok(items) => {
                        for item in items {
                            parked.push(parked_of(&item)?);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(parent = %parent, error = %e, "changes waiting for a parent not read");
                    }
                }
            }
        }
        parked.sort_by_key(|p| (p.parent.key(), p.slot()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::waiting::ParentRef;
    use crate::domain::{ChangeEvent, Operation, SourceRecord, System};

    fn waiting(case: &str, filed_at_ms: i64) -> WaitingChange {
        let record = SourceRecord {
            source: System::Gainsight,
            object: "Case".into(),
            id: case.into(),
            fields: Default::default(),
        };
        let change = ChangeEvent::pushed(record, format!("ev-{case}"), Operation::Created, 1, 1);
        let parent = ParentRef {
            system: System::Salesforce,
            object: "Account".into(),
            matches: vec![("Gainsight_Company_Id__c".into(), "C1".into())],
        };
        let key = case.parse().expect("a ledger key");
        WaitingChange::new("case_case", key, parent, &change, "none", filed_at_ms)
    }

    /// A pusher found its parent's partition empty and deletes the marker it read, while a mapper
    /// parks a change there: the marker that change wrote stays, so the parent's next sync
    /// replays it (deleted, nothing would until the poller's re-check).
    #[tokio::test]
    async fn a_marker_written_again_after_it_was_read_is_kept() {
        let aws = devstack::moto::LocalAws::start().await.expect("moto");
        let client = aws_sdk_dynamodb::Client::new(&aws.sdk);
        let store = DynamoStateStore::new(client, aws.table_name().expect("the table"));
        let first = waiting("K1", 100);
        let parent = first.parent.key();
        store.wait(std::slice::from_ref(&first)).await.unwrap();
        store.release(std::slice::from_ref(&first)).await.unwrap();
        let read = store.batch_get(vec![marker(&parent)]).await.unwrap();
        let seen = get_s(&read[0], "marked");
        assert!(seen.is_some(), "{read:?}");

        let second = waiting("K2", 200);
        store.wait(std::slice::from_ref(&second)).await.unwrap();
        store.forget_marker(&parent, seen.as_deref()).await;
        let parents = std::slice::from_ref(&parent);
        assert_eq!(
            store.waiting_on(parents).await.unwrap(),
            std::slice::from_ref(&second)
        );

        // Once nothing waits, the marker read is deleted.
        store.release(&[second]).await.unwrap();
        assert!(store.waiting_on(parents).await.unwrap().is_empty());
        assert!(store
            .batch_get(vec![marker(&parent)])
            .await
            .unwrap()
            .is_empty());
    }
}
