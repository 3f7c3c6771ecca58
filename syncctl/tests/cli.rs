//! `syncctl jobs validate` as an admin runs it: the shipped jobs pass, an invalid file is refused
//! with its name and the field, offline and against the emulators' describes.

use std::process::{Command, Output};

use devstack::gainsight::GainsightEmulator;
use devstack::salesforce::{Options, SalesforceEmulator};

fn syncctl(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_syncctl"));
    cmd.args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("syncctl runs")
}

fn jobs_dir(edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("syncctl-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in [
        "company_account.yaml",
        "person_contact.yaml",
        "case_case.yaml",
    ] {
        let text = std::fs::read_to_string(format!(
            "{}/../infra/jobs/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let text = if name == "company_account.yaml" {
            edit(text)
        } else {
            text
        };
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn shipped_jobs_pass_and_an_invalid_file_is_refused_offline() {
    let ok = syncctl(&["jobs", "validate"], &[]);
    let out = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok: ")).count(),
        5,
        "{out}"
    );

    let dir = jobs_dir(|t| t.replace("conflict: salesforce_wins", "conflict: whoever"));
    let bad = syncctl(&["jobs", "validate", dir.to_str().unwrap()], &[]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        err.contains("company_account.yaml")
            && err.contains("fields[1].conflict: unknown variant `whoever`"),
        "{err}"
    );

    let usage = syncctl(&["frobnicate"], &[]);
    assert_eq!(usage.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_check_refuses_a_formula_field() {
    let salesforce = SalesforceEmulator::start(Options::default()).await.unwrap();
    let gainsight = GainsightEmulator::start("gs-key").await.unwrap();
    let env = vec![
        ("SALESFORCE_LOGIN_URL", salesforce.url()),
        ("SALESFORCE_CLIENT_ID", salesforce.client_id()),
        ("SALESFORCE_CLIENT_SECRET", salesforce.client_secret()),
        ("GAINSIGHT_BASE_URL", gainsight.url()),
        ("GAINSIGHT_ACCESS_KEY", "gs-key".to_string()),
    ];
    let ok = tokio::task::spawn_blocking({
        let env = env.clone();
        move || syncctl(&["jobs", "validate", "--describe"], &env)
    })
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("matches both describes"));

    let dir = jobs_dir(|t| {
        t.replace(
            "salesforce: NumberOfEmployees",
            "salesforce: Health_Score__c",
        )
    });
    let bad = tokio::task::spawn_blocking(move || {
        syncctl(
            &["jobs", "validate", dir.to_str().unwrap(), "--describe"],
            &env,
        )
    })
    .await
    .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("company_account.yaml")
            && err.contains(
                "fields[3].salesforce: Account.Health_Score__c is a formula/calculated field"
            ),
        "{err}"
    );
}
