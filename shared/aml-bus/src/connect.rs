//! Connecting to NATS with the configured credentials.

use aml_runtime::config::NatsConfig;
use async_nats::{ConnectOptions, ServerAddr};

use crate::{BusError, Result};

/// Connects to NATS as `client_name`, with user/password, token, a `.creds` file and TLS as
/// configured. `config.url` may list several servers of a cluster, separated by commas.
pub async fn connect(config: &NatsConfig, client_name: &str) -> Result<async_nats::Client> {
    let connect_error = |reason: String| BusError::Connect {
        url: config.url.clone(),
        reason,
    };
    let mut options = match &config.credentials_file {
        Some(path) => ConnectOptions::with_credentials_file(path)
            .await
            .map_err(|error| {
                connect_error(format!("credentials file {}: {error}", path.display()))
            })?,
        None => ConnectOptions::new(),
    };
    if let (Some(user), Some(password)) = (&config.user, &config.password) {
        options = options.user_and_password(user.clone(), password.expose().to_owned());
    }
    if let Some(token) = &config.token {
        options = options.token(token.expose().to_owned());
    }
    // Several TLS backends are linked (the bus and S3 clients pull different ones), so rustls
    // cannot pick one by itself; install it once per process, or TLS would panic.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Some(ca_file) = &config.tls_ca_file {
        options = options.add_root_certificates(ca_file.clone());
    }
    let servers = config
        .url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|error| connect_error(format!("server URL `{url}`: {error}")))
        })
        .collect::<Result<Vec<_>>>()?;
    options
        .name(client_name)
        .require_tls(config.tls_required)
        .connect(servers)
        .await
        .map_err(|error| connect_error(error.to_string()))
}
