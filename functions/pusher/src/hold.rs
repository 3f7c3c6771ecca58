//! Writes that wait instead of being written now: over an API budget, rate limited, refused
//! credentials (the job pauses), or a failure that may pass (back to the queue, and given up on
//! their last delivery with the ledger saying why).

use std::collections::HashSet;
use std::time::Duration;

use shared::domain::budget::Budget;
use shared::domain::push::{held_too_long, held_too_long_message, Pending};
use shared::domain::{DeadLetter, LedgerUpdate, Runs, System, WriteCommand};
use shared::ports::{ApiError, LedgerWrite};

use crate::write::Held;
use crate::{Pusher, DEFERRAL, PAUSED};

/// The API budgets: Salesforce's from `SALESFORCE_API_BUDGET_PERCENT` (the template's
/// `SalesforceApiBudgetPercent`), Gainsight's from `GAINSIGHT_API_BUDGET_PERCENT`
/// (`GainsightApiBudgetPercent`); 80% each unless said.
pub fn budgets_from_env() -> Result<(Budget, Budget), shared::config::ConfigError> {
    Ok((
        budget_from_env("SALESFORCE_API_BUDGET_PERCENT")?,
        budget_from_env("GAINSIGHT_API_BUDGET_PERCENT")?,
    ))
}

fn budget_from_env(name: &'static str) -> Result<Budget, shared::config::ConfigError> {
    match shared::config::optional(name) {
        None => Ok(Budget::default()),
        Some(v) => match v.trim().parse::<u8>() {
            Ok(percent @ 1..=100) => Ok(Budget { percent }),
            _ => Err(shared::config::ConfigError::Invalid {
                name,
                message: format!("{v:?} is not a percentage from 1 to 100"),
            }),
        },
    }
}

/// The batch's messages on their last delivery (the writes queue's maxReceiveCount), and what
/// is known of why those sent back failed: each is recorded in the ledger as given up before
/// SQS moves it to the writes dead-letter queue, so none is there unrecorded.
#[derive(Default)]
pub(crate) struct LastDeliveries {
    ids: HashSet<String>,
    /// Writes given up with their cause, to record under their leases.
    gave_up: Vec<(String, WriteCommand, LedgerUpdate)>,
    /// Messages already recorded as given up.
    recorded: HashSet<String>,
    /// Messages whose Bulk API job was still running (`Held::Running`).
    running: HashSet<String>,
}

impl LastDeliveries {
    pub(crate) fn new(ids: HashSet<String>) -> Self {
        Self {
            ids,
            ..Self::default()
        }
    }

    pub(crate) fn contains(&self, message_id: &str) -> bool {
        self.ids.contains(message_id)
    }

    pub(crate) fn ids(&self) -> &HashSet<String> {
        &self.ids
    }

    /// Notes that `p` failed because of `error`; given up if this is its last delivery.
    pub(crate) fn give_up(&mut self, p: &Pending, error: &str, deliveries: u32) {
        if self.contains(&p.message_id) {
            let update = LedgerUpdate::gave_up(deliveries, error, DeadLetter::Writes);
            (self.gave_up).push((p.message_id.clone(), p.command.clone(), update));
        }
    }

    /// Gives `p` up whatever its delivery, with `update` for its ledger record.
    pub(crate) fn give_up_now(&mut self, p: &Pending, update: LedgerUpdate) {
        (self.gave_up).push((p.message_id.clone(), p.command.clone(), update));
    }

    /// Whether any write went back because its Bulk API job was still running.
    pub(crate) fn any_running(&self) -> bool {
        !self.running.is_empty()
    }

    /// Notes that `message_id`'s ledger record was written with its failure.
    pub(crate) fn recorded(&mut self, message_id: &str) {
        self.recorded.insert(message_id.to_string());
    }

    /// Gives up the writes of `on_last` sent back (`retry`) whose failure was not recorded yet:
    /// their cause is in the runs (a ledger or lease that could not be read or written, a load
    /// that could not be staged).
    pub(crate) fn give_up_the_rest(
        &mut self,
        retry: &[String],
        on_last: &[Pending],
        deliveries: u32,
    ) {
        let why = "the write did not complete on any delivery (the pusher's runs say why on each)";
        for p in on_last {
            let (sent_back, recorded) = (
                retry.contains(&p.message_id),
                self.recorded.contains(&p.message_id),
            );
            if sent_back && !recorded {
                self.give_up(p, why, deliveries);
            }
        }
    }
}

