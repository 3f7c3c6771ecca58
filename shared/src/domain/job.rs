//! Sync jobs: which Gainsight object pairs with which Salesforce object, how records are matched,
//! which fields flow in which direction, and what to do on create and update. Loaded from YAML
//! files in `infra/jobs/` and validated before anything runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::{FieldKind, Schemas};
use super::System;

/// Seed 000: identifiers and required fields together are at most 10.
pub const MAX_IDENTIFIERS: usize = 10;
/// Seed 000: at most 20 real-time fields per object.
pub const MAX_REALTIME_FIELDS: usize = 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFlow {
    GainsightToSalesforce,
    SalesforceToGainsight,
    Bidirectional,
}

impl DataFlow {
    /// Whether values of this field travel from `source` to the other system.
    pub fn carries_from(self, source: System) -> bool {
        matches!(
            (self, source),
            (DataFlow::Bidirectional, _)
                | (DataFlow::GainsightToSalesforce, System::Gainsight)
                | (DataFlow::SalesforceToGainsight, System::Salesforce)
        )
    }
}

/// Which side wins when both changed a bi-directional field since the last sync.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictRule {
    /// The change with the later modified timestamp (each system's own clock) wins.
    #[default]
    Newest,
    GainsightWins,
    SalesforceWins,
}

