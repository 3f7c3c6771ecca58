//! First loads in the state table: one partition per job, `FIRSTLOAD#{job}`, holding its load in
//! progress or its last one (`META`: the load as JSON, with its run, state and checkpoint as
//! attributes the conditions read) and that load's chunks of steps, each in as many parts as its
//! size needs (`CHUNK#{run}#{index}#{part}`, the part's steps as JSON, each part well under
//! DynamoDB's 400 KB per item: a write step carries its record). Everything expires with the
//! table's TTL 30 days after the load began.

use super::*;
use crate::domain::first_load::steps::{FirstLoad, FirstLoadState, Step};
use crate::ports::FirstLoadStore;

/// How long a load's items are kept after it began.
const FIRST_LOAD_TTL_S: i64 = 30 * 86_400;
/// The most JSON one part of a chunk holds (DynamoDB takes up to 400 KB per item, names and
/// other attributes included).
const PART_BYTES: usize = 300_000;
const META: &str = "META";

fn partition(job: &str) -> AttributeValue {
    s(format!("FIRSTLOAD#{job}"))
}

fn key(job: &str, sk: String) -> Item {
    HashMap::from([("pk".into(), partition(job)), ("sk".into(), s(sk))])
}

fn chunk_sk(run: &str, index: usize) -> String {
    format!("CHUNK#{run}#{index:06}")
}

/// `steps` as JSON arrays of at most `PART_BYTES` each (one step larger than that is a part on
/// its own, and DynamoDB refuses it as too large).
fn parts(steps: &[Step]) -> Result<Vec<String>, StoreError> {
    let mut parts: Vec<String> = Vec::new();
    let mut part = String::from("[");
    for step in steps {
        let text = serde_json::to_string(step).map_err(rejected)?;
        if part.len() > 1 && part.len() + text.len() + 2 > PART_BYTES {
            part.push(']');
            parts.push(std::mem::replace(&mut part, String::from("[")));
        }
        if part.len() > 1 {
            part.push(',');
        }
        part.push_str(&text);
    }
    part.push(']');
    parts.push(part);
    Ok(parts)
}

fn state_name(state: FirstLoadState) -> &'static str {
    match state {
        FirstLoadState::Applying => "applying",
        FirstLoadState::Done => "done",
        FirstLoadState::Cancelled => "cancelled",
    }
}

fn corrupt(job: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        key: format!("FIRSTLOAD#{job}"),
        message: e.to_string(),
    }
}

/// The load as stored: its JSON, with the attributes that conditions move taking precedence.
fn load_of(job: &str, item: &Item) -> Result<FirstLoad, StoreError> {
    let text = get_s(item, "load").unwrap_or_default();
    let mut load: FirstLoad = serde_json::from_str(&text).map_err(|e| corrupt(job, e))?;
    load.done = get_n(item, "done").unwrap_or_default().max(0) as usize;
    load.state = match get_s(item, "state").as_deref() {
        Some("done") => FirstLoadState::Done,
        Some("cancelled") => FirstLoadState::Cancelled,
        _ => FirstLoadState::Applying,
    };
    Ok(load)
}

#[async_trait]
impl FirstLoadStore for DynamoStateStore {
    async fn first_load(&self, job: &str) -> Result<Option<FirstLoad>, StoreError> {
        let out = (self.client.get_item())
            .table_name(&self.table)
            .set_key(Some(key(job, META.into())))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        out.item().map(|item| load_of(job, item)).transpose()
    }

    async fn put_first_load_chunk(
        &self,
        load: &FirstLoad,
        index: usize,
        steps: &[Step],
    ) -> Result<(), StoreError> {
        let expires = n(load.started_ms / 1000 + FIRST_LOAD_TTL_S);
        let mut requests = Vec::new();
        for (p, text) in parts(steps)?.into_iter().enumerate() {
            let sk = format!("{}#{p:04}", chunk_sk(&load.run, index));
            let mut item = key(&load.job, sk);
            item.insert("steps".into(), s(text));
            item.insert("expires_at".into(), expires.clone());
            let put = PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map_err(rejected)?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        self.batch_write(requests).await
    }

    async fn begin_first_load(&self, load: &FirstLoad) -> Result<bool, StoreError> {
        let mut item = key(&load.job, META.into());
        let text = serde_json::to_string(load).map_err(rejected)?;
        item.insert("load".into(), s(text));
        item.insert("run".into(), s(&load.run));
        item.insert("state".into(), s(state_name(load.state)));
        item.insert("done".into(), n(load.done));
        item.insert(
            "expires_at".into(),
            n(load.started_ms / 1000 + FIRST_LOAD_TTL_S),
        );
        let sent = (self.client.put_item())
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #state <> :applying OR #run = :run")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":applying", s("applying"))
            .expression_attribute_values(":run", s(&load.run))
            .send()
            .await;
        written(sent)
    }

    async fn first_load_chunk(
        &self,
        job: &str,
        run: &str,
        index: usize,
    ) -> Result<Vec<Step>, StoreError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":pk", partition(job))
                    .expression_attribute_values(":prefix", s(format!("{}#", chunk_sk(run, index))))
                    .consistent_read(true)
            })
            .await?;
        if items.is_empty() {
            return Err(corrupt(
                job,
                format!("chunk {index} of load {run} is not stored"),
            ));
        }
        let mut steps = Vec::new();
        for item in &items {
            let text = get_s(item, "steps").unwrap_or_default();
            let part: Vec<Step> = serde_json::from_str(&text).map_err(|e| corrupt(job, e))?;
            steps.extend(part);
        }
        Ok(steps)
    }

    async fn advance_first_load(
        &self,
        job: &str,
        run: &str,
        (done, state): (usize, FirstLoadState),
    ) -> Result<bool, StoreError> {
        let sent = (self.client.update_item())
            .table_name(&self.table)
            .set_key(Some(key(job, META.into())))
            .update_expression("SET done = :next, #state = :state")
            .condition_expression("#run = :run AND #state = :applying AND done = :done")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#run", "run")
            .expression_attribute_values(":next", n(done + 1))
            .expression_attribute_values(":state", s(state_name(state)))
            .expression_attribute_values(":run", s(run))
            .expression_attribute_values(":applying", s("applying"))
            .expression_attribute_values(":done", n(done))
            .send()
            .await;
        written(sent)
    }

    async fn cancel_first_load(&self, job: &str) -> Result<bool, StoreError> {
        let sent = (self.client.update_item())
            .table_name(&self.table)
            .set_key(Some(key(job, META.into())))
            .update_expression("SET #state = :cancelled")
            .condition_expression("#state = :applying")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":cancelled", s("cancelled"))
            .expression_attribute_values(":applying", s("applying"))
            .send()
            .await;
        written(sent)
    }
}
