//! The schedule: a cron expression (with seconds) after which the scheduler asks itself for
//! a batch, by publishing a BatchRequest whose id is the firing time, so that several
//! scheduler replicas firing together ask once (the JOBS stream drops the duplicate id).

use std::str::FromStr;

use aml_bus::Publisher;
use aml_bus::topology::subjects;
use aml_proto::v1::BatchRequest;
use chrono::Utc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// A cron expression that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("scoring.schedule `{expression}`: {reason}")]
pub struct ScheduleError {
    /// The expression.
    pub expression: String,
    /// The parser's complaint.
    pub reason: String,
}

/// Parses `expression` (`sec min hour day-of-month month day-of-week`).
pub fn parse_schedule(expression: &str) -> Result<cron::Schedule, ScheduleError> {
    cron::Schedule::from_str(expression).map_err(|error| ScheduleError {
        expression: expression.to_owned(),
        reason: error.to_string(),
    })
}

/// The id of the batch fired at `time`.
pub fn scheduled_batch_id(time: chrono::DateTime<Utc>) -> String {
    format!("scheduled-{}", time.format("%Y%m%dT%H%M%S"))
}

/// Publishes a BatchRequest at each firing of `schedule` until `shutdown`.
pub async fn run_schedule(
    schedule: cron::Schedule,
    publisher: Publisher,
    shutdown: CancellationToken,
) {
    while let Some(next) = schedule.upcoming(Utc).next() {
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let batch_id = scheduled_batch_id(next);
        let request = BatchRequest {
            batch_id: batch_id.clone(),
            ..Default::default()
        };
        match publisher
            .publish(subjects::BATCH, &request, Some(&batch_id))
            .await
        {
            Ok(_) => info!(batch = %batch_id, "scheduled batch requested"),
            Err(error) => warn!(batch = %batch_id, %error, "could not request the scheduled batch"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_weekly_default_fires_on_mondays_and_bad_expressions_name_themselves() {
        let schedule = parse_schedule("0 0 2 * * Mon").unwrap();
        let next = schedule.upcoming(Utc).next().unwrap();
        assert_eq!(next.format("%a %H:%M:%S").to_string(), "Mon 02:00:00");
        assert!(scheduled_batch_id(next).starts_with("scheduled-"));
        let error = parse_schedule("every monday").unwrap_err();
        assert!(error.to_string().contains("every monday"), "{error}");
    }
}
