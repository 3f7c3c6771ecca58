//! Event dedup keys: `EVENT#{event_id}` / `EVENT`, claimed `pending` by the delivery that first
//! sees the event, `queued` once its changes are on the queue, and expired by the table's TTL.

use super::*;

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
        let claim = ClaimWrite::new(event_id, now_ms, reclaim_after_ms, ttl_s);
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(claim.item))
            .condition_expression(CLAIM_CONDITION)
            .set_expression_attribute_names(Some(claim.names))
            .set_expression_attribute_values(Some(claim.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::New),
            Err(err) if is_condition_failure(&err) => {
                let id = event_id.to_string();
                let queued = self.queued_events(&[&id]).await?;
                Ok(if queued.contains(&id) {
                    Claim::Duplicate
                } else {
                    Claim::Pending
                })
            }
            Err(err) => Err(store_error(err)),
        }
    }

    async fn confirm_event(&self, event_id: &str) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(event_key(event_id)))
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
            .set_key(Some(event_key(event_id)))
            .send()
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn claim_events(
        &self,
        event_ids: &[String],
        now_ms: i64,
        reclaim_after_ms: i64,
        ttl_s: i64,
    ) -> Result<Vec<Claim>, StoreError> {
        // One claim is one conditional put: a transaction would cost more for nothing.
        if let [id] = event_ids {
            return Ok(vec![
                self.claim_event(id, now_ms, reclaim_after_ms, ttl_s)
                    .await?,
            ]);
        }
        let mut claims = Vec::with_capacity(event_ids.len());
        // A transaction takes at most 100 items, each at most once.
        for chunk in event_ids.chunks(TRANSACTION_ITEMS) {
            claims.extend(
                self.claim_chunk(chunk, now_ms, reclaim_after_ms, ttl_s)
                    .await?,
            );
        }
        Ok(claims)
    }

    async fn confirm_events(
        &self,
        event_ids: &[String],
        claimed_at_ms: i64,
        ttl_s: i64,
    ) -> Result<(), StoreError> {
        self.batch_write(confirm_requests(event_ids, claimed_at_ms, ttl_s)?)
            .await
    }

    async fn confirm_events_with_runs(
        &self,
        event_ids: &[String],
        claimed_at_ms: i64,
        ttl_s: i64,
        runs: &[crate::domain::Run],
    ) -> Result<(), StoreError> {
        let mut requests = confirm_requests(event_ids, claimed_at_ms, ttl_s)?;
        requests.extend(self.run_requests(runs)?);
        self.batch_write(requests).await
    }

    async fn release_events(&self, event_ids: &[String]) -> Result<(), StoreError> {
        let requests = event_ids.iter().map(|id| {
            let delete = DeleteRequest::builder()
                .set_key(Some(event_key(id)))
                .build()?;
            Ok::<_, aws_sdk_dynamodb::error::BuildError>(
                WriteRequest::builder().delete_request(delete).build(),
            )
        });
        let requests = requests.collect::<Result<Vec<_>, _>>().map_err(rejected)?;
        self.batch_write(requests).await
    }
}
