//! Timeline activities → Salesforce Tasks and Events: which activities a timeline job takes, the
//! values it fixes, the participants it links (WhoId, WhatId) and which attachments go along.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{FieldState, Fields, LedgerRecord};

/// The Gainsight object holding Timeline activities.
pub const ACTIVITY_OBJECT: &str = "activity_timeline";
/// The activity's type name; only types a job lists are synced.
pub const TYPE_FIELD: &str = "TypeName";
/// The company the activity is logged on (a Company GSID).
pub const COMPANY_FIELD: &str = "GsCompanyId";
/// Participants outside the company: a list of `{"Email": ..., "Name": ...}`.
pub const ATTENDEES_FIELD: &str = "ExternalAttendees";
/// Files attached to the activity: a list of `{"Id", "Name", "Size", "ContentType", "CreatedDate"}`.
pub const ATTACHMENTS_FIELD: &str = "Attachments";
/// Fields of an activity a Timeline job reads besides its mapped ones.
pub const READ_FIELDS: [&str; 4] = [
    TYPE_FIELD,
    COMPANY_FIELD,
    ATTENDEES_FIELD,
    ATTACHMENTS_FIELD,
];
/// Salesforce refuses files over 25 MB from the activity sync.
pub const MAX_ATTACHMENT_BYTES: u64 = 25 * 1024 * 1024;
/// The Salesforce objects an activity can become.
pub const TARGETS: [&str; 2] = ["Task", "Event"];

/// A job's Timeline settings (`timeline:` in its file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineSettings {
    /// Activity types marked "sync to Salesforce"; any other type is ignored with its reason.
    pub types: Vec<String>,
    /// Target fields set to the same value on every record (a Task's Status and Priority).
    #[serde(default)]
    pub fixed: BTreeMap<String, Value>,
    /// When the attachment switch was turned on (RFC 3339); absent = attachments are not synced.
    /// Only files attached at or after this instant are uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachments_since: Option<String>,
}

impl TimelineSettings {
    /// Whether activities of `type_name` are synced by this job (types compare ignoring case).
    pub fn takes(&self, type_name: &str) -> bool {
        self.types.iter().any(|t| t.eq_ignore_ascii_case(type_name))
    }

    /// The attachment switch's instant (epoch ms), if it is on.
    pub fn attachments_since_ms(&self) -> Result<Option<i64>, String> {
        self.attachments_since
            .as_deref()
            .map(|s| {
                crate::time::parse_ms(s).ok_or_else(|| {
                    format!("timeline.attachments_since: {s:?} is not an RFC 3339 date-time")
                })
            })
            .transpose()
    }
}

/// The Salesforce records an activity is linked to, resolved per poll window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participants {
    /// The Contact of the first external attendee Salesforce knows (Task/Event `WhoId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who_id: Option<String>,
    /// The Account of the activity's company (`WhatId`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what_id: Option<String>,
}

/// The activity's type name.
pub fn type_of(fields: &Fields) -> Option<&str> {
    fields.get(TYPE_FIELD).and_then(Value::as_str)
}

/// The company GSID the activity is logged on.
pub fn company_of(fields: &Fields) -> Option<&str> {
    fields
        .get(COMPANY_FIELD)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The external attendees' emails, in order, lower-cased (Gainsight compares emails that way).
pub fn attendee_emails(fields: &Fields) -> Vec<String> {
    let Some(Value::Array(attendees)) = fields.get(ATTENDEES_FIELD) else {
        return Vec::new();
    };
    attendees
        .iter()
        .filter_map(|a| a.get("Email").and_then(Value::as_str))
        .filter(|e| e.contains('@'))
        .map(str::to_lowercase)
        .collect()
}

/// One file attached to an activity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub id: String,
    pub name: String,
    pub size: u64,
    #[serde(default)]
    pub content_type: String,
    pub created_ms: i64,
}

/// What the sync does with one attachment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttachmentPlan {
    Upload(Attachment),
    /// Not uploaded, and why (recorded with the record's outcome).
    Skip(Attachment, String),
}

/// The attachments to upload and to skip: none when the switch is off; files attached before it
/// was switched on are left alone (neither uploaded nor reported), files over 25 MB are skipped.
pub fn plan_attachments(fields: &Fields, since_ms: Option<i64>) -> Vec<AttachmentPlan> {
    let Some(since) = since_ms else {
        return Vec::new();
    };
    let Some(Value::Array(items)) = fields.get(ATTACHMENTS_FIELD) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(attachment)
        .filter(|a| a.created_ms >= since)
        .map(|a| {
            if a.size > MAX_ATTACHMENT_BYTES {
                let reason = format!(
                    "attachment {} ({}) skipped: {:.1} MB is over the 25 MB limit",
                    a.name,
                    a.id,
                    a.size as f64 / (1024.0 * 1024.0)
                );
                AttachmentPlan::Skip(a, reason)
            } else {
                AttachmentPlan::Upload(a)
            }
        })
        .collect()
}

