//! `aml model ...`: the model runtime from the command line.

use std::path::PathBuf;

use aml_core::{DeviceChoice, DtypeChoice};
use aml_model::generate::GenerationConfig;
use aml_model::{Architecture, CausalLm, ChatMessage, LoadOptions, Lora, TextTokenizer, TinySpec};
use aml_runtime::AmlConfig;
use anyhow::{Context, bail};
use tch::Tensor;

/// Model subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Write a small random model (weights, trained tokenizer, chat template) as a Hugging Face directory.
    InitTiny(InitTinyArgs),
    /// Print the float32 logits of token ids as JSON: {"logits": [[...], ...]}, one row per position.
    Logits(LogitsArgs),
    /// Score fixed answers (default MATCH, NO_MATCH, EDGE) for each prompt of a JSONL file, in one forward pass each.
    Score(ScoreArgs),
    /// Generate a continuation for each prompt of a JSONL file.
    Generate(GenerateArgs),
    /// Copy a model or adapter directory to object storage, where workers and trainers fetch
    /// it (`scoring.model_url`, a TrainRequest's base model); what was there is replaced.
    Push(PushArgs),
}

/// Where the model comes from.
#[derive(Debug, clap::Args)]
pub struct ModelSource {
    /// Model directory (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// A PEFT LoRA adapter directory to apply.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// auto (the first CUDA device, else the CPU), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// auto (bf16 on CUDA, f32 on the CPU), f32 or bf16. Logits are printed in f32.
    #[arg(long, default_value = "auto")]
    dtype: DtypeChoice,
    /// Keep the projection weights in FP8 e4m3 with per-row scales.
    #[arg(long = "fp8-base", alias = "fp8_base", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set, default_value_t = false)]
    fp8_base: bool,
}

impl ModelSource {
    fn load(&self) -> anyhow::Result<CausalLm> {
        let options = LoadOptions::resolve(self.device, self.dtype, self.fp8_base)
            .context("--device / --dtype")?;
        let mut model = CausalLm::load(&self.model, options)
            .with_context(|| format!("failed to load the model {}", self.model.display()))?;
        if let Some(adapter) = &self.adapter {
            Lora::load(&mut model, adapter)
                .with_context(|| format!("failed to load the adapter {}", adapter.display()))?;
        }
        Ok(model)
    }
}

/// Options shared by `score` and `generate`.
#[derive(Debug, clap::Args)]
pub struct PromptArgs {
    /// JSONL file: one {"id": ..., "prompt": "text"} or {"id": ..., "messages": [{"role", "content"}]} per line.
    #[arg(long)]
    prompts: PathBuf,
    /// A text file holding a prefix shared by every prompt, encoded once.
    #[arg(long)]
    prefix: Option<PathBuf>,
    /// Prompts per forward pass.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
}

/// Options of `aml model score`.
#[derive(Debug, clap::Args)]
pub struct ScoreArgs {
    #[command(flatten)]
    source: ModelSource,
    #[command(flatten)]
    prompts: PromptArgs,
    /// The answers to score, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "MATCH,NO_MATCH,EDGE")]
    answers: Vec<String>,
}

/// Options of `aml model generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    source: ModelSource,
    #[command(flatten)]
    prompts: PromptArgs,
    /// Most new tokens per prompt.
    #[arg(long, default_value_t = 128)]
    max_new_tokens: i64,
    /// 0 for greedy decoding.
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

/// Options of `aml model push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The local directory: a Hugging Face model (config.json) or a PEFT adapter
    /// (adapter_config.json).
    dir: PathBuf,
    /// Its URL under `storage.url`, e.g. s3://aml/models/base.
    url: String,
}

/// Options of `aml model init-tiny`.
#[derive(Debug, clap::Args)]
pub struct InitTinyArgs {
    /// llama, mistral, qwen2 or qwen3.
    #[arg(long, default_value = "llama")]
    arch: String,
    /// `tiny` (the sizes below) or `llama3-8b` (Llama-3-8B's shape and 128k context in bf16,
    /// random weights in 5 GB shards, with the tiny tokenizer: about 16 GB on disk).
    #[arg(long, default_value = "tiny")]
    shape: String,
    /// The saved weights' dtype (`torch_dtype`): float32 or bfloat16.
    #[arg(long, default_value = "float32")]
    dtype: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Random seed of the weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Model width.
    #[arg(long, default_value_t = 64)]
    hidden: i64,
    /// MLP width.
    #[arg(long, default_value_t = 128)]
    intermediate: i64,
    /// Decoder layers.
    #[arg(long, default_value_t = 2)]
    layers: i64,
    /// Query heads.
    #[arg(long, default_value_t = 4)]
    heads: i64,
    /// Key/value heads.
    #[arg(long, default_value_t = 2)]
    kv_heads: i64,
    /// Target vocabulary size of the trained tokenizer.
    #[arg(long, default_value_t = 512)]
    vocab: i64,
}

