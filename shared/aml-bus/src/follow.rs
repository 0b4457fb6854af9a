//! Following events through a broker restart or a leader change: an ordered consumer that,
//! when it fails or ends (its server was killed, the consumer is gone), is created again from
//! the stream sequence after the last event it gave, so a waiter resumes where it was.

use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{Context, Message};
use futures::StreamExt;
use tracing::warn;

use crate::topology::EVENTS_STREAM;
use crate::{BusError, Result};

/// How long to wait before creating a failed consumer again.
const RECREATE_DELAY: Duration = Duration::from_millis(500);

/// The EVENTS on one subject filter, from the stream's start, surviving broker restarts.
pub struct EventFollower {
    jetstream: Context,
    subject: String,
    /// The stream sequence the next consumer starts at (0: the stream's start).
    resume_at: u64,
    messages: Option<pull::Ordered>,
}

impl EventFollower {
    /// Follows `subject` (a filter, wildcards allowed) on EVENTS from the stream's start: what
    /// a client waiting for the events of its own request or batch reads, those published
    /// before it started included. Fails when the consumer cannot be created at all.
    pub async fn start(jetstream: &Context, subject: &str) -> Result<Self> {
        Ok(EventFollower {
            jetstream: jetstream.clone(),
            subject: subject.to_owned(),
            resume_at: 0,
            messages: Some(open(jetstream, subject, 0).await?),
        })
    }

    /// The next event. Waits as long as it takes (bound it with a timeout): a failed
    /// consumer is created again after the last event given, until the server answers.
    /// Cancel-safe: dropping the future loses no event.
    pub async fn next(&mut self) -> Message {
        loop {
            let messages = match &mut self.messages {
                Some(messages) => messages,
                None => match open(&self.jetstream, &self.subject, self.resume_at).await {
                    Ok(messages) => self.messages.insert(messages),
                    Err(error) => {
                        warn!(subject = %self.subject, %error, "cannot follow events yet; retrying");
                        tokio::time::sleep(RECREATE_DELAY).await;
                        continue;
                    }
                },
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    if let Ok(info) = message.info() {
                        self.resume_at = info.stream_sequence + 1;
                    }
                    return message;
                }
                Some(Err(error)) => {
                    warn!(subject = %self.subject, %error, resume_at = self.resume_at, "event consumer failed; creating it again");
                    self.messages = None;
                    tokio::time::sleep(RECREATE_DELAY).await;
                }
                None => {
                    self.messages = None;
                    tokio::time::sleep(RECREATE_DELAY).await;
                }
            }
        }
    }
}

/// An ordered consumer of `subject` on EVENTS from `resume_at` (0: the stream's start).
async fn open(jetstream: &Context, subject: &str, resume_at: u64) -> Result<pull::Ordered> {
    let failed = |error: String| BusError::Topology {
        what: format!("ordered consumer of {subject} on {EVENTS_STREAM}"),
        reason: error,
    };
    let deliver_policy = match resume_at {
        0 => DeliverPolicy::All,
        start_sequence => DeliverPolicy::ByStartSequence { start_sequence },
    };
    jetstream
        .get_stream(EVENTS_STREAM)
        .await
        .map_err(|error| failed(error.to_string()))?
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            deliver_policy,
            ..Default::default()
        })
        .await
        .map_err(|error| failed(error.to_string()))?
        .messages()
        .await
        .map_err(|error| failed(error.to_string()))
}
