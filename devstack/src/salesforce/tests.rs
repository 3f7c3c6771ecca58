//! Unit tests of the emulator's parts.
use super::*;

#[test]
fn ids_have_the_case_safe_suffix() {
    // Chunks "001A0" (bit 3 -> I), "00000" (none -> A), "Zx7Zt" (bits 0 and 3 -> J).
    assert_eq!(id_suffix("001A000000Zx7Zt"), "IAJ");
    assert_eq!(id_suffix("00000000000000a"), "AAA");
    assert_eq!(id_suffix("0015g00000ABCDE").len(), 3);
}

#[test]
fn datetimes_round_trip() {
    let ms = 1_700_000_000_123;
    assert_eq!(sf_datetime(ms), "2023-11-14T22:13:20.123+0000");
    assert_eq!(parse_datetime_ms(&sf_datetime(ms)), Some(ms));
    assert_eq!(
        parse_datetime_ms("2023-11-14T22:13:20Z"),
        Some(1_700_000_000_000)
    );
    assert_eq!(
        parse_datetime_ms("2023-11-14T23:13:20+01:00"),
        Some(1_700_000_000_000)
    );
}

#[test]
fn soql_subset_filters_orders_and_limits() {
    let q = soql::parse("SELECT Id, Name FROM Account WHERE Name LIKE 'ac%' AND AnnualRevenue >= 10 OR Name = 'O\\'Brien' ORDER BY Name DESC LIMIT 5").unwrap();
    let recs: Vec<Record> = vec![
        json!({"Id": "1", "Name": "Acme", "AnnualRevenue": 20}),
        json!({"Id": "2", "Name": "Acorn", "AnnualRevenue": 5}),
        json!({"Id": "3", "Name": "O'Brien", "AnnualRevenue": 1}),
    ]
    .into_iter()
    .map(|v| v.as_object().cloned().unwrap())
    .collect();
    let kinds = |f: &str| match f {
        "Id" => Some(FieldType::Id),
        "Name" => Some(FieldType::String),
        "AnnualRevenue" => Some(FieldType::Currency),
        _ => None,
    };
    let rows = soql::run(&q, &recs, kinds).unwrap();
    let names: Vec<_> = rows.iter().map(|r| r["Name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["O'Brien", "Acme"]);
    // Parentheses group: (A OR (B AND C)) AND D.
    let grouped = soql::parse("SELECT Id FROM Account WHERE (AnnualRevenue > 5 OR (AnnualRevenue = 5 AND Id > '1')) AND Name != 'Acme'").unwrap();
    let rows = soql::run(&grouped, &recs, kinds).unwrap();
    let ids: Vec<_> = rows.iter().map(|r| r["Id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec!["2"], "Acme excluded by the AND outside the group");
    assert!(soql::parse("SELECT Id FROM Account WHERE (Name = 'x'").is_err());
    assert!(soql::parse("SELECT FROM Account").is_err());
    assert!(soql::run(
        &soql::parse("SELECT Nope FROM Account").unwrap(),
        &recs,
        kinds
    )
    .is_err());
}

#[test]
fn datetimes_in_salesforce_format() {
    assert_eq!(
        sf_datetime(1_700_000_000_123),
        "2023-11-14T22:13:20.123+0000"
    );
    assert_eq!(
        parse_datetime_ms("2023-11-14T22:13:20.123+0000"),
        Some(1_700_000_000_123)
    );
    assert_eq!(
        parse_datetime_ms("2023-11-14T23:13:20+01:00"),
        Some(1_700_000_000_000)
    );
    assert_eq!(parse_date_ms("2023-11-14"), Some(1_699_920_000_000));
    assert_eq!(parse_datetime_ms("2023-11-14"), None);
    assert_eq!(parse_date_ms("2023-13-01"), None);
}
