//! `aml model ...`: the model runtime from the command line.

use std::path::PathBuf;

use aml_model::{Architecture, CausalLm, LoadOptions, TinySpec};
use anyhow::{Context, bail};
use tch::Tensor;

/// Model subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Write a small random model (weights, trained tokenizer, chat template) as a Hugging Face directory.
    InitTiny(InitTinyArgs),
    /// Print the float32 logits of token ids as JSON: {"logits": [[...], ...]}, one row per position.
    Logits(LogitsArgs),
}

/// Options of `aml model init-tiny`.
#[derive(Debug, clap::Args)]
pub struct InitTinyArgs {
    /// llama, mistral, qwen2 or qwen3.
    #[arg(long, default_value = "llama")]
    arch: String,
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
    /// Model directory.
    #[arg(long)]
    model: PathBuf,
    /// Comma-separated token ids.
    #[arg(long, value_delimiter = ',', required = true)]
    ids: Vec<i64>,
}

/// Runs a model subcommand.
pub fn run(command: ModelCommand) -> anyhow::Result<()> {
    match command {
        ModelCommand::InitTiny(args) => init_tiny(&args),
        ModelCommand::Logits(args) => logits(&args),
    }
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
    let spec = TinySpec {
        architecture,
        vocab_size: args.vocab,
        hidden_size: args.hidden,
        intermediate_size: args.intermediate,
        num_layers: args.layers,
        num_heads: args.heads,
        num_kv_heads: args.kv_heads,
        llama3_rope: architecture == Architecture::Llama,
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
    let model = CausalLm::load(&args.model, LoadOptions::cpu_f32())?;
    let ids = Tensor::from_slice(&args.ids).view([1, -1]);
    let logits = tch::no_grad(|| model.forward(&ids))?.squeeze_dim(0);
    let rows: Vec<Vec<f32>> = Vec::<Vec<f32>>::try_from(&logits).context("logits to rows")?;
    println!("{}", serde_json::json!({ "logits": rows }));
    Ok(())
}
