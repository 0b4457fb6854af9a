//! How each bank's alerts are judged in a batch: the scoring defaults with the bank's
//! overrides, and the calibration its thresholds come from, checked against the batch's
//! model, adapter and policy by their fingerprints. A mismatch refuses the batch (naming what
//! differs) unless `scoring.allow_uncalibrated`; without a calibration the bank is scored
//! uncalibrated: the prescreen clears nothing.

use std::collections::BTreeMap;
use std::path::Path;

use aml_batch::{BankScoring, CalibrationSource};
use aml_core::cascade::{CALIBRATION_SCHEMA, Calibration};
use aml_core::digest::sha256_hex;
use aml_core::policy::DEFAULT_POLICY;
use aml_runtime::ScoringConfig;
use aml_storage::{Fingerprinter, Storage};
use tracing::warn;

use crate::cut::CutError;

/// A bank's scoring as configured: defaults and its overrides merged.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct BankSettings {
    policy_url: String,
    adapter_url: String,
    calibration_url: String,
}

/// The settings of `bank` and its uncalibrated tau.
fn settings(config: &ScoringConfig, bank: &str) -> (BankSettings, f64) {
    let overrides = config.per_bank.get(bank).cloned().unwrap_or_default();
    (
        BankSettings {
            policy_url: overrides
                .policy_url
                .unwrap_or_else(|| config.policy_url.clone()),
            adapter_url: overrides
                .adapter_url
                .unwrap_or_else(|| config.adapter_url.clone()),
            calibration_url: overrides
                .calibration_url
                .unwrap_or_else(|| config.calibration_url.clone()),
        },
        overrides.tau.unwrap_or(config.tau),
    )
}

