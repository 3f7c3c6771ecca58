//! The command line: every subcommand, its options and its examples, as `--help` shows them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::domain::{RunStatus, SyncStatus, System};

/// How results are printed: tables for people, JSON or CSV for scripts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Csv,
}

/// Which side a first load writes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LoadFrom {
    Salesforce,
    Gainsight,
    #[default]
    Both,
}

impl LoadFrom {
    /// The one side written from, `None` for both.
    pub fn only(self) -> Option<System> {
        match self {
            LoadFrom::Salesforce => Some(System::Salesforce),
            LoadFrom::Gainsight => Some(System::Gainsight),
            LoadFrom::Both => None,
        }
    }
}

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  failed: AWS, Salesforce or Gainsight could not be reached or refused (the message says which)
  2  bad input: a wrong argument, an unknown job, a bad CSV row, an invalid job file
  3  not found: no ledger record or run has that id
  4  drift: `diff` found values that differ (without --fix)

Environment: the same as the functions read. AWS_ENDPOINT_URL / AWS_REGION (and the usual AWS
credentials), TABLE_NAME, KMS_KEY_ID (secrets put), RESYNC_FUNCTION (resync, diff --fix),
POLLER_FUNCTION (poll), SALESFORCE_LOGIN_URL, SALESFORCE_CLIENT_ID and GAINSIGHT_BASE_URL (diff,
jobs validate --describe), JOBS_DIR (job files; the shipped ones otherwise), RUN_TTL_DAYS.
With --stack NAME (or SYNCCTL_STACK), the deployed stack's outputs and parameters set them.
Against the local stack: `. .devstack/env`, or --stack gs-sf-sync.";

/// Operate the Gainsight <-> Salesforce sync: see every record and run, and fix what did not sync.
#[derive(Debug, Parser)]
#[command(name = "syncctl", version, after_help = EXIT_CODES)]
pub struct Cli {
    /// Output: a table for people, or json / csv for scripts.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// A deployed stack whose outputs (table, key, queues, functions) and parameters (the
    /// Salesforce and Gainsight settings) replace those environment variables.
    #[arg(long, global = true, env = "SYNCCTL_STACK", value_name = "NAME")]
    pub stack: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prints a deployed stack's settings as shell exports (needs --stack).
    #[command(after_help = "Examples:
  syncctl env --stack gs-sf-sync
  eval \"$(syncctl env --stack gs-sf-sync)\"      then every command without --stack")]
    Env,
    /// Records and counts per status: what synced and what did not.
    #[command(after_help = "Examples:
  syncctl status                                  counts per job and status, then every record
  syncctl status --job person_contact --status error
  syncctl status --since 24h --format csv > changed-today.csv")]
    Status(StatusArgs),
    /// One record by Gainsight or Salesforce id: both ids, times, last error, the values last
    /// written and its last outcomes, each with its run.
    #[command(after_help = "Examples:
  syncctl show 1P02ABCDEF0123456789             a GSID
  syncctl show 001000000000042AAA --job company_account
  syncctl show 003000000000007AAA --format json")]
    Show {
        /// A GSID, or the record's Salesforce Id.
        id: String,
        /// Look only in this job (default: every job).
        #[arg(long)]
        job: Option<String>,
    },
    /// Runs (execution activities): what each webhook delivery, poll, batch and resync did.
    #[command(after_help = "Examples:
  syncctl runs                                    the last 24 hours
  syncctl runs --job company_account --status failed --last 7d
  syncctl runs --from 2026-11-24T00:00:00Z --to 2026-11-25T00:00:00Z --format csv")]
    Runs(RunsArgs),
    /// A run's log as JSON lines, one per record, the technical error on the last line.
    #[command(after_help = "Examples:
  syncctl logs 1764113894123-pusher-a3f9c2
  syncctl logs 1764113894123-pusher-a3f9c2 > run.jsonl")]
    Logs {
        /// The run id, as `syncctl runs` lists it.
        run: String,
    },
    /// The ledger, for a spreadsheet or a script (--format csv or json; a table otherwise).
    #[command(after_help = "Examples:
  syncctl export --format csv > ledger.csv
  syncctl export --job person_contact --format json")]
    Export {
        #[arg(long)]
        job: Option<String>,
    },
    /// Links records whose Salesforce ids are known, so the next sync updates them instead of
    /// matching on identifiers. Every row is checked first; one bad row and nothing is imported.
    /// A row that would replace a link already in the ledger is refused unless --relink.
    #[command(
        after_help = "The CSV has a header. Columns: gainsight_id, salesforce_id, and optionally
