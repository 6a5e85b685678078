//! `/metrics` on the metrics address; `/livez` and `/readyz` on the health address.
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use super::Metrics;

/// Whether this replica is ready: its caches have synced (leader), or it is waiting for the
/// Lease (standby). A standby must be ready, or a rolling update would wait forever for it.
#[derive(Debug, Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Relaxed);
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Binds both addresses (so a taken port fails `lockstep run` at once) and serves them in the
/// background. Returns the bound addresses (`:0` picks a free port).
pub async fn serve(
    metrics_addr: &str,
    health_addr: &str,
    metrics: Metrics,
    readiness: Readiness,
) -> std::io::Result<(SocketAddr, SocketAddr)> {
    let metrics_listener = TcpListener::bind(listen_addr(metrics_addr)).await?;
    let health_listener = TcpListener::bind(listen_addr(health_addr)).await?;
    let bound = (
        metrics_listener.local_addr()?,
        health_listener.local_addr()?,
    );
    let metrics_app = Router::new()
        .route("/metrics", get(render))
        .with_state(metrics);
    let health_app = Router::new()
        .route("/livez", get(|| async { "ok" }))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(readiness);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(metrics_listener, metrics_app).await {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(health_listener, health_app).await {
            tracing::error!(error = %e, "the health server stopped");
        }
    });
    Ok(bound)
}

/// Go's `:8080` means every interface.
fn listen_addr(addr: &str) -> String {
    match addr.strip_prefix(':') {
        Some(port) => format!("0.0.0.0:{port}"),
        None => addr.to_owned(),
    }
}

async fn render(State(metrics): State<Metrics>) -> Response {
    match metrics.encode() {
        Ok(body) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

async fn ready(State(readiness): State<Readiness>) -> Response {
    if readiness.get() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_addresses() {
        assert_eq!(listen_addr(":8080"), "0.0.0.0:8080");
        assert_eq!(listen_addr("127.0.0.1:0"), "127.0.0.1:0");
    }
}
