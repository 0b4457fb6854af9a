//! `aml judge`: grade a prediction file against its gold samples.

use std::path::{Path, PathBuf};

use aml_core::SampleRecord;
use aml_core::stratified_indices;
use aml_dataset::parse_candidates;
use aml_judge::pictures::{pr_curve_svg, score_histogram_svg};
use aml_judge::{AnyJudge, Prediction, evaluate, join, render_table};
use anyhow::{Context, bail};

/// Options of `aml judge`.
#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    /// Gold samples (JSONL, the training schema).
    #[arg(long)]
    gold: PathBuf,
    /// Predictions: {"id", "label", "output", "cot", "score"} per line.
    #[arg(long)]
    predictions: PathBuf,
    /// Where to write the JSON report; the pictures go beside it.
    #[arg(long)]
    out: PathBuf,
    /// offline, anthropic, perplexity or openai (default: the configuration's
    /// `JUDGE_PROVIDER`, else offline).
    #[arg(long)]
    provider: Option<String>,
    /// Judge model for an LLM provider.
    #[arg(long, default_value = aml_judge::DEFAULT_MODEL)]
    model: String,
    /// Grade only this many items, stratified by label x difficulty.
    #[arg(long)]
    sample: Option<usize>,
    /// Seed of the sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Response cache folder for an LLM judge.
    #[arg(long, default_value = ".aml-cache/judge")]
    cache_dir: PathBuf,
}

/// Grades, prints the table, writes the report and the pictures.
pub async fn run(config: &aml_runtime::AmlConfig, args: &JudgeArgs) -> anyhow::Result<()> {
    let gold_text = std::fs::read_to_string(&args.gold)
        .with_context(|| format!("failed to read {}", args.gold.display()))?;
    let gold: Vec<SampleRecord> = parse_candidates(&args.gold, &gold_text)?;
    let predictions: Vec<Prediction> = aml_storage::read_jsonl_file(&args.predictions)?;
    if predictions.is_empty() {
        bail!("{} holds no prediction", args.predictions.display());
    }
    let mut pairs = join(&gold, &predictions)?;
    if let Some(size) = args.sample {
        let joined: Vec<SampleRecord> = pairs.iter().map(|(sample, _)| (*sample).clone()).collect();
        let chosen = stratified_indices(&joined, size, args.seed);
        pairs = chosen.into_iter().map(|index| pairs[index]).collect();
    }
    let provider = args
        .provider
        .clone()
        .or_else(|| config.providers.judge_provider.clone())
        .unwrap_or_else(|| "offline".to_owned());
    let judge = AnyJudge::from_name(
        &provider,
        &args.model,
        &config.providers.variables(),
        &args.cache_dir,
    )?;
    let report = evaluate(&pairs, &judge).await;
    print!("{}", render_table(&report));
    if let Some(parent) = args
        .out
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(&args.out, serde_json::to_vec_pretty(&report)?)
        .with_context(|| format!("failed to write {}", args.out.display()))?;
    let folder = args.out.parent().unwrap_or(Path::new("."));
    if !report.pr_curve.is_empty() {
        let (mut positives, mut negatives) = (Vec::new(), Vec::new());
        for (sample, prediction) in &pairs {
            if let Some(score) = prediction.score {
                if sample.label.is_positive() {
                    positives.push(score)
                } else {
                    negatives.push(score)
                }
            }
        }
        std::fs::write(folder.join("pr_curve.svg"), pr_curve_svg(&report))?;
        std::fs::write(
            folder.join("score_histogram.svg"),
            score_histogram_svg(&positives, &negatives),
        )?;
    }
    println!("wrote {}", args.out.display());
    Ok(())
}
