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

/// The most one item holds of a run's log: DynamoDB refuses an item over 400 KB.
const MAX_LOG_BYTES: usize = 350_000;

/// The sort key of part `n` (from 1) of a run's log, after the run's own item.
fn log_part_key(id: &RunId, n: usize) -> String {
    format!("{id}#log#{n:04}")
}

/// A run's items: the run with the first part of its log, then one item per further part of
/// at most `MAX_LOG_BYTES`, so no log is cut and no item is refused.
fn run_items(run: &Run, ttl_s: i64) -> Result<Vec<Item>, StoreError> {
    let parts = log_parts(&run.log)?;
    let mut summary = run.clone();
    summary.log = Vec::new();
    let ended = run.ended_at_ms.unwrap_or(run.started_at_ms);
    let expires = n(ended / 1000 + ttl_s);
    let mut item = run_key(&run.id);
    item.insert(
        "summary".into(),
        s(serde_json::to_string(&summary).map_err(rejected)?),
    );
    item.insert("log".into(), s(parts[0].clone()));
    item.insert("log_parts".into(), n(parts.len()));
    item.insert("expires_at".into(), expires.clone());
    let mut items = vec![item];
    for (i, part) in parts.into_iter().enumerate().skip(1) {
        let mut more = run_key(&run.id);
        more.insert("sk".into(), s(log_part_key(&run.id, i)));
        more.insert("log".into(), s(part));
        more.insert("expires_at".into(), expires.clone());
        items.push(more);
    }
    Ok(items)
}

/// The log as JSON arrays of whole lines, each at most `MAX_LOG_BYTES` (a line alone larger
/// than that is its own part); always at least one.
fn log_parts(log: &[crate::domain::RunLine]) -> Result<Vec<String>, StoreError> {
    let mut parts = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut size = 2;
    for line in log {
        let text = serde_json::to_string(line).map_err(rejected)?;
        if !current.is_empty() && size + text.len() + 1 > MAX_LOG_BYTES {
            parts.push(format!("[{}]", current.join(",")));
            (current, size) = (Vec::new(), 2);
        }
        size += text.len() + 1;
        current.push(text);
    }
    parts.push(format!("[{}]", current.join(",")));
    Ok(parts)
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
        let mut requests = Vec::with_capacity(runs.len());
        for run in runs {
            for item in run_items(run, self.run_ttl_s)? {
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(rejected)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
        }
        Ok(requests)
    }

    /// The parts of `id`'s log after the first, in order.
    async fn more_log(&self, id: &RunId) -> Result<Vec<crate::domain::RunLine>, StoreError> {
        let key = run_key(id);
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :parts)")
                    .expression_attribute_values(":pk", key["pk"].clone())
                    .expression_attribute_values(":parts", s(format!("{id}#log#")))
            })
            .await?;
        let mut lines = Vec::new();
        for item in &items {
            let text = get_s(item, "log").unwrap_or_default();
            let part: Vec<crate::domain::RunLine> =
                serde_json::from_str(&text).map_err(rejected)?;
            lines.extend(part);
        }
        Ok(lines)
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
        // The further parts of long logs share the range; they carry no summary.
        items
            .iter()
            .filter(|item| item.contains_key("summary"))
            .map(run_from)
            .collect()
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
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let mut run = run_from(item)?;
        if get_n(item, "log_parts").unwrap_or(1) > 1 {
            run.log.extend(self.more_log(id).await?);
        }
        Ok(Some(run))
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
    fn a_long_log_is_kept_whole_in_parts_that_fit_an_item() {
        let line =
            |i: usize| RunLine::new(format!("R{i}"), LineOutcome::Error).message("x".repeat(1_000));
        let small: Vec<RunLine> = (0..10).map(line).collect();
        assert_eq!(log_parts(&small).unwrap().len(), 1);
        assert_eq!(log_parts(&[]).unwrap(), ["[]"]);
        let large: Vec<RunLine> = (0..1_000).map(line).collect();
        let parts = log_parts(&large).unwrap();
        assert!(parts.len() >= 3, "{} parts", parts.len());
        let mut back: Vec<RunLine> = Vec::new();
        for p in &parts {
            assert!(p.len() <= MAX_LOG_BYTES, "{}", p.len());
            back.extend(serde_json::from_str::<Vec<RunLine>>(p).unwrap());
        }
        assert_eq!(back, large, "every line, in order");
    }
}