/// The ledger field under which an uploaded attachment is remembered, so it goes up only once.
pub fn attachment_state_key(attachment_id: &str) -> String {
    format!("attachment:{attachment_id}")
}

/// What an uploaded file's `Description` says of where it came from, so a file whose upload's
/// answer was lost (or whose ledger write a crash prevented) is found instead of uploaded twice.
pub fn upload_marker(attachment_id: &str) -> String {
    format!("{UPLOAD_MARKER}{attachment_id}")
}

/// The attachment an uploaded file's `Description` names (see [`upload_marker`]), if any.
pub fn marked_attachment(description: &str) -> Option<&str> {
    description
        .strip_prefix(UPLOAD_MARKER)
        .filter(|id| !id.is_empty())
}

const UPLOAD_MARKER: &str = "Gainsight attachment ";

/// The attachments of a write not uploaded yet, as far as the pair's ledger record knows.
pub fn not_uploaded<'a>(
    attachments: &'a [Attachment],
    ledger: Option<&LedgerRecord>,
) -> Vec<&'a Attachment> {
    attachments
        .iter()
        .filter(|a| ledger.is_none_or(|l| !l.fields.contains_key(&attachment_state_key(&a.id))))
        .collect()
}

/// What the ledger keeps of an uploaded attachment: the ContentVersion it became, and when.
pub fn uploaded_state(content_version_id: &str, at_ms: i64) -> FieldState {
    let hash = super::mapping::hash(&Value::String(content_version_id.to_string()));
    FieldState {
        gainsight: hash,
        salesforce: hash,
        from: super::System::Gainsight,
        changed_at_ms: at_ms,
        synced_at_ms: at_ms,
    }
}

fn attachment(v: &Value) -> Option<Attachment> {
    Some(Attachment {
        id: v.get("Id")?.as_str()?.to_string(),
        name: v
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("file")
            .to_string(),
        size: v.get("Size")?.as_u64()?,
        content_type: v
            .get("ContentType")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        created_ms: v.get("CreatedDate")?.as_i64()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn an_uploaded_files_description_names_its_attachment() {
        let marker = upload_marker("1I00A");
        assert_eq!(marked_attachment(&marker), Some("1I00A"));
        assert_eq!(marked_attachment("Gainsight attachment "), None);
        assert_eq!(marked_attachment("Uploaded by hand"), None);
    }

    #[test]
    fn types_compare_ignoring_case() {
        let s = TimelineSettings {
            types: vec!["Call".into(), "Email".into()],
            ..Default::default()
        };
        assert!(s.takes("call"));
        assert!(!s.takes("Meeting"));
    }

    #[test]
    fn attendee_emails_in_order_lower_cased() {
        let f = fields(json!({"ExternalAttendees": [
            {"Email": "Ann@Example.com"}, {"Name": "no email"}, {"Email": "bob@example.com"}
        ]}));
        assert_eq!(attendee_emails(&f), ["ann@example.com", "bob@example.com"]);
        assert!(attendee_emails(&fields(json!({}))).is_empty());
    }

    #[test]
    fn attachments_after_the_switch_and_under_25_mb() {
        let f = fields(json!({"Attachments": [
            {"Id": "a1", "Name": "old.pdf", "Size": 10, "CreatedDate": 999},
            {"Id": "a2", "Name": "notes.pdf", "Size": 10, "CreatedDate": 1000},
            {"Id": "a3", "Name": "video.mp4", "Size": 26 * 1024 * 1024, "CreatedDate": 2000},
        ]}));
        assert!(plan_attachments(&f, None).is_empty(), "switch off");
        let plan = plan_attachments(&f, Some(1000));
        assert_eq!(plan.len(), 2);
        assert!(matches!(&plan[0], AttachmentPlan::Upload(a) if a.id == "a2"));
        match &plan[1] {
            AttachmentPlan::Skip(a, why) => {
                assert_eq!(a.id, "a3");
                assert!(why.contains("26.0 MB is over the 25 MB limit"), "{why}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_uploaded_attachment_is_not_uploaded_again() {
        let files = [
            attachment(&json!({"Id": "a1", "Size": 1, "CreatedDate": 1})).unwrap(),
            attachment(&json!({"Id": "a2", "Size": 1, "CreatedDate": 1})).unwrap(),
        ];
        assert_eq!(not_uploaded(&files, None).len(), 2);
        let mut record = LedgerRecord::new(
            "activity_task",
            super::super::LedgerKey::Gainsight("A".into()),
        );
        record
            .fields
            .insert(attachment_state_key("a1"), uploaded_state("068X", 5));
        let left: Vec<&str> = not_uploaded(&files, Some(&record))
            .iter()
            .map(|a| a.id.as_str())
            .collect();
        assert_eq!(left, ["a2"]);
    }

    #[test]
    fn a_bad_switch_date_is_named() {
        let s = TimelineSettings {
            attachments_since: Some("yesterday".into()),
            ..Default::default()
        };
        assert!(s
            .attachments_since_ms()
            .unwrap_err()
            .contains("\"yesterday\""));
    }
}
