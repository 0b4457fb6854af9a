//! `aml alerts push`: publish a bank's alerts from a JSONL file onto `aml.alerts.<bank>`.

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

/// Reads the alerts of `file`, checking each line; an error names the file and line. With
/// `bank`, an alert without one gets it and an alert of another bank is refused.
pub fn read_alerts(file: &std::path::Path, bank: Option<&str>) -> anyhow::Result<Vec<Alert>> {
    let mut alerts = Vec::new();
    for (number, mut alert) in super::jsonl_records::<Alert>(file, "an alert")? {
        if let Some(bank) = bank {
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
    if !aml_bus::topology::valid_bank(&args.bank) {
        bail!(
            "--bank `{}`: use lowercase letters, digits, `-` and `_`",
            args.bank
        );
    }
    let alerts = read_alerts(&args.file, Some(&args.bank))?;
    let client = aml_bus::connect(&config.nats, "aml-alerts").await?;
    let topology = Topology::new(client).with_limits((&config.bus).into());
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
    if summary.duplicates > 0 {
        println!(
            "  (an alert id pushed in the last 24 h is dropped; the copy pushed first is the one scored)"
        );
    }
    Ok(())
}

/// Options of `aml alerts synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Banks, comma-separated; alerts are dealt to them in turn.
    #[arg(long, value_delimiter = ',', default_value = "alpha,bravo,charlie")]
    banks: Vec<String>,
    /// Alerts in all.
    #[arg(long, default_value_t = 3000)]
    count: usize,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output folder: `<bank>.jsonl` per bank and `gold.jsonl` with every alert's label.
    #[arg(long)]
    out: PathBuf,
}

/// Writes synthetic alerts per bank (every tier, labels balanced) and their gold labels.
pub fn synth(args: &SynthArgs) -> anyhow::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("failed to create {}", args.out.display()))?;
    let mut files = Vec::new();
    for bank in &args.banks {
        if !aml_bus::topology::valid_bank(bank) {
            bail!(
                "--banks: `{bank}` is not a valid bank name (lowercase letters, digits, - and _)"
            );
        }
        let path = args.out.join(format!("{bank}.jsonl"));
        files.push(std::io::BufWriter::new(std::fs::File::create(&path)?));
    }
    let mut gold = std::io::BufWriter::new(std::fs::File::create(args.out.join("gold.jsonl"))?);
    let banks: Vec<&str> = args.banks.iter().map(String::as_str).collect();
    let alerts = aml_synth::bank_alerts(
        &aml_synth::Synthesizer::default(),
        &mut aml_core::rng::SeededRng::new(args.seed),
        &banks,
        args.count,
    );
    for (index, (alert, label)) in alerts.into_iter().enumerate() {
        let which = index % files.len();
        writeln!(files[which], "{}", serde_json::to_string(&alert)?)?;
        writeln!(
            gold,
            "{}",
            serde_json::json!({"alert": alert, "label": label})
        )?;
    }
    for mut file in files {
        file.flush()?;
    }
    gold.flush()?;
    println!(
        "{} alerts for {} banks in {}",
        args.count,
        args.banks.len(),
        args.out.display()
    );
    Ok(())
}
