//! The local stack: moto (real AWS APIs on 127.0.0.1) with the SAM template deployed into it,
//! emulators of Salesforce and Gainsight that follow their public API contracts, an SQS
//! event-source emulator, a Function URL listener and a Lambda Runtime API. It imports nothing
//! from the product, so the product's assumptions cannot leak into its test doubles.

pub mod chaos;
pub mod event_bus;
pub mod event_source;
pub mod function_url;
pub mod gainsight;
pub mod lambda_api;
pub mod moto;
pub mod runtime_api;
pub mod salesforce;
pub mod scheduler;

use std::net::SocketAddr;
use std::path::PathBuf;

/// The repository root (devstack lives one level below it).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

/// Binds an ephemeral port on 127.0.0.1.
pub async fn bind_local() -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A background server that stops when dropped.
pub struct ServerHandle {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves `router` on an ephemeral 127.0.0.1 port in the background.
pub async fn serve(router: axum::Router) -> std::io::Result<ServerHandle> {
    let (listener, addr) = bind_local().await?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok(ServerHandle { addr, task })
}
