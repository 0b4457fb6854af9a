"""Reference for bench-scoring: transformers scoring the same alerts with the same weights.

(a) naive: every alert's full prompt (prefix + alert) through the model, batched;
(b) prefix reuse: the prefix's past_key_values computed once and expanded for each batch.
Both ask only for the last position's logits (logits_to_keep=1). Prints one JSON line.
"""
import argparse
import copy
import json
import resource
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", required=True)
    parser.add_argument("--ids", required=True, help="JSON file: {prefix: [...], alerts: [[...], ...]}")
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--naive-alerts", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    data = json.load(open(args.ids))
    prefix = torch.tensor([data["prefix"]])
    alerts = torch.tensor(data["alerts"])
    model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32)
    model.eval()
    alert_len = alerts.shape[1]

    model(input_ids=torch.cat([prefix.expand(2, -1), alerts[:2]], 1), logits_to_keep=1)
    naive = alerts[: args.naive_alerts]
    start = time.perf_counter()
    for chunk in naive.split(args.batch):
        model(input_ids=torch.cat([prefix.expand(chunk.shape[0], -1), chunk], 1), logits_to_keep=1)
    naive_s = time.perf_counter() - start

    start = time.perf_counter()
    past = model(input_ids=prefix, use_cache=True).past_key_values
    for chunk in alerts.split(args.batch):
        cache = copy.deepcopy(past)
        cache.batch_repeat_interleave(chunk.shape[0])
        mask = torch.ones(chunk.shape[0], prefix.shape[1] + alert_len, dtype=torch.long)
        model(input_ids=chunk, past_key_values=cache, attention_mask=mask, logits_to_keep=1)
    prefix_s = time.perf_counter() - start

    print(json.dumps({
        "hf_naive_tok_s": naive.shape[0] * alert_len / naive_s,
        "hf_prefix_tok_s": alerts.shape[0] * alert_len / prefix_s,
        "hf_naive_alerts_measured": int(naive.shape[0]),
        "hf_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }))


if __name__ == "__main__":
    main()