/// The policy document at `url` (a key or URL of the storage, or a local path), or the
/// built-in one when `url` is empty.
pub async fn policy_text(storage: &Storage, url: &str) -> Result<String, CutError> {
    if url.is_empty() {
        return Ok(DEFAULT_POLICY.to_owned());
    }
    let bytes = read(storage, url).await?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn read(storage: &Storage, url: &str) -> Result<Vec<u8>, CutError> {
    match storage.key_of(url) {
        Some(key) => Ok(storage.get(key).await?.to_vec()),
        None => {
            let path = url.strip_prefix("file://").unwrap_or(url);
            tokio::fs::read(path)
                .await
                .map_err(|error| CutError::Refused(format!("cannot read {url}: {error}")))
        }
    }
}

/// Reads and checks a `calibration.json`.
async fn load(storage: &Storage, url: &str) -> Result<Calibration, CutError> {
    let bytes = read(storage, url).await?;
    let calibration: Calibration = serde_json::from_slice(&bytes)
        .map_err(|error| CutError::Refused(format!("{url}: not a calibration: {error}")))?;
    if calibration.schema != CALIBRATION_SCHEMA {
        return Err(CutError::Refused(format!(
            "{url}: schema `{}`, this scheduler reads `{CALIBRATION_SCHEMA}`",
            calibration.schema
        )));
    }
    Ok(calibration)
}

/// What differs between a calibration and what the batch would score with, one line each.
/// A batch whose model is the run's merged folder, with no adapter, matches the model and
/// adapter the calibration names.
fn mismatches(
    calibration: &Calibration,
    model: &str,
    adapter: Option<&str>,
    policy: &str,
    urls: (&str, &str, &str),
) -> Vec<String> {
    let (model_url, adapter_url, policy_url) = urls;
    let policy_url = if policy_url.is_empty() {
        "the built-in policy"
    } else {
        policy_url
    };
    let mut differences = Vec::new();
    let held = &calibration.sha256;
    let describe = |what: &str, held: Option<&str>, now: Option<&str>, url: &str| match (held, now)
    {
        (Some(held), Some(now)) if held == now => None,
        (None, _) => Some(format!(
            "{what}: the calibration does not name one (sha256 missing)"
        )),
        (Some(held), Some(now)) => Some(format!(
            "{what}: the calibration holds for sha256 {held}, {url} has {now}"
        )),
        (Some(held), None) => Some(format!(
            "{what}: the calibration holds for sha256 {held}, the batch has none"
        )),
    };
    let the_merged_model =
        adapter.is_none() && held.merged.is_some() && held.merged.as_deref() == Some(model);
    if !the_merged_model {
        differences.extend(describe(
            "model",
            held.model.as_deref(),
            Some(model),
            model_url,
        ));
        if held.adapter.is_some() || adapter.is_some() {
            let held_adapter = held.adapter.as_deref().or(Some("none"));
            let now = adapter.or(Some("none"));
            differences.extend(describe("adapter", held_adapter, now, adapter_url));
        }
    }
    differences.extend(describe(
        "policy",
        held.policy.as_deref(),
        Some(policy),
        policy_url,
    ));
    differences
}

/// Refuses a batch whose model or adapter names a folder of the store that holds nothing:
/// every shard would fail on the workers, and the batch would wait out its timeout. A local
/// path is the workers' own and is not looked at here.
async fn require_stored(storage: &Storage, url: &str, what: &str) -> Result<(), CutError> {
    let Ok(aml_storage::StagedFolder::Stored { key, .. }) = storage.folder(url, Path::new("."))
    else {
        return Ok(());
    };
    if storage
        .list(&key)
        .await
        .map_err(CutError::Storage)?
        .is_empty()
    {
        return Err(CutError::Refused(format!(
            "{what} {url} holds no objects (upload it first, e.g. with aml model push)"
        )));
    }
    Ok(())
}

/// Works out each bank's scoring for a batch: thresholds from its calibration (verified),
/// or uncalibrated. Returns, per bank, its scoring (without `prefix_key`, which the cut sets)
/// and its policy text; a refusal names the bank, the calibration and what differs.
pub async fn bank_scorings(
    storage: &Storage,
    fingerprinter: &Fingerprinter,
    config: &ScoringConfig,
    banks: &[String],
) -> Result<BTreeMap<String, (BankScoring, String)>, CutError> {
    let fingerprint = |url: String| async move {
        let folder = storage
            .folder(&url, Path::new("."))
            .map_err(|error| CutError::Refused(error.to_string()))?;
        fingerprinter
            .folder(&folder)
            .await
            .map_err(|error| match error {
                // The store failing is worth retrying; a folder that is not there is not.
                aml_storage::StorageError::Backend { .. } => CutError::Storage(error),
                missing => CutError::Refused(format!("cannot fingerprint {url}: {missing}")),
            })
    };
    if !banks.is_empty() {
        require_stored(storage, &config.model_url, "the model").await?;
    }
    let model = if config.calibration_url.is_empty()
        && config
            .per_bank
            .values()
            .all(|bank| bank.calibration_url.is_none())
    {
        None
    } else {
        Some(fingerprint(config.model_url.clone()).await?)
    };
    let mut scorings = BTreeMap::new();
    for bank in banks {
        let bank = bank.as_str();
        let (settings, uncalibrated_tau) = settings(config, bank);
        if !settings.adapter_url.is_empty() {
            require_stored(
                storage,
                &settings.adapter_url,
                &format!("bank {bank}'s adapter"),
            )
            .await?;
        }
        let policy = policy_text(storage, &settings.policy_url).await?;
        let uncalibrated = BankScoring {
            tau: uncalibrated_tau,
            prescreen_cutoff: 0.0,
            adapter_url: settings.adapter_url.clone(),
            prefix_key: String::new(),
            calibration: None,
        };
        let (Some(model), false) = (&model, settings.calibration_url.is_empty()) else {
            scorings.insert(bank.to_owned(), (uncalibrated, policy));
            continue;
        };
        let calibration = load(storage, &settings.calibration_url).await?;
        let adapter = if settings.adapter_url.is_empty() {
            None
        } else {
            Some(fingerprint(settings.adapter_url.clone()).await?)
        };
        let differences = mismatches(
            &calibration,
            model,
            adapter.as_deref(),
            &sha256_hex(policy.as_bytes()),
            (
                &config.model_url,
                &settings.adapter_url,
                &settings.policy_url,
            ),
        );
        if !differences.is_empty() {
            let reason = format!(
                "bank {bank}: the calibration {} does not hold for this batch: {}",
                settings.calibration_url,
                differences.join("; ")
            );
            if !config.allow_uncalibrated {
                return Err(CutError::Refused(format!(
                    "{reason} (recalibrate, or set scoring.allow_uncalibrated = true to score it uncalibrated)"
                )));
            }
            warn!(bank, %reason, "scoring uncalibrated (scoring.allow_uncalibrated)");
            scorings.insert(bank.to_owned(), (uncalibrated, policy));
            continue;
        }
        let scoring = BankScoring {
            tau: calibration.tau,
            prescreen_cutoff: calibration.prescreen_cutoff,
            adapter_url: settings.adapter_url.clone(),
            prefix_key: String::new(),
            calibration: Some(CalibrationSource {
                url: settings.calibration_url.clone(),
                calibration,
            }),
        };
        scorings.insert(bank.to_owned(), (scoring, policy));
    }
    Ok(scorings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aml_core::cascade::Fingerprints;
    use aml_runtime::config::BankOverrides;

    /// A model folder, a calibration for it under the built-in policy, and storage.
    fn setup(root: &Path) -> (Storage, ScoringConfig, Calibration) {
        let model = root.join("model");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::write(model.join("config.json"), b"{}").unwrap();
        std::fs::write(model.join("model.safetensors"), [1u8; 64]).unwrap();
        let mut calibration = sample_calibration();
        calibration.sha256 = Fingerprints {
            model: Some(aml_storage::fingerprint_dir(&model).unwrap()),
            adapter: None,
            merged: None,
            policy: Some(sha256_hex(DEFAULT_POLICY.as_bytes())),
            labelled_set: None,
        };
        let file = root.join("calibration.json");
        std::fs::write(&file, serde_json::to_vec(&calibration).unwrap()).unwrap();
        let storage = Storage::open(
            &format!("file://{}", root.join("store").display()),
            &aml_storage::S3Options::default(),
        )
        .unwrap();
        let config = ScoringConfig {
            model_url: model.display().to_string(),
            calibration_url: file.display().to_string(),
            ..ScoringConfig::default()
        };
        (storage, config, calibration)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_matching_calibration_sets_the_thresholds_and_banks_override_theirs() {
        let root = tempfile::tempdir().unwrap();
        let (storage, mut config, calibration) = setup(root.path());
        config.per_bank.insert(
            "bravo".into(),
            BankOverrides {
                tau: Some(0.7),
                calibration_url: Some(String::new()),
                ..Default::default()
            },
        );
        let banks = ["alpha".to_owned(), "bravo".to_owned()];
        let fingerprinter = Fingerprinter::default();
        let scorings = bank_scorings(&storage, &fingerprinter, &config, &banks)
            .await
            .unwrap();
        let (alpha, policy) = &scorings["alpha"];
        assert_eq!(
            (alpha.tau, alpha.prescreen_cutoff),
            (calibration.tau, calibration.prescreen_cutoff)
        );
        assert!(alpha.calibration.is_some());
        assert_eq!(policy, DEFAULT_POLICY);
        let (bravo, _) = &scorings["bravo"];
        assert_eq!(
            (bravo.tau, bravo.prescreen_cutoff),
            (0.7, 0.0),
            "bravo: uncalibrated by its override"
        );
        assert!(bravo.calibration.is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_policy_refuses_unless_uncalibrated_scoring_is_allowed() {
        let root = tempfile::tempdir().unwrap();
        let (storage, mut config, _) = setup(root.path());
        let policy = root.path().join("policy.txt");
        std::fs::write(&policy, "A bank's own policy.").unwrap();
        config.policy_url = policy.display().to_string();
        let banks = ["alpha".to_owned()];
        let fingerprinter = Fingerprinter::default();
        let refusal = bank_scorings(&storage, &fingerprinter, &config, &banks)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            refusal.starts_with("bank alpha: the calibration"),
            "{refusal}"
        );
        assert!(
            refusal.contains(&format!(
                "policy: the calibration holds for sha256 {}",
                sha256_hex(DEFAULT_POLICY.as_bytes())
            )),
            "{refusal}"
        );
        config.allow_uncalibrated = true;
        let scorings = bank_scorings(&storage, &fingerprinter, &config, &banks)
            .await
            .unwrap();
        let (alpha, policy) = &scorings["alpha"];
        assert!(alpha.calibration.is_none());
        assert_eq!((alpha.tau, alpha.prescreen_cutoff), (config.tau, 0.0));
        assert_eq!(policy, "A bank's own policy.");
    }

    fn sample_calibration() -> Calibration {
        Calibration {
            schema: CALIBRATION_SCHEMA.to_owned(),
            tau: 0.3,
            prescreen_cutoff: 0.4,
            recall: 1.0,
            recall_target: 0.99,
            recall_lower_bound: 0.991,
            confidence: 0.95,
            fpr: 0.3,
            fpr_ci: [0.25, 0.35],
            positives: 300,
            negatives: 300,
            counts: Default::default(),
            cleared_share: 0.1,
            certified: true,
            positives_needed: None,
            score_histogram: Vec::new(),
            answer_mass_mean: None,
            sha256: Fingerprints::default(),
            created_unix_ms: 0,
        }
    }

    #[test]
    fn mismatches_name_what_differs() {
        let calibration = Calibration {
            sha256: Fingerprints {
                model: Some("m".into()),
                adapter: Some("a".into()),
                merged: None,
                policy: Some("p".into()),
                labelled_set: None,
            },
            ..sample_calibration()
        };
        let urls = ("s3://x/model", "s3://x/adapter", "");
        assert!(mismatches(&calibration, "m", Some("a"), "p", urls).is_empty());
        let differences = mismatches(&calibration, "m", Some("b"), "q", urls);
        assert_eq!(differences.len(), 2, "{differences:?}");
        assert!(
            differences[0]
                .starts_with("adapter: the calibration holds for sha256 a, s3://x/adapter has b")
        );
        assert!(differences[1].contains("the built-in policy has q"));
        let merged = mismatches(&calibration, "m", None, "p", urls);
        assert_eq!(
            merged,
            ["adapter: the calibration holds for sha256 a, s3://x/adapter has none"]
        );
        let with_merged = Calibration {
            sha256: Fingerprints {
                merged: Some("mm".into()),
                ..calibration.sha256.clone()
            },
            ..calibration.clone()
        };
        assert!(
            mismatches(&with_merged, "mm", None, "p", urls).is_empty(),
            "the run's merged folder stands for base and adapter"
        );
        assert_eq!(
            mismatches(&with_merged, "mm", None, "q", urls).len(),
            1,
            "the policy still counts"
        );
    }
}
