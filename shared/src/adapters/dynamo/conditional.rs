//! Conditional writes of several items: one transaction of up to 100, the items whose
//! condition failed left out and the rest written again; a single item as the plain request it
//! stands for (half the write units of a one-item transaction).

use super::*;

impl DynamoStateStore {
    /// Writes up to 100 conditional items (`item(slot)`, puts or updates, each of a different
    /// item) in one transaction (one alone as a plain request); one answer per slot, `true` when
    /// written. A transaction writes all or
    /// nothing: when DynamoDB cancels it, the items whose condition failed are left out and the
    /// rest are written again without them.
    pub(super) async fn conditional_puts(
        &self,
        count: usize,
        item: impl Fn(usize) -> Result<TransactWriteItem, StoreError>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut written = vec![false; count];
        let mut pending: Vec<usize> = (0..count).collect();
        for _ in 0..MAX_ROUNDS {
            if pending.is_empty() {
                return Ok(written);
            }
            if let [only] = pending[..] {
                written[only] = self.single_write(item(only)?).await?;
                return Ok(written);
            }
            let items = pending
                .iter()
                .map(|&i| item(i))
                .collect::<Result<Vec<_>, _>>()?;
            let sent = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await;
            let err = match sent {
                Ok(_) => {
                    pending.iter().for_each(|&i| written[i] = true);
                    return Ok(written);
                }
                Err(err) => err,
            };
            let reasons: Vec<Option<String>> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().map(str::to_string))
                    .collect(),
                _ => return Err(store_error(err)),
            };
            let before = pending.len();
            let mut still = Vec::with_capacity(before);
            for (slot, &i) in pending.iter().enumerate() {
                match reasons.get(slot).and_then(|r| r.as_deref()) {
                    Some("ConditionalCheckFailed") => {}
                    _ => still.push(i),
                }
            }
            if still.len() == before {
                // Held up by a concurrent transaction, not by a condition: try again shortly.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            pending = still;
        }
        Err(StoreError::Unavailable(
            "conditional writes kept conflicting with other transactions".into(),
        ))
    }

    /// One item of a transaction sent as the plain request it stands for, `false` when its
    /// condition did not hold: a transaction costs twice the write units of the same writes
    /// outside one, and for a single item buys nothing.
    async fn single_write(&self, item: TransactWriteItem) -> Result<bool, StoreError> {
        let client = &self.client;
        if let Some(put) = item.put() {
            let request = (client.put_item())
                .table_name(put.table_name())
                .set_item(Some(put.item().clone()))
                .set_condition_expression(put.condition_expression().map(str::to_string))
                .set_expression_attribute_names(put.expression_attribute_names().cloned())
                .set_expression_attribute_values(put.expression_attribute_values().cloned());
            return written(request.send().await);
        }
        if let Some(update) = item.update() {
            let request = (client.update_item())
                .table_name(update.table_name())
                .set_key(Some(update.key().clone()))
                .update_expression(update.update_expression())
                .set_condition_expression(update.condition_expression().map(str::to_string))
                .set_expression_attribute_names(update.expression_attribute_names().cloned())
                .set_expression_attribute_values(update.expression_attribute_values().cloned());
            return written(request.send().await);
        }
        if let Some(delete) = item.delete() {
            let request = (client.delete_item())
                .table_name(delete.table_name())
                .set_key(Some(delete.key().clone()))
                .set_condition_expression(delete.condition_expression().map(str::to_string))
                .set_expression_attribute_names(delete.expression_attribute_names().cloned())
                .set_expression_attribute_values(delete.expression_attribute_values().cloned());
            return written(request.send().await);
        }
        Err(StoreError::Rejected(
            "a single write must be a put, an update or a delete".into(),
        ))
    }
}
