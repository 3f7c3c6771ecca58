//! Poll cursors: `CURSOR#{job}` / `{stream}`, the (time, id) a job's poll of one source got to.

use super::*;

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
