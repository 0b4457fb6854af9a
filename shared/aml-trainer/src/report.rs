//! What a run leaves for people: the loss curve as SVG and a README with the snippets to load
//! the adapter with transformers + PEFT and to serve it with vLLM.

use std::fmt::Write;

use crate::state::TrainerState;

/// Training loss per step and validation loss per epoch, one SVG.
pub fn loss_curve_svg(state: &TrainerState) -> String {
    let (width, height, margin) = (640.0, 360.0, 48.0);
    let train: Vec<(f64, f64)> = state
        .log_history
        .iter()
        .filter_map(|entry| entry.loss.map(|loss| (entry.step as f64, loss)))
        .collect();
    let eval: Vec<(f64, f64)> = state
        .log_history
        .iter()
        .filter_map(|entry| entry.eval_loss.map(|loss| (entry.step as f64, loss)))
        .collect();
    let all = train.iter().chain(&eval);
    let max_step = all.clone().map(|(step, _)| *step).fold(1.0, f64::max);
    let max_loss = all
        .clone()
        .map(|(_, loss)| *loss)
        .fold(f64::MIN_POSITIVE, f64::max);
    let x = |step: f64| margin + step / max_step * (width - 2.0 * margin);
    let y = |loss: f64| height - margin - loss / max_loss * (height - 2.0 * margin);
    let points = |series: &[(f64, f64)]| {
        series
            .iter()
            .map(|(step, loss)| format!("{:.1},{:.1}", x(*step), y(*loss)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\
<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\
<text x=\"{}\" y=\"20\" text-anchor=\"middle\">Loss per step (blue: training, orange: validation per epoch), max {max_loss:.3}</text>\
<line x1=\"{margin}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"black\"/><line x1=\"{margin}\" y1=\"{margin}\" x2=\"{margin}\" y2=\"{}\" stroke=\"black\"/>",
        width / 2.0,
        height - margin,
        width - margin,
        height - margin,
        height - margin
    );
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"{}\"/>",
        points(&train)
    );
    let _ = write!(
        svg,
        "<polyline fill=\"none\" stroke=\"#ff7f0e\" stroke-width=\"2\" points=\"{}\"/>",
        points(&eval)
    );
    svg.push_str("</svg>\n");
    svg
}

/// The README of a run's output folder.
pub fn readme(base_model: &str, lora_r: i64, merged: bool) -> String {
    let max_lora_rank = if lora_r > 16 {
        format!(" --max-lora-rank {lora_r}")
    } else {
        String::new()
    };
    let mut text = format!(
        "# AML screening adapter\n\n\
Curriculum LoRA (easy -> medium -> hard) on `{base_model}`. Folders: `easy/`, `medium/`, `hard/` \
(per-phase adapters and judge reports), `adapter/` (final, PEFT format), `trainer_state.json` \
(`log_history`), `loss_curve.svg`, `config.json`.\n\n\
## Load with transformers + PEFT\n\n```python\n\
from transformers import AutoModelForCausalLM, AutoTokenizer\n\
from peft import PeftModel\n\n\
base = AutoModelForCausalLM.from_pretrained(\"{base_model}\", torch_dtype=\"bfloat16\")\n\
model = PeftModel.from_pretrained(base, \"adapter\")\n\
tokenizer = AutoTokenizer.from_pretrained(\"{base_model}\")\n```\n\n\
## Serve with vLLM\n\n```sh\n\
vllm serve {base_model} --enable-lora --lora-modules aml=./adapter{max_lora_rank}\n```\n"
    );
    if lora_r > 16 {
        text.push_str(&format!(
            "\nvLLM's `--max-lora-rank` defaults to 16; this adapter has r = {lora_r}.\n"
        ));
    }
    if merged {
        text.push_str("\n`merged/` holds full weights with the adapter folded in: load it like any Hugging Face model.\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readme_names_the_max_lora_rank_when_needed() {
        assert!(!readme("meta-llama/Llama-3.1-8B-Instruct", 16, false).contains("--max-lora-rank"));
        let wide = readme("meta-llama/Llama-3.1-8B-Instruct", 64, true);
        assert!(wide.contains("--max-lora-rank 64") && wide.contains("merged/"));
    }
}
