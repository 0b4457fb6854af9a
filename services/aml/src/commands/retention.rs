//! `aml retention`: list (`--dry-run`, the default) or delete (`--apply`) what object storage
//! holds past `storage.retention_days`: each bank's batch folders (alert content), and past
//! `scoring.dedup_days` the batch records and dedup indexes. The PII retention control for
//! storage, as `bus.alerts_max_age_days` is for the bus; run it daily (a cron job).

use aml_batch::retention::{Expired, ExpiredKind, RetentionRules, delete_expired, expired};
use aml_runtime::AmlConfig;
use anyhow::{Context, bail};

/// Options of `aml retention`.
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// List what is past retention without deleting it (the default).
    #[arg(long, conflicts_with = "apply")]
    dry_run: bool,
    /// Delete what is past retention.
    #[arg(long)]
    apply: bool,
    /// Only these banks (repeat the flag; default: every bank, and the batch records).
    #[arg(long = "bank")]
    banks: Vec<String>,
    /// Judge ages as of this day (YYYY-MM-DD) or time (RFC 3339) instead of now: what the
    /// rule will remove by then.
    #[arg(long)]
    as_of: Option<String>,
}

fn parse_as_of(text: &str) -> anyhow::Result<i64> {
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(time.timestamp_millis());
    }
    match chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) => Ok(day
            .and_hms_opt(0, 0, 0)
            .context("midnight")?
            .and_utc()
            .timestamp_millis()),
        Err(_) => bail!("--as-of `{text}`: use YYYY-MM-DD or an RFC 3339 time"),
    }
}

fn describe(group: &Expired) -> String {
    let what = match group.kind {
        ExpiredKind::BankBatch => "batch objects",
        ExpiredKind::DedupIndex => "dedup index",
        ExpiredKind::BatchRecord => "batch record",
    };
    let written = chrono::DateTime::from_timestamp_millis(group.newest_unix_ms)
        .map(|time| time.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let bank = if group.bank.is_empty() {
        "-"
    } else {
        group.bank.as_str()
    };
    format!(
        "{bank:<16} {:<24} {what:<14} {:>6} {:>12} {written}",
        group.batch,
        group.keys.len(),
        group.bytes
    )
}

/// Lists or deletes what is past retention, one line per bank and batch, then totals.
pub async fn run(config: &AmlConfig, args: &RetentionArgs) -> anyhow::Result<()> {
    for bank in &args.banks {
        if !aml_bus::topology::valid_bank(bank) {
            bail!("--bank `{bank}`: a bank is lowercase letters, digits, `-` and `_`");
        }
    }
    let now = match &args.as_of {
        Some(text) => parse_as_of(text)?,
        None => chrono::Utc::now().timestamp_millis(),
    };
    let storage = config.storage.open(&config.storage.url)?;
    let rules = RetentionRules {
        retention_days: config.storage.retention_days,
        dedup_days: config.scoring.dedup_days,
    };
    let groups = expired(&storage, rules, now, &args.banks).await?;
    println!(
        "{:<16} {:<24} {:<14} {:>6} {:>12} written",
        "bank", "batch", "what", "objects", "bytes"
    );
    for group in &groups {
        println!("{}", describe(group));
    }
    let objects: usize = groups.iter().map(|group| group.keys.len()).sum();
    let bytes: u64 = groups.iter().map(|group| group.bytes).sum();
    if args.apply {
        let deleted = delete_expired(&storage, &groups).await?;
        println!("deleted {deleted} objects ({bytes} bytes) past retention");
    } else {
        println!(
            "{objects} objects ({bytes} bytes) past retention (storage.retention_days {}, scoring.dedup_days {}); --apply deletes them",
            rules.retention_days, rules.dedup_days
        );
    }
    Ok(())
}
