//! A local S3-compatible server (moto) on a free port, with one bucket, killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aml_storage::S3Options;
use anyhow::{Context, bail};

/// A moto S3 server owned by one test.
pub struct S3Server {
    child: Child,
    port: u16,
}

fn moto_binary() -> String {
    if let Ok(python) = std::env::var("ORACLE_PYTHON") {
        let beside = std::path::Path::new(&python).with_file_name("moto_server");
        if beside.exists() {
            return beside.display().to_string();
        }
    }
    "moto_server".to_owned()
}

impl S3Server {
    /// Starts moto and creates `bucket`.
    pub fn start(bucket: &str) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("failed to start moto_server (run scripts/ensure-python.sh)")?;
        let server = S3Server { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("moto_server did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server.create_bucket(bucket)?;
        Ok(server)
    }

    fn create_bucket(&self, bucket: &str) -> anyhow::Result<()> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )?;
        let mut response = String::new();
        stream.read_to_string(&mut response)?;
        if !response.starts_with("HTTP/1.1 200") {
            bail!(
                "creating bucket {bucket} failed: {}",
                response.lines().next().unwrap_or("")
            );
        }
        Ok(())
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Client options for the server (moto takes any key; these are the tests' own).
    pub fn options(&self) -> S3Options {
        S3Options {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            access_key_id: Some("test-key".into()),
            secret_access_key: Some("test-secret".into()),
            allow_http: true,
        }
    }

    /// The `AML_STORAGE__*` variables that point an aml binary at `bucket` on the server.
    pub fn aml_env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("AML_STORAGE__URL", format!("s3://{bucket}")),
            ("AML_STORAGE__S3__ENDPOINT", self.endpoint()),
            ("AML_STORAGE__S3__REGION", "us-east-1".into()),
            ("AML_STORAGE__S3__ACCESS_KEY_ID", "test-key".into()),
            ("AML_STORAGE__S3__SECRET_ACCESS_KEY", "test-secret".into()),
            ("AML_STORAGE__S3__ALLOW_HTTP", "true".into()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
