//! Intake: every alert on `aml.alerts.<bank>` is checked as it arrives; one that fails (an
//! unknown bank, oversized, a bank that does not match its subject, a missing field) goes to
//! the DLQ with the reason, and the consumer goes on. Undecodable payloads never reach the
//! handler: the runner dead-letters them. Duplicates (same alert id) were already dropped by
//! the stream's `Nats-Msg-Id` window, and again when a batch is cut.

use aml_batch::{IntakeRules, check_alert};
use aml_bus::{Delivery, Handler, HandlerError};
use aml_proto::v1::Alert;

/// Checks incoming alerts.
#[derive(Debug, Clone)]
pub struct IntakeHandler {
    rules: IntakeRules,
}

impl IntakeHandler {
    /// A handler applying `rules`.
    pub fn new(rules: IntakeRules) -> Self {
        IntakeHandler { rules }
    }
}

impl Handler<Alert> for IntakeHandler {
    async fn handle(&self, delivery: Delivery<Alert>) -> Result<(), HandlerError> {
        check_alert(&delivery.message, &delivery.subject, &self.rules)
            .map_err(HandlerError::invalid)
    }
}
