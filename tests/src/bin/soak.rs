//! `make soak`: the soak on a fresh local stack. `SOAK_CHANGES` (10,000) changes at
//! `SOAK_RATE` (100) a second with every fault switch on (`SOAK_FAULTS=0` turns them off), and
//! with `SOAK_ORDER=children-first` Cases, People and activities made before their Company's
//! creation reaches the sync (up to 60 s later); the
//! last line is `soak: <N> changes, <L> lost, <D> duplicated, <E> error`, and the exit code is 1
//! when anything was lost, duplicated or ended in error, the queues never emptied, or a fault
//! class switched on never happened (every fault the soak injects is transient, so an error is
//! a defect, not an injected failure). Children first, the Salesforce API budget is also spent
//! for 10 s in every 40 while the changes are made, deferring writes 15 s.

use anyhow::Result;
use sync_tests::soak::{self, Soak};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let run = Soak {
        changes: env("SOAK_CHANGES", 10_000) as usize,
        per_second: env("SOAK_RATE", 100) as u32,
        faults: env("SOAK_FAULTS", 1) != 0,
        children_first: std::env::var("SOAK_ORDER").is_ok_and(|o| o == "children-first"),
    };
    let (verdict, report) = soak::run(run).await?;
    println!("{report}");
    for example in &verdict.examples {
        println!("  {example}");
    }
    println!("{}", verdict.line());
    if !verdict.passed() {
        std::process::exit(1);
    }
    Ok(())
}
