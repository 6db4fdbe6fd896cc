"""Train the tiny tinymath policy from scratch on CPU: a LLaMA-architecture causal LM with a character-level tokenizer.

    python -m prm_raft.tiny.train_policy --data /work/main/data/tinymath --out /work/main/models/tinymath-policy --seed 0

Training text per example: ``<bos>`` + ``"Question: {question}\\nAnswer:\\n"`` + solution + ``<eos>``; the loss is on
the completion only (the solution and ``<eos>``), not on the prompt. Deterministic: fixed seeds, fixed thread count,
``torch.use_deterministic_algorithms(True)``. Training stops early on purpose (``--steps``, default
``DEFAULT_STEPS``) so the policy still makes mistakes. Progress as JSON lines on stdout
(``{"event":"progress",...}`` ... ``{"event":"done","output":DIR}``); exit code 0 done, 2 bad arguments or data.
The checkpoint directory (safetensors weights, config, tokenizer, README) appears atomically: it is written
under a temporary name beside ``--out`` and renamed into place. Unless ``--no-eval``, the greedy exact-answer
accuracy on the test split is measured before the rename and written into the checkpoint's README.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import string
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Threads that sleep while they wait instead of spinning: with busy-waiting OpenMP threads, a 2-thread job on a
# 2-core machine that other processes also use runs 10x slower; passive waiting costs little when it is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast  # noqa: E402

from prm_raft.tiny.tinymath import check_step, final_answer, load_jsonl  # noqa: E402

PROMPT_TEMPLATE = "Question: {question}\nAnswer:\n"
STOP = ["\n\n", "Question:"]
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
DEFAULT_STEPS = 2500
EVAL_MAX_TOKENS = 96


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


class BadInput(Exception):
    """Bad arguments or data: exit code 2, not retryable."""


def prompt_for(question: str) -> str:
    return PROMPT_TEMPLATE.format(question=question)


# --------------------------------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------------------------------


def build_tokenizer(texts: list[str], model_max_length: int) -> PreTrainedTokenizerFast:
    """Character-level tokenizer: one token per character (printable ASCII, tab, newline, and any other
    character of `texts`), specials <pad>=0 <bos>=1 <eos>=2 <unk>=3; BOS is added by the post-processor."""
    chars = set(string.printable) - set("\r\x0b\x0c")
    for t in texts:
        chars.update(t)
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS + sorted(chars))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])]
    )
    tok.add_special_tokens(SPECIAL_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<bos>",
        eos_token="<eos>",
        pad_token="<pad>",
        unk_token="<unk>",
        clean_up_tokenization_spaces=False,
        model_max_length=model_max_length,
    )


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def load_split(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BadInput(f"missing data file: {path}")
    try:
        records = load_jsonl(path)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadInput(f"{path} is not valid JSONL: {e}") from None
    for i, r in enumerate(records):
        if not (isinstance(r, dict) and all(isinstance(r.get(k), str) for k in ("question", "solution", "answer"))):
            raise BadInput(f"{path} line {i + 1}: each record needs string fields question, solution, answer")
    if not records:
        raise BadInput(f"{path} has no records")
    return records


def encode_examples(tokenizer: PreTrainedTokenizerFast, records: list[dict[str, str]], ctx: int) -> list[tuple[list[int], int]]:
    """(token ids, number of prompt tokens incl. BOS) per example; <bos> + prompt + solution + <eos>."""
    prompts = tokenizer([prompt_for(r["question"]) for r in records], add_special_tokens=True)["input_ids"]
    sols = tokenizer([r["solution"] for r in records], add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    out = []
    for i, (p, s) in enumerate(zip(prompts, sols)):
        ids = list(p) + list(s) + [eos]
        if len(ids) > ctx:
            raise BadInput(f"training example {i + 1} has {len(ids)} tokens, more than the context of {ctx}")
        out.append((ids, len(p)))
    return out


def make_batch(examples: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), -100, dtype=torch.long)
    for i, (ids, n_prompt) in enumerate(examples):
        t = torch.tensor(ids, dtype=torch.long)
        input_ids[i, : len(ids)] = t
        attention[i, : len(ids)] = 1
        labels[i, n_prompt : len(ids)] = t[n_prompt:]  # completion-only loss
    return {"input_ids": input_ids, "attention_mask": attention, "labels": labels}


# --------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------


def evaluate(model_dir: str | os.PathLike[str], records: list[dict[str, str]], batch: int = 100, *, model: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """Greedy exact-answer accuracy (the `#### N` answer equals the reference) through the policy server's engine
    (on the checkpoint in `model_dir`, or on an in-memory `model` + `tokenizer`)."""
    from prm_raft.policy_server import Engine

    engine = Engine(model_dir, max_batch=batch, model=model, tokenizer=tokenizer)
    prompts = [prompt_for(r["question"]) for r in records]
    correct = 0
    steps_total = steps_right = 0
    samples = []
    for start in range(0, len(prompts), batch):
        outs = engine.complete(prompts[start : start + batch], n=1, temperature=0.0, max_tokens=EVAL_MAX_TOKENS, stop=STOP)
        for rec, (c,) in zip(records[start : start + batch], outs):
            ok = final_answer(c.text) == rec["answer"]
            correct += ok
            for line in c.text.split("\n"):
                v = check_step(line)
                if v is not None:
                    steps_total += 1
                    steps_right += v
            if len(samples) < 3:
                samples.append({"id": rec.get("id"), "text": c.text, "correct": ok})
    return {
        "accuracy": correct / len(records),
        "correct": correct,
        "total": len(records),
        "step_accuracy": steps_right / steps_total if steps_total else 0.0,
        "steps": steps_total,
        "samples": samples,
    }


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def lr_at(step: int, total: int, peak: float, warmup: int, final_frac: float = 0.1) -> float:
    """Linear warmup to `peak`, then cosine decay to `final_frac * peak` at `total`."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (final_frac + (1 - final_frac) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


