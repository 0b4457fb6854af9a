//! A real `nats-server -js` on a free local port with a temporary store, killed on drop.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A JetStream server owned by one test.
pub struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    config_file: Option<PathBuf>,
    /// Unique server name, to tell our server from another suite's on a reused port.
    name: String,
}

static SERVERS: AtomicU32 = AtomicU32::new(0);

fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to find a free port")?;
    Ok(listener.local_addr()?.port())
}

fn binary() -> String {
    std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".to_owned())
}

impl NatsServer {
    /// Starts a server with JetStream and an empty store.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with_config(None)
    }

    /// Starts a server with an extra configuration file (accounts, users). When another
    /// process takes the free port first (suites running side by side), it tries another.
    pub fn start_with_config(config_file: Option<PathBuf>) -> anyhow::Result<Self> {
        let mut server = NatsServer {
            child: None,
            port: free_port()?,
            store: tempfile::tempdir().context("failed to create the JetStream store")?,
            config_file,
            name: format!(
                "aml-test-{}-{}",
                std::process::id(),
                SERVERS.fetch_add(1, Ordering::Relaxed)
            ),
        };
        for _ in 0..5 {
            if server.spawn()? {
                return Ok(server);
            }
            server.port = free_port()?;
        }
        bail!("every free port was taken before nats-server could listen")
    }

    /// Whether the server answering on our port is ours (its INFO names it).
    fn answers_as_ours(&self) -> Option<bool> {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut info = String::new();
        BufReader::new(stream).read_line(&mut info).ok()?;
        Some(info.contains(&format!("\"server_name\":\"{}\"", self.name)))
    }

    /// Starts nats-server on `self.port`; false when another server holds the port.
    fn spawn(&mut self) -> anyhow::Result<bool> {
        let mut command = Command::new(binary());
        command
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-n",
                &self.name,
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(config) = &self.config_file {
            command.arg("-c").arg(config);
        }
        let child = command
            .spawn()
            .with_context(|| format!("failed to start `{}` (install nats-server)", binary()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.answers_as_ours() {
                Some(true) => return Ok(true),
                Some(false) => {
                    self.stop();
                    return Ok(false);
                }
                None => {}
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                bail!(
                    "nats-server exited ({status}) before listening on port {}",
                    self.port
                );
            }
            if Instant::now() > deadline {
                bail!(
                    "nats-server did not listen on port {} within 10 s",
                    self.port
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects a client.
    pub async fn connect(&self) -> anyhow::Result<async_nats::Client> {
        async_nats::connect(self.url())
            .await
            .with_context(|| format!("failed to connect to {}", self.url()))
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        if !self.spawn()? {
            bail!("port {} was taken while the server was down", self.port);
        }
        Ok(())
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.stop();
    }
}
