//! The terminal's view of a run: one progress bar per phase epoch (hidden when stderr is not
//! a terminal) and, for an object-store --output_dir, an upload after each phase.

use aml_storage::{DirSync, StagedFolder};
use aml_trainer::{Observer, PhaseSummary, StepProgress, TrainError};
use indicatif::{ProgressBar, ProgressStyle};

/// Progress bars and per-phase uploads.
pub struct CliProgress<'a> {
    bar: Option<((String, usize), ProgressBar)>,
    output: &'a StagedFolder,
    url: &'a str,
    runtime: tokio::runtime::Handle,
}

impl<'a> CliProgress<'a> {
    /// Bars on stderr; uploads of `output` (named `url` in messages) on `runtime`.
    pub fn new(output: &'a StagedFolder, url: &'a str, runtime: tokio::runtime::Handle) -> Self {
        CliProgress {
            bar: None,
            output,
            url,
            runtime,
        }
    }

    /// Clears the last bar.
    pub fn finish(&mut self) {
        if let Some((_, bar)) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// "N files uploaded to URL", with the objects deleted there when there were any.
pub fn synced_text(synced: DirSync, url: &str) -> String {
    match synced.deleted {
        0 => format!("{} files uploaded to {url}", synced.uploaded),
        deleted => format!(
            "{} files uploaded to {url} ({deleted} objects no longer in the run deleted, such as rotated checkpoints)",
            synced.uploaded
        ),
    }
}

impl Observer for CliProgress<'_> {
    fn step(&mut self, progress: &StepProgress) {
        let key = (progress.phase.clone(), progress.epoch);
        if self.bar.as_ref().is_none_or(|(current, _)| *current != key) {
            if let Some((_, bar)) = self.bar.take() {
                bar.finish();
            }
            let bar = ProgressBar::new(progress.batches as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} batches {msg} ({elapsed}, ETA {eta})",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!(
                "{} {}/{}",
                progress.phase, progress.epoch, progress.epochs
            ));
            self.bar = Some((key, bar));
        }
        if let Some((_, bar)) = &self.bar {
            bar.set_position(progress.batches_done as u64);
            bar.set_message(format!(
                "loss {:.4} lr {:.1e}",
                progress.loss, progress.learning_rate
            ));
        }
    }

    fn phase(&mut self, summary: &PhaseSummary) -> Result<(), TrainError> {
        if !self.output.is_stored() {
            return Ok(());
        }
        match self.runtime.block_on(self.output.upload()) {
            Ok(Some(synced)) => {
                eprintln!("phase {}: {}", summary.phase, synced_text(synced, self.url))
            }
            Ok(None) => {}
            Err(error) => eprintln!(
                "phase {}: upload failed ({error}); it is retried at the end",
                summary.phase
            ),
        }
        Ok(())
    }
}