README_TEMPLATE = """# tinymath-policy

A tiny LLaMA-architecture causal LM ({params:,} parameters: {layers} layers, hidden {hidden}, {heads} heads,
MLP {intermediate}, context {ctx} tokens) with a character-level tokenizer, trained from scratch on CPU on the
tinymath train split (`data/tinymath/train.jsonl`) by `python-sft/prm_raft/tiny/train_policy.py`.
It is the embedded default's base policy, deliberately under-trained ({steps} steps of batch {batch_size},
completion-only loss) so that it still errs often: RAFT needs room to improve and the PRMs need wrong steps.

Prompt template (with stop sequences `["\\n\\n", "Question:"]`):

```
Question: {{question}}
Answer:
```

The tokenizer adds `<bos>` itself; the model ends its solution (`a op b = c` lines, then `#### N`) with `<eos>`.

## Regenerate

```
cd python-sft
.venv/bin/python -m prm_raft.tiny.tinymath --out ../data/tinymath
.venv/bin/python -m prm_raft.tiny.train_policy --data ../data/tinymath --out ../models/tinymath-policy --seed {seed} --steps {steps}
```

Deterministic on a given machine (fixed seeds, {threads} torch threads, deterministic algorithms); data sha256
(train.jsonl) `{data_sha256}`.

## Measured

{eval_text}
"""


