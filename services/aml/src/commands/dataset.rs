//! `aml generate` and `aml validate`: synthetic data and the datasets made from it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aml_core::{Difficulty, Label, SampleRecord};
use aml_dataset::{ValidatorSettings, build, parse_candidates, write_dataset};
use aml_providers::{ProviderClient, ProviderKind, ProviderSettings};
use aml_runtime::AmlConfig;
use aml_synth::llm::{LlmPlan, generate_tier_llm, label_targets};
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
    /// Samples asked for per LLM request (fewer when the answer budget cannot hold them).
    #[arg(long, default_value_t = 10)]
    per_request: usize,
    /// The largest answer the model may give, in tokens (8,192 suits Claude 3.5 Sonnet and
    /// most hosted models; raise it for models that write more).
    #[arg(long, default_value_t = 8_192)]
    max_answer_tokens: u32,
    /// Most LLM requests per tier, top-ups included (default: three times what the samples
    /// need).
    #[arg(long)]
    max_requests: Option<u64>,
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

/// What LLM mode spent and what it could not get.
#[derive(Debug, Default)]
struct Spend {
    requests: u64,
    usage: aml_providers::Usage,
    missing: Vec<String>,
}

/// Asks `client` for the `wanted` samples of each label of `tier`, within `plan`'s budget,
/// appending to `into` and counting the spend; returns the requests made.
async fn ask(
    client: &ProviderClient,
    tier: Difficulty,
    wanted: BTreeMap<Label, usize>,
    plan: &LlmPlan,
    into: &mut Vec<SampleRecord>,
    spend: &mut Spend,
) -> anyhow::Result<u64> {
    let result = generate_tier_llm(client, tier, wanted, plan).await?;
    println!(
        "{tier}: {} samples from {} requests ({} repaired, {} decision words made canonical, {} malformed lines dropped, {} answers cut at the token limit, {} surplus)",
        result.samples.len(),
        result.requests,
        result.repaired,
        result.normalised,
        result.dropped,
        result.truncated,
        result.surplus
    );
    spend.requests += result.requests;
    spend.usage.input_tokens += result.usage.input_tokens;
    spend.usage.output_tokens += result.usage.output_tokens;
    into.extend(result.samples);
    Ok(result.requests)
}

/// Rounds of asking again for what validation rejected, after the first.
const TOP_UP_ROUNDS: usize = 3;

/// Per tier, the samples of each label that `candidates` still lack, once validated, to reach
/// `targets` (tiers and labels with none missing left out).
fn shortfalls(
    candidates: &BTreeMap<Difficulty, Vec<SampleRecord>>,
    targets: &BTreeMap<Label, usize>,
) -> BTreeMap<Difficulty, BTreeMap<Label, usize>> {
    let all: Vec<SampleRecord> = candidates.values().flatten().cloned().collect();
    let counts = valid_counts(&build(all, &ValidatorSettings::default()));
    Difficulty::ALL
        .into_iter()
        .map(|tier| {
            let short: BTreeMap<Label, usize> = targets
                .iter()
                .map(|(label, target)| {
                    let valid = counts.get(&(tier, *label)).copied().unwrap_or(0);
                    (*label, target.saturating_sub(valid))
                })
                .filter(|(_, short)| *short > 0)
                .collect();
            (tier, short)
        })
        .filter(|(_, short)| !short.is_empty())
        .collect()
}

/// Per tier and label, how many valid samples a dataset holds (training and validation).
fn valid_counts(dataset: &aml_dataset::Dataset) -> BTreeMap<(Difficulty, Label), usize> {
    let mut counts = BTreeMap::new();
    for sample in dataset.tiers.values().flatten().chain(&dataset.validation) {
        *counts.entry((sample.difficulty, sample.label)).or_default() += 1;
    }
    counts
}

/// Writes candidates (offline, or from an LLM with top-ups), then validates when asked.
pub async fn generate(config: &AmlConfig, args: &GenerateArgs) -> anyhow::Result<()> {
    let candidates_dir = args.out.join("candidates");
    std::fs::create_dir_all(&candidates_dir)
        .with_context(|| format!("failed to create {}", candidates_dir.display()))?;
    let mut candidates: BTreeMap<Difficulty, Vec<SampleRecord>> = BTreeMap::new();
    let mut spend = None;
    match &args.provider {
        None => {
            let synthesizer = Synthesizer::default();
            for tier in Difficulty::ALL {
                candidates.insert(
                    tier,
                    generate_tier(&synthesizer, tier, args.per_tier, args.seed),
                );
            }
        }
        Some(name) => {
            let client = llm_client(config, args, name)?;
            let mut plan = LlmPlan {
                per_request: args.per_request.max(1),
                max_requests: 0,
                max_answer_tokens: args.max_answer_tokens,
                seed: args.seed,
            };
            let budget = args
                .max_requests
                .unwrap_or_else(|| plan.default_budget(args.per_tier));
            let targets = label_targets(args.per_tier);
            let mut used: BTreeMap<Difficulty, u64> = BTreeMap::new();
            let mut total = Spend::default();
            // Every label's share first; then what validation rejects (near-duplicates, a
            // decision word that disagrees with the label, ...) is asked for again, within
            // each tier's budget.
            let mut wanted: BTreeMap<Difficulty, BTreeMap<Label, usize>> = Difficulty::ALL
                .into_iter()
                .map(|tier| (tier, targets.clone()))
                .collect();
            for round in 0..=TOP_UP_ROUNDS {
                for (tier, short) in &wanted {
                    let spent = used.entry(*tier).or_default();
                    if *spent >= budget {
                        continue;
                    }
                    plan.max_requests = budget - *spent;
                    let samples = candidates.entry(*tier).or_default();
                    *spent +=
                        ask(&client, *tier, short.clone(), &plan, samples, &mut total).await?;
                }
                wanted = shortfalls(&candidates, &targets);
                let can_ask = wanted
                    .keys()
                    .any(|tier| used.get(tier).copied().unwrap_or(0) < budget);
                if round == TOP_UP_ROUNDS || !can_ask {
                    break;
                }
            }
            for (tier, short) in &wanted {
                for (label, missing) in short {
                    let target = targets[label];
                    total
                        .missing
                        .push(format!("{tier}/{label}: {} of {target}", target - missing));
                }
            }
            spend = Some(total);
        }
    }
    for (tier, samples) in &candidates {
        let mut bytes = Vec::new();
        for sample in samples {
            serde_json::to_writer(&mut bytes, sample)?;
            bytes.push(b'\n');
        }
        let path = candidates_dir.join(format!("{tier}.jsonl"));
        std::fs::write(&path, bytes)
            .with_context(|| format!("failed to write {}", path.display()))?;
        println!("{}: {} candidates", path.display(), samples.len());
    }
    if let Some(spend) = &spend {
        println!(
            "spend: {} requests, {} input tokens, {} output tokens",
            spend.requests, spend.usage.input_tokens, spend.usage.output_tokens
        );
        if !spend.missing.is_empty() {
            println!(
                "missing after the request budget (tier/label: valid of wanted): {}; run again with the same --seed (answers so far come from the cache) and a larger --max-requests",
                spend.missing.join(", ")
            );
        }
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

fn llm_client(
    config: &AmlConfig,
    args: &GenerateArgs,
    name: &str,
) -> anyhow::Result<ProviderClient> {
    let Some(kind) = ProviderKind::from_name(name) else {
        bail!("unknown --provider `{name}`: expected anthropic, perplexity or openai");
    };
    let mut settings =
        ProviderSettings::from_environment(kind, &args.model, &config.providers.variables())?;
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
