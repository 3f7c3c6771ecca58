//! Tracing set-up for the Lambda binaries: JSON lines, level from `RUST_LOG`, no ANSI colours.

use tracing_subscriber::EnvFilter;

/// Installs the global JSON subscriber once per cold start. Safe to call twice (the second is a no-op).
pub fn init() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_current_span(false)
        .with_ansi(false)
        .without_time() // CloudWatch stamps every line itself.
        .with_target(false)
        .try_init();
}
