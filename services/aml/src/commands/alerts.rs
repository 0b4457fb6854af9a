//! `aml alerts push`: publish a bank's alerts from a JSONL file onto `aml.alerts.<bank>`.

use std::io::BufRead;
use std::path::PathBuf;

use aml_bus::topology::subjects;
use aml_bus::{Publisher, Topology};
use aml_proto::v1::Alert;
use aml_runtime::AmlConfig;
use anyhow::{Context, bail};

/// Options of `aml alerts push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The bank: alerts go to `aml.alerts.<bank>`.
    #[arg(long)]
    bank: String,
    /// JSONL, one Alert per line (`alert_id`, `party`, `entry`, ...; `bank` may be left out).
    file: PathBuf,
}

/// Reads the alerts of `file`, checking each line; an error names the file and line.
pub fn read_alerts(file: &std::path::Path, bank: &str) -> anyhow::Result<Vec<Alert>> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file).with_context(|| format!("failed to open {}", file.display()))?,
    );
    let mut alerts = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("{}:{number}: unreadable", file.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let mut alert: Alert = serde_json::from_str(&line)
            .with_context(|| format!("{}:{number}: not an alert", file.display()))?;
        if alert.bank.is_empty() {
            alert.bank = bank.to_owned();
        }
        if alert.bank != bank {
            bail!(
                "{}:{number}: field `bank` is `{}`, but the alerts are pushed for `{bank}`",
                file.display(),
                alert.bank
            );
        }
        if alert.alert_id.is_empty() {
            bail!("{}:{number}: field `alert_id` is missing", file.display());
        }
        alerts.push(alert);
    }
    Ok(alerts)
}

/// Publishes the file's alerts, the alert id as `Nats-Msg-Id` (the stream drops duplicates).
pub async fn push(config: &AmlConfig, args: &PushArgs) -> anyhow::Result<()> {
    if !aml_batch::intake::valid_bank(&args.bank) {
        bail!(
            "--bank `{}`: use lowercase letters, digits, `-` and `_`",
            args.bank
        );
    }
    let alerts = read_alerts(&args.file, &args.bank)?;
    let client = aml_bus::connect(&config.nats, "aml-alerts").await?;
    let topology = Topology::new(client);
    topology.ensure_streams().await?;
    let publisher = Publisher::new(topology.jetstream().clone());
    let summary = publisher
        .publish_all(
            &subjects::alerts(&args.bank),
            alerts.iter().map(|alert| (alert.alert_id.as_str(), alert)),
        )
        .await?;
    println!(
        "{}: {} alerts stored on aml.alerts.{}, {} duplicates dropped",
        args.file.display(),
        summary.stored,
        args.bank,
        summary.duplicates
    );
    Ok(())
}
