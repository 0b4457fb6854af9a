use std::io::Write;

use super::*;

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    path
}

#[test]
fn each_layer_overrides_the_one_below() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(
        &dir,
        "aml.toml",
        "[nats]\nurl = \"nats://toml:1\"\n[storage]\nurl = \"s3://toml\"\n[bus]\nconcurrency = 3\nack_wait_secs = 7\n",
    );
    let dotenv = write(
        &dir,
        ".env",
        "AML_STORAGE__URL=s3://dotenv\nAML_BUS__CONCURRENCY=4\nAML_BUS__NAK_DELAY_MS=5\n",
    );
    let mut sources = ConfigSources {
        toml_file: Some(toml),
        dotenv_file: Some(dotenv),
        environment: vars(&[
            ("AML_BUS__CONCURRENCY", "5"),
            ("AML_BUS__MAX_DELIVERIES", "6"),
        ]),
        flags: vec![],
    };
    sources
        .flags
        .push(Flag::new("--max-deliveries", "bus.max_deliveries", 9).unwrap());
    let config: AmlConfig = sources.load().unwrap();
    assert_eq!(config.nats.url, "nats://toml:1");
    assert_eq!(config.bus.ack_wait_secs, 7);
    assert_eq!(config.storage.url, "s3://dotenv");
    assert_eq!(config.bus.nak_delay_ms, 5);
    assert_eq!(config.bus.concurrency, 5);
    assert_eq!(config.bus.max_deliveries, 9);
    assert_eq!(config.telemetry, TelemetryConfig::default());
}

#[test]
fn unknown_key_names_the_key_and_the_variable() {
    let sources = ConfigSources {
        environment: vars(&[("AML_NATS__URLL", "nats://x")]),
        ..Default::default()
    };
    let error = sources.load::<AmlConfig>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "unknown configuration key `nats.urll` in environment variable AML_NATS__URLL"
    );
}

#[test]
fn a_binarys_own_variables_are_not_configuration_keys() {
    let sources = ConfigSources {
        environment: vars(&[
            ("AML_MODEL_CACHE", "/cache"),
            ("AML_WORKER_ID", "gpu-7"),
            ("AML_NATS__URL", "nats://worker:4222"),
        ]),
        ..Default::default()
    };
    let config = sources.load::<AmlConfig>().unwrap();
    assert_eq!(config.nats.url, "nats://worker:4222");
}

#[test]
fn unknown_key_in_toml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let toml = write(&dir, "aml.toml", "[storage]\nbucket = \"x\"\n");
    let sources = ConfigSources {
        toml_file: Some(toml.clone()),
        ..Default::default()
    };
    let error = sources.load::<AmlConfig>().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "unknown configuration key `storage.bucket` in configuration file {}",
            toml.display()
        )
    );
}

#[test]
fn bad_value_names_the_key_and_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let dotenv = write(&dir, ".env", "AML_BUS__CONCURRENCY=lots\n");
    let sources = ConfigSources {
        dotenv_file: Some(dotenv.clone()),
        ..Default::default()
    };
    let error = sources.load::<AmlConfig>().unwrap_err().to_string();
    assert!(
        error.starts_with(&format!(
            "invalid value for configuration key `bus.concurrency` in .env file {} (AML_BUS__CONCURRENCY):",
            dotenv.display()
        )),
        "{error}"
    );
}

#[test]
fn standard_otlp_variable_sets_the_endpoint() {
    let sources = ConfigSources {
        environment: vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]),
        ..Default::default()
    };
    let config: AmlConfig = sources.load().unwrap();
    assert_eq!(
        config.telemetry.otlp_endpoint.as_deref(),
        Some("http://collector:4317")
    );
}

#[test]
fn rendered_config_redacts_secrets() {
    let sources = ConfigSources {
        environment: vars(&[
            ("AML_NATS__PASSWORD", "hunter2"),
            ("AML_STORAGE__S3__SECRET_ACCESS_KEY", "s3cr3t"),
        ]),
        ..Default::default()
    };
    let config: AmlConfig = sources.load().unwrap();
    assert_eq!(config.nats.password.as_ref().unwrap().expose(), "hunter2");
    let rendered = render_redacted(&config);
    assert!(!rendered.contains("hunter2") && !rendered.contains("s3cr3t"));
    assert!(rendered.contains("password = \"<redacted>\""), "{rendered}");
}

#[test]
fn provider_keys_come_from_dotenv_under_their_usual_names_and_never_print() {
    let dir = tempfile::tempdir().unwrap();
    let dotenv = dir.path().join(".env");
    std::fs::write(
        &dotenv,
        "ANTHROPIC_API_KEY=sk-ant-from-dotenv\nHF_TOKEN=hf_dotenv\nJUDGE_PROVIDER=anthropic\n",
    )
    .unwrap();
    let sources = ConfigSources {
        dotenv_file: Some(dotenv),
        environment: vars(&[("OPENAI_API_KEY", "sk-openai-env")]),
        ..Default::default()
    };
    let config: AmlConfig = sources.load().unwrap();
    let providers = &config.providers;
    assert_eq!(
        providers.anthropic_api_key.as_ref().unwrap().expose(),
        "sk-ant-from-dotenv"
    );
    assert_eq!(providers.hf_token.as_ref().unwrap().expose(), "hf_dotenv");
    assert_eq!(providers.judge_provider.as_deref(), Some("anthropic"));
    let variables = providers.variables();
    assert!(variables.contains(&("OPENAI_API_KEY".to_owned(), "sk-openai-env".to_owned())));
    assert!(variables.contains(&(
        "ANTHROPIC_API_KEY".to_owned(),
        "sk-ant-from-dotenv".to_owned()
    )));
    let rendered = render_redacted(&config);
    for secret in ["sk-ant-from-dotenv", "hf_dotenv", "sk-openai-env"] {
        assert!(!rendered.contains(secret), "{rendered}");
    }
    assert!(
        rendered.contains("judge_provider = \"anthropic\""),
        "{rendered}"
    );
}

#[test]
fn plain_paths_become_file_urls() {
    assert_eq!(storage_url("s3://bucket/x"), "s3://bucket/x");
    assert_eq!(storage_url("/data/aml"), "file:///data/aml");
    assert!(storage_url("./aml-data").ends_with("/aml-data"));
    assert!(storage_url("./aml-data").starts_with("file:///"));
}
