//! First loads in the state table: one partition per job, `FIRSTLOAD#{job}`, holding its load in
//! progress or its last one (`META`: the load as JSON, with its run, state and checkpoint as
//! attributes the conditions read) and that load's chunks of steps (`CHUNK#{run}#{index}`, the
//! steps as JSON). Everything expires with the table's TTL 30 days after the load began.

use super::*;
use crate::domain::first_load::steps::{FirstLoad, FirstLoadState, Step};
use crate::ports::FirstLoadStore;

/// How long a load's items are kept after it began.
const FIRST_LOAD_TTL_S: i64 = 30 * 86_400;
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

impl DynamoStateStore {
    async fn put_chunks(&self, load: &FirstLoad, chunks: &[Vec<Step>]) -> Result<(), StoreError> {
        let expires = n(load.started_ms / 1000 + FIRST_LOAD_TTL_S);
        let requests = (chunks.iter().enumerate())
            .map(|(i, steps)| {
                let mut item = key(&load.job, chunk_sk(&load.run, i));
                let text = serde_json::to_string(steps).map_err(rejected)?;
                item.insert("steps".into(), s(text));
                item.insert("expires_at".into(), expires.clone());
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(rejected)?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.batch_write(requests).await
    }
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

    async fn begin_first_load(
        &self,
        load: &FirstLoad,
        chunks: &[Vec<Step>],
    ) -> Result<bool, StoreError> {
        // The chunks first: whoever reads the load finds its chunks there.
        self.put_chunks(load, chunks).await?;
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
        let out = (self.client.get_item())
            .table_name(&self.table)
            .set_key(Some(key(job, chunk_sk(run, index))))
            .consistent_read(true)
            .send()
            .await
            .map_err(store_error)?;
        let text = (out.item())
            .and_then(|item| get_s(item, "steps"))
            .ok_or_else(|| corrupt(job, format!("chunk {index} of load {run} is not stored")))?;
        serde_json::from_str(&text).map_err(|e| corrupt(job, e))
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
