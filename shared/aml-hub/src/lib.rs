//! A Hugging Face Hub client for what training needs: download a model snapshot (config,
//! tokenizer, safetensors shards) by repository id, with `HF_TOKEN` for gated or private
//! models, and push a trained folder (adapter, tokenizer, reports) to a model repository,
//! large files through Git LFS, as `huggingface_hub` does. `HF_ENDPOINT` points it at a
//! mirror or, in tests, at a local server that speaks the Hub's wire format.

#![forbid(unsafe_code)]

mod download;
mod upload;

use std::time::Duration;

pub use download::SNAPSHOT_FILES;

/// Why a Hub call failed.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The repository id is not `owner/name`.
    #[error("`{0}` is not a Hub repository id (owner/name)")]
    RepoId(String),
    /// The Hub refused the token or has no access for it.
    #[error("{url}: HTTP {status}: the repository is gated or private, or HF_TOKEN lacks access")]
    Unauthorized {
        /// The request.
        url: String,
        /// 401 or 403.
        status: u16,
    },
    /// No such repository, revision or file.
    #[error("{url}: not found on the Hub")]
    NotFound {
        /// The request.
        url: String,
    },
    /// Any other HTTP or transport failure.
    #[error("{url}: {reason}")]
    Http {
        /// The request.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A local folder named as a model holds no `config.json`.
    #[error("{0}: config.json missing, not a Hugging Face model folder")]
    NotAModel(std::path::PathBuf),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// A Hub endpoint and the token to call it with.
#[derive(Debug, Clone)]
pub struct HubClient {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

impl HubClient {
    /// A client for `endpoint` (e.g. `https://huggingface.co`) with an optional token.
    pub fn new(endpoint: &str, token: Option<String>) -> Result<Self, HubError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(30))
            .build()
            .map_err(|error| HubError::Http {
                url: endpoint.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(HubClient {
            http,
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            token: token.filter(|token| !token.is_empty()),
        })
    }

    /// `HF_ENDPOINT` (default `https://huggingface.co`) and `HF_TOKEN` (or
    /// `HUGGING_FACE_HUB_TOKEN`) from `environment`.
    pub fn from_environment(environment: &[(String, String)]) -> Result<Self, HubError> {
        let get = |name: &str| {
            environment
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        };
        let endpoint = get("HF_ENDPOINT").unwrap_or_else(|| "https://huggingface.co".to_owned());
        let token = get("HF_TOKEN").or_else(|| get("HUGGING_FACE_HUB_TOKEN"));
        Self::new(&endpoint, token)
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request`, turning failures into [`HubError`]s that name `url`.
    async fn send(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, HubError> {
        let response = self
            .authorised(request)
            .send()
            .await
            .map_err(|error| HubError::Http {
                url: url.to_owned(),
                reason: error.to_string(),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        Err(match status.as_u16() {
            401 | 403 => HubError::Unauthorized {
                url: url.to_owned(),
                status: status.as_u16(),
            },
            404 => HubError::NotFound {
                url: url.to_owned(),
            },
            code => {
                let body = response.text().await.unwrap_or_default();
                HubError::Http {
                    url: url.to_owned(),
                    reason: format!(
                        "HTTP {code}: {}",
                        body.chars().take(300).collect::<String>()
                    ),
                }
            }
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, HubError> {
        let response = self.send(url, request).await?;
        response.json().await.map_err(|error| HubError::Http {
            url: url.to_owned(),
            reason: format!("unexpected answer: {error}"),
        })
    }
}

/// Checks that `repo_id` is `owner/name` with the Hub's characters.
pub fn check_repo_id(repo_id: &str) -> Result<(), HubError> {
    let valid_part = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '-'])
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    match repo_id.split_once('/') {
        Some((owner, name)) if valid_part(owner) && valid_part(name) => Ok(()),
        _ => Err(HubError::RepoId(repo_id.to_owned())),
    }
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> HubError + '_ {
    move |source| HubError::Io {
        path: path.to_owned(),
        source,
    }
}
