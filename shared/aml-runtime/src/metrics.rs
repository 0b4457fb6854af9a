//! A Prometheus `/metrics` endpoint and a `/healthz` liveness probe: a minimal HTTP/1.1
//! responder serving whatever text the service renders, until shutdown.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Serves `GET /metrics` on `listener` with the text `render` returns and `GET /healthz` with
/// `ok` while the process runs; other paths get 404.
pub async fn serve_metrics(
    listener: TcpListener,
    render: Arc<dyn Fn() -> String + Send + Sync>,
    shutdown: CancellationToken,
) {
    if let Ok(address) = listener.local_addr() {
        info!(%address, "metrics endpoint listening");
    }
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let render = Arc::clone(&render);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut request_line = String::new();
            if BufReader::new(read)
                .read_line(&mut request_line)
                .await
                .is_err()
            {
                return;
            }
            let response = if request_line.starts_with("GET /metrics") {
                let body = render();
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            } else if request_line.starts_with("GET /healthz") {
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n"
                    .to_owned()
            } else {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    .to_owned()
            };
            if let Err(error) = write.write_all(response.as_bytes()).await {
                warn!(%error, "metrics response failed");
            }
        });
    }
}
