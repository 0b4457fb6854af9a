//! A local HTTP/1.1 server that replies from a script and records what it received, for
//! testing real client code against third-party wire formats.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One scripted reply: status, extra headers, body.
pub type Reply = (u16, Vec<(String, String)>, String);

/// A request as the mock server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Request method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// Lower-cased header names with their values.
    pub headers: Vec<(String, String)>,
    /// The JSON body (Null when not JSON).
    pub body: serde_json::Value,
    /// The body's bytes.
    pub raw: Vec<u8>,
}

/// Computes the reply to a request.
pub type Responder = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// Computes a reply whose body is bytes (files, not only JSON).
pub type BinaryResponder =
    Arc<dyn Fn(&Seen) -> (u16, Vec<(String, String)>, Vec<u8>) + Send + Sync>;

/// Replies with scripted (status, extra headers, body) in order, or computed by a
/// [`Responder`], recording each request.
pub struct MockServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

async fn serve(listener: TcpListener, responder: BinaryResponder, seen: Arc<Mutex<Vec<Seen>>>) {
    while let Ok((stream, _)) = listener.accept().await {
        let responder = Arc::clone(&responder);
        let seen = Arc::clone(&seen);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
                    return;
                }
                let mut words = request_line.split_whitespace();
                let method = words.next().unwrap_or("").to_owned();
                let path = words.next().unwrap_or("").to_owned();
                let mut headers = Vec::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.unwrap_or(0);
                    let line = line.trim_end();
                    if line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        let (name, value) =
                            (name.trim().to_ascii_lowercase(), value.trim().to_owned());
                        if name == "content-length" {
                            length = value.parse().unwrap_or(0);
                        }
                        headers.push((name, value));
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).await.unwrap_or(0);
                let request = Seen {
                    method,
                    path,
                    headers,
                    body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                    raw: body,
                };
                let (status, extra, text) = responder(&request);
                seen.lock().expect("lock").push(request);
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
                    text.len()
                );
                for (name, value) in extra {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n");
                let mut bytes = response.into_bytes();
                bytes.extend(text);
                if write.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        });
    }
}

impl MockServer {
    /// Starts serving `script` in order; past its end every request gets a 500.
    pub async fn start(script: Vec<Reply>) -> Self {
        let script = Mutex::new(script);
        Self::start_with(Arc::new(move |_: &Seen| {
            let mut script = script.lock().expect("lock");
            if script.is_empty() {
                (500, Vec::new(), "{}".to_owned())
            } else {
                script.remove(0)
            }
        }))
        .await
    }

    /// Starts answering every request with what `responder` computes from it.
    pub async fn start_with(responder: Responder) -> Self {
        Self::start_binary(Arc::new(move |request: &Seen| {
            let (status, headers, text) = responder(request);
            (status, headers, text.into_bytes())
        }))
        .await
    }

    /// Like [`MockServer::start_with`], with bodies of bytes.
    pub async fn start_binary(responder: BinaryResponder) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(serve(listener, responder, Arc::clone(&seen)));
        MockServer { url, seen }
    }

    /// Requests received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("lock").clone()
    }
}
