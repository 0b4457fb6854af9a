//! The command-line flags every binary shares; each sets one configuration key.

use std::path::PathBuf;

use crate::config::{AmlConfig, ConfigError, ConfigSources, Flag, LogFormat};

/// Flags common to `aml` and every service; flatten them into a binary's parser.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Configuration file (default: ./aml.toml when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Environment file (default: ./.env when present).
    #[arg(long, global = true, value_name = "FILE")]
    pub env_file: Option<PathBuf>,
    /// NATS server URL [config: nats.url].
    #[arg(long, global = true, value_name = "URL")]
    pub nats_url: Option<String>,
    /// Object storage: file:///dir, a directory, s3://bucket/prefix or memory:// [config: storage.url].
    #[arg(long, global = true, value_name = "URL")]
    pub storage_url: Option<String>,
    /// Log format [config: telemetry.log_format].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter, e.g. info or aml_bus=debug [config: telemetry.log_level].
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long, global = true)]
    pub print_config: bool,
}

impl CommonArgs {
    /// The flags that were given, as configuration overrides.
    pub fn flags(&self) -> Result<Vec<Flag>, ConfigError> {
        let mut flags = Vec::new();
        if let Some(url) = &self.nats_url {
            flags.push(Flag::new("--nats-url", "nats.url", url)?);
        }
        if let Some(url) = &self.storage_url {
            flags.push(Flag::new("--storage-url", "storage.url", url)?);
        }
        if let Some(format) = &self.log_format {
            flags.push(Flag::new("--log-format", "telemetry.log_format", format)?);
        }
        if let Some(level) = &self.log_level {
            flags.push(Flag::new("--log-level", "telemetry.log_level", level)?);
        }
        Ok(flags)
    }

    /// The configuration sources these flags point at, with the process environment.
    pub fn sources(&self, extra_flags: Vec<Flag>) -> Result<ConfigSources, ConfigError> {
        let mut flags = self.flags()?;
        flags.extend(extra_flags);
        Ok(
            ConfigSources::from_process(self.config.as_deref(), self.env_file.as_deref())
                .with_flags(flags),
        )
    }

    /// Loads the effective configuration.
    pub fn load(&self) -> Result<AmlConfig, ConfigError> {
        self.sources(Vec::new())?.load()
    }
}

/// What a binary does after reading its flags.
pub enum Startup {
    /// `--print-config` printed the configuration; nothing else to do.
    PrintedConfig,
    /// Run with this configuration; keep the guard alive while running.
    Run(Box<AmlConfig>, crate::TelemetryGuard),
}

/// Why a binary could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Telemetry could not be installed.
    #[error(transparent)]
    Telemetry(#[from] crate::TelemetryError),
}

/// Loads the configuration, handles `--print-config`, installs telemetry for `service` and
/// logs the effective configuration (secrets redacted) at debug level.
pub fn start(service: &str, common: &CommonArgs) -> Result<Startup, StartupError> {
    let config = common.load()?;
    if common.print_config {
        print!("{}", crate::config::render_redacted(&config));
        return Ok(Startup::PrintedConfig);
    }
    let guard = crate::telemetry::init(service, &config.telemetry)?;
    tracing::debug!(config = %crate::config::render_redacted(&config), "effective configuration");
    Ok(Startup::Run(Box::new(config), guard))
}
