//! Salesforce changes that name only the record's Id, given the GSID of their pair: a change
//! event carries only the fields that changed (not the GSID field), and a delete only the Id.
//! The ledger's forwarding notes say which pair a Salesforce Id moved to (one batched read per
//! job a batch); a delete whose Id has no note is looked up in the Salesforce-Id index (one
//! query per deleted record), so that it is recorded on its pair.

use std::collections::BTreeMap;

use serde_json::Value;
use shared::domain::{ChangeEvent, ChangeOrigin, Job, LedgerKey, Mapper, Operation, System};

use crate::give_up::Failures;
use crate::MapperFn;

impl MapperFn {
    /// Gives each Salesforce change of `changes` keyed only by its Salesforce Id the GSID of its
    /// pair, where the ledger has one. Messages whose read failed are tried again.
    pub(crate) async fn key_by_pairs(&self, changes: &mut [(String, ChangeEvent)]) -> Failures {
        let mut failed = self.key_by_notes(changes).await;
        failed.extend(self.key_deletes(changes).await);
        failed
    }

    /// The jobs of `change` pairing by GSID, each with the Salesforce field holding it, when the
    /// change is keyed only by its Salesforce Id for that job.
    fn unpaired<'a>(&'a self, change: &'a ChangeEvent) -> Vec<(&'a Job, String)> {
        if change.source != System::Salesforce || is_new_to_the_sync(change) {
            return Vec::new();
        }
        (self.jobs.for_change(change).into_iter())
            .filter(|job| {
                let key = Mapper::new(job, Some(&self.schemas)).ledger_key(change);
                matches!(key, Some(LedgerKey::SalesforceOnly(_)))
            })
            .filter_map(|job| Some((job, job.gsid_external_field()?.to_string())))
            .collect()
    }

    /// Keys the changes whose Salesforce Id has a forwarding note by the pair it names.
    async fn key_by_notes(&self, changes: &mut [(String, ChangeEvent)]) -> Failures {
        // (change, job, the job's GSID field) for each change a job keys by its Salesforce Id.
        let mut unpaired: BTreeMap<String, Vec<(usize, String)>> = BTreeMap::new();
        for (i, (_, change)) in changes.iter().enumerate() {
            for (job, field) in self.unpaired(change) {
                unpaired
                    .entry(job.name.clone())
                    .or_default()
                    .push((i, field));
            }
        }
        let mut failed = Failures::new();
        for (job, wanted) in unpaired {
            let keys: Vec<LedgerKey> = (wanted.iter())
                .map(|(i, _)| LedgerKey::SalesforceOnly(changes[*i].1.record_id.clone()))
                .collect();
            let notes = match self.ledger.moves_of(&job, &keys).await {
                Ok(notes) => notes,
                Err(e) => {
                    let why = format!("the pairs of the changed records could not be read: {e}");
                    failed.extend(
                        wanted
                            .iter()
                            .map(|(i, _)| (changes[*i].0.clone(), why.clone())),
                    );
                    continue;
                }
            };
            for ((i, field), key) in wanted.into_iter().zip(&keys) {
                if let Some(LedgerKey::Gainsight(gsid)) = notes.get(key) {
                    changes[i]
                        .1
                        .fields
                        .insert(field, Value::String(gsid.clone()));
                }
            }
        }
        failed
    }

    /// Gives each Salesforce delete or restore still keyed by its Id the GSID of its pair, when
    /// the Salesforce-Id index links one, so that it is recorded there.
    async fn key_deletes(&self, changes: &mut [(String, ChangeEvent)]) -> Failures {
        let mut failed = Failures::new();
        for (id, change) in changes.iter_mut() {
            if !matches!(change.operation, Operation::Deleted | Operation::Restored) {
                continue;
            }
            let unpaired: Vec<(String, String)> = (self.unpaired(change).into_iter())
                .map(|(job, field)| (job.name.clone(), field))
                .collect();
            for (job, gsid_field) in unpaired {
                match self
                    .ledger
                    .key_of_salesforce_id(&job, &change.record_id)
                    .await
                {
                    Ok(Some(LedgerKey::Gainsight(gsid))) => {
                        change.fields.insert(gsid_field, Value::String(gsid));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        failed.push((
                            id.clone(),
                            format!("the deleted record's pair could not be read: {e}"),
                        ));
                    }
                }
            }
        }
        failed
    }
}

/// A record a person just created in Salesforce, as its change event says: its Id is new, so no
/// pair can have moved to it yet (the records the sync creates come back as its own changes,
/// which never get this far), and there is no note to read.
fn is_new_to_the_sync(change: &ChangeEvent) -> bool {
    change.origin == ChangeOrigin::ChangeDataCapture && change.operation == Operation::Created
}
