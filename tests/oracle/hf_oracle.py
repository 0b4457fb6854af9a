"""Test oracle: Hugging Face transformers / PEFT computing what our runtime computes.

Used only by the Rust tests, never by the product. Subcommands:
  logits    --model DIR [--adapter DIR] --ids 1,2,3   -> {"logits": [[...]]}
  save      --model DIR --out DIR [--max-shard-size 20KB] -> save_pretrained (sharded)
  tokenize  --model DIR --text "..."                  -> {"ids": [...]}
"""
import argparse
import json
import sys

import torch


def load(model_dir, adapter_dir=None):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model


def logits(args):
    model = load(args.model, args.adapter)
    ids = torch.tensor([[int(i) for i in args.ids.split(",")]])
    with torch.no_grad():
        out = model(input_ids=ids).logits[0]
    json.dump({"logits": out.tolist()}, sys.stdout)


def save(args):
    model = load(args.model)
    model.save_pretrained(args.out, max_shard_size=args.max_shard_size, safe_serialization=True)
    from transformers import AutoTokenizer

    AutoTokenizer.from_pretrained(args.model).save_pretrained(args.out)


def tokenize(args):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    json.dump({"ids": tokenizer(args.text, add_special_tokens=False)["input_ids"]}, sys.stdout)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("logits")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter")
    p.add_argument("--ids", required=True)
    p = sub.add_parser("save")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-shard-size", default="20KB")
    p = sub.add_parser("tokenize")
    p.add_argument("--model", required=True)
    p.add_argument("--text", required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    {"logits": logits, "save": save, "tokenize": tokenize}[args.command](args)


if __name__ == "__main__":
    main()
