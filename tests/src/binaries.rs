//! The mapper and the pusher run as their own release binaries under the Lambda Runtime API
//! instead of in the stack's process: as many processes of each as its event source mapping
//! handles batches at once (each Lambda instance handles one invocation at a time), so a bench
//! can read each function's own peak memory, as Lambda would bill and limit it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use devstack::event_source;
use devstack::runtime_api::RuntimeApi;

/// One function's processes and the Runtime API that hands them their invocations.
pub struct FunctionProcesses {
    pub function: &'static str,
    runtime: Arc<RuntimeApi>,
    timeout: Duration,
    children: Vec<tokio::process::Child>,
}

impl FunctionProcesses {
    /// Starts `count` processes of `bin` for `function` (its template name), each with `env`
    /// and the Lambda environment, whose invocations may run for `timeout`.
    pub async fn start(
        bin: &Path,
        function: &'static str,
        (timeout, count): (Duration, usize),
        env: &[(&'static str, String)],
    ) -> Result<Self> {
        let runtime = Arc::new(RuntimeApi::start(timeout).await?);
        let mut children = Vec::new();
        for _ in 0..count.max(1) {
            let child = runtime
                .command(bin, function)
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .stdout(std::process::Stdio::null())
                .spawn()
                .with_context(|| format!("starting {} for {function}", bin.display()))?;
            children.push(child);
        }
        Ok(Self {
            function,
            runtime,
            timeout,
            children,
        })
    }

    /// The event source mapping's handler: each batch is one invocation of whichever process
    /// asks for work first. A batch the function fails or never answers fails whole, as
    /// Lambda's would.
    pub fn handler(&self) -> event_source::Handler {
        let runtime = Arc::clone(&self.runtime);
        // The function answers by its deadline; a little longer covers the answer's way back.
        let wait = self.timeout + Duration::from_secs(5);
        let function = self.function;
        Arc::new(move |event: SqsEvent| {
            let runtime = Arc::clone(&runtime);
            Box::pin(async move {
                let payload = serde_json::to_value(&event).map_err(|e| e.to_string())?;
                let answer = (runtime.invoke(payload, wait).await)
                    .map_err(|e| format!("{function}: {e}"))?
                    .map_err(|e| format!("{function} failed: {e}"))?;
                serde_json::from_value::<SqsBatchResponse>(answer)
                    .map_err(|e| format!("{function} answered no batch response: {e}"))
            })
        })
    }

    /// Each process's peak resident memory so far (`VmHWM`, MB); a process that has exited
    /// is left out.
    pub fn peak_rss_mb(&self) -> Vec<f64> {
        (self.children.iter())
            .filter_map(|c| c.id())
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|status| {
                let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
                let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
                Some(kb / 1024.0)
            })
            .collect()
    }

    pub async fn stop(mut self) {
        for child in &mut self.children {
            let _ = child.kill().await;
        }
    }
}