impl Pusher {
    /// Whether `system` may be written now under its API budget: `Err` with why and how long to
    /// wait. The Salesforce answer is worked out once per batch (it may cost a `/limits` call).
    pub(crate) async fn budget_allows(
        &self,
        system: System,
        salesforce: &mut Option<Result<(), String>>,
    ) -> Result<(), (String, Option<Duration>)> {
        match system {
            System::Salesforce => {
                if salesforce.is_none() {
                    *salesforce = Some(self.within_budget().await);
                }
                match salesforce {
                    Some(Err(why)) => Err((why.clone(), None)),
                    _ => Ok(()),
                }
            }
            System::Gainsight => self
                .gainsight_budget
                .allows_window(self.gainsight.window_usage())
                .map_err(|(why, wait)| (why, Some(wait))),
        }
    }

    /// Holds a group the target did not settle: paused, deferred for as long as asked, or sent
    /// back to the queue.
    pub(crate) async fn hold(
        &self,
        system: System,
        held: Held,
        (object, retry, runs): (&str, &mut Vec<String>, &mut Runs),
        last: &mut LastDeliveries,
    ) {
        match held {
            Held::Paused(back, refused) => {
                let why = paused(system, &refused);
                self.deactivate(&back, &why).await;
                self.defer(object, back, &why, None, (retry, runs, last))
                    .await;
            }
            Held::Wait(back, error, wait) => {
                let delay = self.deferral_delay(wait);
                let why = format!(
                    "deferred: {error}; the writes go again in {} s",
                    delay.as_secs()
                );
                self.defer(object, back, &why, wait, (retry, runs, last))
                    .await;
            }
            Held::Retry(back, error) => {
                let then = "the writes go back to the queue";
                self.send_back(back, (&error, then), (object, retry, runs), last);
            }
            Held::Running(back, error) => {
                // Outside a load's flush, as any failure that may pass.
                last.running
                    .extend(back.iter().map(|p| p.message_id.clone()));
                let then = "the writes are made again later";
                self.send_back(back, (&error, then), (object, retry, runs), last);
            }
        }
    }

    /// Sends a group back to the queue after a failure that may pass, saying so in the runs; a
    /// write on its last delivery is noted to be recorded as given up.
    fn send_back(
        &self,
        back: Vec<Pending>,
        (error, then): (&ApiError, &str),
        (object, retry, runs): (&str, &mut Vec<String>, &mut Runs),
        last: &mut LastDeliveries,
    ) {
        let said = format!("{error}; {then}");
        for p in back {
            let job = Some(p.command.job.as_str());
            if let Some(j) = self.jobs.get(&p.command.job) {
                runs.objects(job, j.object_in(p.command.source), Some(object));
            }
            runs.fail(job, &said);
            last.give_up(&p, &error.to_string(), self.max_receives);
            retry.push(p.message_id);
        }
    }

    /// Writes that failed on their last delivery (those `last` holds): the ledger says why
    /// before the dead-letter queue takes them (not fatal: the message is kept either way).
    pub(crate) async fn record_gave_up(&self, last: &mut LastDeliveries, runs: &Runs, now_ms: i64) {
        let gave_up: Vec<(WriteCommand, LedgerUpdate)> = (last.gave_up.drain(..))
            .map(|(id, cmd, update)| {
                last.recorded.insert(id);
                (cmd, update)
            })
            .collect();
        if gave_up.is_empty() {
            return;
        }
        let writes: Vec<LedgerWrite> = gave_up
            .into_iter()
            .map(|(cmd, update)| LedgerWrite {
                run: runs.id_for(Some(&cmd.job)).to_string(),
                job: cmd.job,
                key: cmd.ledger_key,
                update,
                prior: shared::domain::Prior::Unread,
            })
            .collect();
        if let Err(e) = self.ledger.record_many(&writes, now_ms).await {
            tracing::warn!(records = writes.len(), error = %e, "could not record writes given up");
        }
    }

