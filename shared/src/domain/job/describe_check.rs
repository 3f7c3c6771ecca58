//! A job checked against the systems' describes: unknown, read-only, calculated and rich-text
//! fields, reference types of derived targets, the GSID's External ID field, and mandatory target
//! fields left unmapped. Every error names its path and line in the job file.

use super::{Job, OnCreated};
use crate::domain::schema::{FieldKind, FieldSchema, ObjectSchema, Schemas};
use crate::domain::System;

const SYSTEMS: [System; 2] = [System::Gainsight, System::Salesforce];

/// The errors found so far, with what they are checked against.
struct DescribeCheck<'a> {
    job: &'a Job,
    schemas: &'a Schemas,
    errors: Vec<String>,
}

impl Job {
    /// Checks the job against the systems' describe results; errors name the field.
    pub fn check_schemas(&self, schemas: &Schemas) -> Result<(), String> {
        let missing: Vec<String> = self
            .described_objects()
            .into_iter()
            .filter(|(system, name)| schemas.get(*system, name).is_none())
            .map(|(system, name)| {
                let side = system.as_str();
                format!("{side}.object: {name} is not an object of {side} (describe found nothing)")
            })
            .collect();
        if !missing.is_empty() {
            return Err(self.with_lines(missing));
        }
        let mut check = DescribeCheck {
            job: self,
            schemas,
            errors: Vec::new(),
        };
        check.keys();
        check.gsid_is_external_id();
        check.direct_fields();
        check.derived_fields();
        for target in SYSTEMS {
            check.mandatory_fields(target);
        }
        match check.errors.is_empty() {
            true => Ok(()),
            false => Err(self.with_lines(check.errors)),
        }
    }
}