def train(args: argparse.Namespace) -> Path:
    data = Path(args.data)
    out = Path(args.out)
    for name in ("steps", "batch_size", "hidden", "layers", "heads", "intermediate", "ctx", "threads"):
        if getattr(args, name) < 1:
            raise BadInput(f"--{name.replace('_', '-')} must be >= 1")
    if args.hidden % args.heads:
        raise BadInput("--hidden must be a multiple of --heads")
    train_path = data / "train.jsonl"
    records = load_split(train_path)
    test_path = data / "test.jsonl"
    do_eval = args.eval and test_path.is_file()
    test_records = load_split(test_path)[: args.eval_limit or None] if do_eval else []

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)

    tokenizer = build_tokenizer([r["question"] + r["solution"] for r in records], args.ctx)
    examples = encode_examples(tokenizer, records, args.ctx)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=args.ctx,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_dropout=0.0,
    )
    model = LlamaForCausalLM(config)
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    n_params = sum(p.numel() for p in model.parameters())
    emit(
        "start",
        params=n_params,
        vocab=len(tokenizer),
        examples=len(examples),
        steps=args.steps,
        batch_size=args.batch_size,
        loss="completion-only",
    )

    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": args.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-8,
    )
    gen = torch.Generator().manual_seed(args.seed)
    order: list[int] = []
    model.train()
    t0 = time.monotonic()
    running, running_n = 0.0, 0
    for step in range(args.steps):
        if len(order) < args.batch_size:
            order += torch.randperm(len(examples), generator=gen).tolist()
        idx, order = order[: args.batch_size], order[args.batch_size :]
        batch = make_batch([examples[i] for i in idx], tokenizer.pad_token_id)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args.steps, args.lr, args.warmup)
        loss = model(**batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += float(loss.detach())
        running_n += 1
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            emit(
                "progress",
                step=step + 1,
                total=args.steps,
                loss=round(running / running_n, 4),
                lr=round(opt.param_groups[0]["lr"], 6),
                elapsed=round(time.monotonic() - t0, 1),
            )
            running, running_n = 0.0, 0
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps and do_eval:
            te = time.monotonic()
            result = evaluate("(training)", test_records, model=model, tokenizer=tokenizer)
            model.train()
            t0 += time.monotonic() - te  # the elapsed time counts training only
            emit("eval", split="test", step=step + 1, **{k: v for k, v in result.items() if k != "samples"})
    train_seconds = time.monotonic() - t0

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.eval()
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        hparams = {
            k: getattr(args, k)
            for k in ("seed", "steps", "batch_size", "lr", "warmup", "weight_decay", "hidden", "layers", "heads", "intermediate", "ctx", "threads")
        }
        info: dict[str, Any] = {
            "params": n_params,
            "loss": "completion-only",
            "prompt_template": PROMPT_TEMPLATE,
            "stop": STOP,
            "train_data_sha256": sha256_file(train_path),
            "hparams": hparams,
        }
        eval_text = "Not evaluated (trained with `--no-eval`)."
        if do_eval:
            te = time.monotonic()
            result = evaluate(tmp, test_records)
            emit("eval", split="test", seconds=round(time.monotonic() - te, 1), **{k: v for k, v in result.items() if k != "samples"})
            info["eval"] = {k: v for k, v in result.items() if k != "samples"}
            eval_text = (
                f"Greedy exact-answer accuracy on the tinymath test split: **{result['accuracy']:.1%}** "
                f"({result['correct']}/{result['total']}; greedy decoding, at most {EVAL_MAX_TOKENS} new tokens, the `#### N` answer "
                f"compared with the reference). Arithmetically right step lines: {result['step_accuracy']:.1%} of "
                f"{result['steps']}."
            )
        (tmp / "training_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        (tmp / "README.md").write_text(
            README_TEMPLATE.format(
                params=n_params,
                eval_text=eval_text,
                data_sha256=info["train_data_sha256"],
                **hparams,
            )
        )
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            os.rename(out, old)
        os.rename(tmp, out)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    emit("trained", seconds=round(train_seconds, 1))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.tiny.train_policy", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="directory with train.jsonl (and test.jsonl for the evaluation)")
    ap.add_argument("--out", required=True, help="checkpoint directory to write (replaced atomically)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"optimizer steps (default {DEFAULT_STEPS}: stops early on purpose)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=5e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--weight-decay", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, default=96)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=384)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--eval", action=argparse.BooleanOptionalAction, default=True, help="measure greedy test accuracy (default on)")
    ap.add_argument("--eval-limit", type=int, default=0, help="evaluate only the first N test records (0 = all)")
    ap.add_argument("--eval-every", type=int, default=0, help="also evaluate every N steps during training (0 = only at the end)")
    args = ap.parse_args(argv)
    try:
        out = train(args)
    except BadInput as e:
        emit("error", message=str(e), retryable=False)
        return 2
    emit("done", output=str(out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
