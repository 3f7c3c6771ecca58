//! The mapper's Timeline stages: only the activity types a job takes, the fixed values (a Task's
//! Status and Priority), the resolved WhoId and WhatId, and the attachments that go along.

use serde_json::Value;

use super::draft::Draft;
use super::{Context, Mapper, Stage};
use crate::domain::timeline::{
    not_uploaded, plan_attachments, type_of, Attachment, AttachmentPlan,
};
use crate::domain::{System, WriteCommand};

/// What a Timeline write carries besides its fields.
#[derive(Default)]
pub(super) struct ActivityExtras {
    attachments: Vec<Attachment>,
    skipped: Vec<String>,
}

impl ActivityExtras {
    /// Nothing new to upload (skips alone are no reason to write).
    pub(super) fn is_empty(&self) -> bool {
        self.attachments.is_empty()
    }

    pub(super) fn attach_to(self, command: &mut WriteCommand) {
        command.attachments = self.attachments;
        command.skipped = self.skipped;
    }
}

impl Mapper<'_> {
    /// An activity whose type the job does not take is ignored, saying which types it takes.
    pub(super) fn activity_type_gate(&self, cx: &Context) -> Stage<()> {
        let Some(timeline) = &self.job.timeline else {
            return Ok(());
        };
        let type_name = type_of(&cx.change.fields).unwrap_or("(none)");
        if timeline.takes(type_name) {
            return Ok(());
        }
        Err(cx.ignored(format!(
            "activity type {type_name} is not marked \"sync to Salesforce\": job {} takes {}",
            self.job.name,
            timeline.types.join(", ")
        )))
    }

    /// The attachments to upload with the write (after the switch, under 25 MB, not uploaded
    /// before) and the ones skipped, with why.
    pub(super) fn activity_extras(&self, cx: &Context) -> Stage<ActivityExtras> {
        let mut extras = ActivityExtras::default();
        let Some(timeline) = &self.job.timeline else {
            return Ok(extras);
        };
        if cx.target() != System::Salesforce {
            return Ok(extras);
        }
        let since = timeline
            .attachments_since_ms()
            .map_err(|e| cx.rejected(e))?;
        for plan in plan_attachments(&cx.change.fields, since) {
            match plan {
                AttachmentPlan::Upload(a) => extras.attachments.push(a),
                AttachmentPlan::Skip(_, why) => extras.skipped.push(why),
            }
        }
        let new: Vec<Attachment> = not_uploaded(&extras.attachments, cx.ledger)
            .into_iter()
            .cloned()
            .collect();
        extras.attachments = new;
        Ok(extras)
    }

    /// The job's fixed values and the participants resolved for the window. They do not make a
    /// write worth doing on their own (this runs after that gate), so an echo of our own
    /// writeback writes nothing.
    pub(super) fn activity_fields(&self, cx: &Context, draft: &mut Draft) -> Stage<()> {
        let Some(timeline) = &self.job.timeline else {
            return Ok(());
        };
        if cx.target() != System::Salesforce {
            return Ok(());
        }
        for (field, value) in &timeline.fixed {
            let converted = self
                .convert_for(System::Salesforce, field, value)
                .map_err(|e| cx.rejected(format!("data type validation failed: {e}")))?;
            draft.fields.insert(field.clone(), converted);
        }
        let participants = cx.change.participants.clone().unwrap_or_default();
        for (field, id) in [
            ("WhoId", participants.who_id),
            ("WhatId", participants.what_id),
        ] {
            if let Some(id) = id {
                draft.fields.insert(field.to_string(), Value::String(id));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::domain::schema::standard_schemas;
    use crate::domain::timeline::Participants;
    use crate::domain::{
        ChangeEvent, ChangeOrigin, Jobs, Lookups, MapOutcome, Mapper, Operation, RecordKey, System,
    };

    fn activity(type_name: &str, extra: serde_json::Value) -> ChangeEvent {
        let mut fields = json!({
            "Gsid": "1A01", "Subject": "Kick-off", "TypeName": type_name,
            "NotesPlainText": "Agenda", "ActivityDate": 1_767_225_600_000_i64, "DurationInMins": 30,
            "GsCompanyId": "1P02", "ModifiedDate": 5
        });
        fields
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().cloned().unwrap());
        ChangeEvent {
            event_id: "poll/1A01@5".into(),
            source: System::Gainsight,
            object: "activity_timeline".into(),
            record_id: "1A01".into(),
            operation: Operation::Updated,
            occurred_at_ms: 5,
            fields: fields.as_object().cloned().unwrap(),
            changed_fields: None,
            origin: ChangeOrigin::Poller,
            received_at_ms: 6,
            participants: Some(Participants {
                who_id: Some("003000000000001AAA".into()),
                what_id: Some("001000000000001AAA".into()),
            }),
            load: None,
            waiting_since_ms: None,
            read: Default::default(),
            changed_by: None,
            merge: None,
        }
    }

    fn map(job: &str, change: &ChangeEvent) -> MapOutcome {
        let (jobs, schemas) = (Jobs::builtin(), standard_schemas());
        Mapper::new(jobs.named(job).unwrap(), Some(&schemas)).map(change, None, &Lookups::default())
    }

    #[test]
    fn a_call_becomes_a_task_upserted_on_the_activity_gsid() {
        let MapOutcome::Write(commands) = map("activity_task", &activity("Call", json!({}))) else {
            panic!("expected a write");
        };
        let task = &commands[0];
        assert_eq!(task.object, "Task");
        assert_eq!(
            task.key,
            RecordKey::ExternalId {
                field: "Gainsight_Activity_Id__c".into(),
                value: "1A01".into()
            }
        );
        for (field, value) in [
            ("Status", json!("Completed")),
            ("Priority", json!("Normal")),
            ("WhoId", json!("003000000000001AAA")),
            ("WhatId", json!("001000000000001AAA")),
            ("Subject", json!("Kick-off")),
            ("Description", json!("Agenda")),
            ("ActivityDate", json!("2026-01-01")),
            ("Type", json!("Call")),
        ] {
            assert_eq!(task.fields.get(field), Some(&value), "{field}");
        }
        let writeback = task.writeback.as_ref().unwrap();
        assert_eq!(
            (writeback.object.as_str(), writeback.field.as_str()),
            ("activity_timeline", "SfTaskId")
        );
    }

    #[test]
    fn a_meeting_becomes_an_event_with_start_and_duration() {
        let MapOutcome::Write(commands) = map("activity_event", &activity("Meeting", json!({})))
        else {
            panic!("expected a write");
        };
        let event = &commands[0];
        assert_eq!(event.object, "Event");
        assert_eq!(
            event.fields["ActivityDateTime"],
            json!("2026-01-01T00:00:00.000Z")
        );
        assert_eq!(event.fields["DurationInMinutes"], json!(30));
        assert!(
            !event.fields.contains_key("Status"),
            "an Event has no fixed Status"
        );
    }

    #[test]
    fn a_type_the_job_does_not_take_is_ignored_with_its_reason() {
        let MapOutcome::Ignored { reason, .. } =
            map("activity_task", &activity("Meeting", json!({})))
        else {
            panic!("expected ignored");
        };
        assert_eq!(
            reason,
            "activity type Meeting is not marked \"sync to Salesforce\": job activity_task takes Call, Email, Update"
        );
    }

    #[test]
    fn attachments_after_the_switch_go_along_and_big_ones_are_noted() {
        let change = activity(
            "Email",
            json!({"Attachments": [
                {"Id": "f1", "Name": "deck.pdf", "Size": 2048, "CreatedDate": 1_767_225_600_000_i64},
                {"Id": "f2", "Name": "call.mp4", "Size": 27_262_976, "CreatedDate": 1_767_225_600_000_i64},
                {"Id": "f0", "Name": "old.doc", "Size": 10, "CreatedDate": 1_000}
            ]}),
        );
        let MapOutcome::Write(commands) = map("activity_task", &change) else {
            panic!("expected a write");
        };
        let ids: Vec<&str> = commands[0]
            .attachments
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(ids, ["f1"]);
        assert_eq!(commands[0].skipped.len(), 1);
        assert!(commands[0].skipped[0].contains("call.mp4 (f2) skipped: 26.0 MB"));
    }
}
