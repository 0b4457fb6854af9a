//! Typed protobuf publishing with deduplication ids and trace context.

use async_nats::HeaderMap;
use async_nats::jetstream::Context;
use async_nats::jetstream::context::PublishAckFuture;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::publish::PublishAck;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::trace::inject_context;
use crate::{BusError, Result};

/// How many publishes are in flight at once in [`Publisher::publish_all`].
const PUBLISH_WINDOW: usize = 512;

/// What a bulk publish stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishSummary {
    /// Messages JetStream stored.
    pub stored: u64,
    /// Messages JetStream dropped as duplicates of an earlier `Nats-Msg-Id`.
    pub duplicates: u64,
}

/// Publishes protobuf messages to JetStream and waits for them to be stored.
#[derive(Debug, Clone)]
pub struct Publisher {
    jetstream: Context,
}

impl Publisher {
    /// Wraps a JetStream context.
    pub fn new(jetstream: Context) -> Self {
        Publisher { jetstream }
    }

    /// Connects as `client_name` and publishes through that connection.
    pub async fn connect(
        config: &aml_runtime::config::NatsConfig,
        client_name: &str,
    ) -> Result<Self> {
        let client = crate::connect(config, client_name).await?;
        Ok(Publisher::new(async_nats::jetstream::new(client)))
    }

    fn message<M: prost::Message>(message: &M, message_id: Option<&str>) -> PublishMessage {
        let mut headers = HeaderMap::new();
        inject_context(&tracing::Span::current().context(), &mut headers);
        let publish = PublishMessage::build()
            .payload(message.encode_to_vec().into())
            .headers(headers);
        match message_id {
            Some(id) => publish.message_id(id),
            None => publish,
        }
    }

    async fn send(&self, subject: &str, publish: PublishMessage) -> Result<PublishAckFuture> {
        self.jetstream
            .send_publish(subject.to_owned(), publish)
            .await
            .map_err(|error| BusError::Publish {
                subject: subject.to_owned(),
                reason: error.to_string(),
            })
    }

    async fn confirm(subject: &str, ack: PublishAckFuture) -> Result<PublishAck> {
        ack.await.map_err(|error| BusError::Publish {
            subject: subject.to_owned(),
            reason: error.to_string(),
        })
    }

    /// Publishes one message and waits until JetStream has stored it. With a `message_id`,
    /// a second publish of the same id inside the stream's window is reported as a duplicate.
    pub async fn publish<M: prost::Message>(
        &self,
        subject: &str,
        message: &M,
        message_id: Option<&str>,
    ) -> Result<PublishAck> {
        let ack = self
            .send(subject, Self::message(message, message_id))
            .await?;
        Self::confirm(subject, ack).await
    }

    /// Publishes many `(message id, message)` pairs, pipelined, and waits for all of them.
    pub async fn publish_all<'a, M, I>(&self, subject: &str, messages: I) -> Result<PublishSummary>
    where
        M: prost::Message + 'a,
        I: IntoIterator<Item = (&'a str, &'a M)>,
    {
        let mut summary = PublishSummary::default();
        let mut pending = Vec::with_capacity(PUBLISH_WINDOW);
        for (id, message) in messages {
            pending.push(self.send(subject, Self::message(message, Some(id))).await?);
            if pending.len() == PUBLISH_WINDOW {
                Self::confirm_all(subject, &mut pending, &mut summary).await?;
            }
        }
        Self::confirm_all(subject, &mut pending, &mut summary).await?;
        Ok(summary)
    }

    async fn confirm_all(
        subject: &str,
        pending: &mut Vec<PublishAckFuture>,
        summary: &mut PublishSummary,
    ) -> Result<()> {
        for ack in pending.drain(..) {
            if Self::confirm(subject, ack).await?.duplicate {
                summary.duplicates += 1;
            } else {
                summary.stored += 1;
            }
        }
        Ok(())
    }
}
