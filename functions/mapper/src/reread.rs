//! Hinted changes (an Outbound Message's notifications) completed with their records as
//! Salesforce shows them now, one read per object a batch: nothing a message says about a
//! record's values is written, since nothing signs it.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use shared::domain::change::Reading;
use shared::domain::{ChangeEvent, Fields, System};
use shared::ports::SfSelect;

use crate::give_up::{failing, Failures};
use crate::MapperFn;

/// Ids a read asks for at once: 200 ids of 18 characters keep the query far under Salesforce's
/// URI limit of 16,384 bytes.
pub(crate) const IDS_PER_READ: usize = 200;

impl MapperFn {
    /// Replaces each hint of `changes` by the record read from Salesforce (a record the read no
    /// longer finds is a delete). The messages of an object whose read failed are tried again,
    /// and left out of this batch.
    pub(crate) async fn reread(&self, changes: &mut Vec<(String, ChangeEvent)>) -> Failures {
        let mut by_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, c) in changes.iter().filter(|(_, c)| c.read == Reading::Due) {
            let ids = by_object.entry(c.object.clone()).or_default();
            if !ids.contains(&c.record_id) {
                ids.push(c.record_id.clone());
            }
        }
        let mut failed = Failures::new();
        let mut current: HashMap<(String, String), Fields> = HashMap::new();
        for (object, ids) in by_object {
            match self.read_current(&object, &ids).await {
                Ok(records) => current.extend(
                    records
                        .into_iter()
                        .map(|(id, fields)| ((object.clone(), short(&id)), fields)),
                ),
                Err(e) => {
                    tracing::warn!(object = %object, records = ids.len(), error = %e, "hinted records not read; retrying their messages");
                    if matches!(e, shared::ports::ApiError::Auth { .. }) {
                        let jobs = self.jobs.for_source(System::Salesforce, &object);
                        let jobs: Vec<&str> = jobs.map(|j| j.name.as_str()).collect();
                        self.deactivate(
                            &jobs,
                            &format!("Salesforce refused the connected app's credentials ({e})"),
                        )
                        .await;
                    }
                    let why =
                        format!("the changed {object} could not be read from Salesforce: {e}");
                    failed.extend(
                        (changes.iter())
                            .filter(|(_, c)| c.read == Reading::Due && c.object == object)
                            .map(|(id, _)| (id.clone(), why.clone())),
                    );
                }
            }
        }
        changes.retain(|(id, _)| !failing(&failed, id));
        *changes = std::mem::take(changes)
            .into_iter()
            .map(|(id, change)| match change.read {
                Reading::Due => {
                    let key = (change.object.clone(), short(&change.record_id));
                    let now = current.get(&key).cloned();
                    (id, change.with_current(now))
                }
                _ => (id, change),
            })
            .collect();
        failed
    }

    /// The records `ids` of `object` with every field a job reading it maps, by id.
    pub(crate) async fn read_current(
        &self,
        object: &str,
        ids: &[String],
    ) -> Result<Vec<(String, Fields)>, shared::ports::ApiError> {
        let jobs = self.jobs.for_source(System::Salesforce, object);
        let mut fields: Vec<String> = vec!["Id".into()];
        for job in jobs {
            for f in job.salesforce_read_fields() {
                if !fields.contains(&f) {
                    fields.push(f);
                }
            }
        }
        let mut records = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_READ) {
            let select = SfSelect {
                fields: fields.clone(),
                conditions: vec![("Id".into(), chunk.to_vec())],
                ..SfSelect::from_object(object)
            };
            for row in self.salesforce.select(&select).await? {
                if let Some(Value::String(id)) = row.get("Id") {
                    records.push((id.clone(), row));
                }
            }
        }
        Ok(records)
    }
}

/// A record id by its first 15 characters: the same record whether written with 15 or 18 (the
/// last 3 only restate the case of the first 15).
pub(crate) fn short(id: &str) -> String {
    id.chars().take(15).collect()
}
