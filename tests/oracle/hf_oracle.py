"""Test oracle: Hugging Face transformers / PEFT computing what our runtime computes.

Used only by the Rust tests, never by the product. Subcommands:
  logits    --model DIR [--adapter DIR] --ids 1,2,3 [--dtype float32|bfloat16|auto]
                                                      -> {"logits": [[...]], "dtype": "..."}
  save      --model DIR --out DIR [--max-shard-size 20KB] -> save_pretrained (sharded)
  tokenize  --model DIR --text "..."                  -> {"ids": [...]}
  adapter-folder --model DIR --adapter DIR            -> the adapter folder alone gives the
            tokenizer (AutoTokenizer) and chat template, and PEFT loads it on the base:
            {"ids": [...], "chat": "...", "logits_changed": bool}
"""
import argparse
import json
import sys

import torch


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "auto": "auto"}


def load(model_dir, adapter_dir=None, dtype="float32"):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=DTYPES[dtype])
    if adapter_dir:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter_dir)
    model.eval()
    return model


def logits(args):
    model = load(args.model, args.adapter, args.dtype)
    ids = torch.tensor([[int(i) for i in args.ids.split(",")]])
    with torch.no_grad():
        out = model(input_ids=ids).logits[0].float()
    json.dump({"logits": out.tolist(), "dtype": str(model.dtype)}, sys.stdout)


def adapter_folder(args):
    from peft import PeftModel
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.adapter)
    chat = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Is this a match?"}], tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer("MATCH NO_MATCH EDGE", add_special_tokens=False)["input_ids"]
    base = load(args.model)
    probe = torch.tensor([ids])
    with torch.no_grad():
        before = base(input_ids=probe).logits
    model = PeftModel.from_pretrained(base, args.adapter)
    with torch.no_grad():
        after = model(input_ids=probe).logits
    changed = bool((after - before).abs().max() > 1e-6)
    json.dump({"ids": ids, "chat": chat, "logits_changed": changed}, sys.stdout)


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
    p.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    p = sub.add_parser("save")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--max-shard-size", default="20KB")
    p = sub.add_parser("tokenize")
    p.add_argument("--model", required=True)
    p.add_argument("--text", required=True)
    p = sub.add_parser("adapter-folder")
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    commands = {"logits": logits, "save": save, "tokenize": tokenize, "adapter-folder": adapter_folder}
    commands[args.command](args)


if __name__ == "__main__":
    main()
