//! Logs and traces for every binary.
//!
//! Logs go to stderr as human-readable lines or JSON. When an OTLP endpoint is configured
//! (`OTEL_EXPORTER_OTLP_ENDPOINT` or `telemetry.otlp_endpoint`) spans are exported over
//! OTLP/gRPC, and the W3C trace-context propagator is installed so that a trace follows a
//! message across services. Logs carry ids, never alert content or secrets.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::config::{LogFormat, TelemetryConfig};

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter does not parse.
    #[error("invalid log filter `{filter}` in telemetry.log_level: {reason}")]
    Filter {
        /// The filter as configured.
        filter: String,
        /// The parser's complaint.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot export traces to `{endpoint}`: {reason}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// Why.
        reason: String,
    },
    /// A global subscriber was already installed.
    #[error("telemetry is already initialised: {0}")]
    AlreadyInitialised(String),
}

/// Keeps the trace exporter alive; dropping it flushes pending spans.
#[must_use = "dropping the guard shuts the exporter down"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("trace exporter shutdown failed: {error}");
        }
    }
}

/// Installs the global subscriber for a binary named `service_name`.
pub fn init(
    service_name: &str,
    config: &TelemetryConfig,
) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&config.log_level).map_err(|error| TelemetryError::Filter {
        filter: config.log_level.clone(),
        reason: error.to_string(),
    })?;
    let fmt_layer = match config.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_target(true)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // An empty endpoint is no endpoint, as the OpenTelemetry specification reads empty variables.
    let endpoint = config
        .otlp_endpoint
        .as_deref()
        .filter(|url| !url.trim().is_empty());
    let (otel_layer, provider) = match endpoint {
        Some(endpoint) => {
            let provider = tracer_provider(service_name, endpoint)?;
            let tracer = provider.tracer(service_name.to_owned());
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
            (Some(layer), Some(provider))
        }
        None => (None, None),
    };
    Registry::default()
        .with(otel_layer)
        .with(fmt_layer.with_filter(filter))
        .try_init()
        .map_err(|error| TelemetryError::AlreadyInitialised(error.to_string()))?;
    Ok(TelemetryGuard { provider })
}

fn tracer_provider(
    service_name: &str,
    endpoint: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|error| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            reason: error.to_string(),
        })?;
    let resource = Resource::builder()
        .with_service_name(service_name.to_owned())
        .build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}
