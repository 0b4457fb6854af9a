"""Reference for bench-training: transformers + PEFT training the same tiny model with the
same LoRA config, batches and sequence length, AdamW, on CPU. Each step is timed; prints one
JSON line with the steps' seconds, the peak RSS and the last loss."""
import argparse
import json
import resource
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--batches", required=True, help="JSON file: [[[ids...], ...], ...]")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batches = [torch.tensor(batch) for batch in json.load(open(args.batches))]
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(model, config)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)

    def step(batch):
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.item()

    for batch in batches[: args.warmup]:
        step(batch)
    timed = batches[args.warmup:]
    losses, step_seconds = [], []
    for batch in timed:
        start = time.perf_counter()
        losses.append(step(batch))
        step_seconds.append(time.perf_counter() - start)
    print(json.dumps({
        "step_seconds": step_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
        "last_loss": losses[-1],
    }))


if __name__ == "__main__":
    main()
