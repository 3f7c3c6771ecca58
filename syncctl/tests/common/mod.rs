//! Running the real `syncctl` binary against a local stack, for the end-to-end tests.
#![allow(dead_code)] // each test file uses its own share of these

use std::process::Output;

use anyhow::{ensure, Result};
use serde_json::Value;
use sync_tests::Stack;

/// Runs syncctl against `stack` with `stdin`, off the async runtime.
pub async fn syncctl_in(stack: &Stack, args: &[&str], stdin: &str) -> Output {
    let env = stack.syncctl_env();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let stdin = stdin.to_string();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_syncctl"))
            .args(&args)
            .envs(env)
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("syncctl starts");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.as_bytes());
        }
        child.wait_with_output().expect("syncctl runs")
    })
    .await
    .expect("syncctl finished")
}

pub async fn syncctl(stack: &Stack, args: &[&str]) -> Output {
    syncctl_in(stack, args, "").await
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// syncctl's JSON answer, checking it succeeded.
pub async fn json_of(stack: &Stack, args: &[&str]) -> Result<Value> {
    let out = syncctl(stack, args).await;
    ensure!(out.status.success(), "{args:?}: {}", stderr(&out));
    Ok(serde_json::from_slice(&out.stdout)?)
}
