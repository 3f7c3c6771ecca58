//! Target schemas as the systems describe them (Salesforce `sobjects/{Object}/describe`, Gainsight
//! object describe), and the per-value checks and conversions a write must pass: data type, length,
//! restricted picklists, dates, and Gainsight multi-currency values.

use std::collections::HashMap;

use serde_json::Value;

use super::System;

/// What a field holds, in terms both systems share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// The record's own id (Salesforce `Id`, Gainsight `Gsid`).
    Id,
    /// A reference to another record (Salesforce lookup, Gainsight GSID field).
    Reference,
    Text,
    Email,
    Picklist,
    Integer,
    Number,
    Currency,
    Boolean,
    Date,
    DateTime,
    /// Anything else (address, base64 ...): passed through unchecked.
    Other,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FieldSchema {
    pub name: String,
    pub kind: FieldKind,
    /// Maximum characters, when the system states one.
    pub length: Option<usize>,
    pub picklist: Vec<String>,
    /// Only `picklist` values are accepted.
    pub restricted: bool,
    pub createable: bool,
    pub updateable: bool,
    /// Formula / calculated field: never writable, and produces no change events.
    pub calculated: bool,
    /// Rich text: real-time sync does not carry it.
    pub rich_text: bool,
    /// Must have a value when a record is created.
    pub required: bool,
    pub external_id: bool,
}

impl FieldSchema {
    /// A plain writable field; adapters and tests adjust the rest.
    pub fn new(name: impl Into<String>, kind: FieldKind) -> Self {
        Self {
            name: name.into(),
            kind,
            length: None,
            picklist: Vec::new(),
            restricted: false,
            createable: true,
            updateable: true,
            calculated: false,
            rich_text: false,
            required: false,
            external_id: false,
        }
    }

    pub fn writable(&self) -> bool {
        (self.createable || self.updateable) && !self.calculated && self.kind != FieldKind::Id
    }
}

/// One object as described by its system.
#[derive(Clone, Debug, PartialEq)]
pub struct ObjectSchema {
    pub system: System,
    pub name: String,
    /// Field name, as described and lower-cased -> field; both APIs match field names
    /// case-insensitively.
    fields: HashMap<String, FieldSchema>,
}

impl ObjectSchema {
    pub fn new(system: System, name: impl Into<String>, fields: Vec<FieldSchema>) -> Self {
        Self {
            system,
            name: name.into(),
            fields: fields
                .into_iter()
                .flat_map(|f| {
                    [
                        (f.name.clone(), f.clone()),
                        (f.name.to_ascii_lowercase(), f),
                    ]
                })
                .collect(),
        }
    }

    pub fn field(&self, name: &str) -> Option<&FieldSchema> {
        // Names are nearly always given as described: try them as they are before folding case.
        match self.fields.get(name) {
            Some(f) => Some(f),
            None if name.bytes().any(|b| b.is_ascii_uppercase()) => {
                self.fields.get(&name.to_ascii_lowercase())
            }
            None => None,
        }
    }

    pub fn fields(&self) -> impl Iterator<Item = &FieldSchema> {
        // Each field is under two keys (unless its name is all lower case): list it once.
        self.fields
            .iter()
            .filter(|(k, f)| k.as_str() == f.name)
            .map(|(_, f)| f)
    }
}

/// Every described object of a deployment, fetched once per cold start.
#[derive(Clone, Debug, Default)]
pub struct Schemas {
    objects: HashMap<(System, String), ObjectSchema>,
}

impl Schemas {
    pub fn insert(&mut self, schema: ObjectSchema) {
        self.objects
            .insert((schema.system, schema.name.clone()), schema);
    }

    pub fn get(&self, system: System, object: &str) -> Option<&ObjectSchema> {
        self.objects.get(&(system, object.to_string()))
    }
}

/// A Gainsight multi-currency value: amount, ISO code and Gainsight's conversion rate.
#[derive(Clone, Debug, PartialEq)]
pub struct Money {
    pub value: f64,
    pub iso_code: Option<String>,
    pub rate: Option<f64>,
}

impl Money {
    /// Accepts a plain number or Gainsight's `{ "value", "isoCode", "conversionRate" }` object.
    pub fn parse(value: &Value) -> Option<Money> {
        match value {
            Value::Number(n) => n.as_f64().map(|value| Money {
                value,
                iso_code: None,
                rate: None,
            }),
            Value::Object(o) => Some(Money {
                value: o.get("value")?.as_f64()?,
                iso_code: o.get("isoCode").and_then(Value::as_str).map(str::to_string),
                rate: o.get("conversionRate").and_then(Value::as_f64),
            }),
            _ => None,
        }
    }
}

