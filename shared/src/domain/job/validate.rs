//! A job's own rules, checked when its file is loaded: limits, non-empty names, each target field
//! written by one mapping, conflict rules only on bi-directional fields, derived options.

use std::collections::HashSet;

use super::{DataFlow, Job, OnMultipleMatches, OnNoMatch, MAX_IDENTIFIERS, MAX_REALTIME_FIELDS};
use crate::domain::System;

const SYSTEMS: [System; 2] = [System::Gainsight, System::Salesforce];

impl Job {
    /// The first rule the job breaks, as `path: message`.
    pub(super) fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name: must not be empty".into());
        }
        self.check_limits()?;
        self.check_keys_named()?;
        self.check_names()?;
        for system in SYSTEMS {
            self.check_written_once(system)?;
        }
        self.check_conflict_rules()?;
        self.check_schedule()?;
        self.check_wait()?;
        self.check_on_missing()?;
        self.check_timeline()?;
        self.derived
            .iter()
            .enumerate()
            .try_for_each(|(i, d)| check_derived(i, d))
    }

    /// At most 10 identifiers and required fields together, at most 20 real-time
    /// fields, and at least one of each kind.
    fn check_limits(&self) -> Result<(), String> {
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
        Ok(())
    }

    /// Every identifier and required pair names a field on both sides.
    fn check_keys_named(&self) -> Result<(), String> {
        for (list, pairs) in [
            ("identifiers", &self.identifiers),
            ("required", &self.required),
        ] {
            for (i, p) in pairs.iter().enumerate() {
                if let Some(system) = SYSTEMS
                    .into_iter()
                    .find(|s| p.field_in(*s).trim().is_empty())
                {
                    return Err(format!(
                        "{list}[{i}].{}: must not be empty",
                        system.as_str()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Every object and field name is an API name (a letter, then letters, digits and
    /// underscores): the names go into SOQL, Gainsight queries and URL paths as they are, so a
    /// name with a space, quote, dot or slash would change what is asked for.
    fn check_names(&self) -> Result<(), String> {
        let mut names: Vec<(String, &str)> = vec![
            ("gainsight.object".into(), &self.gainsight.object),
            ("gainsight.id_field".into(), &self.gainsight.id_field),
            ("salesforce.object".into(), &self.salesforce.object),
            ("salesforce.id_field".into(), &self.salesforce.id_field),
        ];
        for (list, pairs) in [
            ("identifiers", &self.identifiers),
            ("required", &self.required),
        ] {
            for (i, p) in pairs.iter().enumerate() {
                names.push((format!("{list}[{i}].gainsight"), &p.gainsight));
                names.push((format!("{list}[{i}].salesforce"), &p.salesforce));
            }
        }
        for (i, k) in self.match_keys.iter().enumerate() {
            names.push((format!("match_keys[{i}].gainsight"), &k.gainsight));
            names.push((format!("match_keys[{i}].salesforce"), &k.salesforce));
        }
        for (i, f) in self.fields.iter().enumerate() {
            names.push((format!("fields[{i}].gainsight"), &f.gainsight));
            names.push((format!("fields[{i}].salesforce"), &f.salesforce));
        }
        for (i, d) in self.derived.iter().enumerate() {
            names.push((format!("derived[{i}].field"), &d.field));
            names.push((format!("derived[{i}].lookup.object"), &d.lookup.object));
            if let Some(returns) = &d.lookup.returns {
                names.push((format!("derived[{i}].lookup.returns"), returns));
            }
            for (j, m) in d.lookup.matches.iter().enumerate() {
                names.push((format!("derived[{i}].lookup.match[{j}].field"), &m.field));
                names.push((format!("derived[{i}].lookup.match[{j}].source"), &m.source));
            }
        }
        match names.into_iter().find(|(_, name)| !is_api_name(name)) {
            Some((path, name)) => Err(format!(
                "{path}: {name:?} is not an API name (a letter, then letters, digits and underscores, as Salesforce and Gainsight name objects and fields)"
            )),
            None => Ok(()),
        }
    }

    /// No field of `system` is written by two mappings (names compared ignoring case, as both
    /// systems do).
    fn check_written_once(&self, system: System) -> Result<(), String> {
        let mut written = HashSet::new();
        for (i, f) in self.fields.iter().enumerate() {
            let name = f.field_in(system);
            let side = system.as_str();
            if name.trim().is_empty() {
                return Err(format!("fields[{i}].{side}: must not be empty"));
            }
            if f.flow.carries_from(system.other()) && !written.insert(name.to_ascii_lowercase()) {
                return Err(format!(
                    "fields[{i}].{side}: {name} is written by more than one mapping"
                ));
            }
        }
        let towards = self
            .derived
            .iter()
            .enumerate()
            .filter(|(_, d)| d.target == system);
        for (i, d) in towards {
            if !written.insert(d.field.to_ascii_lowercase()) {
                return Err(format!(
                    "derived[{i}].field: {} is written by more than one mapping",
                    d.field
                ));
            }
        }
        Ok(())
    }

    /// A conflict rule only means something for a field both sides write.
    fn check_conflict_rules(&self) -> Result<(), String> {
        for (i, f) in self.fields.iter().enumerate() {
            if f.conflict.is_some() && f.flow != DataFlow::Bidirectional {
                return Err(format!(
                    "fields[{i}].conflict: only bi-directional fields have a conflict rule ({} flows one way)",
                    f.gainsight
                ));
            }
        }
        Ok(())
    }
}

impl Job {
    /// A new twin can be created only where one is found again by the GSID: an upsert on the
    /// external id field the job pairs with it.
    fn check_on_missing(&self) -> Result<(), String> {
        match (self.on_missing, self.gsid_external_field()) {
            (super::OnMissing::Create, None) => Err(format!(
                "on_missing: create needs an identifier pairing {}.{} with an external id field of {} (for example {{ gainsight: {}, salesforce: Gainsight_Id__c }})",
                self.gainsight.object, self.gainsight.id_field, self.salesforce.object, self.gainsight.id_field
            )),
            _ => Ok(()),
        }
    }

    /// A change waits for its parent between an hour and 30 days.
    fn check_wait(&self) -> Result<(), String> {
        match self.wait_for_parent_hours {
            Some(h) if !(1..=720).contains(&h) => Err(format!(
                "wait_for_parent_hours: {h} is out of range; write a number of hours from 1 to 720 (default 24)"
            )),
            _ => Ok(()),
        }
    }

    /// A schedule is an EventBridge `rate(N unit)` or `cron(...)` expression.
    fn check_schedule(&self) -> Result<(), String> {
        let Some(expr) = &self.schedule else {
            return Ok(());
        };
        if crate::domain::schedule::rate_period(expr).is_some()
            || (expr.starts_with("cron(") && expr.ends_with(')'))
        {
            return Ok(());
        }
        Err(format!(
            "schedule: {expr:?} is not an EventBridge expression; write rate(10 minutes), rate(1 hour), rate(4 hours) or cron(...)"
        ))
    }

    /// A Timeline job reads activities into a Task or an Event and names the types it takes.
    fn check_timeline(&self) -> Result<(), String> {
        use crate::domain::timeline::{ACTIVITY_OBJECT, TARGETS};
        let Some(timeline) = &self.timeline else {
            return Ok(());
        };
        if self.gainsight.object != ACTIVITY_OBJECT {
            return Err(format!(
                "gainsight.object: a timeline job reads {ACTIVITY_OBJECT}, not {}",
                self.gainsight.object
            ));
        }
        if !TARGETS.contains(&self.salesforce.object.as_str()) {
            return Err(format!(
                "salesforce.object: a timeline job writes Task or Event, not {}",
                self.salesforce.object
            ));
        }
        if timeline.types.iter().all(|t| t.trim().is_empty()) {
            return Err(
                "timeline.types: list the activity types marked \"sync to Salesforce\"".into(),
            );
        }
        timeline.attachments_since_ms().map(|_| ())
    }
}

/// A derived mapping names its field, lookup object and match fields; towards Salesforce,
/// multiple matches always mark an error and no match always rejects (the options exist only for
/// Salesforce -> Gainsight).
fn check_derived(i: usize, d: &super::DerivedMapping) -> Result<(), String> {
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
    if d.target != System::Salesforce {
        return Ok(());
    }
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
    Ok(())
}

/// A letter, then letters, digits and underscores (`Gainsight_Company_Id__c`).
fn is_api_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