    /// Whether the org's API usage leaves room under the budget: the usage its last answer
    /// reported, asked again (`/limits`) when that was over, since it falls as the day rolls on.
    async fn within_budget(&self) -> Result<(), String> {
        if self.budget.allows(self.salesforce.api_usage()).is_ok() {
            return Ok(());
        }
        match self.salesforce.refresh_api_usage().await {
            Ok(usage) => self.budget.allows(usage),
            Err(e) => Err(format!(
                "deferred: the org's API usage could not be read ({e})"
            )),
        }
    }

    /// How long deferred writes wait: what the target asked for, at least 1 s and at most the
    /// deferral's own delay (the longest SQS allows in production); the deferral's delay when
    /// the target did not say.
    pub(crate) fn deferral_delay(&self, asked: Option<Duration>) -> Duration {
        let longest = self.deferral.as_ref().map_or(DEFERRAL, |(_, d)| *d);
        asked.map_or(longest, |w| {
            w.max(Duration::from_secs(1))
                .min(longest.max(Duration::from_secs(1)))
        })
    }

    /// Sends writes back to the writes queue as new messages due after `delay` (so waiting uses up
    /// none of their deliveries); one answer per write, none at all without a queue.
    pub(crate) async fn send_later(
        &self,
        batch: &[Pending],
        delay: Duration,
    ) -> Vec<Result<(), shared::ports::QueueError>> {
        let Some((queue, _)) = &self.deferral else {
            return Vec::new();
        };
        let bodies: Vec<String> = batch
            .iter()
            .map(|p| serde_json::to_string(&p.command).unwrap_or_default())
            .collect();
        queue.send_later(&bodies, delay).await
    }

    /// Sends a group back to the writes queue unwritten, to be delivered again after `wait` (see
    /// [`Self::deferral_delay`]), or, when that fails or no queue is set, back through the
    /// visibility timeout; and says why in the runs.
    pub(crate) async fn defer(
        &self,
        object: &str,
        batch: Vec<Pending>,
        why: &str,
        wait: Option<Duration>,
        (retry, runs, last): (&mut Vec<String>, &mut Runs, &mut LastDeliveries),
    ) {
        let now_ms = shared::time::now_ms();
        let (stale, batch): (Vec<Pending>, Vec<Pending>) =
            (batch.into_iter()).partition(|p| held_too_long(p.command.received_at_ms, now_ms));
        for p in stale {
            let message = held_too_long_message(why);
            tracing::warn!(job = %p.command.job, key = %p.command.ledger_key, "{message}");
            runs.fail(Some(&p.command.job), &message);
            last.give_up_now(&p, LedgerUpdate::Failed { message });
        }
        if batch.is_empty() {
            return;
        }
        tracing::warn!(object = %object, records = batch.len(), reason = %why, "writes deferred");
        let sent = self.send_later(&batch, self.deferral_delay(wait)).await;
        for (i, p) in batch.into_iter().enumerate() {
            let job = Some(p.command.job.as_str());
            if let Some(j) = self.jobs.get(&p.command.job) {
                runs.objects(job, j.object_in(p.command.source), Some(object));
            }
            runs.fail(job, why);
            if !matches!(sent.get(i), Some(Ok(()))) {
                retry.push(p.message_id);
            }
        }
    }
}

/// Why a job's writes wait: the target refused our credentials for good. Runs that start with
/// `paused: ` mark the job paused (`syncctl status`) until a later write there succeeds.
fn paused(target: System, refused: &ApiError) -> String {
    let (whose, secret) = match target {
        System::Salesforce => (
            "Salesforce refused the connected app's credentials",
            "syncctl secrets put salesforce-client-secret, or the flow's own secret",
        ),
        System::Gainsight => (
            "Gainsight refused the access key",
            "syncctl secrets put gainsight-access-key",
        ),
    };
    format!(
        "{PAUSED}{whose} ({refused}); the job is deactivated and nothing is lost: its writes wait in the queue and go out once the secret is replaced ({secret}, which reactivates the job), or after re-authorizing with `syncctl jobs reactivate <job>`"
    )
}
