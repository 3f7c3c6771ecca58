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

/// The most a run's log may take in its item: DynamoDB refuses an item over 400 KB, and the run
/// would be lost with its log.
const MAX_LOG_BYTES: usize = 350_000;

fn run_item(run: &Run, ttl_s: i64) -> Result<Item, StoreError> {
    let (log, dropped) = log_that_fits(&run.log)?;
    let mut summary = run.clone();
    summary.log = Vec::new();
    summary.lines_dropped += dropped;
    let mut item = run_key(&run.id);
    item.insert(
        "summary".into(),
        s(serde_json::to_string(&summary).map_err(rejected)?),
    );
    item.insert("log".into(), s(log));
    let ended = run.ended_at_ms.unwrap_or(run.started_at_ms);
    item.insert("expires_at".into(), n(ended / 1000 + ttl_s));
    Ok(item)
}

/// The log as stored: every line while it fits in `MAX_LOG_BYTES`, else the first lines that
/// do, with how many were left out (counted in the run's `lines_dropped`).
fn log_that_fits(log: &[crate::domain::RunLine]) -> Result<(String, u64), StoreError> {
    let all = serde_json::to_string(log).map_err(rejected)?;
    if all.len() <= MAX_LOG_BYTES {
        return Ok((all, 0));
    }
    let (mut kept, mut size) = (0, 2);
    for line in log {
        let more = serde_json::to_string(line).map_err(rejected)?.len() + 1;
        if size + more > MAX_LOG_BYTES {
            break;
        }
        size += more;
        kept += 1;
    }
    let text = serde_json::to_string(&log[..kept]).map_err(rejected)?;
    Ok((text, (log.len() - kept) as u64))
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
    use crate::domain::{LineOutcome, RunLine};

    #[test]
    fn runs_are_partitioned_by_their_utc_day() {
        assert_eq!(day_partition(1_700_000_000_123), "RUN#2023-11-14");
        assert_eq!(day_partition(0), "RUN#1970-01-01");
        assert_eq!(day_partition(DAY_MS - 1), "RUN#1970-01-01");
    }

    #[test]
    fn a_log_too_large_for_its_item_keeps_what_fits_and_counts_the_rest() {
        let line =
            |i: usize| RunLine::new(format!("R{i}"), LineOutcome::Error).message("x".repeat(1_000));
        let small: Vec<RunLine> = (0..10).map(line).collect();
        assert_eq!(log_that_fits(&small).unwrap().1, 0);
        let large: Vec<RunLine> = (0..1_000).map(line).collect();
        let (text, dropped) = log_that_fits(&large).unwrap();
        assert!(text.len() <= MAX_LOG_BYTES, "{}", text.len());
        let kept: Vec<RunLine> = serde_json::from_str(&text).unwrap();
        assert_eq!(kept.len() as u64 + dropped, 1_000);
        assert!(dropped > 0 && kept[0].record == "R0");
    }
}
