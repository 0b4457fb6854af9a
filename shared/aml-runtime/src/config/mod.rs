//! Layered configuration with figment.
//!
//! Built-in defaults < `aml.toml` < `.env` < `AML_*` environment < command-line flags. A
//! variable `AML_NATS__URL` sets `nats.url`; a few standard variables are read too
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, and the providers' keys such as `ANTHROPIC_API_KEY`,
//! `HF_TOKEN` and `JUDGE_PROVIDER`, so `.env` holds them as well). An unknown key or a bad value is an error that names the
//! key and the layer it came from. Secrets print as `<redacted>`.

mod layer;
mod providers;
mod secret;
mod settings;

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::Value;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use providers::ProvidersConfig;
pub use secret::{REDACTED, Secret};
pub use settings::{
    AmlConfig, BankOverrides, BusConfig, LogFormat, NatsConfig, S3Config, ScoringBackend,
    ScoringConfig, StorageConfig, TelemetryConfig,
};

use layer::KeyedLayer;

/// Prefix of the environment variables that configure `aml`.
pub const ENV_PREFIX: &str = "AML_";

/// `AML_*` variables that a binary reads through its own flags (clap `env`), not
/// configuration keys: the configuration layer leaves them alone.
pub const FLAG_VARIABLES: [&str; 3] = [
    "AML_WORKER_ID",
    "AML_MODEL_CACHE",
    "AML_REQUEST_TIMEOUT_SECS",
];

/// Standard variables read as configuration keys, with the key each sets.
const STANDARD_VARIABLES: [(&str, &str); 1] =
    [("OTEL_EXPORTER_OTLP_ENDPOINT", "telemetry.otlp_endpoint")];

/// The standard variable that sets `variable`'s key, if it is one.
fn standard_key(variable: &str) -> Option<&'static str> {
    STANDARD_VARIABLES
        .iter()
        .chain(providers::PROVIDER_VARIABLES.iter())
        .find(|(standard, _)| *standard == variable)
        .map(|(_, key)| *key)
}

/// Configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key no section knows.
    #[error("unknown configuration key `{key}` in {layer}")]
    UnknownKey {
        /// Dotted key path, e.g. `nats.urll`.
        key: String,
        /// The layer that set it, e.g. `environment variable AML_NATS__URLL`.
        layer: String,
    },
    /// A value of the wrong type or out of range.
    #[error("invalid value for configuration key `{key}` in {layer}: {reason}")]
    InvalidValue {
        /// Dotted key path.
        key: String,
        /// The layer that set it.
        layer: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file could not be read or parsed.
    #[error("cannot read configuration file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// One command-line flag that sets a configuration key.
#[derive(Debug, Clone, PartialEq)]
pub struct Flag {
    /// The flag as typed, e.g. `--nats-url`.
    pub name: String,
    /// The dotted key it sets, e.g. `nats.url`.
    pub key: String,
    /// The value.
    pub value: Value,
}

impl Flag {
    /// A flag that sets `key` to a serialisable value.
    pub fn new(name: &str, key: &str, value: impl Serialize) -> Result<Self, ConfigError> {
        let value = Value::serialize(value).map_err(|error| ConfigError::InvalidValue {
            key: key.to_owned(),
            layer: format!("command-line flag {name}"),
            reason: error.to_string(),
        })?;
        Ok(Flag {
            name: name.to_owned(),
            key: key.to_owned(),
            value,
        })
    }
}

/// Where configuration comes from; tests build one instead of touching the process environment.
#[derive(Debug, Clone, Default)]
pub struct ConfigSources {
    /// The `aml.toml` file; a missing file is skipped.
    pub toml_file: Option<PathBuf>,
    /// The `.env` file; a missing file is skipped.
    pub dotenv_file: Option<PathBuf>,
    /// Environment variables (all of them; only `AML_*` and the standard ones are read).
    pub environment: Vec<(String, String)>,
    /// Command-line flags, highest priority.
    pub flags: Vec<Flag>,
}

impl ConfigSources {
    /// `aml.toml` and `.env` in the working directory (or the given paths) and the process environment.
    pub fn from_process(toml_file: Option<&Path>, dotenv_file: Option<&Path>) -> Self {
        ConfigSources {
            toml_file: Some(toml_file.map_or_else(|| PathBuf::from("aml.toml"), Path::to_owned)),
            dotenv_file: Some(dotenv_file.map_or_else(|| PathBuf::from(".env"), Path::to_owned)),
            environment: std::env::vars().collect(),
            flags: Vec::new(),
        }
    }

    /// Adds command-line flags.
    pub fn with_flags(mut self, flags: Vec<Flag>) -> Self {
        self.flags.extend(flags);
        self
    }

    fn layers<T: Serialize + Default>(&self) -> Result<Vec<(String, Figment)>, ConfigError> {
        let mut layers = vec![(
            "built-in defaults".to_owned(),
            Figment::from(Serialized::defaults(T::default())),
        )];
        if let Some(path) = self.toml_file.as_ref().filter(|path| path.exists()) {
            layers.push((
                format!("configuration file {}", path.display()),
                Figment::from(Toml::file_exact(path)),
            ));
        }
        if let Some(path) = self.dotenv_file.as_ref().filter(|path| path.exists()) {
            let variables = read_dotenv(path)?;
            let name = format!(".env file {}", path.display());
            layers.push((
                name.clone(),
                Figment::from(KeyedLayer::from_variables(name, &variables)),
            ));
        }
        layers.push((
            "environment".to_owned(),
            Figment::from(KeyedLayer::from_variables(
                "environment".to_owned(),
                &self.environment,
            )),
        ));
        layers.push((
            "command line".to_owned(),
            Figment::from(KeyedLayer::from_flags(&self.flags)),
        ));
        Ok(layers)
    }

    /// Reads the layers and returns the effective configuration.
    pub fn load<T: Serialize + DeserializeOwned + Default>(&self) -> Result<T, ConfigError> {
        let layers = self.layers::<T>()?;
        let mut figment = Figment::new();
        for (_, layer) in &layers {
            figment = figment.merge(layer.clone());
        }
        figment
            .extract::<T>()
            .map_err(|error| explain(error, &layers))
    }
}

fn read_dotenv(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let file_error = |reason: String| ConfigError::File {
        path: path.to_owned(),
        reason,
    };
    let iter = dotenvy::from_path_iter(path).map_err(|error| file_error(error.to_string()))?;
    let mut variables = Vec::new();
    for item in iter {
        variables.push(item.map_err(|error| file_error(error.to_string()))?);
    }
    Ok(variables)
}

/// Turns a figment error into one that names the key and the layer that set it.
fn explain(error: figment::Error, layers: &[(String, Figment)]) -> ConfigError {
    let path: Vec<String> = error.path.clone();
    let unknown = matches!(error.kind, figment::error::Kind::UnknownField(..));
    let key = path.join(".");
    let layer = layers
        .iter()
        .rev()
        .find(|(_, figment)| figment.find_value(&key).is_ok())
        .map(|(name, figment)| describe_layer(name, figment, &path))
        .unwrap_or_else(|| "configuration".to_owned());
    if unknown {
        return ConfigError::UnknownKey { key, layer };
    }
    ConfigError::InvalidValue {
        key,
        layer,
        reason: error.kind.to_string(),
    }
}

fn describe_layer(name: &str, figment: &Figment, path: &[String]) -> String {
    let keys: Vec<&str> = path.iter().map(String::as_str).collect();
    let origin = figment
        .find_metadata(&path.join("."))
        .map(|metadata| metadata.interpolate(&figment::Profile::Default, &keys));
    match origin {
        Some(origin) if name == "environment" => format!("environment variable {origin}"),
        Some(origin) if name == "command line" => format!("command-line flag {origin}"),
        Some(origin) if name.starts_with(".env") => format!("{name} ({origin})"),
        _ => name.to_owned(),
    }
}

/// Renders a configuration as TOML with every secret shown as `<redacted>`.
pub fn render_redacted<T: Serialize>(config: &T) -> String {
    toml::to_string_pretty(config).unwrap_or_else(|error| format!("# cannot render: {error}\n"))
}

/// Turns the configured storage location into a URL: plain paths become absolute `file://` URLs.
pub fn storage_url(location: &str) -> String {
    if location.contains("://") {
        return location.to_owned();
    }
    let path = Path::new(location);
    let absolute = if path.is_absolute() {
        path.to_owned()
    } else {
        std::env::current_dir()
            .map(|directory| directory.join(path))
            .unwrap_or_else(|_| path.to_owned())
    };
    let normalised: PathBuf = absolute
        .components()
        .filter(|component| !matches!(component, std::path::Component::CurDir))
        .collect();
    format!("file://{}", normalised.display())
}

#[cfg(test)]
mod tests;