salesforce_contact_id, salesforce_lead_id, salesforce_account_id. The Salesforce id used is
salesforce_id, or the column of the job's Salesforce object (Contact, Lead or Account) when
salesforce_id is empty.

Examples:
  syncctl import accounts.csv --job company_account
  syncctl import corrected.csv --job company_account --relink
  syncctl export --job company_account --format csv | syncctl import - --job company_account"
    )]
    Import {
        /// The CSV file (`-`: standard input).
        file: PathBuf,
        #[arg(long)]
        job: String,
        /// Let rows replace links already in the ledger (each is listed without it); a record
        /// whose Salesforce twin a row gives to another Gainsight record is unlinked.
        #[arg(long)]
        relink: bool,
        /// Only link; do not resync the linked records (by default they are resynced from
        /// Gainsight at once, so each Salesforce record learns its GSID).
        #[arg(long)]
        no_resync: bool,
    },
    /// Re-reads records where they live and syncs them again (echo suppression does not skip
    /// them). Large selections continue page by page until done.
    #[command(after_help = "Examples:
  syncctl resync --job person_contact --status error
  syncctl resync --job company_account --ids 1P02ABC,001000000000042AAA
  syncctl resync --job company_account --since 2026-11-25T08:00:00Z
  syncctl resync --job case_case --all --from salesforce
  syncctl resync --run 1764113894123-pusher-a3f9c2      the failed records of a run")]
    Resync(ResyncArgs),
    /// Runs the poller for a job now, as its schedule does, or from a time in the past (a
    /// backfill); records seen before are not queued twice.
    #[command(after_help = "Examples:
  syncctl poll --job company_account
  syncctl poll --job company_account --since 2026-11-01T00:00:00Z      backfill")]
    Poll {
        #[arg(long)]
        job: String,
        /// Replay from this RFC 3339 time (or 90m, 24h, 7d ago) instead of the job's cursor.
        #[arg(long)]
        since: Option<String>,
    },
    /// Secrets, kept only as KMS ciphertext in the table.
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Job files.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// A job's first load over what both systems already hold: pairs already in the ledger,
    /// pairs the job's identifiers or match keys link, records to create on each side, pairs
    /// whose values differ (each field settled by its direction and conflict rule), and
    /// ambiguous records left alone. Salesforce is read through one Bulk API 2.0 query job.
    #[command(after_help = "Examples:
  syncctl load --job company_account --dry-run
  syncctl load --job company_account --dry-run --csv plan.csv      every row, in a file
  syncctl load --job person_contact --dry-run --format json
  syncctl load --job company_account             run it in the resync function, chunk by chunk
  syncctl load --job company_account --cancel    stop the load in progress
  syncctl load --job company_account --from gainsight --dry-run
                                 Gainsight as the master: nothing created or changed in Gainsight

The dry run writes nothing. Without --dry-run the resync function plans the load, then applies
it a chunk of 2,000 steps per invocation (links first, then writes queued as changes for the
mapper and pusher); run the same command again after an interruption and it goes on from the
last chunk applied. Match keys are a job setting, for example
  match_keys:
    - { gainsight: Domain, salesforce: Website, normalize: domain }