impl ConflictRule {
    /// Whether the change from `source` made at `source_at` beats the other side's change made at
    /// `other_at` (each on its own system's clock).
    pub fn source_wins(self, source: System, source_at: i64, other_at: i64) -> bool {
        match self {
            ConflictRule::GainsightWins => source == System::Gainsight,
            ConflictRule::SalesforceWins => source == System::Salesforce,
            ConflictRule::Newest => source_at > other_at,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ConflictRule::Newest => "newest",
            ConflictRule::GainsightWins => "gainsight_wins",
            ConflictRule::SalesforceWins => "salesforce_wins",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCreated {
    /// Create the record; never update an existing one.
    Create,
    /// Create it, or update the matching record if there is one.
    #[default]
    CreateAndUpdate,
    DoNothing,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUpdated {
    /// Update the matching record; never create one.
    #[default]
    Update,
    DoNothing,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    pub object: String,
    /// The field holding the record's own id (`Gsid`, `Id`).
    pub id_field: String,
}

/// A field of each system that hold the same thing (identifiers, required fields).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    pub gainsight: String,
    pub salesforce: String,
}

impl Identifier {
    pub fn field_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight,
            System::Salesforce => &self.salesforce,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    pub gainsight: String,
    pub salesforce: String,
    pub flow: DataFlow,
    /// Only for bi-directional fields; `newest` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict: Option<ConflictRule>,
}

impl FieldMapping {
    pub fn field_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight,
            System::Salesforce => &self.salesforce,
        }
    }

    pub fn conflict_rule(&self) -> ConflictRule {
        self.conflict.unwrap_or_default()
    }
}

/// One match condition of a lookup: `field` of the intermediate object equals the source record's
/// `source` field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LookupMatch {
    pub field: String,
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lookup {
    /// The intermediate object, in the target system.
    pub object: String,
    /// Field of the intermediate object copied into the target field (its id when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returns: Option<String>,
    #[serde(rename = "match")]
    pub matches: Vec<LookupMatch>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnNoMatch {
    /// The record is rejected (the only choice towards Salesforce, seed 000).
    #[default]
    Reject,
    /// The target field is written empty.
    LeaveEmpty,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMultipleMatches {
    /// The record is marked error (the only choice towards Salesforce, seed 000).
    #[default]
    Error,
    /// The first match (lowest id) is used.
    UseFirst,
}

/// Fills a reference field (Salesforce lookup, Gainsight GSID) by looking up an intermediate
/// object of the target system on one or more match fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DerivedMapping {
    /// The system whose field is filled; data flows into it from the other one.
    pub target: System,
    /// The filled field, on the job's object in `target`.
    pub field: String,
    pub lookup: Lookup,
    #[serde(default)]
    pub on_no_match: OnNoMatch,
    #[serde(default)]
    pub on_multiple_matches: OnMultipleMatches,
}

impl DerivedMapping {
    /// The field name that identifies this value in the ledger: its Gainsight-side name, shared by
    /// the pair of derived mappings of a bi-directional reference (e.g. CompanyId <-> AccountId).
    pub fn state_key(&self) -> &str {
        match self.target {
            System::Gainsight => &self.field,
            System::Salesforce => self
                .lookup
                .matches
                .first()
                .map(|m| m.source.as_str())
                .unwrap_or(&self.field),
        }
    }

    /// A readable name for messages: `AccountId (Account.Gainsight_Company_Id__c = CompanyId)`.
    pub fn describe(&self) -> String {
        let conditions: Vec<String> = self
            .lookup
            .matches
            .iter()
            .map(|m| format!("{}.{} = {}", self.lookup.object, m.field, m.source))
            .collect();
        format!("lookup {} ({})", self.field, conditions.join(" and "))
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventActions {
    #[serde(default)]
    pub on_created: OnCreated,
    #[serde(default)]
    pub on_updated: OnUpdated,
}

/// What to do in the other system for records created / updated in each source system.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobEvents {
    #[serde(default)]
    pub from_gainsight: EventActions,
    #[serde(default)]
    pub from_salesforce: EventActions,
}

impl JobEvents {
    pub fn from(&self, source: System) -> &EventActions {
        match source {
            System::Gainsight => &self.from_gainsight,
            System::Salesforce => &self.from_salesforce,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub gainsight: ObjectRef,
    pub salesforce: ObjectRef,
    /// How records are matched, in order of preference. A pair whose Salesforce side is an
    /// external-ID field and whose Gainsight side is the GSID lets Gainsight changes upsert.
    pub identifiers: Vec<Identifier>,
    /// Fields always sent along with a write (seed 000: "synced in real time along with required
    /// fields"). Counted with the identifiers.
    #[serde(default)]
    pub required: Vec<Identifier>,
    #[serde(default)]
    pub events: JobEvents,
    #[serde(default)]
    pub fields: Vec<FieldMapping>,
    #[serde(default)]
    pub derived: Vec<DerivedMapping>,
    /// The file the job was loaded from, and its text, for error messages.
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub text: String,
}

impl Job {
    pub fn object_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight.object,
            System::Salesforce => &self.salesforce.object,
        }
    }

    pub fn id_field_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight.id_field,
            System::Salesforce => &self.salesforce.id_field,
        }
    }

    pub fn is_identifier(&self, system: System, field: &str) -> bool {
        self.identifiers
            .iter()
            .any(|i| i.field_in(system).eq_ignore_ascii_case(field))
    }

    /// The Salesforce external-ID field that holds the Gainsight id, if the job pairs them.
    pub fn gsid_external_field(&self) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|i| i.gainsight == self.gainsight.id_field)
            .map(|i| i.salesforce.as_str())
    }

    /// The Gainsight field that holds the Salesforce id, if the job pairs them.
    pub fn sfid_gainsight_field(&self) -> Option<&str> {
        self.identifiers
            .iter()
            .find(|i| i.salesforce == self.salesforce.id_field)
            .map(|i| i.gainsight.as_str())
    }

    /// The fields of `system`'s object a change must carry for this job to map it: the id,
    /// identifiers, required fields, mapped fields and the sources of derived lookups.
    pub fn fields_read_from(&self, system: System) -> Vec<String> {
        let mut fields = vec![self.id_field_in(system).to_string()];
        let pairs = self
            .identifiers
            .iter()
            .chain(&self.required)
            .map(|p| p.field_in(system));
        let mapped = self.fields.iter().map(|f| f.field_in(system));
        let derived = self
            .derived
            .iter()
            .filter(|d| d.target == system.other())
            .flat_map(|d| d.lookup.matches.iter().map(|m| m.source.as_str()));
        for f in pairs.chain(mapped).chain(derived) {
            if !fields.iter().any(|k| k == f) {
                fields.push(f.to_string());
            }
        }
        fields
    }

    /// Every object whose describe the job is checked against.
    pub fn described_objects(&self) -> Vec<(System, String)> {
        let mut objects = vec![
            (System::Gainsight, self.gainsight.object.clone()),
            (System::Salesforce, self.salesforce.object.clone()),
        ];
        for d in &self.derived {
            let o = (d.target, d.lookup.object.clone());
            if !objects.contains(&o) {
                objects.push(o);
            }
        }
        objects
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        if self.identifiers.is_empty() {
            return Err("identifiers: at least one identifier is required to match records".into());
        }
        let keyed = self.identifiers.len() + self.required.len();
        if keyed > MAX_IDENTIFIERS {
            return Err(format!(
                "identifiers: {} identifiers and {} required fields given, at most {MAX_IDENTIFIERS} together are allowed",
                self.identifiers.len(),
                self.required.len()
            ));
        }
        let realtime = self.fields.len() + self.derived.len();
        if realtime == 0 {
            return Err(
                "fields: at least one field mapping (direct or derived) is required".into(),
            );
        }
        if realtime > MAX_REALTIME_FIELDS {
            return Err(format!(
                "fields: {realtime} real-time fields given ({} direct, {} derived), at most {MAX_REALTIME_FIELDS} are allowed",
                self.fields.len(),
                self.derived.len()
            ));
        }
        for (list, pairs) in [
            ("identifiers", &self.identifiers),
            ("required", &self.required),
        ] {
            for (i, p) in pairs.iter().enumerate() {
                for system in [System::Gainsight, System::Salesforce] {
                    if p.field_in(system).trim().is_empty() {
                        return Err(format!(
                            "{list}[{i}].{}: must not be empty",
                            system.as_str()
                        ));
                    }
                }
            }
        }
        for system in [System::Gainsight, System::Salesforce] {
            let mut written = HashSet::new();
            for (i, f) in self.fields.iter().enumerate() {
                let name = f.field_in(system);
                if name.trim().is_empty() {
                    return Err(format!(
                        "fields[{i}].{}: must not be empty",
                        system.as_str()
                    ));
                }
                if f.flow.carries_from(system.other()) && !written.insert(name.to_ascii_lowercase())
                {
                    return Err(format!(
                        "fields[{i}].{}: {name} is written by more than one mapping",
                        system.as_str()
                    ));
                }
            }
            for (i, d) in self
                .derived
                .iter()
                .enumerate()
                .filter(|(_, d)| d.target == system)
            {
                if !written.insert(d.field.to_ascii_lowercase()) {
                    return Err(format!(
                        "derived[{i}].field: {} is written by more than one mapping",
                        d.field
                    ));
                }
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            if f.conflict.is_some() && f.flow != DataFlow::Bidirectional {
                return Err(format!(
                    "fields[{i}].conflict: only bi-directional fields have a conflict rule ({} flows one way)",
                    f.gainsight
                ));
            }
        }
        for (i, d) in self.derived.iter().enumerate() {
            if d.field.trim().is_empty() || d.lookup.object.trim().is_empty() {
                return Err(format!(
                    "derived[{i}]: field and lookup.object must not be empty"
                ));
            }
            if d.lookup.matches.is_empty() {
                return Err(format!(
                    "derived[{i}].lookup.match: at least one match field is required"
                ));
            }
            // Seed 000: towards Salesforce, multiple matches always mark an error and no match
            // always rejects; the options exist only for Salesforce -> Gainsight.
            if d.target == System::Salesforce {
                if d.on_no_match != OnNoMatch::Reject {
                    return Err(format!(
                        "derived[{i}].on_no_match: must be reject when the target is Salesforce"
                    ));
                }
                if d.on_multiple_matches != OnMultipleMatches::Error {
                    return Err(format!(
                        "derived[{i}].on_multiple_matches: must be error when the target is Salesforce"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks the job against the systems' describe results: unknown, read-only, calculated and
    /// rich-text fields, reference types, and mandatory target fields. Errors name the field.
    pub fn check_schemas(&self, schemas: &Schemas) -> Result<(), String> {
        let mut errors = Vec::new();
        let object = |system: System, name: &str| schemas.get(system, name);
        for (system, name) in self.described_objects() {
            if object(system, &name).is_none() {
                errors.push(format!(
                    "{}.object: {name} is not an object of {} (describe found nothing)",
                    system.as_str(),
                    system.as_str()
                ));
            }
        }
        if !errors.is_empty() {
            return Err(self.with_lines(errors));
        }
        let own = |system: System| object(system, self.object_in(system)).expect("checked above");
        let field_of = |path: String, system: System, name: &str, errors: &mut Vec<String>| {
            let o = own(system);
            let f = o.field(name);
            if f.is_none() {
                errors.push(format!("{path}: {}.{name} does not exist", o.name));
            }
            f
        };

        for (list, pairs) in [
            ("identifiers", &self.identifiers),
            ("required", &self.required),
        ] {
            for (i, p) in pairs.iter().enumerate() {
                for system in [System::Gainsight, System::Salesforce] {
                    field_of(
                        format!("{list}[{i}].{}", system.as_str()),
                        system,
                        p.field_in(system),
                        &mut errors,
                    );
                }
            }
        }
        // Gainsight changes upsert on the Salesforce field that holds the GSID: it must be an
        // External ID, or every upsert is refused.
        if let Some((i, pair)) = self
            .identifiers
            .iter()
            .enumerate()
            .find(|(_, p)| p.gainsight == self.gainsight.id_field)
        {
            let sf = own(System::Salesforce);
            if let Some(f) = sf.field(&pair.salesforce).filter(|f| !f.external_id) {
                errors.push(format!(
                    "identifiers[{i}].salesforce: {}.{} is not an External ID field; the GSID can only be upserted on one",
                    sf.name, f.name
                ));
            }
        }

        for (i, m) in self.fields.iter().enumerate() {
            for system in [System::Gainsight, System::Salesforce] {
                let path = format!("fields[{i}].{}", system.as_str());
                let Some(f) = field_of(path.clone(), system, m.field_in(system), &mut errors)
                else {
                    continue;
                };
                let o = &own(system).name;
                if f.calculated {
                    errors.push(format!(
                        "{path}: {o}.{} is a formula/calculated field; real-time sync does not support it",
                        f.name
                    ));
                } else if f.rich_text {
                    errors.push(format!(
                        "{path}: {o}.{} is a rich text field; real-time sync does not support it",
                        f.name
                    ));
                } else if m.flow.carries_from(system.other()) && !f.writable() {
                    errors.push(format!(
                        "{path}: {o}.{} is read-only and cannot be written (flow {})",
                        f.name,
                        serde_json::to_value(m.flow)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default()
                    ));
                }
            }
        }

        for (i, d) in self.derived.iter().enumerate() {
            let target = d.target;
            if let Some(f) = field_of(format!("derived[{i}].field"), target, &d.field, &mut errors)
            {
                if f.kind != FieldKind::Reference || !f.writable() {
                    errors.push(format!(
                        "derived[{i}].field: {}.{} must be a writable reference (GSID / lookup) field",
                        own(target).name, f.name
                    ));
                }
            }
            let Some(via) = object(target, &d.lookup.object) else {
                continue;
            };
            let returns = d.lookup.returns.clone().unwrap_or_else(|| match target {
                System::Gainsight => "Gsid".into(),
                System::Salesforce => "Id".into(),
            });
            if via.field(&returns).is_none() {
                errors.push(format!(
                    "derived[{i}].lookup.returns: {}.{returns} does not exist",
                    via.name
                ));
            }
            for (j, m) in d.lookup.matches.iter().enumerate() {
                if via.field(&m.field).is_none() {
                    errors.push(format!(
                        "derived[{i}].lookup.match[{j}].field: {}.{} does not exist",
                        via.name, m.field
                    ));
                }
                field_of(
                    format!("derived[{i}].lookup.match[{j}].source"),
                    target.other(),
                    &m.source,
                    &mut errors,
                );
            }
        }

        // Seed 000: every mandatory target field must be mapped or be an identifier, or creating
        // records there can only fail.
        for target in [System::Gainsight, System::Salesforce] {
            let source = target.other();
            let creates = self.events.from(source).on_created != OnCreated::DoNothing
                && (self.fields.iter().any(|f| f.flow.carries_from(source))
                    || self.derived.iter().any(|d| d.target == target));
            if !creates {
                continue;
            }
            let o = own(target);
            let mut missing: Vec<&str> = o
                .fields()
                .filter(|f| f.required && f.writable())
                .filter(|f| {
                    let n = f.name.as_str();
                    let mapped = self.fields.iter().any(|m| {
                        m.flow.carries_from(source) && m.field_in(target).eq_ignore_ascii_case(n)
                    }) || self
                        .derived
                        .iter()
                        .any(|d| d.target == target && d.field.eq_ignore_ascii_case(n));
                    let keyed = self
                        .identifiers
                        .iter()
                        .chain(&self.required)
                        .any(|p| p.field_in(target).eq_ignore_ascii_case(n));
                    !mapped && !keyed
                })
                .map(|f| f.name.as_str())
                .collect();
            missing.sort_unstable();
            if !missing.is_empty() {
                errors.push(format!(
                    "fields: {} requires {} on create; map {} from {} or make {} an identifier",
                    o.name,
                    missing.join(", "),
                    if missing.len() == 1 { "it" } else { "them" },
                    source.as_str(),
                    if missing.len() == 1 { "it" } else { "them" },
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(self.with_lines(errors))
        }
    }

    /// Prefixes each `path: message` error with the line of `path` in the job's file.
    fn with_lines(&self, errors: Vec<String>) -> String {
        errors
            .into_iter()
            .map(|e| {
                let path = e.split(": ").next().unwrap_or_default();
                match yaml_line(&self.text, path) {
                    Some(line) => format!("line {line}: {e}"),
                    None => e,
                }
            })
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The 1-based line of a field path such as `fields[2].salesforce` or
/// `derived[0].lookup.match[0].field` in a job file, written in block or flow style. Finds the
/// deepest part of the path it can; `None` if not even the first key is there.
fn yaml_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_key = |l: &str, key: &str| {
        let t = l.trim_start().trim_start_matches("- ").trim_start();
        t.starts_with(&format!("{key}:"))
            || l.contains(&format!("{{ {key}:"))
            || l.contains(&format!(", {key}:"))
            || l.contains(&format!("{{{key}:"))
    };
    let (mut from, mut to, mut found) = (0usize, lines.len(), None);
    for segment in path.split('.') {
        let (key, index) = match segment.split_once('[') {
            Some((k, rest)) => (k, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (segment, None),
        };
        let at = (from..to).find(|&i| is_key(lines[i], key))?;
        found = Some(at + 1);
        // A flow-style line holds the rest of the path: it is the answer.
        if lines[at].contains('{') || lines[at].contains('[') && index.is_none() {
            return found;
        }
        let base = indent(lines[at]);
        let end = (at + 1..to)
            .find(|&i| {
                !lines[i].trim().is_empty()
                    && indent(lines[i]) <= base
                    && !lines[i].trim_start().starts_with("- ")
            })
            .unwrap_or(to);
        let (mut start, mut stop) = (at + 1, end);
        if let Some(n) = index {
            let items: Vec<usize> = (at + 1..end)
                .filter(|&i| lines[i].trim_start().starts_with("- "))
                .collect();
            let Some(&item) = items.get(n) else {
                return found;
            };
            found = Some(item + 1);
            if lines[item].contains('{') {
                return found;
            }
            start = item;
            stop = items.get(n + 1).copied().unwrap_or(end);
        }
        from = start;
        to = stop;
    }
    found
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Invalid { file: PathBuf, message: String },
}

/// Every job of a deployment, validated together.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    jobs: Vec<Job>,
}

impl Jobs {
    /// The jobs shipped in `infra/jobs/`, compiled in so a function always has a valid default.
    pub fn builtin() -> Self {
        const FILES: &[(&str, &str)] = &[
            (
                "infra/jobs/case_case.yaml",
                include_str!("../../../infra/jobs/case_case.yaml"),
            ),
            (
                "infra/jobs/company_account.yaml",
                include_str!("../../../infra/jobs/company_account.yaml"),
            ),
            (
                "infra/jobs/person_contact.yaml",
                include_str!("../../../infra/jobs/person_contact.yaml"),
            ),
        ];
        let mut jobs = Vec::new();
        for (file, text) in FILES {
            jobs.push(Self::parse(Path::new(file), text).expect("shipped jobs are valid (tested)"));
        }
        Self::new(jobs).expect("shipped jobs are valid (tested)")
    }

    pub fn new(jobs: Vec<Job>) -> Result<Self, JobError> {
        let mut names = HashSet::new();
        let mut realtime = HashSet::new();
        for job in &jobs {
            let invalid = |message: String| JobError::Invalid {
                file: job.file.clone(),
                message,
            };
            if !names.insert(job.name.clone()) {
                return Err(invalid(format!("name: job {} is defined twice", job.name)));
            }
            // Seed 000: one real-time job per object, on either side.
            for system in [System::Gainsight, System::Salesforce] {
                let object = job.object_in(system);
                if !realtime.insert((system, object.to_string())) {
                    return Err(invalid(format!(
                        "{}.object: {object} already has a real-time job",
                        system.as_str()
                    )));
                }
            }
        }
        Ok(Self { jobs })
    }

    /// Checks every job against the describe results; the error names the file and the field.
    pub fn check_schemas(&self, schemas: &Schemas) -> Result<(), JobError> {
        for job in &self.jobs {
            job.check_schemas(schemas)
                .map_err(|message| JobError::Invalid {
                    file: job.file.clone(),
                    message,
                })?;
        }
        Ok(())
    }

    /// Every object any job needs described.
    pub fn described_objects(&self) -> Vec<(System, String)> {
        let mut all: Vec<(System, String)> = Vec::new();
        for o in self.jobs.iter().flat_map(Job::described_objects) {
            if !all.contains(&o) {
                all.push(o);
            }
        }
        all
    }

    /// Parses and validates one job file; errors name the file, the line and the field.
    pub fn parse(file: &Path, text: &str) -> Result<Job, JobError> {
        let invalid = |message: String| JobError::Invalid {
            file: file.to_path_buf(),
            message,
        };
        let mut job: Job = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        job.file = file.to_path_buf();
        job.text = text.to_string();
        job.validate()
            .map_err(|e| invalid(job.with_lines(vec![e])))?;
        Ok(job)
    }

    /// Loads every `*.yaml` / `*.yml` in `dir`; one invalid file fails the whole load.
    pub fn load_dir(dir: &Path) -> Result<Self, JobError> {
        let io = |source| JobError::Io {
            file: dir.to_path_buf(),
            source,
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
            .collect();
        paths.sort();
        let mut jobs = Vec::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|source| JobError::Io {
                file: path.clone(),
                source,
            })?;
            jobs.push(Self::parse(&path, &text)?);
        }
        Self::new(jobs)
    }

    pub fn get(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Jobs fed by changes of `object` in `source`.
    pub fn for_source<'a>(
        &'a self,
        source: System,
        object: &'a str,
    ) -> impl Iterator<Item = &'a Job> {
        self.jobs
            .iter()
            .filter(move |j| j.object_in(source) == object)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Job> {
        self.jobs.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::schema::standard_schemas;

    const VALID: &str = include_str!("../../../infra/jobs/company_account.yaml");

    fn company_account() -> Job {
        Jobs::builtin().get("company_account").cloned().unwrap()
    }

    #[test]
    fn shipped_jobs_load_and_match_the_standard_schemas() {
        let jobs = Jobs::builtin();
        for name in ["company_account", "person_contact", "case_case"] {
            assert!(jobs.get(name).is_some(), "{name}");
        }
        let job = jobs.get("company_account").unwrap();
        assert_eq!(job.gsid_external_field(), Some("Gainsight_Company_Id__c"));
        assert_eq!(job.sfid_gainsight_field(), Some("SfdcAccountId"));
        assert_eq!(jobs.for_source(System::Gainsight, "Company").count(), 1);
        assert_eq!(jobs.for_source(System::Salesforce, "Contact").count(), 1);
        jobs.check_schemas(&standard_schemas()).unwrap();
        // The directory load sees the same files.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/jobs");
        assert_eq!(Jobs::load_dir(&dir).unwrap().iter().count(), 3);
    }

    /// Each edit of a valid file must be refused with a message naming the file and the field.
    #[test]
    fn invalid_files_name_file_and_field() {
        let cases = [
            ("flow: gainsight_to_salesforce }", "flow: sideways }", "fields[2].flow: unknown variant `sideways`"),
            ("identifiers:", "identifierz:", "unknown field `identifierz`"),
            ("conflict: newest }", "conflict: loudest }", "unknown variant `loudest`"),
            (
                "{ gainsight: Arr, salesforce: AnnualRevenue, flow: gainsight_to_salesforce }",
                "{ gainsight: Arr, salesforce: AnnualRevenue, flow: gainsight_to_salesforce, conflict: newest }",
                "fields[2].conflict: only bi-directional fields have a conflict rule",
            ),
            ("on_created: create_and_update, on_updated: update }\n  from_salesforce", "on_created: sometimes }\n  from_salesforce", "unknown variant `sometimes`"),
        ];
        for (from, to, expected) in cases {
            let text = VALID.replacen(from, to, 1);
            assert_ne!(text, VALID, "edit {from:?} did not apply");
            let err = Jobs::parse(Path::new("bad.yaml"), &text)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("bad.yaml: "), "{err}");
            assert!(err.contains(expected), "{err}");
        }
        // serde_yaml_ng also says where.
        let err = Jobs::parse(
            Path::new("bad.yaml"),
            &VALID.replace("identifiers:", "identifierz:"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line "), "{err}");
    }

    #[test]
    fn errors_found_after_parsing_name_their_line() {
        let person = include_str!("../../../infra/jobs/person_contact.yaml");
        let cases = [
            (VALID, "fields[2].salesforce", Some(20)),
            (VALID, "identifiers[1].gainsight", Some(13)),
            (VALID, "salesforce.object", Some(10)),
            (VALID, "fields", Some(17)),
            (VALID, "derived[0].field", None),
            (person, "derived[0].lookup.match[0].field", Some(27)),
            (person, "derived[1].on_no_match", Some(33)),
            (person, "derived[1].field", Some(29)),
        ];
        for (text, path, line) in cases {
            assert_eq!(yaml_line(text, path), line, "{path}");
        }
        // Block style too.
        let block = "name: x\nfields:\n  - gainsight: Name\n    salesforce: Nmae\n    flow: bidirectional\n  - gainsight: Arr\n    salesforce: Arr__c\n";
        assert_eq!(yaml_line(block, "fields[0].salesforce"), Some(4));
        assert_eq!(yaml_line(block, "fields[1].salesforce"), Some(7));

        let mut job = company_account();
        job.fields[2].salesforce = "Health_Score__c".into();
        let err = job.check_schemas(&standard_schemas()).unwrap_err();
        assert!(
            err.starts_with("line 20: fields[2].salesforce: Account.Health_Score__c"),
            "{err}"
        );
        let err = Jobs::parse(
            Path::new("bad.yaml"),
            &VALID.replace(
                "conflict: salesforce_wins }",
                "conflict: salesforce_wins, flow: bidirectional }",
            ),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 19"), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let pair = |i: usize| Identifier {
            gainsight: format!("G{i}"),
            salesforce: format!("S{i}__c"),
        };
        let mut job = company_account();
        job.identifiers = (0..10).map(pair).collect();
        job.validate().unwrap();
        job.required = vec![pair(11)];
        assert!(job.validate().unwrap_err().contains("at most 10 together"));

        let mut job = company_account();
        job.fields = (0..20)
            .map(|i| FieldMapping {
                gainsight: format!("G{i}"),
                salesforce: format!("S{i}__c"),
                flow: DataFlow::Bidirectional,
                conflict: None,
            })
            .collect();
        job.derived.clear();
        job.validate().unwrap();
        job.derived = Jobs::builtin()
            .get("person_contact")
            .unwrap()
            .derived
            .clone();
        assert!(job
            .validate()
            .unwrap_err()
            .contains("22 real-time fields given (20 direct, 2 derived)"));

        let mut job = company_account();
        job.fields.push(job.fields[0].clone());
        assert!(job
            .validate()
            .unwrap_err()
            .contains("written by more than one mapping"));
    }

    #[test]
    fn derived_options_towards_salesforce_are_fixed() {
        let mut job = Jobs::builtin().get("person_contact").cloned().unwrap();
        job.derived[0].on_no_match = OnNoMatch::LeaveEmpty;
        assert!(job
            .validate()
            .unwrap_err()
            .contains("derived[0].on_no_match: must be reject"));
        let mut job = Jobs::builtin().get("person_contact").cloned().unwrap();
        job.derived[0].on_multiple_matches = OnMultipleMatches::UseFirst;
        assert!(job
            .validate()
            .unwrap_err()
            .contains("derived[0].on_multiple_matches: must be error"));
        let mut job = Jobs::builtin().get("person_contact").cloned().unwrap();
        job.derived[0].lookup.matches.clear();
        assert!(job
            .validate()
            .unwrap_err()
            .contains("at least one match field"));
    }

    #[test]
    fn one_realtime_job_per_object() {
        let job = company_account();
        let mut twin = job.clone();
        twin.name = "twin".into();
        let err = Jobs::new(vec![job.clone(), twin.clone()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gainsight.object: Company already has a real-time job"),
            "{err}"
        );
        twin.gainsight.object = "Other".into();
        let err = Jobs::new(vec![job, twin]).unwrap_err().to_string();
        assert!(
            err.contains("salesforce.object: Account already has a real-time job"),
            "{err}"
        );
    }

    /// Each schema rule with a job that breaks it; the valid job passes (checked above).
    #[test]
    fn describe_checks_table() {
        let schemas = standard_schemas();
        let edit = |f: &dyn Fn(&mut Job)| {
            let mut job = company_account();
            f(&mut job);
            job.check_schemas(&schemas).unwrap_err()
        };
        type Edit = Box<dyn Fn(&mut Job)>;
        let cases: Vec<(Edit, &str)> = vec![
            (
                Box::new(|j| j.fields[0].salesforce = "Nmae".into()),
                "fields[0].salesforce: Account.Nmae does not exist",
            ),
            (
                Box::new(|j| j.fields[2].salesforce = "Health_Score__c".into()),
                "fields[2].salesforce: Account.Health_Score__c is a formula/calculated field",
            ),
            (
                Box::new(|j| j.fields[2].salesforce = "Rich_Notes__c".into()),
                "fields[2].salesforce: Account.Rich_Notes__c is a rich text field",
            ),
            (
                Box::new(|j| j.fields[2].salesforce = "Id".into()),
                "fields[2].salesforce: Account.Id is read-only",
            ),
            (
                Box::new(|j| j.identifiers[1].gainsight = "SfdcId".into()),
                "identifiers[1].gainsight: Company.SfdcId does not exist",
            ),
            (
                Box::new(|j| j.identifiers[0].salesforce = "Phone".into()),
                "identifiers[0].salesforce: Account.Phone is not an External ID field",
            ),
            (
                Box::new(|j| j.salesforce.object = "Acount".into()),
                "salesforce.object: Acount is not an object of salesforce",
            ),
            (
                Box::new(|j| {
                    j.fields.remove(0);
                }),
                "fields: Account requires Name on create",
            ),
        ];
        for (i, (f, expected)) in cases.into_iter().enumerate() {
            let err = edit(&*f);
            assert!(err.contains(expected), "case {i}: {err}");
        }
        // Not creating from Gainsight: the mandatory field need not be mapped.
        let mut job = company_account();
        job.fields.remove(0);
        job.events.from_gainsight.on_created = OnCreated::DoNothing;
        let err = job.check_schemas(&schemas).unwrap_err();
        assert!(!err.contains("Account requires"), "{err}");
        assert!(err.contains("Company requires Name"), "{err}");

        let mut job = Jobs::builtin().get("person_contact").cloned().unwrap();
        job.derived[0].lookup.matches[0].field = "Gainsight_Id__c".into();
        let err = job.check_schemas(&schemas).unwrap_err();
        assert!(
            err.contains(
                "derived[0].lookup.match[0].field: Account.Gainsight_Id__c does not exist"
            ),
            "{err}"
        );
        let mut job = Jobs::builtin().get("person_contact").cloned().unwrap();
        job.derived[0].field = "Title".into();
        job.fields.retain(|f| f.salesforce != "Title");
        let err = job.check_schemas(&schemas).unwrap_err();
        assert!(
            err.contains("derived[0].field: Contact.Title must be a writable reference"),
            "{err}"
        );
    }
}
