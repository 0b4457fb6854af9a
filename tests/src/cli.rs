//! Running the `aml` binary from a test, and the tiny model and validated dataset that the
//! `aml train` tests start from.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The hyperparameters of the small curriculum the `aml train` tests run on CPU: 512-token
/// sequences, one epoch per phase, learning rate 1e-3, batch 4 with 2 accumulation steps.
pub const SMALL_CURRICULUM: [&str; 14] = [
    "--max_seq_len",
    "512",
    "--epochs_easy",
    "1",
    "--epochs_medium",
    "1",
    "--epochs_hard",
    "1",
    "--lr",
    "1e-3",
    "--batch_size",
    "4",
    "--grad_accum",
    "2",
];

/// `aml train` with its three required folders, for the hyperparameters to follow.
pub fn train_command<'a>(model: &'a str, data: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "train",
        "--model_id",
        model,
        "--data_dir",
        data,
        "--output_dir",
        out,
    ]
}

/// No extra environment variables, for [`Cli::run`].
pub const NO_ENV: &[(&str, &str)] = &[];

/// A command-line program under test.
pub struct Cli {
    program: PathBuf,
}

impl Cli {
    /// The program at `program` (e.g. `env!("CARGO_BIN_EXE_aml")`).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Cli {
            program: program.into(),
        }
    }

    /// Runs it to the end with `args` and extra environment variables.
    pub fn run<V: AsRef<std::ffi::OsStr>>(&self, args: &[&str], envs: &[(&str, V)]) -> Output {
        Command::new(&self.program)
            .args(args)
            .envs(envs.iter().map(|(name, value)| (name, value)))
            .output()
            .unwrap_or_else(|error| panic!("{}: {error}", self.program.display()))
    }

    /// `aml model init-tiny` into `root/tiny` and `aml generate --validate` (12 cases per
    /// tier, seed 2) into `root/data`; returns both paths.
    pub fn tiny_model_and_data(&self, root: &Path) -> (String, String) {
        let model = root.join("tiny").display().to_string();
        let data = root.join("data").display().to_string();
        for args in [
            vec!["model", "init-tiny", "--arch", "llama", "--out", &model],
            vec![
                "generate",
                "--per-tier",
                "12",
                "--seed",
                "2",
                "--out",
                &data,
                "--validate",
            ],
        ] {
            let output = self.run(&args, NO_ENV);
            assert!(
                output.status.success(),
                "aml {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        (model, data)
    }
}
