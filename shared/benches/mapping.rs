//! Mapping engine throughput on one core: a batch of 1000 Gainsight Company changes and 1000
//! Salesforce Contact changes through `Mapper::map`, half of them echoes of what the ledger says was
//! last synced, with the standard jobs, the cached describes and a derived lookup.
//! `make bench` turns the result into `bench: mapping_records_per_second = <n> records/s`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use shared::domain::schema::standard_schemas;
use shared::domain::{
    ChangeEvent, ChangeOrigin, Jobs, LedgerRecord, Lookups, MapOutcome, Mapper, Operation, System,
};

const RECORDS: usize = 2000;

fn changes() -> Vec<ChangeEvent> {
    (0..RECORDS)
        .map(|i| {
            let (source, object, id, fields) = if i % 2 == 0 {
                (
                    System::Gainsight,
                    "Company",
                    format!("1P02{i:012}"),
                    json!({"Name": format!("Company {i}"), "Arr": i * 100, "Industry": "Energy", "Employees": i % 500}),
                )
            } else {
                (
                    System::Salesforce,
                    "Contact",
                    format!("003{i:015}"),
                    json!({"FirstName": "Ada", "LastName": format!("Person {i}"), "Email": format!("p{i}@example.com"),
                           "Title": "CTO", "AccountId": "001000000000001AAA", "Gainsight_Person_Id__c": format!("1P03{i:012}")}),
                )
            };
            ChangeEvent {
                event_id: format!("ev-{i}"),
                source,
                object: object.into(),
                record_id: id,
                operation: Operation::Updated,
                occurred_at_ms: 1_700_000_000_000 + i as i64,
                fields: fields.as_object().cloned().unwrap_or_default(),
                changed_fields: None,
                origin: ChangeOrigin::Webhook,
                received_at_ms: 1_700_000_000_000,
                participants: None,
                load: None,
                waiting_since_ms: None,
                read: Default::default(),
                changed_by: None,
                merge: None,
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let jobs = Jobs::builtin();
    let schemas = standard_schemas();
    let changes = changes();
    let mut lookups = Lookups::default();
    lookups.insert(
        "person_contact",
        1,
        vec!["001000000000001AAA".into()],
        vec!["1P02COMPANY".into()],
    );
    // Every other record's ledger says its values were already synced: an echo to recognise.
    let ledgers: Vec<Option<LedgerRecord>> = changes
        .iter()
        .enumerate()
        .map(|(i, change)| {
            let job = jobs.for_source(change.source, &change.object).next()?;
            if i % 4 >= 2 {
                return None;
            }
            match Mapper::new(job, Some(&schemas)).map(change, None, &lookups) {
                MapOutcome::Write(cmds) => Some(LedgerRecord {
                    fields: cmds[0].field_states.clone(),
                    ..LedgerRecord::new(job.name.clone(), cmds[0].ledger_key.clone())
                }),
                _ => None,
            }
        })
        .collect();
    let pairs: Vec<(&shared::domain::Job, &ChangeEvent, Option<&LedgerRecord>)> = changes
        .iter()
        .zip(&ledgers)
        .filter_map(|(c, l)| Some((jobs.for_source(c.source, &c.object).next()?, c, l.as_ref())))
        .collect();
    let mut group = c.benchmark_group("mapping");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("records", |b| {
        b.iter(|| {
            let mut writes = 0usize;
            for (job, change, ledger) in &pairs {
                if let MapOutcome::Write(cmds) =
                    Mapper::new(job, Some(&schemas)).map(change, *ledger, &lookups)
                {
                    writes += cmds.len();
                }
            }
            assert!(writes > 0);
            writes
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
