//! Record leases in the state table: one item per leased record pair, `LEASE#{job}#{ledger key}`,
//! holding the time it holds until. A lease is taken with a conditional put (free, or past its
//! time) and given back by deleting it; one that was never given back expires with the table's
//! TTL.

use super::*;
use crate::domain::lease::RecordLease;
use crate::ports::LeaseStore;

/// The condition under which a lease is free: nobody holds it, or its holder's time is up.
const FREE: &str = "attribute_not_exists(pk) OR until_ms < :now";

fn lease_key(lease: &RecordLease) -> Item {
    HashMap::from([
        ("pk".into(), s(format!("LEASE#{}#{}", lease.job, lease.key))),
        ("sk".into(), s("LEASE")),
    ])
}

/// The item of `lease` held until `until_ms`.
fn lease_item(lease: &RecordLease, until_ms: i64) -> Item {
    let mut item = lease_key(lease);
    item.insert("until_ms".into(), n(until_ms));
    // DynamoDB's TTL takes a lease nobody gave back, a day after it lapsed.
    item.insert("expires_at".into(), n(until_ms / 1000 + 86_400));
    item
}

/// The conditional put that takes `lease` until `until_ms`, in a transaction.
fn lease_put(
    table: &str,
    lease: &RecordLease,
    now_ms: i64,
    until_ms: i64,
) -> Result<Put, StoreError> {
    Put::builder()
        .table_name(table)
        .set_item(Some(lease_item(lease, until_ms)))
        .condition_expression(FREE)
        .expression_attribute_values(":now", n(now_ms))
        .build()
        .map_err(rejected)
}

impl DynamoStateStore {
    /// Takes one lease with a single conditional put (a transaction would cost twice as much).
    async fn take_lease(
        &self,
        lease: &RecordLease,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, StoreError> {
        let sent = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(lease_item(lease, until_ms)))
            .condition_expression(FREE)
            .expression_attribute_values(":now", n(now_ms))
            .send()
            .await;
        match sent {
            Ok(_) => Ok(true),
            Err(err) if is_condition_failure(&err) => Ok(false),
            Err(err) => Err(store_error(err)),
        }
    }
}

#[async_trait]
impl LeaseStore for DynamoStateStore {
    async fn take_leases(
        &self,
        leases: &[RecordLease],
        now_ms: i64,
        until_ms: i64,
    ) -> Result<Vec<bool>, StoreError> {
        if let [lease] = leases {
            return Ok(vec![self.take_lease(lease, now_ms, until_ms).await?]);
        }
        let mut taken = Vec::with_capacity(leases.len());
        // A transaction takes at most 100 items, each at most once (the leases are distinct).
        for chunk in leases.chunks(TRANSACTION_ITEMS) {
            let answers = self
                .conditional_puts(chunk.len(), |i| {
                    let put = lease_put(&self.table, &chunk[i], now_ms, until_ms)?;
                    Ok(TransactWriteItem::builder().put(put).build())
                })
                .await?;
            taken.extend(answers);
        }
        Ok(taken)
    }

    async fn release_leases(&self, leases: &[RecordLease]) -> Result<(), StoreError> {
        let requests = leases
            .iter()
            .map(|lease| {
                let delete = DeleteRequest::builder()
                    .set_key(Some(lease_key(lease)))
                    .build()
                    .map_err(rejected)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }
}
