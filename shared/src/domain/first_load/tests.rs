use std::path::Path;

use serde_json::json;

use super::*;
use crate::domain::Jobs;

/// company_account with Company.Domain matched to Account.Website.
fn job() -> Job {
    let builtin = Jobs::builtin();
    let base = builtin.named("company_account").expect("shipped job");
    let text = format!(
        "{}\nmatch_keys:\n  - {{ gainsight: Domain, salesforce: Website, normalize: domain }}\n",
        base.text
    );
    Jobs::parse(Path::new("company_account.yaml"), &text).expect("a valid job")
}

fn rec(v: Value) -> Fields {
    v.as_object().cloned().unwrap_or_default()
}

fn row<'a>(rows: &'a [PlanRow], gsid: Option<&str>, sfid: Option<&str>) -> &'a PlanRow {
    (rows.iter())
        .find(|r| {
            (gsid.is_none() || r.gsid.as_deref() == gsid)
                && (sfid.is_none() || r.salesforce_id.as_deref() == sfid)
        })
        .unwrap_or_else(|| panic!("no row for {gsid:?} / {sfid:?} in {rows:#?}"))
}

const A: &str = "0015g00000000";

fn account(n: u32, more: Value) -> Fields {
    let mut r = rec(json!({"Id": format!("{A}{n:02}AAA")}));
    r.extend(rec(more));
    r
}

fn sfid(n: u32) -> String {
    format!("{A}{n:02}AAA")
}

#[test]
fn normal_forms() {
    let domain = |s: &str| normalize(Normalize::Domain, &json!(s));
    assert_eq!(domain("HTTPS://www.Acme.com/").as_deref(), Some("acme.com"));
    assert_eq!(domain("acme.com").as_deref(), Some("acme.com"));
    let text = normalize(Normalize::Text, &json!("  Acme \t  Inc "));
    assert_eq!(text.as_deref(), Some("acme inc"));
    let email = normalize(Normalize::Email, &json!(" Ann@Acme.COM "));
    assert_eq!(email.as_deref(), Some("ann@acme.com"));
    assert_eq!(domain("  "), None, "an empty value matches nothing");
    assert_eq!(normalize(Normalize::Text, &Value::Null), None);
}

/// Every kind of row, from the mix a real org has.
#[test]
fn the_plan_of_an_org_with_years_of_data() {
    let gainsight = vec![
        rec(json!({"Gsid": "G1", "Name": "Linked"})),
        rec(json!({"Gsid": "G2", "Name": "Globex", "Industry": "Energy",
            "ModifiedDate": 1_796_083_200_000_i64, "Arr": 100})),
        rec(json!({"Gsid": "G3", "SfdcAccountId": sfid(3)[..15]})),
        rec(json!({"Gsid": "G4", "Domain": "acme.io"})),
        rec(json!({"Gsid": "G5", "Domain": "dup.com"})),
        rec(json!({"Gsid": "G6", "SfdcAccountId": sfid(6)})),
        rec(json!({"Gsid": "G7", "SfdcAccountId": sfid(6)})),
        rec(json!({"Gsid": "G8", "Name": "Only in Gainsight", "Domain": ""})),
    ];
    let salesforce = vec![
        account(1, json!({"Name": "Linked"})),
        account(
            2,
            json!({"Gainsight_Company_Id__c": "G2", "Name": "Globex Corp",
            "Industry": "Utilities", "LastModifiedDate": "2026-11-01T00:00:00.000Z",
            "AnnualRevenue": "100.0", "Phone": ""}),
        ),
        account(3, json!({})),
        account(4, json!({"Website": "https://www.ACME.io/"})),
        account(50, json!({"Website": "dup.com"})),
        account(51, json!({"Website": "http://dup.com"})),
        account(6, json!({})),
        account(9, json!({"Name": "Only in Salesforce", "Website": ""})),
    ];
    let linked = HashMap::from([("G1".to_string(), sfid(1)[..15].to_string())]);
    let snapshot = Snapshot {
        gainsight: gainsight.into(),
        salesforce: salesforce.into(),
        linked,
        ..Snapshot::default()
    };
    let rows = plan(&job(), &snapshot, None);

    let g1 = row(&rows, Some("G1"), None);
    assert_eq!(g1.action, Action::Pair(LinkedBy::Ledger));
    assert_eq!(
        g1.salesforce_id,
        Some(sfid(1)),
        "the ledger's 15 characters found the 18"
    );
    assert!(g1.updates.is_empty());

    let g2 = row(&rows, Some("G2"), Some(&sfid(2)));
    let by = "identifier Gsid = Gainsight_Company_Id__c".to_string();
    assert_eq!(g2.action, Action::Pair(LinkedBy::Identifier(by)));
    // Name: two-way, newest (Gainsight's); Industry: two-way, Salesforce wins; Arr 100 and
    // "100.0" agree; Phone: null and empty agree.
    let wanted = vec![
        FieldUpdate {
            target: System::Salesforce,
            field: "Name".into(),
            value: json!("Globex"),
            was: json!("Globex Corp"),
        },
        FieldUpdate {
            target: System::Gainsight,
            field: "Industry".into(),
            value: json!("Utilities"),
            was: json!("Energy"),
        },
    ];
    assert_eq!(g2.updates, wanted);

    let g3 = row(&rows, Some("G3"), None);
    assert_eq!(
        g3.salesforce_id,
        Some(sfid(3)),
        "a 15-character SfdcAccountId"
    );
    let g4 = row(&rows, Some("G4"), None);
    let by = "match key Domain ~ Website".to_string();
    assert_eq!(
        (&g4.action, g4.salesforce_id.clone()),
        (&Action::Pair(LinkedBy::MatchKey(by)), Some(sfid(4)))
    );

    let g5 = row(&rows, Some("G5"), None);
    assert!(
        matches!(&g5.action, Action::Ambiguous { candidates, .. } if candidates == &[sfid(50), sfid(51)]),
        "{g5:?}"
    );
    for g in ["G6", "G7"] {
        let r = row(&rows, Some(g), None);
        assert!(
            matches!(&r.action, Action::Ambiguous { why, .. } if why.contains("claimed by G6, G7")),
            "{r:?}"
        );
    }
    // The candidates of ambiguous matches are left alone too, not created in Gainsight.
    for n in [50, 51, 6] {
        let r = row(&rows, None, Some(&sfid(n)));
        assert!(matches!(r.action, Action::Ambiguous { .. }), "{r:?}");
    }
    assert_eq!(
        row(&rows, Some("G8"), None).action,
        Action::CreateInSalesforce
    );
    assert_eq!(
        row(&rows, None, Some(&sfid(9))).action,
        Action::CreateInGainsight
    );

    let c = counts(&rows);
    assert_eq!(
        c,
        Counts {
            already_linked: 1,
            link_by_identifier: 2,
            link_by_match_key: 1,
            create_in_salesforce: 1,
            create_in_gainsight: 1,
            no_twin: 0,
            ambiguous: 6,
            to_update: 1,
            refused: 0,
        }
    );

    // Written only from Gainsight: the same links, no Company created from the lone Account,
    // and only the values Gainsight's side gives written.
    let from_gs = plan(&job(), &snapshot, Some(System::Gainsight));
    assert_eq!(
        row(&from_gs, None, Some(&sfid(9))).action,
        Action::NotLoaded(System::Salesforce)
    );
    assert!((from_gs.iter().flat_map(|r| &r.updates)).all(|u| u.target == System::Salesforce));
    assert_eq!(row(&from_gs, Some("G2"), None).updates, wanted[..1]);
    let c = counts(&from_gs);
    assert_eq!((c.create_in_salesforce, c.create_in_gainsight), (1, 0));
    assert_eq!((c.link_by_identifier, c.link_by_match_key), (2, 1));
    let from_sf = plan(&job(), &snapshot, Some(System::Salesforce));
    assert_eq!(
        row(&from_sf, Some("G8"), None).action,
        Action::NotLoaded(System::Gainsight)
    );
}

