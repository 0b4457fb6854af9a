//! Runtime glue shared by every binary: the layered configuration and telemetry.

pub mod cli;
pub mod config;
pub mod metrics;
pub mod signals;
pub mod telemetry;

pub use cli::{CommonArgs, Startup, StartupError, start};
pub use config::{AmlConfig, ConfigError, ConfigSources, ScoringBackend, ScoringConfig, Secret};
pub use telemetry::{TelemetryError, TelemetryGuard};
