//! After training: the final model scores the validation set, and a bank's labelled alerts
//! when given (`calibration_file`), through the prompt and scorer the workers use (the policy
//! as the shared prefix, P(match) + P(edge) from one forward pass); the prescreen scores the
//! same alerts (a sample's input is read back as the alert it shows); the cascade's cutoff and
//! tau are chosen together for a certified recall, and `calibration.json` names the base
//! model, adapter, policy and labelled set by their SHA-256.

use aml_core::cascade::{
    Calibration, CalibrationTarget, CascadeItem, Fingerprints, calibrate_cascade,
};
use aml_core::digest::{Sha256Stream, sha256_hex};
use aml_core::format::{alert_user_message, parse_alert_input, user_message};
use aml_core::labelled::LabelledAlert;
use aml_core::policy::DEFAULT_POLICY;
use aml_prescreen::prescreen_alert;
use aml_scoring::ScoringEngine;

use crate::curriculum::RunPaths;
use crate::data::PreparedData;
use crate::{TrainError, TrainerConfig};

/// Alerts scored per forward pass.
const BATCH: usize = 16;

/// The labelled alerts of `config.calibration_file` (none without one); a file that cannot
/// be read or parsed is an error naming it and the line.
pub fn read_calibration_file(config: &TrainerConfig) -> Result<Vec<LabelledAlert>, TrainError> {
    match &config.calibration_file {
        None => Ok(Vec::new()),
        Some(file) => aml_storage::read_jsonl_file(file)
            .map_err(|error| TrainError::Calibration(format!("calibration_file: {error}"))),
    }
}

/// Scores the validation set and the calibration file's `alerts` with `engine` (the trained
/// model) and calibrates the cascade on them; `merged` is the merged model's folder when the run wrote
/// one. A validation sample whose input reads back as an alert is scored with that alert's
/// user message, exactly as a worker would send it.
pub fn calibrate_trained(
    engine: &mut ScoringEngine,
    data: &PreparedData,
    alerts: &[LabelledAlert],
    config: &TrainerConfig,
    paths: &RunPaths,
    merged: Option<&std::path::Path>,
) -> Result<Calibration, TrainError> {
    let policy = config.system_prompt.as_deref().unwrap_or(DEFAULT_POLICY);
    let mut messages = Vec::new();
    let mut prescreens = Vec::new();
    let mut positives = Vec::new();
    for sample in &data.validation_samples {
        let alert = parse_alert_input(&sample.input);
        messages.push(match &alert {
            Some(alert) => alert_user_message(alert),
            None => user_message(&sample.instruction, &sample.input),
        });
        prescreens.push(alert.map(|alert| prescreen_alert(&alert).score));
        positives.push(sample.label.is_positive());
    }
    // The labelled set: one line per file holding that file's SHA-256 (the validation set,
    // then the calibration file).
    let mut labelled_set = Sha256Stream::default();
    let mut add_file = |file: &std::path::Path| -> Result<(), TrainError> {
        let bytes = std::fs::read(file).map_err(TrainError::io(file))?;
        labelled_set.update(format!("{}\n", sha256_hex(&bytes)).as_bytes());
        Ok(())
    };
    add_file(&paths.data_dir.join("validation.jsonl"))?;
    if let Some(file) = &config.calibration_file {
        add_file(file)?;
        for item in alerts {
            messages.push(alert_user_message(&item.alert));
            prescreens.push(Some(prescreen_alert(&item.alert).score));
            positives.push(item.label.is_positive());
        }
    }
    let scores = engine
        .score_messages(policy, &messages, BATCH)
        .map_err(|error| TrainError::Calibration(error.to_string()))?;
    let items: Vec<CascadeItem> = scores
        .iter()
        .zip(prescreens.iter().zip(&positives))
        .map(|(score, (prescreen, positive))| CascadeItem {
            prescreen: *prescreen,
            model: Some(score.score()),
            positive: *positive,
        })
        .collect();
    let target = CalibrationTarget {
        recall: config.calibration_recall,
        confidence: config.calibration_confidence,
    };
    let mut calibration = calibrate_cascade(&items, target)
        .map_err(|error| TrainError::Calibration(error.to_string()))?;
    let fingerprint = |dir: &std::path::Path| {
        aml_storage::fingerprint_dir(dir)
            .map_err(|error| TrainError::Calibration(error.to_string()))
    };
    calibration.answer_mass_mean = Some(
        scores.iter().map(|score| score.answer_mass).sum::<f64>() / scores.len().max(1) as f64,
    );
    calibration.sha256 = Fingerprints {
        model: Some(fingerprint(&paths.base_dir)?),
        adapter: Some(fingerprint(&paths.out.join("adapter"))?),
        merged: merged.map(fingerprint).transpose()?,
        policy: Some(sha256_hex(policy.as_bytes())),
        labelled_set: Some(labelled_set.finish()),
    };
    calibration.created_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as i64);
    Ok(calibration)
}
