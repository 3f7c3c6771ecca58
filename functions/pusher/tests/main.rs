//! The built `pusher` binary started as Lambda starts it: with its configuration missing it stops
//! before asking for work and names what is missing. (Running it in the local stack is
//! `tests/binaries.rs` of the workspace's tests.)

#[tokio::test]
async fn the_pusher_binary_fails_fast_naming_a_missing_variable() -> anyhow::Result<()> {
    // Nothing listens there: the function must stop before it asks for an invocation.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_pusher"))
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .await?;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("TABLE_NAME"), "{stderr}");
    Ok(())
}
