//! Deletes from Salesforce, recorded on their pair: a delete names only the record's Id, so the
//! pair it belongs to is found by that Id in the ledger (one index read per deleted record).

use serde_json::Value;
use shared::domain::{ChangeEvent, LedgerKey, Mapper, Operation, System};

use crate::give_up::Failures;
use crate::MapperFn;

impl MapperFn {
    /// Gives each Salesforce delete of `changes` the GSID of its pair, when the ledger links
    /// one, so that the delete is recorded there. Messages whose read failed are tried again.
    pub(crate) async fn key_deletes(&self, changes: &mut [(String, ChangeEvent)]) -> Failures {
        let mut failed = Failures::new();
        for (id, change) in changes.iter_mut() {
            if change.operation != Operation::Deleted || change.source != System::Salesforce {
                continue;
            }
            let names: Vec<String> = (self.jobs.for_change(change).iter())
                .map(|j| j.name.clone())
                .collect();
            for job in names.iter().filter_map(|n| self.jobs.get(n)) {
                let mapper = Mapper::new(job, Some(&self.schemas));
                if !matches!(
                    mapper.ledger_key(change),
                    Some(LedgerKey::SalesforceOnly(_))
                ) {
                    continue;
                }
                let Some(gsid_field) = (job.identifiers.iter())
                    .find(|i| i.gainsight == job.gainsight.id_field)
                    .map(|i| i.salesforce.clone())
                else {
                    continue;
                };
                match self
                    .ledger
                    .key_of_salesforce_id(&job.name, &change.record_id)
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
