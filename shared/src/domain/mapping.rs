//! Applies a job to a change: decides write, ignore or reject, and builds the write command.

use sha2::{Digest, Sha256};

use super::{
    ChangeEvent, ChangeOrigin, Fields, Job, LedgerRecord, OnCreated, OnUpdated, Operation,
    RecordKey, System, WriteCommand,
};

/// What the mapper decided for one change and job.
#[derive(Clone, Debug, PartialEq)]
pub enum MapOutcome {
    Write(WriteCommand),
    /// Nothing to do, on purpose (echo, delete, do-nothing action, stale); logged with the reason.
    Ignored {
        gainsight_id: Option<String>,
        reason: String,
    },
    /// The change cannot be synced as it is; marked error in the ledger with the reason.
    Rejected {
        gainsight_id: Option<String>,
        reason: String,
    },
}

/// Stateless mapping engine over one job.
pub struct Mapper<'a> {
    job: &'a Job,
}

impl<'a> Mapper<'a> {
    pub fn new(job: &'a Job) -> Self {
        Self { job }
    }

    /// The Gainsight id a change refers to, if it carries one.
    pub fn gainsight_id(&self, change: &ChangeEvent) -> Option<String> {
        match change.source {
            System::Gainsight => Some(change.record_id.clone()),
            System::Salesforce => text(change.fields.get(&self.job.key().salesforce)),
        }
    }

    /// Maps `change` (from the job's source object) given the ledger record of the pair, if any.
    pub fn map(&self, change: &ChangeEvent, ledger: Option<&LedgerRecord>) -> MapOutcome {
        let job = self.job;
        let source = change.source;
        let target = source.other();
        let gainsight_id = self.gainsight_id(change);
        let ignored = |reason: String| MapOutcome::Ignored {
            gainsight_id: gainsight_id.clone(),
            reason,
        };
        let rejected = |reason: String| MapOutcome::Rejected {
            gainsight_id: gainsight_id.clone(),
            reason,
        };

        match (
            change.operation,
            job.events.on_created,
            job.events.on_updated,
        ) {
            (Operation::Deleted, _, _) => {
                return ignored(format!(
                    "{} {} was deleted in {}; deletes are logged, not propagated",
                    change.object,
                    change.record_id,
                    source.as_str()
                ))
            }
            (Operation::Created, OnCreated::DoNothing, _) => {
                return ignored(format!("job {} does nothing on created", job.name))
            }
            (Operation::Updated, _, OnUpdated::DoNothing) => {
                return ignored(format!("job {} does nothing on updated", job.name))
            }
            _ => {}
        }

        if let Some(changed) = &change.changed_fields {
            if !changed.is_empty() && changed.iter().all(|f| job.is_identifier(source, f)) {
                return ignored(format!(
                    "only identifiers changed ({}); identifier changes alone do not trigger a write",
                    changed.join(", ")
                ));
            }
        }

        let key_field = &job.key();
        let Some(key_value) = gainsight_id.clone() else {
            return rejected(format!(
                "{} {} has no value in identifier {}",
                change.object, change.record_id, key_field.salesforce
            ));
        };

        if let Some(previous) = ledger.and_then(|l| l.source_changed_at_ms) {
            if previous > change.occurred_at_ms {
                return ignored(format!(
                    "stale: a change from {} was already written; this one is from {}",
                    crate::time::rfc3339(previous),
                    crate::time::rfc3339(change.occurred_at_ms)
                ));
            }
        }

        let mut fields = Fields::new();
        for mapping in job.fields.iter().filter(|m| m.flow.carries_from(source)) {
            if let Some(value) = change.fields.get(mapping.field_in(source)) {
                fields.insert(mapping.field_in(target).to_string(), value.clone());
            }
        }
        if fields.is_empty() {
            return ignored(format!(
                "the change carries none of the fields job {} maps from {}",
                job.name,
                source.as_str()
            ));
        }

        let values_hash = values_hash(&fields);
        // An operator's resync rewrites on purpose, even when the values look unchanged.
        let forced = change.origin == ChangeOrigin::Resync;
        if !forced && ledger.and_then(|l| l.values_hash.as_deref()) == Some(values_hash.as_str()) {
            return ignored(
                "values equal those last written (echo of our own write or no change)".into(),
            );
        }

        let key = match target {
            System::Salesforce => {
                fields.insert(key_field.salesforce.clone(), key_value.clone().into());
                RecordKey::ExternalId {
                    field: key_field.salesforce.clone(),
                    value: key_value.clone(),
                }
            }
            System::Gainsight => RecordKey::Id {
                value: key_value.clone(),
            },
        };

        MapOutcome::Write(WriteCommand {
            job: job.name.clone(),
            target,
            object: job.object_in(target).to_string(),
            key,
            fields,
            gainsight_id: key_value,
            values_hash,
            event_id: change.event_id.clone(),
            source_changed_at_ms: change.occurred_at_ms,
            received_at_ms: change.received_at_ms,
        })
    }
}

