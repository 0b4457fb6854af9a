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
    /// More command-line arguments (cluster settings).
    extra_args: Vec<String>,
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
            extra_args: Vec::new(),
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
        command.args(&self.extra_args);
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

    /// Its server name, as JetStream's cluster information gives it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// SIGKILLs the server (its store stays for [`NatsServer::start_again`]).
    pub fn kill(&mut self) {
        self.stop();
    }

    /// Starts a killed server again on the same port and store.
    pub fn start_again(&mut self) -> anyhow::Result<()> {
        if !self.spawn()? {
            bail!("port {} was taken while the server was down", self.port);
        }
        Ok(())
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

/// JetStream servers in one cluster on local ports, each with its own store, killed on drop.
pub struct NatsCluster {
    servers: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` servers routed to each other (cluster `aml-test`).
    pub fn start(size: usize) -> anyhow::Result<Self> {
        let route_ports = (0..size)
            .map(|_| free_port())
            .collect::<anyhow::Result<Vec<u16>>>()?;
        let routes = route_ports
            .iter()
            .map(|port| format!("nats://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut servers = Vec::new();
        for route_port in route_ports {
            let mut server = NatsServer {
                child: None,
                port: free_port()?,
                store: tempfile::tempdir().context("failed to create the JetStream store")?,
                config_file: None,
                name: format!(
                    "aml-test-{}-{}",
                    std::process::id(),
                    SERVERS.fetch_add(1, Ordering::Relaxed)
                ),
                extra_args: vec![
                    "--cluster_name".to_owned(),
                    "aml-test".to_owned(),
                    "--cluster".to_owned(),
                    format!("nats://127.0.0.1:{route_port}"),
                    "--routes".to_owned(),
                    routes.clone(),
                ],
            };
            if !server.spawn()? {
                bail!(
                    "port {} was taken before nats-server could listen",
                    server.port
                );
            }
            servers.push(server);
        }
        Ok(NatsCluster { servers })
    }

    /// Every server's URL, comma-separated (what `nats.url` takes).
    pub fn urls(&self) -> String {
        self.servers
            .iter()
            .map(NatsServer::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The server at `index`.
    pub fn server(&mut self, index: usize) -> &mut NatsServer {
        &mut self.servers[index]
    }

    /// The index of the server named `name`.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.servers.iter().position(|server| server.name == name)
    }
}
