//! Fuzzing the job file loader with mutated copies of the shipped job files (`FUZZ_SECONDS`):
//! every text either loads, and then maps a change without panicking, or is refused with an error
//! that names the file.

use std::path::Path;

use serde_json::json;
use shared::domain::{ChangeEvent, ChangeOrigin, Jobs, Lookups, Mapper, Operation, System};

fn change(job: &shared::domain::Job) -> ChangeEvent {
    let fields = json!({
        "Gsid": "1P01", "Name": "Acme", "Arr": 12.5, "Industry": "Energy", "Email": "a@x.io",
        "Id": "001000000000001AAA", "LastName": "L", "ModifiedDate": 1_700_000_000_000i64,
    });
    ChangeEvent {
        event_id: "e1".into(),
        source: System::Gainsight,
        object: job.gainsight.object.clone(),
        record_id: "1P01".into(),
        operation: Operation::Updated,
        occurred_at_ms: 1,
        fields: fields.as_object().cloned().unwrap_or_default(),
        changed_fields: None,
        origin: ChangeOrigin::Webhook,
        received_at_ms: 2,
        participants: None,
        load: None,
        waiting_since_ms: None,
        read: Default::default(),
        changed_by: None,
        merge: None,
    }
}

#[test]
fn fuzzed_job_files_load_and_map_or_are_refused_naming_the_file() {
    let builtin = Jobs::builtin();
    let seeds: Vec<String> = builtin.iter().map(|j| j.text.clone()).collect();
    let file = Path::new("infra/jobs/fuzzed.yaml");
    let loaded = std::sync::atomic::AtomicU64::new(0);
    let cases = shared::fuzz::run("job_file", shared::fuzz::mutated(seeds), |text| {
        let job = match Jobs::parse(file, text).and_then(|job| Jobs::new(vec![job])) {
            Ok(jobs) => jobs.iter().next().cloned(),
            Err(e) => {
                let said = e.to_string();
                return if said.starts_with("infra/jobs/fuzzed.yaml: ") && said.len() > 25 {
                    Ok(())
                } else {
                    Err(format!(
                        "an error that does not name the file and the fault: {said}"
                    ))
                };
            }
        };
        let Some(job) = job else {
            return Err("loaded, yet no job".into());
        };
        loaded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _ = Mapper::new(&job, None).map(&change(&job), None, &Lookups::default());
        Ok(())
    });
    let loaded = loaded.into_inner();
    println!("fuzz: job_file loaded {loaded} of {cases}");
    assert!(
        loaded > 0,
        "no mutated file loaded: the mapping was never reached"
    );
}
