//! A write whose Salesforce twin no longer exists, made again as a creation when the job's
//! `on_missing: create` says so.

use serde_json::Value;

use super::{Job, System, WriteCommand, WriteMode, Writeback};
use crate::domain::{OnMissing, RecordKey};

/// `cmd` made again as the creation of a new twin: an upsert on the external id field holding
/// the GSID (Salesforce does not match a deleted record, so it creates one), carrying every value
/// the change had, those it found unchanged too (the new record has none of them), and writing
/// the new id back to the source record. `None` when the job keeps the error (`on_missing:
/// error`), the target is Gainsight (its GSID keys the pair), the pair has no GSID, or the write
/// was already an upsert on the GSID.
pub fn recreate(job: &Job, cmd: &WriteCommand) -> Option<WriteCommand> {
    if job.on_missing != OnMissing::Create || cmd.target != System::Salesforce {
        return None;
    }
    if matches!(cmd.key, RecordKey::ExternalId { .. }) {
        return None;
    }
    let (field, gsid) = (job.gsid_external_field()?, cmd.ledger_key.gainsight_id()?);
    let mut new = cmd.clone();
    new.key = RecordKey::ExternalId {
        field: field.to_string(),
        value: gsid.to_string(),
    };
    new.mode = WriteMode::Upsert;
    new.salesforce_id = None;
    new.fields
        .insert(field.to_string(), Value::String(gsid.to_string()));
    for (ledger_field, unchanged) in std::mem::take(&mut new.unchanged) {
        new.fields
            .entry(unchanged.target_field)
            .or_insert(unchanged.value);
        new.field_states.insert(ledger_field, unchanged.state);
    }
    new.writeback = job.sfid_gainsight_field().map(|f| Writeback {
        system: System::Gainsight,
        object: job.gainsight.object.clone(),
        field: f.to_string(),
    });
    Some(new)
}

/// What the ledger says of a pair whose twin is gone and is being made again.
pub fn recreating(cmd: &WriteCommand, message: &str) -> String {
    let id = match &cmd.key {
        RecordKey::Id { value } | RecordKey::ExternalId { value, .. } => value.as_str(),
    };
    format!(
        "the {} {} {id} of this pair no longer exists ({message}); a new one is created from this change's values, as the job's on_missing: create says",
        cmd.target.label(),
        cmd.object,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Jobs, LedgerKey, Unchanged};

    fn job(on_missing: OnMissing) -> Job {
        let mut job = Jobs::builtin().get("company_account").cloned().unwrap();
        job.on_missing = on_missing;
        job
    }

    fn update_by_id() -> WriteCommand {
        let mut fields = crate::domain::Fields::new();
        fields.insert("AnnualRevenue".into(), Value::from(250_000));
        let mut cmd: WriteCommand = serde_json::from_value(serde_json::json!({
            "job": "company_account", "target": "salesforce", "object": "Account",
            "key": {"by": "id", "value": "001OLD"}, "mode": "update", "fields": fields,
            "ledger_key": "G1", "salesforce_id": "001OLD", "source": "gainsight",
            "event_id": "e1", "source_changed_at_ms": 10, "received_at_ms": 10
        }))
        .unwrap();
        cmd.ledger_key = LedgerKey::Gainsight("G1".into());
        cmd.unchanged.insert(
            "Name".into(),
            Unchanged {
                target_field: "Name".into(),
                value: Value::from("Acme"),
                state: crate::domain::FieldState {
                    gainsight: 1,
                    salesforce: 1,
                    from: System::Gainsight,
                    changed_at_ms: 5,
                    synced_at_ms: 0,
                },
            },
        );
        cmd
    }

    #[test]
    fn a_gone_twin_is_created_again_by_its_gsid_with_every_value_and_learns_its_id_back() {
        let new = recreate(&job(OnMissing::Create), &update_by_id()).unwrap();
        assert_eq!(
            new.key,
            RecordKey::ExternalId {
                field: "Gainsight_Company_Id__c".into(),
                value: "G1".into()
            }
        );
        assert_eq!(new.mode, WriteMode::Upsert);
        assert_eq!(new.salesforce_id, None, "the old Id is forgotten");
        assert_eq!(new.fields["AnnualRevenue"], 250_000);
        assert_eq!(
            new.fields["Name"], "Acme",
            "unchanged values are written too"
        );
        assert_eq!(new.fields["Gainsight_Company_Id__c"], "G1");
        assert!(new.unchanged.is_empty() && new.field_states.contains_key("Name"));
        let wb = new.writeback.unwrap();
        assert_eq!(
            (wb.object.as_str(), wb.field.as_str()),
            ("Company", "SfdcAccountId")
        );
    }

    #[test]
    fn the_error_stays_unless_the_job_creates_and_can_find_the_new_twin() {
        let cmd = update_by_id();
        assert!(recreate(&job(OnMissing::Error), &cmd).is_none());
        let mut to_gainsight = cmd.clone();
        to_gainsight.target = System::Gainsight;
        assert!(recreate(&job(OnMissing::Create), &to_gainsight).is_none());
        let mut no_gsid = cmd.clone();
        no_gsid.ledger_key = LedgerKey::SalesforceOnly("001OLD".into());
        assert!(recreate(&job(OnMissing::Create), &no_gsid).is_none());
        let mut by_gsid = cmd;
        by_gsid.key = RecordKey::ExternalId {
            field: "Gainsight_Company_Id__c".into(),
            value: "G1".into(),
        };
        assert!(recreate(&job(OnMissing::Create), &by_gsid).is_none());
    }
}
