//! The emulated org's field catalog: field types and definitions, and the standard objects it
//! serves with the fields a sync touches.

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Id,
    String,
    Textarea,
    Picklist,
    Currency,
    Double,
    Int,
    Boolean,
    Date,
    Datetime,
    Email,
    Phone,
    Url,
    Reference,
    Base64,
}

#[derive(Clone, Debug)]
pub struct FieldDef {
    pub name: &'static str,
    pub kind: FieldType,
    pub length: usize,
    pub nillable: bool,
    pub createable: bool,
    pub updateable: bool,
    pub calculated: bool,
    pub external_id: bool,
    pub html: bool,
    pub defaulted: bool,
    pub picklist: &'static [&'static str],
    pub restricted: bool,
    pub reference_to: &'static [&'static str],
}

impl FieldDef {
    pub(super) const fn new(name: &'static str, kind: FieldType) -> Self {
        Self {
            name,
            kind,
            length: 0,
            nillable: true,
            createable: true,
            updateable: true,
            calculated: false,
            external_id: false,
            html: false,
            defaulted: false,
            picklist: &[],
            restricted: false,
            reference_to: &[],
        }
    }
    pub(super) const fn len(mut self, n: usize) -> Self {
        self.length = n;
        self
    }
    pub(super) const fn required(mut self) -> Self {
        self.nillable = false;
        self
    }
    pub(super) const fn system(mut self) -> Self {
        self.createable = false;
        self.updateable = false;
        self.nillable = false;
        self.defaulted = true;
        self
    }
    pub(super) const fn external(mut self) -> Self {
        self.external_id = true;
        self
    }
    pub(super) const fn formula(mut self) -> Self {
        self.calculated = true;
        self.createable = false;
        self.updateable = false;
        self
    }
    pub(super) const fn rich(mut self) -> Self {
        self.html = true;
        self
    }
    pub(super) const fn picklist(
        mut self,
        values: &'static [&'static str],
        restricted: bool,
    ) -> Self {
        self.picklist = values;
        self.restricted = restricted;
        self
    }
    pub(super) const fn defaulted(mut self) -> Self {
        self.defaulted = true;
        self
    }
    pub(super) const fn refers(mut self, to: &'static [&'static str]) -> Self {
        self.reference_to = to;
        self
    }

    pub(super) fn required_on_create(&self) -> bool {
        !self.nillable && self.createable && !self.defaulted && self.kind != FieldType::Boolean
    }
}

use FieldType as T;

pub(super) const INDUSTRIES: &[&str] = &[
    "Agriculture",
    "Banking",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Finance",
    "Government",
    "Healthcare",
    "Insurance",
    "Manufacturing",
    "Media",
    "Retail",
    "Technology",
    "Transportation",
    "Utilities",
    "Other",
];

pub(super) fn system_fields() -> Vec<FieldDef> {
    vec![
        FieldDef::new("Id", T::Id).len(18).system(),
        FieldDef::new("CreatedDate", T::Datetime).system(),
        FieldDef::new("LastModifiedDate", T::Datetime).system(),
        FieldDef::new("SystemModstamp", T::Datetime).system(),
        FieldDef::new("CreatedById", T::Reference).len(18).system(),
        FieldDef::new("LastModifiedById", T::Reference)
            .len(18)
            .system(),
        FieldDef::new("IsDeleted", T::Boolean).system(),
    ]
}

/// `MasterRecordId`: on a record deleted by a merge, the record it was merged into (read with
/// `queryAll`); empty on every other record.
fn merged_into(object: &'static [&'static str]) -> FieldDef {
    FieldDef::new("MasterRecordId", T::Reference)
        .len(18)
        .refers(object)
        .system()
}

