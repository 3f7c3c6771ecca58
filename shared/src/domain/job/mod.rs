//! Sync jobs: which Gainsight object pairs with which Salesforce object, how records are matched,
//! which fields flow in which direction, and what to do on create and update. Loaded from YAML
//! files in `infra/jobs/` and validated before anything runs: on their own (`validate`), and
//! against the systems' describes (`describe_check`).

mod describe_check;
mod lines;
mod validate;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::schema::Schemas;
use super::timeline::TimelineSettings;
use super::System;

/// Identifiers and required fields together are at most 10 per job (as in Gainsight's connector).
pub const MAX_IDENTIFIERS: usize = 10;
/// At most 20 real-time fields (direct and derived) per job.
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

/// What a write does when the pair's Salesforce twin no longer exists (deleted, or merged
/// into another record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMissing {
    /// The pair is marked error, saying which record is gone and how to relink or recreate it.
    #[default]
    Error,
    /// A new twin is created from the change's values (an upsert on the external id field that
    /// holds the GSID), and the pair and its source record learn its id.
    Create,
}

impl OnMissing {
    pub fn is_error(&self) -> bool {
        *self == OnMissing::Error
    }
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

/// How a match key's values are compared: both sides brought to one form first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Case and runs of whitespace ignored.
    #[default]
    Text,
    /// Case and surrounding whitespace ignored.
    Email,
    /// A web address or domain: case, the scheme, `www.` and a trailing slash ignored.
    Domain,
}

/// A pair of fields that names one real-world thing on both sides (Account.Website and
/// Company.Domain, Contact.Email and Person.Email): a first load links records that agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchKey {
    pub gainsight: String,
    pub salesforce: String,
    #[serde(default)]
    pub normalize: Normalize,
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
    /// The record is rejected (the only choice towards Salesforce).
    #[default]
    Reject,
    /// The target field is written empty.
    LeaveEmpty,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnMultipleMatches {
    /// The record is marked error (the only choice towards Salesforce).
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
    /// What a first load matches records on when no identifier links them, in order of
    /// preference; none: identifiers only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_keys: Vec<MatchKey>,
    /// Fields always sent along with a write, so the target has them on every create. Counted
    /// with the identifiers.
    #[serde(default)]
    pub required: Vec<Identifier>,
    #[serde(default)]
    pub events: JobEvents,
    #[serde(default)]
    pub fields: Vec<FieldMapping>,
    #[serde(default)]
    pub derived: Vec<DerivedMapping>,
    /// How often the poller reads the job's changes: an EventBridge `rate(...)` or `cron(...)`
    /// expression, the default of the job's schedule parameter in the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Salesforce upserts of at least this many records in one batch go through Bulk API 2.0
    /// (one ingest job) instead of sObject Collections; absent: 2,000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bulk_threshold: Option<usize>,
    /// How long a change whose lookup finds no parent waits for it before it becomes an error
    /// (hours, 1 to 720); absent: 24.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait_for_parent_hours: Option<u32>,
    /// What a write to Salesforce does when the pair's twin there no longer exists; absent:
    /// `error`.
    #[serde(default, skip_serializing_if = "OnMissing::is_error")]
    pub on_missing: OnMissing,
    /// Present on a Timeline job (activities → Tasks or Events).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeline: Option<TimelineSettings>,
    /// The file the job was loaded from, and its text, for error messages.
    #[serde(skip)]
    pub file: PathBuf,
    #[serde(skip)]
    pub text: String,
}

/// Salesforce's advice: Bulk API above about 2,000 records.
pub const DEFAULT_BULK_THRESHOLD: usize = 2_000;

impl Job {
    /// How many records a Salesforce upsert needs to go through Bulk API 2.0.
    /// How long a change waits for its parent (`domain::waiting`), in hours.
    pub fn wait_for_parent_hours(&self) -> u32 {
        self.wait_for_parent_hours
            .unwrap_or(super::waiting::DEFAULT_WAIT_HOURS)
    }