/// Options of `aml model logits`.
#[derive(Debug, clap::Args)]
pub struct LogitsArgs {
    #[command(flatten)]
    source: ModelSource,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<i64>,
}

/// Runs a model subcommand.
pub async fn run(config: &AmlConfig, command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::InitTiny(args) => init_tiny(&args),
        ModelCommand::Logits(args) => logits(&args),
        ModelCommand::Score(args) => score(&args),
        ModelCommand::Generate(args) => generate(&args),
        ModelCommand::Push(args) => push(config, &args).await,
    }
}

/// `aml model push`: makes the objects under the URL a copy of the directory.
async fn push(config: &AmlConfig, args: &PushArgs) -> anyhow::Result<()> {
    let dir = &args.dir;
    if !dir.join("config.json").is_file() && !dir.join("adapter_config.json").is_file() {
        bail!(
            "{} holds neither config.json (a model) nor adapter_config.json (an adapter)",
            dir.display()
        );
    }
    let storage = config.storage.open(&config.storage.url)?;
    let Some(key) = storage
        .key_of(&args.url)
        .map(|key| key.trim_matches('/').to_owned())
    else {
        bail!(
            "{} is not under the configured storage {} (storage.url)",
            args.url,
            storage.url()
        );
    };
    if key.is_empty() {
        bail!(
            "{} names the whole storage; name a folder inside it",
            args.url
        );
    }
    let synced = storage
        .sync_dir(dir, &key)
        .await
        .with_context(|| format!("failed to copy {} to {}", dir.display(), args.url))?;
    println!(
        "copied {} files of {} to {} ({} objects there before removed)",
        synced.uploaded,
        dir.display(),
        args.url,
        synced.deleted
    );
    Ok(())
}

fn init_tiny(args: &InitTinyArgs) -> anyhow::Result<()> {
    let Some(architecture) = Architecture::from_name(&args.arch) else {
        bail!(
            "unknown --arch `{}`: expected llama, mistral, qwen2 or qwen3",
            args.arch
        );
    };
    if args.heads % args.kv_heads != 0 || args.hidden % args.heads != 0 {
        bail!("--heads must divide --hidden and be a multiple of --kv-heads");
    }
    let torch_dtype = match args.dtype.as_str() {
        "float32" | "f32" => "float32",
        "bfloat16" | "bf16" => "bfloat16",
        other => bail!("unknown --dtype `{other}`: expected float32 or bfloat16"),
    };
    let spec = match args.shape.as_str() {
        "tiny" => TinySpec {
            architecture,
            vocab_size: args.vocab,
            hidden_size: args.hidden,
            intermediate_size: args.intermediate,
            num_layers: args.layers,
            num_heads: args.heads,
            num_kv_heads: args.kv_heads,
            torch_dtype,
            ..TinySpec::tiny(architecture)
        },
        "llama3-8b" => TinySpec {
            torch_dtype,
            ..TinySpec::llama3_8b()
        },
        other => bail!("unknown --shape `{other}`: expected tiny or llama3-8b"),
    };
    let config = aml_model::tiny::init_tiny(&spec, &args.out, args.seed)
        .with_context(|| format!("failed to write a tiny model to {}", args.out.display()))?;
    println!(
        "wrote a {} model with {} parameters and a {}-token vocabulary to {}",
        args.arch,
        config.parameter_count(),
        config.vocab_size,
        args.out.display()
    );
    Ok(())
}

fn logits(args: &LogitsArgs) -> anyhow::Result<()> {
    let model = args.source.load()?;
    let ids = Tensor::from_slice(&args.ids).view([1, -1]);
    let logits = tch::no_grad(|| model.forward(&ids))?.squeeze_dim(0);
    let rows: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(&logits).context("logits to rows")?;
    println!("{}", serde_json::json!({ "logits": rows }));
    Ok(())
}

/// One line of a prompts file.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptLine {
    #[serde(default)]
    id: Option<serde_json::Value>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    messages: Option<Vec<ChatLine>>,
}

