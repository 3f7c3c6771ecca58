//! Job file tests: every option and limit, each with the error a user sees.
use super::lines::yaml_line;
use super::*;
use crate::domain::schema::standard_schemas;

const VALID: &str = include_str!("../../../../infra/jobs/company_account.yaml");

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
    assert_eq!(Jobs::load_dir(&dir).unwrap().iter().count(), 5);
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
    let person = include_str!("../../../../infra/jobs/person_contact.yaml");
    let cases = [
        (VALID, "fields[2].salesforce", Some(21)),
        (VALID, "identifiers[1].gainsight", Some(14)),
        (VALID, "salesforce.object", Some(10)),
        (VALID, "fields", Some(18)),
        (VALID, "derived[0].field", None),
        (person, "derived[0].lookup.match[0].field", Some(28)),
        (person, "derived[1].on_no_match", Some(34)),
        (person, "derived[1].field", Some(30)),
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
        err.starts_with("line 21: fields[2].salesforce: Account.Health_Score__c"),
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
    assert!(err.contains("line 20"), "{err}");
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
            Box::new(|j| {
                j.match_keys.push(super::MatchKey {
                    gainsight: "Domain".into(),
                    salesforce: "Webiste".into(),
                    normalize: super::Normalize::Domain,
                })
            }),
            "match_keys[0].salesforce: Account.Webiste does not exist",
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
        err.contains("derived[0].lookup.match[0].field: Account.Gainsight_Id__c does not exist"),
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

#[test]
fn timeline_jobs_are_checked() {
    let task = include_str!("../../../../infra/jobs/activity_task.yaml");
    let cases = [
        (
            "salesforce: { object: Task, id_field: Id }",
            "salesforce: { object: Account, id_field: Id }",
            "salesforce.object: a timeline job writes Task or Event, not Account",
        ),
        (
            "types: [Call, Email, Update]",
            "types: []",
            "timeline.types: list the activity types",
        ),
        (
            "schedule: rate(4 hours)",
            "schedule: every 4 hours",
            "schedule: \"every 4 hours\" is not an EventBridge expression",
        ),
        (
            "schedule: rate(4 hours)",
            "schedule: rate(4 hours)\nwait_for_parent_hours: 0",
            "wait_for_parent_hours: 0 is out of range; write a number of hours from 1 to 720",
        ),
        (
            "schedule: rate(4 hours)",
            "schedule: rate(4 hours)\non_missing: recreate",
            "on_missing",
        ),
        (
            "attachments_since: \"2026-01-01T00:00:00Z\"",
            "attachments_since: \"soon\"",
            "timeline.attachments_since: \"soon\" is not an RFC 3339 date-time",
        ),
    ];
    for (from, to, message) in cases {
        assert!(task.contains(from), "{from}");
        let err = Jobs::parse(Path::new("t.yaml"), &task.replace(from, to))
            .unwrap_err()
            .to_string();
        assert!(err.contains(message), "{to}: {err}");
    }
    // Two timeline jobs may share the activity object, not an activity type.
    let event = include_str!("../../../../infra/jobs/activity_event.yaml");
    let both = |event_types: &str| {
        let e = Jobs::parse(
            Path::new("e.yaml"),
            &event.replace("types: [Meeting]", event_types),
        )
        .unwrap();
        let t = Jobs::parse(Path::new("t.yaml"), task).unwrap();
        Jobs::new(vec![t, e])
    };
    assert!(both("types: [Meeting]").is_ok());
    let err = both("types: [Meeting, call]").unwrap_err().to_string();
    assert!(
        err.contains("timeline.types: activity type call is already synced by job activity_task"),
        "{err}"
    );
}

#[test]
fn on_missing_creates_only_where_the_gsid_finds_the_new_twin() {
    assert_eq!(company_account().on_missing, OnMissing::Error, "default");
    let create = format!("{VALID}\non_missing: create\n");
    let job = Jobs::parse(Path::new("c.yaml"), &create).unwrap();
    assert_eq!(job.on_missing, OnMissing::Create);
    let gsid_pair = "  - { gainsight: Gsid, salesforce: Gainsight_Company_Id__c }\n";
    assert!(create.contains(gsid_pair));
    let err = Jobs::parse(Path::new("c.yaml"), &create.replace(gsid_pair, ""))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("on_missing: create needs an identifier pairing Company.Gsid"),
        "{err}"
    );
}

/// Object and field names go into SOQL, Gainsight queries and URL paths as they are: one that is
/// not an API name is refused when the job is loaded, with the field at fault.
#[test]
fn names_that_are_not_api_names_are_refused() {
    let cases = [
        (
            "{ object: Account, id_field: Id }",
            "{ object: \"Account WHERE Name != ''\", id_field: Id }",
            "salesforce.object: ",
        ),
        (
            "{ gainsight: Arr, salesforce: AnnualRevenue,",
            "{ gainsight: \"Arr/../x\", salesforce: AnnualRevenue,",
            "fields[2].gainsight: ",
        ),
        (
            "{ gainsight: Arr, salesforce: AnnualRevenue,",
            "{ gainsight: Arr, salesforce: \"Owner.Email\",",
            "fields[2].salesforce: ",
        ),
        (
            "{ gainsight: Arr, salesforce: AnnualRevenue,",
            "{ gainsight: Arr, salesforce: \"2Revenue\",",
            "fields[2].salesforce: ",
        ),
    ];
    for (from, to, path) in cases {
        let text = VALID.replacen(from, to, 1);
        assert_ne!(text, VALID, "edit {from:?} did not apply");
        let err = Jobs::parse(Path::new("bad.yaml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(path) && err.contains("is not an API name"),
            "{err}"
        );
    }
}