/// The standard objects the emulator serves, with the fields a sync touches.
pub(super) fn standard_objects() -> Vec<(&'static str, &'static str, Vec<FieldDef>)> {
    let mut account = system_fields();
    account.extend([
        FieldDef::new("Name", T::String).len(255).required(),
        FieldDef::new("AnnualRevenue", T::Currency),
        FieldDef::new("Industry", T::Picklist)
            .len(255)
            .picklist(INDUSTRIES, true),
        FieldDef::new("NumberOfEmployees", T::Int),
        FieldDef::new("Website", T::Url).len(255),
        FieldDef::new("Phone", T::Phone).len(40),
        FieldDef::new("Description", T::Textarea).len(32_000),
        FieldDef::new("Rich_Notes__c", T::Textarea)
            .len(32_768)
            .rich(),
        FieldDef::new("Health_Score__c", T::Double).formula(),
        FieldDef::new("Gainsight_Company_Id__c", T::String)
            .len(40)
            .external(),
        merged_into(&["Account"]),
    ]);
    let mut contact = system_fields();
    contact.extend([
        FieldDef::new("FirstName", T::String).len(40),
        FieldDef::new("LastName", T::String).len(80).required(),
        FieldDef::new("Email", T::Email).len(80),
        FieldDef::new("Title", T::String).len(128),
        FieldDef::new("Phone", T::Phone).len(40),
        FieldDef::new("AccountId", T::Reference)
            .len(18)
            .refers(&["Account"]),
        FieldDef::new("Gainsight_Person_Id__c", T::String)
            .len(40)
            .external(),
        merged_into(&["Contact"]),
    ]);
    let mut case = system_fields();
    case.extend([
        FieldDef::new("CaseNumber", T::String).len(30).system(),
        FieldDef::new("Subject", T::String).len(255),
        FieldDef::new("Description", T::Textarea).len(32_000),
        FieldDef::new("Status", T::Picklist)
            .len(40)
            .required()
            .defaulted()
            .picklist(&["New", "Working", "Escalated", "Closed"], true),
        FieldDef::new("Priority", T::Picklist)
            .len(40)
            .picklist(&["High", "Medium", "Low"], true),
        FieldDef::new("Origin", T::Picklist)
            .len(40)
            .picklist(&["Phone", "Email", "Web"], false),
        FieldDef::new("AccountId", T::Reference)
            .len(18)
            .refers(&["Account"]),
        FieldDef::new("ContactId", T::Reference)
            .len(18)
            .refers(&["Contact"]),
        FieldDef::new("Gainsight_Case_Id__c", T::String)
            .len(40)
            .external(),
        merged_into(&["Case"]),
    ]);
    vec![
        ("Account", "001", account),
        ("Contact", "003", contact),
        ("Case", "500", case),
        ("Task", "00T", task()),
        ("Event", "00U", event()),
        ("ContentVersion", "068", content_version()),
    ]
}

/// Fields Tasks and Events share: what, who, subject, type and the sync's external id.
fn activity_fields() -> Vec<FieldDef> {
    let mut fields = system_fields();
    fields.extend([
        FieldDef::new("Subject", T::String).len(255),
        FieldDef::new("Description", T::Textarea).len(32_000),
        FieldDef::new("Type", T::Picklist)
            .len(40)
            .picklist(&["Call", "Email", "Meeting", "Other"], false),
        FieldDef::new("ActivityDate", T::Date),
        FieldDef::new("WhoId", T::Reference)
            .len(18)
            .refers(&["Contact", "Lead"]),
        FieldDef::new("WhatId", T::Reference)
            .len(18)
            .refers(&["Account", "Case"]),
        FieldDef::new("Gainsight_Activity_Id__c", T::String)
            .len(40)
            .external(),
    ]);
    fields
}

/// A file's version: its title and name, the data (base64 in JSON) and the record it is
/// published to (which links the file to it).
fn content_version() -> Vec<FieldDef> {
    let mut version = system_fields();
    version.extend([
        FieldDef::new("Title", T::String).len(255).required(),
        FieldDef::new("PathOnClient", T::String).len(500).required(),
        FieldDef::new("Description", T::Textarea).len(1000),
        FieldDef::new("VersionData", T::Base64).required(),
        FieldDef::new("FirstPublishLocationId", T::Reference)
            .len(18)
            .refers(&["Task", "Event", "Account", "Case"]),
        FieldDef::new("ContentDocumentId", T::Reference)
            .len(18)
            .system(),
    ]);
    version
}

fn task() -> Vec<FieldDef> {
    let mut task = activity_fields();
    task.extend([
        FieldDef::new("Status", T::Picklist)
            .len(40)
            .required()
            .defaulted()
            .picklist(
                &[
                    "Not Started",
                    "In Progress",
                    "Completed",
                    "Waiting on someone else",
                    "Deferred",
                ],
                true,
            ),
        FieldDef::new("Priority", T::Picklist)
            .len(40)
            .required()
            .defaulted()
            .picklist(&["High", "Normal", "Low"], true),
    ]);
    task
}

fn event() -> Vec<FieldDef> {
    let mut event = activity_fields();
    event.extend([
        FieldDef::new("ActivityDateTime", T::Datetime),
        FieldDef::new("DurationInMinutes", T::Int),
        FieldDef::new("EndDateTime", T::Datetime),
        FieldDef::new("IsAllDayEvent", T::Boolean).defaulted(),
    ]);
    event
}

/// An Event that is not all-day needs a start and, with it, a duration or an end (Salesforce
/// names `DurationInMinutes` when both are missing). The names of the missing fields, if any.
pub(super) fn event_missing(record: &Record) -> Vec<&'static str> {
    let set = |f: &str| record.get(f).is_some_and(|v| !v.is_null());
    if record.get("IsAllDayEvent").and_then(Value::as_bool) == Some(true) {
        return if set("ActivityDate") {
            vec![]
        } else {
            vec!["ActivityDate"]
        };
    }
    let mut missing = Vec::new();
    if !set("ActivityDateTime") {
        missing.push("ActivityDateTime");
    }
    if !set("DurationInMinutes") && !set("EndDateTime") {
        missing.push("DurationInMinutes");
    }
    missing
}
