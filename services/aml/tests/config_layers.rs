//! `aml --print-config` against real files and a real environment: each layer overrides the
//! one below, bad keys name their layer, and secrets never reach the output or the logs.

use std::path::Path;
use std::process::{Command, Output};

use aml_integration_tests::NatsServer;

fn aml(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_aml"));
    command.current_dir(dir).args(args).env_clear();
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("aml runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("aml.toml"),
        "[nats]\nurl = \"nats://from-toml:4222\"\n[storage]\nurl = \"s3://from-toml\"\n[bus]\nconcurrency = 2\nack_wait_secs = 11\nnak_delay_ms = 12\n",
    )
    .expect("aml.toml");
    std::fs::write(
        dir.path().join(".env"),
        "AML_STORAGE__URL=s3://from-dotenv\nAML_BUS__CONCURRENCY=3\nAML_BUS__NAK_DELAY_MS=13\n",
    )
    .expect(".env");
    let output = aml(
        dir.path(),
        &["--print-config", "--storage-url", "s3://from-flag"],
        &[
            ("AML_BUS__CONCURRENCY", "4"),
            ("AML_STORAGE__URL", "s3://from-env"),
        ],
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("url = \"nats://from-toml:4222\""),
        "{stdout}"
    );
    assert!(stdout.contains("ack_wait_secs = 11"), "{stdout}");
    assert!(
        stdout.contains("nak_delay_ms = 13"),
        ".env over toml: {stdout}"
    );
    assert!(
        stdout.contains("concurrency = 4"),
        "environment over .env: {stdout}"
    );
    assert!(
        stdout.contains("url = \"s3://from-flag\""),
        "flag over environment: {stdout}"
    );
    assert!(
        stdout.contains("log_level = \"info\""),
        "defaults fill the rest: {stdout}"
    );
}

#[test]
fn unknown_key_fails_naming_key_and_layer() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("aml.toml"), "[bus]\nconcurency = 2\n").expect("aml.toml");
    let output = aml(dir.path(), &["--print-config"], &[]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr
            .contains("unknown configuration key `bus.concurency` in configuration file aml.toml"),
        "{stderr}"
    );

    let output = aml(
        tempfile::tempdir().expect("dir").path(),
        &["--print-config"],
        &[("AML_BUS__ACK_WAIT_SECS", "soon")],
    );
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains("invalid value for configuration key `bus.ack_wait_secs` in environment variable AML_BUS__ACK_WAIT_SECS"),
        "{stderr}"
    );
}

#[test]
fn secrets_reach_neither_print_config_nor_logs() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join(".env"),
        "AML_STORAGE__S3__SECRET_ACCESS_KEY=dotenv-s3-secret\n",
    )
    .expect(".env");
    let secrets = [
        ("AML_NATS__USER", "bank-a"),
        ("AML_NATS__PASSWORD", "env-nats-password"),
    ];
    let output = aml(dir.path(), &["--print-config"], &secrets);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("password = \"<redacted>\""), "{stdout}");
    assert!(
        stdout.contains("secret_access_key = \"<redacted>\""),
        "{stdout}"
    );
    for secret in ["env-nats-password", "dotenv-s3-secret"] {
        assert!(!stdout.contains(secret) && !stderr.contains(secret));
    }

    let nats = NatsServer::start().expect("nats-server");
    let output = aml(
        dir.path(),
        &["setup", "--nats-url", &nats.url(), "--log-level", "debug"],
        &secrets,
    );
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("streams ALERTS, JOBS, EVENTS, DLQ"),
        "{stdout}"
    );
    assert!(
        stderr.contains("effective configuration"),
        "the config is logged: {stderr}"
    );
    assert!(stderr.contains("<redacted>"), "{stderr}");
    for secret in ["env-nats-password", "dotenv-s3-secret"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked: {stderr}"
        );
    }
}
