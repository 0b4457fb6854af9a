//! A remote worker's connection: TLS to nats-server with our own CA (certificates made by
//! the openssl CLI), refused without that CA.

use std::path::Path;
use std::process::Command;

use aml_bus::{Publisher, Topology, topology::subjects};
use aml_integration_tests::NatsServer;
use aml_proto::v1::BatchRequest;
use aml_runtime::config::NatsConfig;

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("the openssl CLI");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA and a server certificate for localhost / 127.0.0.1 signed by it.
fn certificates(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=aml-test-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .expect("written");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}

#[tokio::test]
async fn workers_connect_over_tls_with_the_platform_ca_and_fail_without_it() {
    let dir = tempfile::tempdir().unwrap();
    certificates(dir.path());
    let config_file = dir.path().join("tls.conf");
    std::fs::write(
        &config_file,
        format!(
            "tls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n",
            dir.path().join("server.pem").display(),
            dir.path().join("server.key").display()
        ),
    )
    .expect("written");
    let nats = NatsServer::start_with_config(Some(config_file)).expect("nats-server with TLS");
    let trusted = NatsConfig {
        url: nats.url().replace("127.0.0.1", "localhost"),
        tls_ca_file: Some(dir.path().join("ca.pem")),
        tls_required: true,
        ..NatsConfig::default()
    };
    let client = aml_bus::connect(&trusted, "remote-worker")
        .await
        .expect("TLS with the platform CA");
    let topology = Topology::new(client);
    topology.ensure_streams().await.expect("streams over TLS");
    let ack = Publisher::new(topology.jetstream().clone())
        .publish(subjects::BATCH, &BatchRequest::default(), Some("tls-1"))
        .await;
    assert!(ack.is_ok(), "{ack:?}");

    let untrusted = NatsConfig {
        tls_ca_file: None,
        ..trusted.clone()
    };
    let error = aml_bus::connect(&untrusted, "stranger")
        .await
        .expect_err("an unknown CA is refused");
    assert!(error.to_string().contains(&trusted.url), "{error}");
}
