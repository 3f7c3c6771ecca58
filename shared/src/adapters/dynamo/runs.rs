//! Runs in the state table: one item per run, partitioned by the UTC day it started so a time
//! range is read with a few queries and never a scan; the log is a separate attribute so listing
//! leaves it behind. Items expire with the table's TTL.

use super::*;
use crate::domain::{Run, RunId};
use crate::ports::RunStore;

/// How long runs are kept unless the store is told otherwise.
pub const RUN_TTL_DAYS: i64 = crate::config::DEFAULT_RUN_TTL_DAYS;
const DAY_MS: i64 = 86_400_000;

/// `RUN#{yyyy-mm-dd}`, the partition of the runs started that UTC day.
fn day_partition(ms: i64) -> String {
    let day_start = ms.div_euclid(DAY_MS) * DAY_MS;
    let date = crate::time::rfc3339(day_start);
    format!("RUN#{}", date.get(..10).unwrap_or(&date))
}

fn run_key(id: &RunId) -> Item {
    HashMap::from([
        ("pk".to_string(), s(day_partition(id.started_ms))),
        ("sk".to_string(), s(id.to_string())),
    ])
}

fn run_item(run: &Run, ttl_s: i64) -> Result<Item, StoreError> {
    let mut summary = run.clone();
    summary.log = Vec::new();
    let mut item = run_key(&run.id);
    item.insert(
        "summary".into(),
        s(serde_json::to_string(&summary).map_err(rejected)?),
    );
    item.insert(
        "log".into(),
        s(serde_json::to_string(&run.log).map_err(rejected)?),
    );
    let ended = run.ended_at_ms.unwrap_or(run.started_at_ms);
    item.insert("expires_at".into(), n(ended / 1000 + ttl_s));
    Ok(item)
}

fn run_from(item: &Item) -> Result<Run, StoreError> {
    let corrupt = |message: String| StoreError::Corrupt {
        key: format!("{:?}/{:?}", get_s(item, "pk"), get_s(item, "sk")),
        message,
    };
    let summary = get_s(item, "summary").ok_or_else(|| corrupt("no summary".into()))?;
    let mut run: Run = serde_json::from_str(&summary).map_err(|e| corrupt(e.to_string()))?;
    if let Some(log) = get_s(item, "log") {
        run.log = serde_json::from_str(&log).map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(run)
}

impl DynamoStateStore {
    /// Keeps runs `days` days after they end.
    pub fn with_run_ttl_days(mut self, days: i64) -> Self {
        self.run_ttl_s = days * 86_400;
        self
    }

    /// The writes that store `runs`.
    pub(super) fn run_requests(&self, runs: &[Run]) -> Result<Vec<WriteRequest>, StoreError> {
        runs.iter()
            .map(|run| {
                let put = PutRequest::builder()
                    .set_item(Some(run_item(run, self.run_ttl_s)?))
                    .build()
                    .map_err(rejected)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect()
    }

    /// The runs of one day partition started in `[from_ms, to_ms]`, without their logs.
    async fn runs_of_day(
        &self,
        day_ms: i64,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<Run>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND sk BETWEEN :from AND :to")
                    .expression_attribute_values(":pk", s(day_partition(day_ms)))
                    // Run ids start with the 13-digit start time: text order is time order.
                    .expression_attribute_values(":from", s(format!("{from_ms:013}")))
                    .expression_attribute_values(":to", s(format!("{to_ms:013}~")))
                    .projection_expression("pk, sk, summary")
            })
            .await?;
        items.iter().map(run_from).collect()
    }
}

#[async_trait]
impl RunStore for DynamoStateStore {
    async fn put_runs(&self, runs: &[Run]) -> Result<(), StoreError> {
        self.batch_write(self.run_requests(runs)?).await
    }

    async fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(run_key(id)))
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(run_from).transpose()
    }

    async fn runs(&self, from_ms: i64, to_ms: i64) -> Result<Vec<Run>, StoreError> {
        let mut runs = Vec::new();
        let mut day = from_ms.div_euclid(DAY_MS) * DAY_MS;
        while day <= to_ms {
            runs.extend(self.runs_of_day(day, from_ms, to_ms).await?);
            day += DAY_MS;
        }
        runs.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(runs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_partitioned_by_their_utc_day() {
        assert_eq!(day_partition(1_700_000_000_123), "RUN#2023-11-14");
        assert_eq!(day_partition(0), "RUN#1970-01-01");
        assert_eq!(day_partition(DAY_MS - 1), "RUN#1970-01-01");
    }
}