impl<'a> DescribeCheck<'a> {
    /// The job's own object in `system` (present: checked before any field).
    fn own(&self, system: System) -> &'a ObjectSchema {
        let schemas = self.schemas;
        match schemas.get(system, self.job.object_in(system)) {
            Some(o) => o,
            None => unreachable!("objects are checked before fields"),
        }
    }

    /// Field `name` of the job's object in `system`, or an error at `path`.
    fn field(&mut self, path: String, system: System, name: &str) -> Option<&'a FieldSchema> {
        let o = self.own(system);
        let f = o.field(name);
        if f.is_none() {
            self.errors
                .push(format!("{path}: {}.{name} does not exist", o.name));
        }
        f
    }

    /// Identifiers, required pairs and match keys exist on both sides.
    fn keys(&mut self) {
        let job = self.job;
        for (list, pairs) in [
            ("identifiers", &job.identifiers),
            ("required", &job.required),
        ] {
            for (i, p) in pairs.iter().enumerate() {
                for system in SYSTEMS {
                    let path = format!("{list}[{i}].{}", system.as_str());
                    self.field(path, system, p.field_in(system));
                }
            }
        }
        for (i, k) in job.match_keys.iter().enumerate() {
            self.field(
                format!("match_keys[{i}].gainsight"),
                System::Gainsight,
                &k.gainsight,
            );
            self.field(
                format!("match_keys[{i}].salesforce"),
                System::Salesforce,
                &k.salesforce,
            );
        }
    }

    /// Gainsight changes upsert on the Salesforce field that holds the GSID: it must be an
    /// External ID, or every upsert is refused.
    fn gsid_is_external_id(&mut self) {
        let job = self.job;
        let gsid = job
            .identifiers
            .iter()
            .enumerate()
            .find(|(_, p)| p.gainsight == job.gainsight.id_field);
        let Some((i, pair)) = gsid else { return };
        let sf = self.own(System::Salesforce);
        if let Some(f) = sf.field(&pair.salesforce).filter(|f| !f.external_id) {
            self.errors.push(format!(
                "identifiers[{i}].salesforce: {}.{} is not an External ID field; the GSID can only be upserted on one",
                sf.name, f.name
            ));
        }
    }

    /// Direct mappings: fields exist, none calculated or rich text, targets writable.
    fn direct_fields(&mut self) {
        for (i, m) in self.job.fields.iter().enumerate() {
            for system in SYSTEMS {
                let path = format!("fields[{i}].{}", system.as_str());
                let Some(f) = self.field(path.clone(), system, m.field_in(system)) else {
                    continue;
                };
                let written = m.flow.carries_from(system.other());
                if let Some(why) = unsupported(f, written) {
                    let o = &self.own(system).name;
                    let flow = serde_json::to_value(m.flow).ok();
                    let flow = flow.as_ref().and_then(|v| v.as_str()).unwrap_or_default();
                    let why = why.replace("{flow}", flow);
                    self.errors.push(format!("{path}: {o}.{} {why}", f.name));
                }
            }
        }
    }

    /// Derived mappings: a writable reference target, and lookup fields that exist.
    fn derived_fields(&mut self) {
        for (i, d) in self.job.derived.iter().enumerate() {
            let target = d.target;
            let path = format!("derived[{i}].field");
            if let Some(f) = self.field(path, target, &d.field) {
                if f.kind != FieldKind::Reference || !f.writable() {
                    self.errors.push(format!(
                        "derived[{i}].field: {}.{} must be a writable reference (GSID / lookup) field",
                        self.own(target).name,
                        f.name
                    ));
                }
            }
            let Some(via) = self.schemas.get(target, &d.lookup.object) else {
                continue;
            };
            let returns = d.lookup.returns.clone();
            let returns = returns.unwrap_or_else(|| self.job.id_field_in(target).to_string());
            if via.field(&returns).is_none() {
                self.errors.push(format!(
                    "derived[{i}].lookup.returns: {}.{returns} does not exist",
                    via.name
                ));
            }
            for (j, m) in d.lookup.matches.iter().enumerate() {
                if via.field(&m.field).is_none() {
                    self.errors.push(format!(
                        "derived[{i}].lookup.match[{j}].field: {}.{} does not exist",
                        via.name, m.field
                    ));
                }
                let path = format!("derived[{i}].lookup.match[{j}].source");
                self.field(path, target.other(), &m.source);
            }
        }
    }

    /// Every mandatory target field must be mapped or be an identifier when the job
    /// creates records there, or creating them can only fail.
    fn mandatory_fields(&mut self, target: System) {
        let job = self.job;
        let source = target.other();
        let creates = job.events.from(source).on_created != OnCreated::DoNothing
            && (job.fields.iter().any(|f| f.flow.carries_from(source))
                || job.derived.iter().any(|d| d.target == target));
        if !creates {
            return;
        }
        let o = self.own(target);
        let mut missing: Vec<&str> = o
            .fields()
            .filter(|f| f.required && f.writable() && !job.fills(target, &f.name))
            .map(|f| f.name.as_str())
            .collect();
        if missing.is_empty() {
            return;
        }
        missing.sort_unstable();
        let them = if missing.len() == 1 { "it" } else { "them" };
        self.errors.push(format!(
            "fields: {} requires {} on create; map {them} from {} or make {them} an identifier",
            o.name,
            missing.join(", "),
            source.as_str(),
        ));
    }
}

impl Job {
    /// Whether a write towards `target` carries field `name`: mapped, derived or a key.
    fn fills(&self, target: System, name: &str) -> bool {
        let source = target.other();
        let mapped = self
            .fields
            .iter()
            .any(|m| m.flow.carries_from(source) && m.field_in(target).eq_ignore_ascii_case(name));
        let derived = self
            .derived
            .iter()
            .any(|d| d.target == target && d.field.eq_ignore_ascii_case(name));
        let keyed = self
            .identifiers
            .iter()
            .chain(&self.required)
            .any(|p| p.field_in(target).eq_ignore_ascii_case(name));
        mapped || derived || keyed
    }
}

/// Why a described field cannot take part in real-time sync (`written`: the job writes it).
fn unsupported(f: &FieldSchema, written: bool) -> Option<&'static str> {
    if f.calculated {
        Some("is a formula/calculated field; real-time sync does not support it")
    } else if f.rich_text {
        Some("is a rich text field; real-time sync does not support it")
    } else if written && !f.writable() {
        Some("is read-only and cannot be written (flow {flow})")
    } else {
        None
    }
}