/// Brings a source value into JSON types: Salesforce Outbound Messages carry every value as text.
pub fn normalize_source(value: &Value, field: Option<&FieldSchema>) -> Value {
    let (Some(field), Value::String(s)) = (field, value) else {
        return value.clone();
    };
    let parsed = match field.kind {
        FieldKind::Integer => s.parse::<i64>().ok().map(Value::from),
        FieldKind::Number | FieldKind::Currency => s
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        FieldKind::Boolean => match s.as_str() {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    match parsed {
        Some(v) => v,
        // An empty element is how a SOAP message says null.
        None if s.is_empty() && field.kind != FieldKind::Text => Value::Null,
        None => value.clone(),
    }
}

/// Converts `value` for the target field and checks it; the error names the field and the rule.
pub fn convert(value: &Value, target: &FieldSchema, system: System) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    let bad = |expected: &str| invalid(value, target, expected);
    let out = match target.kind {
        FieldKind::Id
        | FieldKind::Reference
        | FieldKind::Text
        | FieldKind::Email
        | FieldKind::Picklist => return check_text(value, target),
        FieldKind::Integer => match value.as_f64() {
            Some(f) if f.fract() == 0.0 && value.is_number() => Value::from(f as i64),
            _ => return bad("whole number"),
        },
        FieldKind::Number => match value.as_f64() {
            Some(_) => value.clone(),
            None => return bad("number"),
        },
        FieldKind::Currency => match (Money::parse(value), system) {
            (Some(_), System::Salesforce) if value.is_number() => value.clone(),
            (Some(m), System::Salesforce) => serde_json::Number::from_f64(m.value)
                .map(Value::Number)
                .unwrap_or(Value::Null),
            (Some(_), System::Gainsight) => value.clone(),
            (None, _) => return bad("currency amount"),
        },
        FieldKind::Boolean => match value {
            Value::Bool(_) => value.clone(),
            _ => return bad("boolean"),
        },
        FieldKind::Date | FieldKind::DateTime => return convert_date(value, target, system),
        FieldKind::Other => value.clone(),
    };
    Ok(out)
}

/// `Field: value is not a valid {expected}`.
fn invalid(value: &Value, target: &FieldSchema, expected: &str) -> Result<Value, String> {
    Err(format!(
        "{}: {} is not a valid {expected}",
        target.name,
        short(value)
    ))
}

/// Text kinds: within the length, a plausible email, a value of a restricted picklist.
fn check_text(value: &Value, target: &FieldSchema) -> Result<Value, String> {
    let name = &target.name;
    let Some(s) = value.as_str() else {
        return invalid(value, target, "text value");
    };
    if let Some(max) = target.length.filter(|m| *m > 0) {
        let len = s.chars().count();
        if len > max {
            return Err(format!("{name}: {len} characters, at most {max} allowed"));
        }
    }
    if target.kind == FieldKind::Email && !looks_like_email(s) {
        return invalid(value, target, "email address");
    }
    if target.kind == FieldKind::Picklist
        && target.restricted
        && !target.picklist.iter().any(|p| p == s)
    {
        return Err(format!(
            "{name}: {s:?} is not a value of the restricted picklist ({})",
            target.picklist.join(", ")
        ));
    }
    Ok(value.clone())
}

/// Dates and date-times: epoch ms for Gainsight, ISO 8601 text for Salesforce.
fn convert_date(value: &Value, target: &FieldSchema, system: System) -> Result<Value, String> {
    let date_only = target.kind == FieldKind::Date;
    let ms = match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => crate::time::parse_ms(s),
        _ => None,
    };
    let Some(ms) = ms else {
        return invalid(value, target, if date_only { "date" } else { "date-time" });
    };
    Ok(match (system, date_only) {
        (System::Gainsight, _) => Value::from(ms),
        (System::Salesforce, true) => Value::String(crate::time::rfc3339(ms)[..10].to_string()),
        (System::Salesforce, false) => Value::String(crate::time::rfc3339(ms)),
    })
}

fn looks_like_email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.')
        }
        None => false,
    }
}

/// A value for an error message: never a whole payload.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