    pub fn bulk_threshold(&self) -> usize {
        self.bulk_threshold.unwrap_or(DEFAULT_BULK_THRESHOLD).max(1)
    }

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
        let timeline = self
            .timeline
            .iter()
            .filter(|_| system == System::Gainsight)
            .flat_map(|_| super::timeline::READ_FIELDS);
        for f in pairs.chain(mapped).chain(derived).chain(timeline) {
            if !fields.iter().any(|k| k == f) {
                fields.push(f.to_string());
            }
        }
        fields
    }

    /// The fields a read of the job's Salesforce record selects: the job's own, and the
    /// timestamps a change carries.
    pub fn salesforce_read_fields(&self) -> Vec<String> {
        let mut fields = self.fields_read_from(System::Salesforce);
        for f in [
            "CreatedDate",
            "LastModifiedDate",
            super::change::SALESFORCE_MODIFIED,
        ] {
            if !fields.iter().any(|s| s == f) {
                fields.push(f.into());
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

/// A request named a job that is not deployed.
#[derive(Debug, thiserror::Error)]
#[error(
    "no job named {0}; the deployed jobs are in infra/jobs (`syncctl jobs validate` lists them)"
)]
pub struct UnknownJob(pub String);

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
                "infra/jobs/activity_event.yaml",
                include_str!("../../../../infra/jobs/activity_event.yaml"),
            ),
            (
                "infra/jobs/activity_task.yaml",
                include_str!("../../../../infra/jobs/activity_task.yaml"),
            ),
            (
                "infra/jobs/case_case.yaml",
                include_str!("../../../../infra/jobs/case_case.yaml"),
            ),
            (
                "infra/jobs/company_account.yaml",
                include_str!("../../../../infra/jobs/company_account.yaml"),
            ),
            (
                "infra/jobs/person_contact.yaml",
                include_str!("../../../../infra/jobs/person_contact.yaml"),
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
            // One real-time job per object, on either side: two would race on the same records.
            // Timeline jobs share the activity object, each taking its own activity types.
            for system in [System::Gainsight, System::Salesforce] {
                let object = job.object_in(system);
                if system == System::Gainsight && job.timeline.is_some() {
                    continue;
                }
                if !realtime.insert((system, object.to_string())) {
                    return Err(invalid(format!(
                        "{}.object: {object} already has a real-time job",
                        system.as_str()
                    )));
                }
            }
        }
        check_timeline_types(&jobs)?;
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

    /// The job called `name`, or an error naming it.
    pub fn named(&self, name: &str) -> Result<&Job, UnknownJob> {
        self.get(name).ok_or_else(|| UnknownJob(name.to_string()))
    }

    pub fn get(&self, name: &str) -> Option<&Job> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// The jobs a change is for: those of its object, and of Timeline jobs only the one taking
    /// its activity type (or, when none does, the first, which records why it is ignored).
    pub fn for_change<'a>(&'a self, change: &'a super::ChangeEvent) -> Vec<&'a Job> {
        let all: Vec<&Job> = self.for_source(change.source, &change.object).collect();
        if all.iter().all(|j| j.timeline.is_none()) {
            return all;
        }
        let type_name = super::timeline::type_of(&change.fields).unwrap_or_default();
        let taking: Vec<&Job> = all
            .iter()
            .copied()
            .filter(|j| j.timeline.as_ref().is_none_or(|t| t.takes(type_name)))
            .collect();
        if taking.is_empty() {
            all.into_iter().take(1).collect()
        } else {
            taking
        }
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

/// Two Timeline jobs must not take the same activity type: it would become a Task and an Event.
fn check_timeline_types(jobs: &[Job]) -> Result<(), JobError> {
    let mut taken: Vec<(&str, &str)> = Vec::new();
    for job in jobs {
        for t in job.timeline.iter().flat_map(|t| &t.types) {
            if let Some((_, other)) = taken.iter().find(|(k, _)| k.eq_ignore_ascii_case(t)) {
                return Err(JobError::Invalid {
                    file: job.file.clone(),
                    message: format!(
                        "timeline.types: activity type {t} is already synced by job {other}"
                    ),
                });
            }
            taken.push((t, &job.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
