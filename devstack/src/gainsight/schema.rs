//! The tenant's objects and their fields, as the describe and the write checks see them.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum GsType {
    Gsid,
    String,
    Number,
    Currency,
    Boolean,
    Date,
    Datetime,
    Email,
    /// Structured values (attendee and attachment lists of an activity).
    Json,
}

#[derive(Clone, Debug)]
pub struct GsField {
    pub name: &'static str,
    pub kind: GsType,
    pub required: bool,
    pub system: bool,
}

pub(super) const fn field(name: &'static str, kind: GsType) -> GsField {
    GsField {
        name,
        kind,
        required: false,
        system: false,
    }
}

pub(super) fn objects() -> Vec<(&'static str, Vec<GsField>)> {
    let system = || {
        vec![
            GsField {
                name: "Gsid",
                kind: GsType::Gsid,
                required: false,
                system: true,
            },
            GsField {
                name: "CreatedDate",
                kind: GsType::Datetime,
                required: false,
                system: true,
            },
            GsField {
                name: "ModifiedDate",
                kind: GsType::Datetime,
                required: false,
                system: true,
            },
        ]
    };
    let mut company = system();
    company.extend([
        GsField {
            required: true,
            ..field("Name", GsType::String)
        },
        field("Arr", GsType::Currency),
        field("Mrr", GsType::Currency),
        field("Industry", GsType::String),
        field("Employees", GsType::Number),
        field("Stage", GsType::String),
        field("Status", GsType::String),
        field("RenewalDate", GsType::Date),
        field("Phone", GsType::String),
        field("SfdcAccountId", GsType::String),
        GsField {
            system: true,
            ..field("HealthScore", GsType::Number)
        },
    ]);
    let mut person = system();
    person.extend([
        field("FirstName", GsType::String),
        GsField {
            required: true,
            ..field("LastName", GsType::String)
        },
        GsField {
            required: true,
            ..field("Email", GsType::Email)
        },
        field("Title", GsType::String),
        field("CompanyId", GsType::Gsid),
        field("SfdcContactId", GsType::String),
    ]);
    let mut case = system();
    case.extend([
        GsField {
            required: true,
            ..field("Subject", GsType::String)
        },
        field("Description", GsType::String),
        field("Status", GsType::String),
        field("Priority", GsType::String),
        field("CompanyId", GsType::Gsid),
        field("SfdcCaseId", GsType::String),
    ]);
    vec![
        ("Company", company),
        ("Person", person),
        ("Case", case),
        ("activity_timeline", activity(system())),
    ]
}

/// Timeline activities: what happened, when, with whom, on which company, and the Salesforce
/// Task or Event it became.
fn activity(mut fields: Vec<GsField>) -> Vec<GsField> {
    fields.extend([
        GsField {
            required: true,
            ..field("Subject", GsType::String)
        },
        GsField {
            required: true,
            ..field("TypeName", GsType::String)
        },
        field("ContextName", GsType::String),
        field("Notes", GsType::String),
        field("NotesPlainText", GsType::String),
        GsField {
            required: true,
            ..field("ActivityDate", GsType::Datetime)
        },
        field("DurationInMins", GsType::Number),
        field("GsCompanyId", GsType::Gsid),
        field("GsRelationshipId", GsType::Gsid),
        field("AuthorId", GsType::Gsid),
        field("InternalAttendees", GsType::Json),
        field("ExternalAttendees", GsType::Json),
        field("Attachments", GsType::Json),
        field("SfTaskId", GsType::String),
        field("SfEventId", GsType::String),
    ]);
    fields
}
