//! Salesforce merges found among the deletes: a merge deletes the losing records with
//! `MasterRecordId` set, which only `queryAll` reads (one read per object a batch). A merged
//! record's delete learns its master and the master's pair; when the losing record's pair moves
//! to a master without one, the master, read back, is added to the batch to take it over.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use shared::domain::merge::{self, Merge, MergeAction};
use shared::domain::{ChangeEvent, ChangeOrigin, Job, LedgerKey, Mapper, Operation, System};
use shared::ports::{ApiError, SfSelect};

use crate::give_up::{failing, Failures};
use crate::reread::{short, IDS_PER_READ};
use crate::MapperFn;

/// The field a merge sets on the records it deletes.
const MASTER_FIELD: &str = "MasterRecordId";

/// A losing record whose pair moves to its master.
struct Takeover {
    message: String,
    object: String,
    loser: String,
    master: String,
    gsid: String,
    gsid_field: String,
    origin: ChangeOrigin,
    received_at_ms: i64,
}

impl MapperFn {
    /// Notes on each Salesforce delete of `changes` that was a merge the record it was merged
    /// into and that record's pair, and adds the masters that take over a pair. Messages whose
    /// reads failed are tried again.
    pub(crate) async fn merges(&self, changes: &mut Vec<(String, ChangeEvent)>) -> Failures {
        let mut failed = Failures::new();
        let mut masters: HashMap<(String, String), String> = HashMap::new();
        for (object, ids) in self.mergeable_deletes(changes) {
            match self.masters_of(&object, &ids).await {
                Ok(found) => masters.extend(
                    (found.into_iter()).map(|(loser, master)| ((object.clone(), loser), master)),
                ),
                Err(e) => {
                    let why = format!("whether the deleted {object} were merged could not be read from Salesforce: {e}");
                    failed.extend(
                        (changes.iter())
                            .filter(|(_, c)| is_delete(c) && c.object == object)
                            .map(|(id, _)| (id.clone(), why.clone())),
                    );
                }
            }
        }
        changes.retain(|(id, _)| !failing(&failed, id));
        let mut takeovers = Vec::new();
        for (message, change) in changes.iter_mut() {
            let key = (change.object.clone(), short(&change.record_id));
            let Some(master) = masters.get(&key) else {
                continue;
            };
            match self.note_merge(change, master).await {
                Ok(Some(takeover)) => takeovers.push(Takeover {
                    message: message.clone(),
                    ..takeover
                }),
                Ok(None) => {}
                Err(e) => failed.push((
                    message.clone(),
                    format!(
                        "the pair of {master}, which {} was merged into, could not be read: {e}",
                        change.record_id
                    ),
                )),
            }
        }
        failed.extend(self.take_over(takeovers, changes).await);
        failed
    }

    /// The Salesforce deletes of `changes` whose object can be merged (its describe has
    /// `MasterRecordId`), by object.
    fn mergeable_deletes(
        &self,
        changes: &[(String, ChangeEvent)],
    ) -> BTreeMap<String, Vec<String>> {
        let mut by_object: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (_, c) in changes.iter().filter(|(_, c)| is_delete(c)) {
            let described = self.schemas.get(System::Salesforce, &c.object);
            if described.and_then(|o| o.field(MASTER_FIELD)).is_some() {
                by_object
                    .entry(c.object.clone())
                    .or_default()
                    .push(c.record_id.clone());
            }
        }
        by_object
    }

    /// Of records `ids` of `object`, those merged into another: (loser, master), the loser by
    /// its first 15 characters.
    async fn masters_of(
        &self,
        object: &str,
        ids: &[String],
    ) -> Result<Vec<(String, String)>, ApiError> {
        let mut merged = Vec::new();
        for chunk in ids.chunks(IDS_PER_READ) {
            let select = SfSelect {
                fields: vec!["Id".into(), MASTER_FIELD.into()],
                conditions: vec![("Id".into(), chunk.to_vec())],
                include_deleted: true,
                ..SfSelect::from_object(object)
            };
            for row in self.salesforce.select(&select).await? {
                if let (Some(Value::String(id)), Some(Value::String(master))) =
                    (row.get("Id"), row.get(MASTER_FIELD))
                {
                    merged.push((short(id), master.clone()));
                }
            }
        }
        Ok(merged)
    }

