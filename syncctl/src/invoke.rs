//! `resync`: invokes the resync function through the Lambda API, as many times as its answers ask
//! for (each invocation does one page), with a progress line while it works.

use aws_sdk_lambda::primitives::Blob;
use indicatif::{ProgressBar, ProgressStyle};
use resync::{ResyncReport, ResyncRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shared::config::required;

use crate::cli::{Format, ResyncArgs};
use crate::env::{usage, Env};
use crate::out::{print, Rows};

/// The request the arguments describe.
pub fn request(args: &ResyncArgs) -> ResyncRequest {
    let s = &args.selection;
    ResyncRequest {
        job: args.job.clone(),
        ids: s.ids.clone(),
        status: s.status,
        since: s.since.clone(),
        all: s.all.then_some(true),
        run: s.run.clone(),
        load: None,
        from: args.source,
        continuation: None,
    }
}

/// Lambda's answer when the handler failed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FunctionError {
    error_message: String,
}

/// Invokes `function` once with `request` and reads its answer.
pub async fn invoke_once<Req: Serialize, Resp: DeserializeOwned>(
    client: &aws_sdk_lambda::Client,
    function: &str,
    request: &Req,
) -> anyhow::Result<Resp> {
    let payload = serde_json::to_vec(request)?;
    let out = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "could not invoke {function}: {}",
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            )
        })?;
    let body = out.payload().map(|b| b.as_ref()).unwrap_or_default();
    if out.function_error().is_some() {
        let message = serde_json::from_slice::<FunctionError>(body)
            .map(|e| e.error_message)
            .unwrap_or_else(|_| String::from_utf8_lossy(body).into_owned());
        // The function names the problem (an unknown run, Salesforce unavailable, ...).
        anyhow::bail!("{function} failed: {message}");
    }
    Ok(serde_json::from_slice(body)?)
}

/// Sends `request` and every continuation; the reports of all the invocations.
pub async fn resync_all(env: &Env, request: ResyncRequest) -> anyhow::Result<Vec<ResyncReport>> {
    let function = required("RESYNC_FUNCTION")?;
    let client = aws_sdk_lambda::Client::new(&env.sdk);
    let bar = ProgressBar::new_spinner().with_style(ProgressStyle::with_template(
        "{spinner} resync: {msg} ({elapsed})",
    )?);
    let mut reports: Vec<ResyncReport> = Vec::new();
    let mut next = Some(request);
    while let Some(request) = next.take() {
        let report: ResyncReport = invoke_once(&client, &function, &request).await?;
        next = report.continuation.clone();
        reports.push(report);
        let queued: usize = reports.iter().map(|r| r.queued).sum();
        bar.set_message(format!(
            "{queued} records queued in {} pages",
            reports.len()
        ));
        bar.tick();
    }
    bar.finish_and_clear();
    Ok(reports)
}

pub async fn resync(env: &Env, args: &ResyncArgs, format: Format) -> anyhow::Result<()> {
    if let Some(job) = &args.job {
        env.job(job)?;
    }
    let request = request(args);
    // The function's own check, run here first: a bad request is a usage error (exit 2) that
    // costs no invocation.
    request.selection().map_err(|e| usage(e.to_string()))?;
    let reports = resync_all(env, request).await?;
    let mut rows = Rows::new(&["run", "job", "queued", "not found"]);
    for r in &reports {
        rows.push(vec![
            r.run.to_string(),
            r.job.clone(),
            r.queued.to_string(),
            r.not_found.join(" "),
        ]);
    }
    print(format, &rows, &reports)?;
    if format == Format::Table {
        let queued: usize = reports.iter().map(|r| r.queued).sum();
        say!("{queued} records queued; follow them with `syncctl runs --last 1h` or `syncctl status`")?;
    }
    Ok(())
}

/// Invokes the poller as its schedule does, or from `since` (a backfill).
pub async fn poll(env: &Env, job: &str, since: Option<&str>, format: Format) -> anyhow::Result<()> {
    env.job(job)?;
    let since_ms = match since {
        Some(t) => Some(crate::env::parse_when(t, shared::time::now_ms())?),
        None => None,
    };
    let function = required("POLLER_FUNCTION")?;
    let client = aws_sdk_lambda::Client::new(&env.sdk);
    let request = poller::PollRequest {
        job: job.to_string(),
        since_ms,
        only: None,
    };
    let report: poller::PollReport = invoke_once(&client, &function, &request).await?;
    let mut rows = Rows::new(&["job", "source", "queued", "from", "cursor"]);
    for stream in &report.streams {
        rows.push(vec![
            report.job.clone(),
            stream.source.as_str().to_string(),
            stream.queued.to_string(),
            crate::out::when(Some(stream.from_ms)),
            crate::out::when(stream.cursor_ms),
        ]);
    }
    print(format, &rows, &report)
}
