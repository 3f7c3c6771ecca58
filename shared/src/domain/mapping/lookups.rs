//! The batch's derived lookups: what the mapper needs looked up (one request per derived mapping
//! of a job, with every distinct match tuple) and the values found.

use std::collections::{BTreeMap, HashMap};

use super::Mapper;
use crate::domain::{ChangeEvent, Job, Schemas, System};

/// One lookup to run for a batch: all the match tuples of one derived mapping of one job.
#[derive(Clone, Debug, PartialEq)]
pub struct LookupRequest {
    pub job: String,
    /// Index of the derived mapping in the job.
    pub derived: usize,
    pub system: System,
    pub object: String,
    /// Fields of the intermediate object matched, in order.
    pub match_fields: Vec<String>,
    /// Field whose value is returned.
    pub returns: String,
    /// Distinct tuples of match values, one per record needing the lookup.
    pub tuples: Vec<Vec<String>>,
}

/// Values found per match tuple, for one derived mapping.
type Found = HashMap<Vec<String>, Vec<String>>;

/// Results of the batch's lookups: for each (job, derived mapping, match tuple), the values found.
#[derive(Clone, Debug, Default)]
pub struct Lookups {
    /// job -> derived mapping index -> match tuple -> values found.
    found: HashMap<String, HashMap<usize, Found>>,
    /// Lookups that could not run, with why: their records are retried, not rejected.
    failed: Vec<(String, usize, String)>,
    /// Match tuples the system refused to look up (a value it cannot query), with why: their
    /// records are rejected, the rest of the lookup stands.
    refused: HashMap<(String, usize, Vec<String>), String>,
    /// Jobs whose lookups were refused our credentials for good, with why: the job is
    /// deactivated (its records are retried meanwhile, and then wait).
    unauthorized: Vec<(String, String)>,
}

impl Lookups {
    pub fn insert(&mut self, job: &str, derived: usize, tuple: Vec<String>, values: Vec<String>) {
        self.found
            .entry(job.to_string())
            .or_default()
            .entry(derived)
            .or_default()
            .insert(tuple, values);
    }

    /// The lookup of `job`'s derived mapping `derived` could not run, because of `why`.
    pub fn mark_failed(&mut self, job: &str, derived: usize, why: impl Into<String>) {
        self.failed.push((job.to_string(), derived, why.into()));
    }

    /// `job`'s lookup was refused our credentials (`why`); it is also marked failed.
    pub fn mark_unauthorized(&mut self, job: &str, derived: usize, why: String) {
        self.mark_failed(job, derived, why.clone());
        self.unauthorized.push((job.to_string(), why));
    }

    /// The jobs whose lookups were refused our credentials, with why.
    pub fn unauthorized(&self) -> &[(String, String)] {
        &self.unauthorized
    }

    pub fn refuse(&mut self, job: &str, derived: usize, tuple: Vec<String>, why: String) {
        self.refused.insert((job.to_string(), derived, tuple), why);
    }

    /// Why the system refused to look `tuple` up, if it did.
    pub fn refused(&self, job: &str, derived: usize, tuple: &[String]) -> Option<&str> {
        self.refused
            .get(&(job.to_string(), derived, tuple.to_vec()))
            .map(String::as_str)
    }

    pub fn has_failed(&self, job: &str, derived: usize) -> bool {
        self.failure(job, derived).is_some()
    }

    /// Why the lookup of `job`'s derived mapping `derived` could not run, if it could not.
    pub fn failure(&self, job: &str, derived: usize) -> Option<&str> {
        (self.failed.iter())
            .find(|(j, d, _)| j == job && *d == derived)
            .map(|(_, _, why)| why.as_str())
    }

    /// Whether the lookup found a record for `tuple`.
    pub fn found(&self, job: &str, derived: usize, tuple: &[String]) -> bool {
        !self.get(job, derived, tuple).is_empty()
    }

    pub(super) fn get(&self, job: &str, derived: usize, tuple: &[String]) -> &[String] {
        self.found
            .get(job)
            .and_then(|d| d.get(&derived))
            .and_then(|t| t.get(tuple))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Groups what `changes` need into one request per derived mapping (one query per batch).
    pub fn requests<'a>(
        jobs: impl IntoIterator<Item = (&'a Job, &'a ChangeEvent)>,
        schemas: Option<&Schemas>,
    ) -> Vec<LookupRequest> {
        let mut by_key: BTreeMap<(String, usize), LookupRequest> = BTreeMap::new();
        for (job, change) in jobs {
            let mapper = Mapper::new(job, schemas);
            for (index, tuple) in mapper.lookup_tuples(change) {
                let d = &job.derived[index];
                let request =
                    by_key
                        .entry((job.name.clone(), index))
                        .or_insert_with(|| LookupRequest {
                            job: job.name.clone(),
                            derived: index,
                            system: d.target,
                            object: d.lookup.object.clone(),
                            match_fields: d
                                .lookup
                                .matches
                                .iter()
                                .map(|m| m.field.clone())
                                .collect(),
                            returns: d
                                .lookup
                                .returns
                                .clone()
                                .unwrap_or_else(|| job.id_field_in(d.target).to_string()),
                            tuples: Vec::new(),
                        });
                if !request.tuples.contains(&tuple) {
                    request.tuples.push(tuple);
                }
            }
        }
        by_key.into_values().collect()
    }
}