    /// Notes on `change`, a record merged into `master`, the master and its pair (for the first
    /// job that pairs by GSID); the takeover when the record's pair moves to the master.
    async fn note_merge(
        &self,
        change: &mut ChangeEvent,
        master: &str,
    ) -> Result<Option<Takeover>, shared::ports::StoreError> {
        let jobs: Vec<&Job> = self.jobs.for_change(change);
        let Some((job, gsid_field)) =
            (jobs.iter()).find_map(|j| j.gsid_external_field().map(|f| (*j, f.to_string())))
        else {
            change.merge = Some(Merge::Lost {
                into: master.to_string(),
                into_pair: None,
            });
            return Ok(None);
        };
        let master_pair = match self.ledger.key_of_salesforce_id(&job.name, master).await? {
            Some(LedgerKey::Gainsight(gsid)) => Some(gsid),
            _ => None,
        };
        let loser_key = Mapper::new(job, Some(&self.schemas)).ledger_key(change);
        let loser_pair = loser_key.as_ref().and_then(LedgerKey::gainsight_id);
        let action = merge::action(loser_pair, master_pair.as_deref());
        change.merge = Some(Merge::Lost {
            into: master.to_string(),
            into_pair: master_pair,
        });
        let MergeAction::Repoint { gsid } = action else {
            return Ok(None);
        };
        Ok(Some(Takeover {
            message: String::new(),
            object: change.object.clone(),
            loser: change.record_id.clone(),
            master: master.to_string(),
            gsid,
            gsid_field,
            origin: change.origin,
            received_at_ms: change.received_at_ms,
        }))
    }

    /// Adds to `changes` each master of `takeovers`, read back from Salesforce, carrying the GSID
    /// of the pair it takes over. A master no longer found (deleted since) takes nothing over.
    async fn take_over(
        &self,
        takeovers: Vec<Takeover>,
        changes: &mut Vec<(String, ChangeEvent)>,
    ) -> Failures {
        let mut by_object: BTreeMap<String, Vec<Takeover>> = BTreeMap::new();
        for t in takeovers {
            by_object.entry(t.object.clone()).or_default().push(t);
        }
        let mut failed = Failures::new();
        for (object, takeovers) in by_object {
            let ids: Vec<String> = takeovers.iter().map(|t| t.master.clone()).collect();
            let current = match self.read_current(&object, &ids).await {
                Ok(records) => records,
                Err(e) => {
                    let why =
                        format!("the {object} merged into could not be read from Salesforce: {e}");
                    failed.extend(takeovers.iter().map(|t| (t.message.clone(), why.clone())));
                    continue;
                }
            };
            let found: HashMap<String, _> = (current.into_iter())
                .map(|(id, f)| (short(&id), f))
                .collect();
            for t in takeovers {
                let Some(fields) = found.get(&short(&t.master)).cloned() else {
                    tracing::warn!(object = %object, master = %t.master, "the record merged into is gone; no pair moves");
                    continue;
                };
                let event = format!("merge/{}/{}", t.loser, t.master);
                let hint =
                    ChangeEvent::salesforce_hint(&object, &t.master, event, t.received_at_ms);
                let mut master = hint.with_current(Some(fields));
                master.fields.insert(t.gsid_field, Value::String(t.gsid));
                master.merge = Some(Merge::TakesOver { loser: t.loser });
                master.origin = t.origin;
                changes.push((t.message, master));
            }
        }
        failed
    }
}

fn is_delete(change: &ChangeEvent) -> bool {
    change.source == System::Salesforce && change.operation == Operation::Deleted
}