/// The describe results of the standard objects as the emulators serve them, for tests that need
/// schemas without a running emulator.
#[cfg(any(test, feature = "fakes"))]
pub fn standard_schemas() -> Schemas {
    use FieldKind as K;
    let f = |name: &str, kind: FieldKind| FieldSchema::new(name, kind);
    let id = |name: &str| FieldSchema {
        createable: false,
        updateable: false,
        ..f(name, K::Id)
    };
    let required = |mut s: FieldSchema| {
        s.required = true;
        s
    };
    let len = |mut s: FieldSchema, n: usize| {
        s.length = Some(n);
        s
    };
    let external = |mut s: FieldSchema| {
        s.external_id = true;
        s
    };
    let picklist = |name: &str, values: &[&str]| FieldSchema {
        picklist: values.iter().map(|v| v.to_string()).collect(),
        restricted: true,
        ..f(name, K::Picklist)
    };
    let mut schemas = Schemas::default();
    schemas.insert(ObjectSchema::new(
        System::Salesforce,
        "Account",
        vec![
            id("Id"),
            required(len(f("Name", K::Text), 255)),
            f("AnnualRevenue", K::Currency),
            picklist(
                "Industry",
                &["Banking", "Energy", "Retail", "Technology", "Other"],
            ),
            f("NumberOfEmployees", K::Integer),
            len(f("Phone", K::Text), 40),
            FieldSchema {
                rich_text: true,
                ..f("Rich_Notes__c", K::Text)
            },
            FieldSchema {
                calculated: true,
                createable: false,
                updateable: false,
                ..f("Health_Score__c", K::Number)
            },
            external(len(f("Gainsight_Company_Id__c", K::Text), 40)),
            FieldSchema {
                createable: false,
                updateable: false,
                ..f("MasterRecordId", K::Reference)
            },
        ],
    ));
    schemas.insert(ObjectSchema::new(
        System::Salesforce,
        "Contact",
        vec![
            id("Id"),
            len(f("FirstName", K::Text), 40),
            required(len(f("LastName", K::Text), 80)),
            f("Email", K::Email),
            len(f("Title", K::Text), 128),
            f("AccountId", K::Reference),
            external(len(f("Gainsight_Person_Id__c", K::Text), 40)),
        ],
    ));
    schemas.insert(ObjectSchema::new(
        System::Salesforce,
        "Case",
        vec![
            id("Id"),
            f("Subject", K::Text),
            f("Description", K::Text),
            picklist("Status", &["New", "Working", "Escalated", "Closed"]),
            picklist("Priority", &["High", "Medium", "Low"]),
            f("AccountId", K::Reference),
            external(len(f("Gainsight_Case_Id__c", K::Text), 40)),
        ],
    ));
    schemas.insert(ObjectSchema::new(
        System::Gainsight,
        "Company",
        vec![
            id("Gsid"),
            required(f("Name", K::Text)),
            f("Arr", K::Currency),
            f("Industry", K::Text),
            f("Employees", K::Number),
            f("Phone", K::Text),
            f("SfdcAccountId", K::Text),
        ],
    ));
    schemas.insert(ObjectSchema::new(
        System::Gainsight,
        "Person",
        vec![
            id("Gsid"),
            f("FirstName", K::Text),
            required(f("LastName", K::Text)),
            required(f("Email", K::Email)),
            f("Title", K::Text),
            f("CompanyId", K::Reference),
            f("SfdcContactId", K::Text),
        ],
    ));
    schemas.insert(ObjectSchema::new(
        System::Gainsight,
        "Case",
        vec![
            id("Gsid"),
            required(f("Subject", K::Text)),
            f("Description", K::Text),
            f("Status", K::Text),
            f("Priority", K::Text),
            f("CompanyId", K::Reference),
            f("SfdcCaseId", K::Text),
        ],
    ));
    let activity = |extra: Vec<FieldSchema>| {
        let mut fields = vec![
            id("Id"),
            len(f("Subject", K::Text), 255),
            f("Description", K::Text),
            f("Type", K::Picklist),
            f("ActivityDate", K::Date),
            f("WhoId", K::Reference),
            f("WhatId", K::Reference),
            external(len(f("Gainsight_Activity_Id__c", K::Text), 40)),
        ];
        fields.extend(extra);
        fields
    };
    schemas.insert(ObjectSchema::new(
        System::Salesforce,
        "Task",
        activity(vec![
            picklist("Status", &["Not Started", "In Progress", "Completed"]),
            picklist("Priority", &["High", "Normal", "Low"]),
        ]),
    ));
    schemas.insert(ObjectSchema::new(
        System::Salesforce,
        "Event",
        activity(vec![
            f("ActivityDateTime", K::DateTime),
            f("DurationInMinutes", K::Integer),
            f("EndDateTime", K::DateTime),
        ]),
    ));
    schemas.insert(ObjectSchema::new(
        System::Gainsight,
        "activity_timeline",
        vec![
            id("Gsid"),
            required(f("Subject", K::Text)),
            required(f("TypeName", K::Text)),
            f("NotesPlainText", K::Text),
            f("ActivityDate", K::DateTime),
            f("DurationInMins", K::Number),
            f("GsCompanyId", K::Reference),
            f("ExternalAttendees", K::Other),
            f("Attachments", K::Other),
            f("SfTaskId", K::Text),
            f("SfEventId", K::Text),
        ],
    ));
    schemas
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(kind: FieldKind) -> FieldSchema {
        FieldSchema::new("F", kind)
    }

    /// Every rule has a value that passes and one that must fail.
    #[test]
    fn conversions_table() {
        let mut short_text = field(FieldKind::Text);
        short_text.length = Some(3);
        let mut picklist = field(FieldKind::Picklist);
        picklist.picklist = vec!["Gold".into(), "Silver".into()];
        picklist.restricted = true;
        let cases: Vec<(FieldSchema, System, Value, Result<Value, &str>)> = vec![
            (
                short_text.clone(),
                System::Salesforce,
                json!("abc"),
                Ok(json!("abc")),
            ),
            (
                short_text,
                System::Salesforce,
                json!("abcd"),
                Err("4 characters, at most 3"),
            ),
            (
                field(FieldKind::Text),
                System::Salesforce,
                json!(5),
                Err("not a valid text value"),
            ),
            (
                picklist.clone(),
                System::Salesforce,
                json!("Gold"),
                Ok(json!("Gold")),
            ),
            (
                picklist,
                System::Salesforce,
                json!("Bronze"),
                Err("restricted picklist (Gold, Silver)"),
            ),
            (
                field(FieldKind::Email),
                System::Gainsight,
                json!("a@b.co"),
                Ok(json!("a@b.co")),
            ),
            (
                field(FieldKind::Email),
                System::Gainsight,
                json!("nobody"),
                Err("valid email"),
            ),
            (
                field(FieldKind::Integer),
                System::Salesforce,
                json!(12.0),
                Ok(json!(12)),
            ),
            (
                field(FieldKind::Integer),
                System::Salesforce,
                json!(12.5),
                Err("whole number"),
            ),
            (
                field(FieldKind::Number),
                System::Gainsight,
                json!("x"),
                Err("valid number"),
            ),
            (
                field(FieldKind::Boolean),
                System::Gainsight,
                json!(true),
                Ok(json!(true)),
            ),
            (
                field(FieldKind::Boolean),
                System::Gainsight,
                json!("yes"),
                Err("valid boolean"),
            ),
            (
                field(FieldKind::Date),
                System::Salesforce,
                json!(1_700_000_000_000i64),
                Ok(json!("2023-11-14")),
            ),
            (
                field(FieldKind::Date),
                System::Gainsight,
                json!("2023-11-14"),
                Ok(json!(1_699_920_000_000i64)),
            ),
            (
                field(FieldKind::DateTime),
                System::Salesforce,
                json!(0),
                Ok(json!("1970-01-01T00:00:00.000Z")),
            ),
            (
                field(FieldKind::DateTime),
                System::Gainsight,
                json!("2023-11-14T22:13:20.000+0000"),
                Ok(json!(1_700_000_000_000i64)),
            ),
            (
                field(FieldKind::Date),
                System::Salesforce,
                json!("14/11/2023"),
                Err("valid date"),
            ),
            (
                field(FieldKind::Currency),
                System::Salesforce,
                json!({"value": 10.5, "isoCode": "EUR", "conversionRate": 1.1}),
                Ok(json!(10.5)),
            ),
            (
                field(FieldKind::Currency),
                System::Salesforce,
                json!("ten"),
                Err("currency amount"),
            ),
            (
                field(FieldKind::Text),
                System::Salesforce,
                Value::Null,
                Ok(Value::Null),
            ),
        ];
        for (i, (schema, system, input, expected)) in cases.into_iter().enumerate() {
            let got = convert(&input, &schema, system);
            match expected {
                Ok(v) => assert_eq!(got, Ok(v), "case {i}"),
                Err(part) => {
                    let err = got.expect_err(&format!("case {i} must fail"));
                    assert!(
                        err.starts_with("F: ") && err.contains(part),
                        "case {i}: {err}"
                    );
                }
            }
        }
    }

    #[test]
    fn soap_text_values_become_json_types() {
        let cases = [
            (FieldKind::Integer, "42", json!(42)),
            (FieldKind::Currency, "1200.5", json!(1200.5)),
            (FieldKind::Boolean, "true", json!(true)),
            (FieldKind::Date, "", Value::Null),
            (FieldKind::Text, "", json!("")),
            (FieldKind::Integer, "4x", json!("4x")),
        ];
        for (kind, text, expected) in cases {
            assert_eq!(
                normalize_source(&json!(text), Some(&field(kind))),
                expected,
                "{kind:?} {text}"
            );
        }
    }

    #[test]
    fn money_reads_gainsight_currency_objects() {
        let m =
            Money::parse(&json!({"value": 3, "isoCode": "JPY", "conversionRate": 0.0067})).unwrap();
        assert_eq!(
            (m.value, m.iso_code.as_deref(), m.rate),
            (3.0, Some("JPY"), Some(0.0067))
        );
        assert!(Money::parse(&json!({"isoCode": "JPY"})).is_none());
    }
}