/// SHA-256 of the canonical JSON of `fields` (keys sorted), hex encoded.
pub fn values_hash(fields: &Fields) -> String {
    let canonical = serde_json::to_vec(fields).unwrap_or_default();
    hex::encode(Sha256::digest(&canonical))
}

fn text(value: Option<&serde_json::Value>) -> Option<String> {
    match value? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Jobs;
    use serde_json::json;

    fn change(fields: serde_json::Value, op: Operation) -> ChangeEvent {
        ChangeEvent {
            event_id: "ev-1".into(),
            source: System::Gainsight,
            object: "Company".into(),
            record_id: "1P02GS".into(),
            operation: op,
            occurred_at_ms: 1_700_000_000_000,
            fields: fields.as_object().cloned().unwrap(),
            changed_fields: None,
            origin: ChangeOrigin::Webhook,
            received_at_ms: 1_700_000_000_500,
        }
    }

    fn job() -> Job {
        Jobs::builtin().get("company_account").cloned().unwrap()
    }

    #[test]
    fn maps_company_to_account_upsert_on_external_id() {
        let job = job();
        let outcome = Mapper::new(&job).map(
            &change(
                json!({"Gsid": "1P02GS", "Name": "Acme", "Arr": 1200.5, "Unmapped": 1}),
                Operation::Updated,
            ),
            None,
        );
        let MapOutcome::Write(cmd) = outcome else {
            panic!("expected a write, got {outcome:?}")
        };
        assert_eq!(cmd.target, System::Salesforce);
        assert_eq!(cmd.object, "Account");
        assert_eq!(
            cmd.key,
            RecordKey::ExternalId {
                field: "Gainsight_Company_Id__c".into(),
                value: "1P02GS".into()
            }
        );
        assert_eq!(
            serde_json::Value::Object(cmd.fields.clone()),
            json!({"Name": "Acme", "AnnualRevenue": 1200.5, "Gainsight_Company_Id__c": "1P02GS"})
        );
        assert_eq!(cmd.gainsight_id, "1P02GS");
    }

    #[test]
    fn ignores_echoes_deletes_stale_and_identifier_only_changes() {
        let job = job();
        let mapper = Mapper::new(&job);
        let c = change(json!({"Name": "Acme"}), Operation::Updated);
        let MapOutcome::Write(cmd) = mapper.map(&c, None) else {
            panic!()
        };

        let ledger = LedgerRecord {
            values_hash: Some(cmd.values_hash.clone()),
            ..Default::default()
        };
        assert!(
            matches!(mapper.map(&c, Some(&ledger)), MapOutcome::Ignored { reason, .. } if reason.contains("echo"))
        );

        let newer = LedgerRecord {
            source_changed_at_ms: Some(c.occurred_at_ms + 1),
            ..Default::default()
        };
        assert!(
            matches!(mapper.map(&c, Some(&newer)), MapOutcome::Ignored { reason, .. } if reason.starts_with("stale"))
        );

        let deleted = change(json!({"Name": "Acme"}), Operation::Deleted);
        assert!(
            matches!(mapper.map(&deleted, None), MapOutcome::Ignored { reason, .. } if reason.contains("not propagated"))
        );

        let mut ids_only = change(
            json!({"Gsid": "1P02GS", "Name": "Acme"}),
            Operation::Updated,
        );
        ids_only.changed_fields = Some(vec!["Gsid".into()]);
        assert!(
            matches!(mapper.map(&ids_only, None), MapOutcome::Ignored { reason, .. } if reason.contains("only identifiers"))
        );

        let nothing = change(json!({"Unmapped": 3}), Operation::Updated);
        assert!(matches!(
            mapper.map(&nothing, None),
            MapOutcome::Ignored { .. }
        ));
    }

    #[test]
    fn do_nothing_actions_are_honoured() {
        let mut job = job();
        job.events.on_updated = OnUpdated::DoNothing;
        job.events.on_created = OnCreated::DoNothing;
        let mapper = Mapper::new(&job);
        for op in [Operation::Created, Operation::Updated] {
            assert!(matches!(
                mapper.map(&change(json!({"Name": "A"}), op), None),
                MapOutcome::Ignored { .. }
            ));
        }
    }

    #[test]
    fn hash_is_order_independent() {
        let a: Fields = json!({"a": 1, "b": 2}).as_object().cloned().unwrap();
        let mut b = Fields::new();
        b.insert("b".into(), 2.into());
        b.insert("a".into(), 1.into());
        assert_eq!(values_hash(&a), values_hash(&b));
        b.insert("a".into(), 3.into());
        assert_ne!(values_hash(&a), values_hash(&b));
    }
}