(normalize: text, email or domain).")]
    Load {
        #[arg(long)]
        job: String,
        /// Plan only: read both systems and the ledger, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write every row of the plan to this CSV file (with --dry-run).
        #[arg(long, requires = "dry_run")]
        csv: Option<PathBuf>,
        /// Stop the job's load in progress.
        #[arg(long, conflicts_with = "dry_run")]
        cancel: bool,
        /// Write only from this side: its records with no twin are created on the other, and
        /// pairs take only the values it gives; everything is linked whatever the side.
        #[arg(long, value_enum, default_value_t = LoadFrom::Both, conflicts_with = "cancel")]
        from: LoadFrom,
    },
    /// Compares the ledger with both systems and lists drift: values that differ, records
    /// missing on one side, pairs the ledger does not know.
    #[command(after_help = "Examples:
  syncctl diff --job company_account                 the first 200 ledger records
  syncctl diff --job company_account --limit 0       all of them
  syncctl diff --job company_account --fix           and resync every drifted record")]
    Diff {
        #[arg(long)]
        job: String,
        /// Ledger records to compare (0: all).
        #[arg(long, default_value_t = 200)]
        limit: usize,
        /// Queue a resync of every record found drifting.
        #[arg(long)]
        fix: bool,
    },
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub job: Option<String>,
    /// Only records carrying this status (a record that synced once and failed since has both).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<SyncStatus>,
    /// Only records synced or failed since: an RFC 3339 time, or 90m, 24h, 7d ago.
    #[arg(long)]
    pub since: Option<String>,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long)]
    pub job: Option<String>,
    #[arg(long, value_parser = parse_run_status)]
    pub status: Option<RunStatus>,
    /// How far back: 90m, 24h, 3d, 7d.
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub last: Option<String>,
    /// From this RFC 3339 time (with --to).
    #[arg(long)]
    pub from: Option<String>,
    /// To this RFC 3339 time (default: now).
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Debug, Args)]
#[group(id = "selection", required = true, multiple = false)]
pub struct ResyncSelection {
    /// Gainsight or Salesforce ids, comma separated.
    #[arg(long, value_delimiter = ',', group = "selection")]
    pub ids: Option<Vec<String>>,
    /// Every record carrying this ledger status.
    #[arg(long, value_parser = parse_status, group = "selection")]
    pub status: Option<SyncStatus>,
    /// Every record modified at the source since this RFC 3339 time.
    #[arg(long, group = "selection")]
    pub since: Option<String>,
    /// Every record at the source.
    #[arg(long, group = "selection")]
    pub all: bool,
    /// The failed records of this run.
    #[arg(long, group = "selection")]
    pub run: Option<String>,
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The job (not with --run, whose job is known).
    #[arg(long, required_unless_present = "run")]
    pub job: Option<String>,
    #[command(flatten)]
    pub selection: ResyncSelection,
    /// The system --since and --all read (default gainsight).
    #[arg(long = "from", value_parser = parse_system)]
    pub source: Option<System>,
}

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Encrypts the value read from standard input with the KMS key and stores only the
    /// ciphertext; the value is never printed.
    #[command(
        after_help = "Names: gainsight-access-key, salesforce-client-secret, salesforce-jwt-key,
salesforce-refresh-token, webhook-secret, salesforce-outbound-token.

salesforce-outbound-token is the token the Outbound Message endpoint URL ends with
(?token=...), at least 32 characters. Putting a new webhook-secret or salesforce-outbound-token
keeps the previous one accepted for 24 hours, time to change it in Gainsight or Salesforce
(`secrets rotate` chooses how long).

Examples:
  printf %s \"$KEY\" | syncctl secrets put gainsight-access-key
  syncctl secrets put webhook-secret < webhook-secret.txt
  openssl rand -hex 32 | tee token.txt | syncctl secrets put salesforce-outbound-token"
    )]
    Put { name: String },
    /// Replaces a secret with the value read from standard input. The functions pick it up
    /// without a redeploy; a checked secret (webhook-secret, salesforce-outbound-token) keeps its
    /// previous value accepted for the overlap, time to change it where the callers keep it.
    #[command(
        after_help = "webhook-secret and salesforce-outbound-token are checked by the webhook: both the new
