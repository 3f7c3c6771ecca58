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
mod stack;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, JobsCommand, SecretsCommand};
use env::{Env, NotFound, Usage};
use shared::domain::job_state::JobCommand;

/// `diff` found drift it did not fix.
const DRIFT: u8 = 4;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(name) = &cli.stack {
        // Read before the runtime that runs the command starts its threads: the stack's
        // settings become this process's environment, which the commands read.
        let vars = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(stack::read(name)));
        match vars {
            Ok(vars) if matches!(cli.command, Command::Env) => {
                print!("{}", stack::exports(&vars));
                return ExitCode::SUCCESS;
            }
            Ok(vars) => {
                for (k, v) in stack::to_set(vars, |k| std::env::var_os(k).is_some()) {
                    std::env::set_var(k, v);
                }
            }
            Err(e) => return failure(e),
        }
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => return failure(e.into()),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => failure(e),
    }
}

/// The exit code of `e`, said on standard error.
fn failure(e: anyhow::Error) -> ExitCode {
    if is_broken_pipe(&e) {
        return ExitCode::SUCCESS;
    }
    eprintln!("syncctl: {e:#}");
    if e.is::<Usage>() {
        ExitCode::from(2)
    } else if e.is::<NotFound>() {
        ExitCode::from(3)
    } else {
        ExitCode::from(1)
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
    if matches!(cli.command, Command::Env) {
        return Err(env::usage(
            "`syncctl env` prints a stack's settings: name it, e.g. `syncctl env --stack gs-sf-sync`",
        ));
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
        Command::Jobs(JobsCommand::Validate { .. }) | Command::Env => {}
    }
    Ok(0)
}
