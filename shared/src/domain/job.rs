//! Sync jobs: which Gainsight object pairs with which Salesforce object, how records are matched,
//! which fields flow in which direction, and what to do on create and update. Loaded from YAML
//! files in `infra/jobs/` and validated before anything runs.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnCreated {
    Create,
    #[default]
    CreateAndUpdate,
    DoNothing,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnUpdated {
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identifier {
    pub gainsight: String,
    pub salesforce: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    pub gainsight: String,
    pub salesforce: String,
    pub flow: DataFlow,
}

impl FieldMapping {
    pub fn field_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight,
            System::Salesforce => &self.salesforce,
        }
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

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub gainsight: ObjectRef,
    pub salesforce: ObjectRef,
    /// How records are matched. The first identifier is the record key: its Salesforce side is an
    /// external-ID field holding the Gainsight id.
    pub identifiers: Vec<Identifier>,
    #[serde(default)]
    pub events: EventActions,
    pub fields: Vec<FieldMapping>,
}

impl Job {
    pub fn object_in(&self, system: System) -> &str {
        match system {
            System::Gainsight => &self.gainsight.object,
            System::Salesforce => &self.salesforce.object,
        }
    }

    /// The primary identifier (validated to exist).
    pub fn key(&self) -> &Identifier {
        &self.identifiers[0]
    }

    pub fn is_identifier(&self, system: System, field: &str) -> bool {
        self.identifiers.iter().any(|i| match system {
            System::Gainsight => i.gainsight == field,
            System::Salesforce => i.salesforce == field,
        })
    }

    fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        if self.identifiers.is_empty() {
            return Err("identifiers: at least one identifier is required to match records".into());
        }
        if self.identifiers.len() > MAX_IDENTIFIERS {
            return Err(format!(
                "identifiers: {} given, at most {MAX_IDENTIFIERS} are allowed",
                self.identifiers.len()
            ));
        }
        if self.fields.is_empty() {
            return Err("fields: at least one field mapping is required".into());
        }
        if self.fields.len() > MAX_REALTIME_FIELDS {
            return Err(format!(
                "fields: {} real-time fields given, at most {MAX_REALTIME_FIELDS} are allowed",
                self.fields.len()
            ));
        }
        for system in [System::Gainsight, System::Salesforce] {
            let mut seen = HashSet::new();
            for (i, f) in self.fields.iter().enumerate() {
                let name = f.field_in(system);
                if name.trim().is_empty() {
                    return Err(format!(
                        "fields[{i}].{}: must not be empty",
                        system.as_str()
                    ));
                }
                if f.flow.carries_from(system.other()) && !seen.insert(name) {
                    return Err(format!(
                        "fields[{i}].{}: {name} is written by more than one mapping",
                        system.as_str()
                    ));
                }
            }
        }
        Ok(())
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

/// Every job of a deployment, validated together.
#[derive(Clone, Debug, Default)]
pub struct Jobs {
    jobs: Vec<Job>,
}

impl Jobs {
    /// The jobs shipped in `infra/jobs/`, compiled in so a function always has a valid default.
    pub fn builtin() -> Self {
        const FILES: &[(&str, &str)] = &[(
            "infra/jobs/company_account.yaml",
            include_str!("../../../infra/jobs/company_account.yaml"),
        )];
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
            if !names.insert(job.name.clone()) {
                return Err(JobError::Invalid {
                    file: PathBuf::from(&job.name),
                    message: format!("name: job {} is defined twice", job.name),
                });
            }
            // Seed 000: one real-time job per object.
            if !realtime.insert(job.gainsight.object.clone()) {
                return Err(JobError::Invalid {
                    file: PathBuf::from(&job.name),
                    message: format!(
                        "gainsight.object: {} already has a real-time job",
                        job.gainsight.object
                    ),
                });
            }
        }
        Ok(Self { jobs })
    }

    /// Parses and validates one job file; errors name the file, the line and the field.
    pub fn parse(file: &Path, text: &str) -> Result<Job, JobError> {
        let invalid = |message: String| JobError::Invalid {
            file: file.to_path_buf(),
            message,
        };
        let job: Job = serde_yaml_ng::from_str(text).map_err(|e| invalid(e.to_string()))?;
        job.validate().map_err(invalid)?;
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

    const VALID: &str = include_str!("../../../infra/jobs/company_account.yaml");

    #[test]
    fn shipped_jobs_load() {
        let jobs = Jobs::builtin();
        let job = jobs.get("company_account").expect("company_account job");
        assert_eq!(job.key().salesforce, "Gainsight_Company_Id__c");
        assert_eq!(jobs.for_source(System::Gainsight, "Company").count(), 1);
        assert_eq!(jobs.for_source(System::Gainsight, "Person").count(), 0);
    }

    #[test]
    fn invalid_files_name_file_line_and_field() {
        let err = Jobs::parse(
            Path::new("bad.yaml"),
            &VALID.replace("flow: gainsight_to_salesforce }", "flow: sideways }"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("bad.yaml: fields[0].flow: unknown variant `sideways`"),
            "{err}"
        );
        assert!(err.contains("line "), "{err}");

        let err = Jobs::parse(
            Path::new("bad.yaml"),
            &VALID.replace("identifiers:", "identifierz:"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unknown field `identifierz`"), "{err}");
    }

    #[test]
    fn limits_are_enforced() {
        let mut job = Jobs::builtin().get("company_account").cloned().unwrap();
        job.identifiers = (0..11)
            .map(|i| Identifier {
                gainsight: format!("G{i}"),
                salesforce: format!("S{i}__c"),
            })
            .collect();
        assert!(job.validate().unwrap_err().contains("at most 10"));

        let mut job = Jobs::builtin().get("company_account").cloned().unwrap();
        job.fields = (0..21)
            .map(|i| FieldMapping {
                gainsight: format!("G{i}"),
                salesforce: format!("S{i}__c"),
                flow: DataFlow::Bidirectional,
            })
            .collect();
        assert!(job.validate().unwrap_err().contains("at most 20"));

        let mut job = Jobs::builtin().get("company_account").cloned().unwrap();
        job.fields.push(job.fields[0].clone());
        assert!(job
            .validate()
            .unwrap_err()
            .contains("written by more than one mapping"));
    }

    #[test]
    fn one_realtime_job_per_object() {
        let job = Jobs::builtin().get("company_account").cloned().unwrap();
        let mut twin = job.clone();
        twin.name = "twin".into();
        let err = Jobs::new(vec![job, twin]).unwrap_err().to_string();
        assert!(err.contains("already has a real-time job"), "{err}");
    }
}