and the previous value are accepted until the overlap ends. The webhook accepts the new value
within 10 seconds of the rotation, and stops accepting a value no longer stored within 5
minutes. Use
--overlap 0m when the old value leaked.

The other secrets are credentials the functions present to Salesforce and Gainsight: they read
the new value when the vendor refuses the one they hold. Revoke the old value at the vendor
after rotating.

Examples:
  openssl rand -hex 32 | tee webhook-secret.txt | syncctl secrets rotate webhook-secret
  openssl rand -hex 32 | syncctl secrets rotate salesforce-outbound-token --overlap 2h
  printf %s \"$NEW_KEY\" | syncctl secrets rotate gainsight-access-key"
    )]
    Rotate {
        name: String,
        /// How long the previous value of a checked secret stays accepted: 90m, 24h, 7d.
        #[arg(long, default_value = "24h")]
        overlap: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Checks job files: syntax, limits and one real-time job per object; with --describe also
    /// against the live Salesforce and Gainsight describes, as the mapper does at cold start.
    #[command(after_help = "Examples:
  syncctl jobs validate
  syncctl jobs validate my-jobs/ --describe")]
    Validate {
        /// Job files (*.yaml).
        #[arg(default_value = "infra/jobs")]
        dir: PathBuf,
        #[arg(long)]
        describe: bool,
    },
    /// What a changed job file would write, before it is deployed: the file's job settled over
    /// the pairs the ledger links today (both records read now), as a count per field and side.
    #[command(after_help = "Examples:
  syncctl jobs plan infra/jobs/company_account.yaml
  syncctl jobs plan my-jobs/person_contact.yaml --format json")]
    Plan {
        /// The job file (*.yaml).
        file: PathBuf,
    },
    /// Stops a job: within 10 s no function calls Salesforce or Gainsight for it; its changes
    /// and writes wait (nothing reaches a dead-letter queue) until it is resumed.
    #[command(after_help = "Examples:
  syncctl jobs pause company_account --why \"Salesforce org upgrade tonight\"
  SYNCCTL_OPERATOR=alice syncctl jobs pause person_contact")]
    Pause {
        job: String,
        /// Recorded with the pause and shown by `syncctl status`.
        #[arg(long, default_value = "paused by an operator")]
        why: String,
    },
    /// Starts a paused job again; what waited flows within 4 minutes.
    #[command(after_help = "Example:
  syncctl jobs resume company_account")]
    Resume { job: String },
    /// Starts a job deactivated by refused credentials, after re-authorizing the connected app.
    /// (Storing new credentials with `syncctl secrets put|rotate` reactivates it too.)
    #[command(after_help = "Example:
  syncctl jobs reactivate company_account")]
    Reactivate { job: String },
}

fn parse_status(s: &str) -> Result<SyncStatus, String> {
    s.parse()
}

fn parse_run_status(s: &str) -> Result<RunStatus, String> {
    s.parse()
}

fn parse_system(s: &str) -> Result<System, String> {
    match s {
        "gainsight" => Ok(System::Gainsight),
        "salesforce" => Ok(System::Salesforce),
        other => Err(format!("{other:?}: expected gainsight or salesforce")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn resync_takes_exactly_one_selection() {
        let ok = Cli::try_parse_from(["syncctl", "resync", "--job", "j", "--status", "error"]);
        assert!(ok.is_ok());
        let both = Cli::try_parse_from(["syncctl", "resync", "--job", "j", "--all", "--ids", "A"]);
        assert!(both.is_err());
        let none = Cli::try_parse_from(["syncctl", "resync", "--job", "j"]);
        assert!(none.is_err());
        let run = Cli::try_parse_from(["syncctl", "resync", "--run", "1-pusher-a"]);
        assert!(run.is_ok());
    }
}
