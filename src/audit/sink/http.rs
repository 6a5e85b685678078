//! An HTTP(S) sink: records go to the on-disk spool first (that is the acknowledgement), and a
//! background task POSTs them in batches as JSON lines, retrying with backoff until the receiver
//! answers 2xx. Delivery is at least once: a receiver drops duplicates by `auditID`.
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Notify;

use super::SinkError;
use super::spool::Spool;
use crate::audit::record::Record;

/// The largest body of one POST.
const BATCH_BYTES: u64 = 1024 * 1024;
const FIRST_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

type Https = hyper_rustls::HttpsConnector<HttpConnector>;

#[derive(Debug, Clone)]
enum HttpClient {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<Https, Full<Bytes>>),
}

#[derive(Debug)]
pub struct HttpSink {
    url: String,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
}

impl HttpSink {
    /// Opens the spool in `dir` and starts the sender on the current runtime.
    pub fn start(url: &str, dir: &Path, max_bytes: u64) -> Result<Self, SinkError> {
        let uri: hyper::Uri = url.parse().map_err(|e| SinkError::Url {
            url: url.to_owned(),
            why: format!("{e}"),
        })?;
        let client = match uri.scheme_str() {
            Some("http") => {
                HttpClient::Plain(Client::builder(TokioExecutor::new()).build(HttpConnector::new()))
            }
            Some("https") => {
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_native_roots()
                    .map_err(|e| SinkError::Url {
                        url: url.to_owned(),
                        why: format!("no CA certificates to check the receiver with: {e}"),
                    })?
                    .https_only()
                    .enable_http1()
                    .build();
                HttpClient::Tls(Client::builder(TokioExecutor::new()).build(https))
            }
            _ => {
                return Err(SinkError::Url {
                    url: url.to_owned(),
                    why: "only http:// and https:// URLs are supported".into(),
                });
            }
        };
        let spool = Arc::new(Mutex::new(Spool::open(dir, max_bytes)?));
        let wake = Arc::new(Notify::new());
        tokio::spawn(send_forever(
            url.to_owned(),
            uri,
            client,
            spool.clone(),
            wake.clone(),
        ));
        Ok(Self {
            url: url.to_owned(),
            spool,
            wake,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn write(&self, record: Record) -> Result<(), SinkError> {
        let result = self
            .spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .append(record);
        self.wake.notify_one();
        result
    }

    /// Bytes waiting for the receiver.
    pub fn pending(&self) -> u64 {
        self.spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pending()
    }
}

async fn send_forever(
    url: String,
    uri: hyper::Uri,
    client: HttpClient,
    spool: Arc<Mutex<Spool>>,
    wake: Arc<Notify>,
) {
    let mut retry = FIRST_RETRY;
    let mut failing = false;
    loop {
        let batch = spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_batch(BATCH_BYTES);
        let (body, end) = match batch {
            Ok(Some(b)) => b,
            Ok(None) => {
                // Woken by a new record, or a look now and then in case a wake-up was missed.
                let _ = tokio::time::timeout(Duration::from_secs(5), wake.notified()).await;
                continue;
            }
            Err(e) => {
                tracing::warn!(sink = %url, error = %e, "audit spool unreadable; retrying");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
                continue;
            }
        };
        match post(&client, &uri, body).await {
            Ok(()) => {
                if failing {
                    tracing::info!(sink = %url, "audit receiver reachable again");
                    failing = false;
                }
                retry = FIRST_RETRY;
                if let Err(e) = spool
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .acknowledge(end)
                {
                    tracing::warn!(sink = %url, error = %e, "audit spool not updated; records may be sent again");
                }
            }
            Err(why) => {
                if !failing {
                    tracing::warn!(sink = %url, error = %why, "audit receiver unavailable; records wait in the spool");
                    failing = true;
                }
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

async fn post(client: &HttpClient, uri: &hyper::Uri, body: Vec<u8>) -> Result<(), String> {
    let request = hyper::Request::post(uri.clone())
        .header("content-type", "application/x-ndjson")
        .header(
            "user-agent",
            concat!("lockstep/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let sent = async {
        let response = match client {
            HttpClient::Plain(c) => c.request(request).await,
            HttpClient::Tls(c) => c.request(request).await,
        }
        .map_err(|e| format!("{e:#}"))?;
        let status = response.status();
        // Read the answer to the end so the connection can be reused.
        let _ = response.into_body().collect().await;
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the receiver answered {status}"))
        }
    };
    tokio::time::timeout(REQUEST_TIMEOUT, sent)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn https_sinks_start_on_the_one_crypto_provider_and_bad_urls_are_refused() {
        let dir = std::env::temp_dir().join(format!("lockstep-http-{}", uuid::Uuid::now_v7()));
        // Building the TLS client panics if the tree had two rustls crypto providers.
        let sink = HttpSink::start("https://127.0.0.1:9/ingest", &dir, 1 << 20);
        assert!(sink.is_ok(), "{sink:?}");
        let err = HttpSink::start("ftp://example.com/x", &dir, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("http:// and https://"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
