//! `aml generate` and `aml validate`: synthetic data and the datasets made from it.

use std::path::{Path, PathBuf};

use aml_core::{Difficulty, SampleRecord};
use aml_dataset::{ValidatorSettings, build, parse_candidates, write_dataset};
use aml_providers::{ProviderClient, ProviderKind, ProviderSettings};
use aml_runtime::AmlConfig;
use aml_synth::llm::generate_tier_llm;
use aml_synth::{Synthesizer, generate_tier};
use anyhow::{Context, bail};

/// Options of `aml generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Samples per tier (easy, medium, hard); labels are balanced within each tier.
    #[arg(long, default_value_t = 100)]
    per_tier: usize,
    /// Seed: the same seed gives byte-identical files.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory; candidates go to OUT/candidates/<tier>.jsonl.
    #[arg(long)]
    out: PathBuf,
    /// Validate right away into OUT (as `aml validate OUT`).
    #[arg(long)]
    validate: bool,
    /// LLM mode: anthropic, perplexity or openai (key from ANTHROPIC_API_KEY, PERPLEXITY_API_KEY
    /// or OPENAI_API_KEY + OPENAI_BASE_URL). Without it, cases are synthesised offline.
    #[arg(long)]
    provider: Option<String>,
    /// Model for LLM mode.
    #[arg(long, default_value = aml_providers::DEFAULT_MODEL)]
    model: String,
    /// Sampling temperature for LLM mode.
    #[arg(long, default_value_t = 0.8)]
    temperature: f64,
    /// Samples asked for per LLM request.
    #[arg(long, default_value_t = 10)]
    per_request: usize,
    /// Response cache folder for LLM mode.
    #[arg(long, default_value = ".aml-cache/generator")]
    cache_dir: PathBuf,
}

/// Options of `aml validate`.
#[derive(Debug, clap::Args)]
pub struct ValidateArgs {
    /// Dataset directory, whose candidates/*.jsonl are read unless --input is given; or one
    /// JSONL file of candidates, the dataset then written beside it.
    dir: PathBuf,
    /// Candidate files to read instead of DIR/candidates/*.jsonl.
    #[arg(long)]
    input: Vec<PathBuf>,
    /// Where to write the dataset: a directory or storage URL (default: DIR).
    #[arg(long)]
    out: Option<String>,
    /// Seed of the noise and the validation split.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Share of samples given label-preserving noise.
    #[arg(long, default_value_t = 0.05)]
    noise_rate: f64,
    /// Validation set size.
    #[arg(long, default_value_t = 100)]
    validation_size: usize,
}

/// Writes offline candidates, then validates when asked.
pub async fn generate(config: &AmlConfig, args: &GenerateArgs) -> anyhow::Result<()> {
    let candidates = args.out.join("candidates");
    std::fs::create_dir_all(&candidates)
        .with_context(|| format!("failed to create {}", candidates.display()))?;
    let synthesizer = Synthesizer::default();
    let client = match &args.provider {
        Some(name) => Some(llm_client(args, name)?),
        None => None,
    };
    for tier in Difficulty::ALL {
        let samples = match &client {
            None => generate_tier(&synthesizer, tier, args.per_tier, args.seed),
            Some(client) => {
                let max_requests = (3 * args.per_tier.div_ceil(args.per_request.max(1))) as u64;
                let result = generate_tier_llm(
                    client,
                    tier,
                    args.per_tier,
                    args.per_request.max(1),
                    max_requests,
                    args.seed,
                )
                .await?;
                println!(
                    "{tier}: {} samples from {} requests ({} repaired, {} malformed lines dropped)",
                    result.samples.len(),
                    result.requests,
                    result.repaired,
                    result.dropped
                );
                result.samples
            }
        };
        let mut bytes = Vec::new();
        for sample in &samples {
            serde_json::to_writer(&mut bytes, sample)?;
            bytes.push(b'\n');
        }
        let path = candidates.join(format!("{tier}.jsonl"));
        std::fs::write(&path, bytes)
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!("{}: {} candidates", path.display(), samples.len());
    }
    if args.validate {
        let validate_args = ValidateArgs {
            dir: args.out.clone(),
            input: Vec::new(),
            out: None,
            seed: args.seed,
            noise_rate: 0.05,
            validation_size: 100,
        };
        validate(config, &validate_args).await?;
    }
    Ok(())
}

fn llm_client(args: &GenerateArgs, name: &str) -> anyhow::Result<ProviderClient> {
    let Some(kind) = ProviderKind::from_name(name) else {
        bail!("unknown --provider `{name}`: expected anthropic, perplexity or openai");
    };
    let environment: Vec<(String, String)> = std::env::vars().collect();
    let mut settings = ProviderSettings::from_environment(kind, &args.model, &environment)?;
    settings.temperature = args.temperature;
    settings.seed = Some(args.seed);
    settings.cache_dir = Some(args.cache_dir.clone());
    Ok(ProviderClient::new(settings)?)
}

fn candidate_files(args: &ValidateArgs) -> anyhow::Result<Vec<PathBuf>> {
    if !args.input.is_empty() {
        return Ok(args.input.clone());
    }
    if args.dir.is_file() {
        return Ok(vec![args.dir.clone()]);
    }
    let folder = args.dir.join("candidates");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .with_context(|| format!("no candidates: cannot read {}", folder.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "jsonl"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no candidates: {} holds no .jsonl file", folder.display());
    }
    Ok(files)
}

fn read_all(files: &[PathBuf]) -> anyhow::Result<Vec<SampleRecord>> {
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("failed to read {}", file.display()))?;
        records.extend(parse_candidates(Path::new(file), &text)?);
    }
    Ok(records)
}

/// Reads every candidate (failing before any write on a bad line), builds and writes the dataset.
pub async fn validate(config: &AmlConfig, args: &ValidateArgs) -> anyhow::Result<()> {
    let files = candidate_files(args)?;
    let candidates = read_all(&files)?;
    let settings = ValidatorSettings {
        seed: args.seed,
        noise_rate: args.noise_rate,
        validation_size: args.validation_size,
        ..ValidatorSettings::default()
    };
    let total = candidates.len();
    let dataset = build(candidates, &settings);
    let folder = match args.dir.parent() {
        Some(parent) if args.dir.is_file() => parent,
        _ => args.dir.as_path(),
    };
    let location = args
        .out
        .clone()
        .unwrap_or_else(|| folder.display().to_string());
    let storage = config.storage.open(&location)?;
    let manifest = write_dataset(&storage, "", &dataset).await?;
    println!("{total} candidates -> {}", storage.url());
    for (name, entry) in &manifest.files {
        println!(
            "  {name:<18} {:>7} records  sha256 {}",
            entry.records,
            &entry.sha256[..16]
        );
    }
    println!(
        "  rejected: {}",
        serde_json::to_string(&manifest.rejections)?
    );
    println!(
        "  noised: {}; dataset sha256 {}",
        manifest.noised, manifest.dataset_sha256
    );
    Ok(())
}
