//! `syncctl`: the operator's and admin's command line. It reads the ledger and the runs the
//! functions write, invokes the resync function, imports and exports links, plans first loads,
//! compares both systems, stores secrets and checks job files. Exit codes are listed in `--help`.

#[macro_use]
mod out;
mod admin;
mod cli;
mod diff;
mod env;
mod import;
mod invoke;
mod job_states;
mod jobs_plan;
mod ledger;
mod load;
mod runs;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, JobsCommand, SecretsCommand};
use env::{Env, NotFound, Usage};
use shared::domain::job_state::JobCommand;

/// `diff` found drift it did not fix.
const DRIFT: u8 = 4;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("syncctl: {e:#}");
            if e.is::<Usage>() {
                ExitCode::from(2)
            } else if e.is::<NotFound>() {
                ExitCode::from(3)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// The reader of our output went away (`| head`): nothing more to say.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    let format = cli.format;
    // Job files are checked without AWS.
    if let Command::Jobs(JobsCommand::Validate { dir, describe }) = &cli.command {
        admin::validate(dir, *describe).await?;
        return Ok(0);
    }
    let env = Env::load().await?;
    match &cli.command {
        Command::Status(args) => ledger::status(&env, args, format).await?,
        Command::Show { id, job } => ledger::show(&env, id, job.as_deref(), format).await?,
        Command::Export { job } => ledger::export(&env, job.as_deref(), format).await?,
        Command::Import {
            file,
            job,
            relink,
            no_resync,
        } => import::import(&env, file, job, (*relink, !no_resync)).await?,
        Command::Load {
            job,
            dry_run: true,
            csv,
            from,
            ..
        } => load::dry_run(&env, job, (from.only(), csv.as_deref()), format).await?,
        Command::Load {
            job, cancel, from, ..
        } => load::run(&env, job, (from.only(), *cancel), format).await?,
        Command::Runs(args) => runs::runs(&env, args, format).await?,
        Command::Logs { run } => runs::logs(&env, run).await?,
        Command::Resync(args) => invoke::resync(&env, args, format).await?,
        Command::Poll { job, since } => invoke::poll(&env, job, since.as_deref(), format).await?,
        Command::Secrets(SecretsCommand::Put { name }) => admin::put(&env, name).await?,
        Command::Secrets(SecretsCommand::Rotate { name, overlap }) => {
            admin::rotate(&env, name, overlap).await?
        }
        Command::Diff { job, limit, fix } => {
            if diff::diff(&env, job, *limit, *fix, format).await? {
                return Ok(DRIFT);
            }
        }
        Command::Jobs(JobsCommand::Plan { file }) => jobs_plan::plan(&env, file, format).await?,
        Command::Jobs(JobsCommand::Pause { job, why }) => {
            let why = why.clone();
            job_states::change(&env, job, JobCommand::Pause { why }).await?
        }
        Command::Jobs(JobsCommand::Resume { job }) => {
            job_states::change(&env, job, JobCommand::Resume).await?
        }
        Command::Jobs(JobsCommand::Reactivate { job }) => {
            job_states::change(&env, job, JobCommand::Reactivate).await?
        }
        Command::Jobs(JobsCommand::Validate { .. }) => {}
    }
    Ok(0)
}