#[derive(Debug, serde::Deserialize)]
struct ChatLine {
    role: String,
    content: String,
}

/// Prompts as token ids with their ids, and the shared prefix's ids.
struct Prompts {
    ids: Vec<serde_json::Value>,
    tokens: Vec<Vec<i64>>,
    prefix: Option<Vec<i64>>,
}

fn read_prompts(args: &PromptArgs, tokenizer: &TextTokenizer) -> anyhow::Result<Prompts> {
    let mut prompts = Prompts {
        ids: Vec::new(),
        tokens: Vec::new(),
        prefix: None,
    };
    for (number, parsed) in super::jsonl_records::<PromptLine>(&args.prompts, "a prompt line")? {
        let text = match (parsed.prompt, parsed.messages) {
            (Some(prompt), None) => prompt,
            (None, Some(messages)) => {
                let messages: Vec<ChatMessage> = messages
                    .into_iter()
                    .map(|message| ChatMessage::new(&message.role, message.content))
                    .collect();
                tokenizer.render_chat(&messages, true)?
            }
            _ => bail!(
                "{}:{number}: give exactly one of `prompt` or `messages`",
                args.prompts.display()
            ),
        };
        prompts.ids.push(
            parsed
                .id
                .unwrap_or_else(|| serde_json::Value::from(number - 1)),
        );
        prompts.tokens.push(tokenizer.encode(&text, false)?);
    }
    if let Some(prefix) = &args.prefix {
        let text = std::fs::read_to_string(prefix)
            .with_context(|| format!("failed to read {}", prefix.display()))?;
        prompts.prefix = Some(tokenizer.encode(&text, false)?);
    }
    Ok(prompts)
}

fn score(args: &ScoreArgs) -> anyhow::Result<()> {
    let model = args.source.load()?;
    let tokenizer = TextTokenizer::load(&args.source.model)?;
    let prompts = read_prompts(&args.prompts, &tokenizer)?;
    let mut answers = Vec::with_capacity(args.answers.len());
    for answer in &args.answers {
        answers.push(tokenizer.encode(answer, false)?);
    }
    let prefix = match &prompts.prefix {
        Some(ids) => Some(model.encode_prefix(&Tensor::from_slice(ids))?),
        None => None,
    };
    let batch_size = args.prompts.batch_size.max(1);
    for (ids, tokens) in prompts
        .ids
        .chunks(batch_size)
        .zip(prompts.tokens.chunks(batch_size))
    {
        let scores = aml_model::scoring::score_answers(&model, prefix.as_ref(), tokens, &answers)?;
        for (id, scored) in ids.iter().zip(scores) {
            let probabilities: serde_json::Map<String, serde_json::Value> = args
                .answers
                .iter()
                .zip(&scored.probabilities)
                .map(|(answer, probability)| {
                    (answer.clone(), serde_json::Value::from(*probability))
                })
                .collect();
            let log_probs: serde_json::Map<String, serde_json::Value> = args
                .answers
                .iter()
                .zip(&scored.log_probs)
                .map(|(answer, log_prob)| (answer.clone(), serde_json::Value::from(*log_prob)))
                .collect();
            println!(
                "{}",
                serde_json::json!({"id": id, "probabilities": probabilities, "log_probs": log_probs})
            );
        }
    }
    Ok(())
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let model = args.source.load()?;
    let tokenizer = TextTokenizer::load(&args.source.model)?;
    let prompts = read_prompts(&args.prompts, &tokenizer)?;
    let prefix = match &prompts.prefix {
        Some(ids) => Some(model.encode_prefix(&Tensor::from_slice(ids))?),
        None => None,
    };
    let config = GenerationConfig {
        max_new_tokens: args.max_new_tokens,
        temperature: args.temperature,
        top_p: args.top_p,
        seed: args.seed,
        stop_ids: tokenizer.eos_ids().to_vec(),
    };
    let batch_size = args.prompts.batch_size.max(1);
    for (ids, tokens) in prompts
        .ids
        .chunks(batch_size)
        .zip(prompts.tokens.chunks(batch_size))
    {
        let outputs = aml_model::generate::generate(&model, prefix.as_ref(), tokens, &config)?;
        for (id, output) in ids.iter().zip(outputs) {
            let text = tokenizer.decode(&output)?;
            println!(
                "{}",
                serde_json::json!({"id": id, "text": text, "tokens": output.len()})
            );
        }
    }
    Ok(())
}