/// A job that does not create from a side leaves that side's lone records alone.
#[test]
fn no_twin_where_the_job_does_not_create() {
    let mut job = job();
    job.events.from_salesforce.on_created = OnCreated::DoNothing;
    let snapshot = Snapshot {
        salesforce: vec![account(9, json!({}))].into(),
        ..Snapshot::default()
    };
    let rows = plan(&job, &snapshot, None);
    assert_eq!(rows[0].action, Action::NoTwin(System::Salesforce));
}

/// Writes the target would refuse (a restricted picklist, a required field left empty, a
/// fraction into a whole number, text into a currency) are listed with the reason and not
/// written; a refused pair is still linked; a record the target takes is created.
#[test]
fn writes_the_target_would_refuse_are_listed_not_written() {
    let gainsight = vec![
        rec(json!({"Gsid": "G1", "Name": "Acme", "Industry": "Aerospace"})),
        rec(json!({"Gsid": "G2", "Name": " ", "Employees": 12.5})),
        rec(json!({"Gsid": "G3", "Name": "Initech", "Industry": "Energy", "Employees": 40})),
        rec(json!({"Gsid": "G5", "Name": "Globex", "Arr": "lots"})),
    ];
    // Bulk API results carry every value as text.
    let salesforce = vec![
        account(
            5,
            json!({"Name": "Globex", "Gainsight_Company_Id__c": "G5"}),
        ),
        account(6, json!({"Name": "Hooli", "NumberOfEmployees": "7"})),
    ];
    let snapshot = Snapshot {
        gainsight: gainsight.into(),
        salesforce: salesforce.into(),
        schemas: crate::domain::schema::standard_schemas(),
        ..Snapshot::default()
    };
    let rows = plan(&job(), &snapshot, None);

    let refused = |gsid: &str| row(&rows, Some(gsid), None).refused.clone();
    let g1 = refused("G1").unwrap_or_default();
    assert!(
        g1.contains("Account.Industry") && g1.contains("restricted picklist"),
        "{g1}"
    );
    let g2 = refused("G2").unwrap_or_default();
    assert!(g2.contains("Account.Name is required"), "{g2}");
    assert!(g2.contains("Account.NumberOfEmployees"), "{g2}");
    assert_eq!(refused("G3"), None);
    let g5 = row(&rows, Some("G5"), None);
    assert!(matches!(g5.action, Action::Pair(LinkedBy::Identifier(_))));
    let why = g5.refused.clone().unwrap_or_default();
    assert!(why.contains("Account.AnnualRevenue"), "{why}");
    assert_eq!(row(&rows, None, Some(&sfid(6))).refused, None);

    let c = counts(&rows);
    assert_eq!(
        (c.refused, c.create_in_salesforce, c.create_in_gainsight),
        (3, 1, 1)
    );
    assert_eq!((c.link_by_identifier, c.to_update), (1, 0));
    let steps: Vec<_> = steps::steps(&rows.clone().into()).collect();
    let wrote = |id: &str| {
        steps
            .iter()
            .any(|s| matches!(s, steps::Step::Write { id: w, .. } if w == id))
    };
    assert!(!wrote("G1") && !wrote("G2") && !wrote("G5"));
    assert!(wrote("G3") && wrote(&sfid(6)));
    assert!(steps
        .iter()
        .any(|s| matches!(s, steps::Step::Link { gsid, .. } if gsid == "G5")));
}
