"""Train a process (or outcome) reward model.

    python -m prm_raft.prm_train --config job.json

Config (JSON object; unknown keys are an error):

- ``base``: a checkpoint directory (a causal LM in save_pretrained layout, e.g. the policy), or null to train
  from scratch: a LLaMA model of ``model_config`` (LlamaConfig fields; tiny defaults) with a character-level
  tokenizer built from the training texts;
- ``train_file``: JSONL, one solution per line ``{"question": str, "steps": [str, ...], "labels": [p, ...]}``
  with one label in [0, 1] per step (soft labels are used as they are, never rounded). For ``kind: "orm"``
  a line needs ``"outcome": p`` (the whole solution's label), or exactly one label;
- ``output_dir``: the checkpoint directory to write (appears atomically: written beside it under a temporary
  name, then renamed; an existing one is replaced);
- ``kind``: ``"autoregressive"`` (the 2-way softmax over the ``+``/``-`` logits at every step tag,
  cross-entropy against the soft target [p, 1-p]), ``"regression"`` (a scalar head at every tag, sigmoid, MSE
  against p) or ``"orm"`` (autoregressive, the whole response as one step, one label per solution);
- ``epochs`` (1), ``max_steps`` (0 = use epochs; otherwise it wins), ``learning_rate`` (1e-3), ``batch_size`` (8),
  ``seed`` (0), ``warmup_steps`` (0), ``lr_schedule`` (``"cosine"`` to 10% or ``"constant"``), ``weight_decay``
  (0.0), ``grad_clip`` (1.0), ``max_length`` (tokens per solution; default the model's context), ``threads``
  (torch CPU threads; default torch's choice), ``log_every`` (10), ``eval_file`` (same format as train_file:
  step accuracy / AUC / Brier after training, in the metrics), ``format`` (overrides of
  :class:`prm_raft.prm_format.PrmFormat`), ``model_config`` (with ``base`` null), ``save_every`` (200; 0 = never):
  every that many steps the full training state (weights, optimizer, data order, RNG) is saved atomically to
  ``.<output_dir name>.resume/`` beside the output; a restarted job with the same config and data resumes from
  it exactly (the same final weights as an uninterrupted run) and deletes it once the checkpoint is written;
  ``group_by_length`` (true: batches of similar lengths, less padding);
  ``step_logprob_feature`` (false): the score also reads the step's log-likelihood under the model's own LM head,
  sigmoid(z_good - z_bad + w * log P(step | prefix) + b) with w and b trained alongside (written to
  ``prm_config.json`` as ``readout``); within one prompt this separates a likely step from an unlikely one, which
  a PRM trained pointwise on pooled prompts otherwise drowns in base rates (how often a step at this position is
  right); ``lm_loss_weight`` (0): the language-model loss on the steps, each step weighted by its label, as an
  auxiliary term, so the LM head stays a model of right steps (autoregressive and orm kinds only);
  ``pairwise_loss_weight`` (0): a within-prompt ranking term beside the step loss. Batches then hold whole groups
  of solutions to one question (consecutive, in a shuffled order of questions); for every two solutions to the same
  question whose targets (the min of their step labels) differ, -log sigmoid(S_better - S_worse) weighted by the
  difference, where S is the solution's min step logit, the score RAFT and best-of-N rank by. Base rates (how hard
  the question is, how often a step at this position is right) are the same for both and cancel.

Progress as JSON lines on stdout: ``{"event":"start",...}``, ``{"event":"progress","step":..,"total":..,"loss":..}``,
..., ``{"event":"done","output":DIR,"metrics":{"loss_first":..,"loss_last":..,...}}``; a failure prints
``{"event":"error","message":..,"retryable":..}``. Exit codes: 0 done, 2 bad config or data (the message names the
file and line), 3 out of GPU memory, anything else a crash (retryable). Deterministic for a given seed on a given
machine (seeded shuffling and init, deterministic algorithms).

The checkpoint holds the model, the tokenizer (with the step tag as one special token) and ``prm_config.json``:
kind, the format (tag, label tokens, prompt template, step separator) and their token ids, max_length, how a
score is read, the training settings and metrics. The PRM server reads it; both use
:func:`prm_raft.prm_format.build_prm_input`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from prm_raft.prm_format import (  # noqa: E402
    FORMAT_VERSION,
    KINDS,
    FormatError,
    PrmFormat,
    PrmInput,
    Readout,
    TagOutputs,
    build_prm_input,
    collate,
    ensure_tag_token,
    label_token_ids,
    score_logits,
    scores_from_outputs,
    steps_for_kind,
    tag_outputs,
    tag_token_id,
)

PRM_CONFIG = "prm_config.json"
READOUT_INIT_WEIGHT = 0.2  # a start that lets the step log-likelihood count; trained from there

DEFAULT_MODEL_CONFIG: dict[str, Any] = {
    "hidden_size": 64,
    "intermediate_size": 192,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}

DEFAULTS: dict[str, Any] = {
    "base": None,
    "train_file": None,
    "output_dir": None,
    "kind": "autoregressive",
    "epochs": 1,
    "max_steps": 0,
    "learning_rate": 1e-3,
    "batch_size": 8,
    "seed": 0,
    "warmup_steps": 0,
    "lr_schedule": "cosine",
    "weight_decay": 0.0,
    "grad_clip": 1.0,
    "max_length": None,
    "threads": None,
    "log_every": 10,
    "eval_file": None,
    "format": None,
    "model_config": None,
    "save_every": 200,
    "group_by_length": True,
    "step_logprob_feature": False,
    "lm_loss_weight": 0.0,
    "pairwise_loss_weight": 0.0,
}

SCORE_READOUT = {
    "autoregressive": "softmax over the [good, bad] token logits at each step tag; score = P(good)",
    "orm": "softmax over the [good, bad] token logits at the one tag after the whole response; score = P(good)",
    "regression": "sigmoid of the scalar head (token classification, 1 label) at each step tag",
}


class BadConfig(Exception):
    """Bad config or data: exit code 2, not retryable."""


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


# --------------------------------------------------------------------------------------------------
# Config and data
# --------------------------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadConfig(f"config file not found: {p}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadConfig(f"config {p} is not valid JSON: {e}") from None
    return validate_config(raw, where=str(p))


def validate_config(raw: Any, where: str = "config") -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise BadConfig(f"{where}: must be a JSON object")
    unknown = sorted(set(raw) - set(DEFAULTS))
    if unknown:
        raise BadConfig(f"{where}: unknown key(s) {unknown}; known keys: {sorted(DEFAULTS)}")
    cfg = {**DEFAULTS, **{k: v for k, v in raw.items()}}
    for k in ("train_file", "output_dir"):
        if not isinstance(cfg[k], str) or not cfg[k]:
            raise BadConfig(f"{where}: '{k}' is required (a path string)")
    if cfg["base"] is not None:
        if not isinstance(cfg["base"], str) or not (Path(cfg["base"]) / "config.json").is_file():
            raise BadConfig(f"{where}: 'base' must be null or a checkpoint directory with a config.json (got {cfg['base']!r})")
        if cfg["model_config"] is not None:
            raise BadConfig(f"{where}: 'model_config' only applies with 'base': null")
    if cfg["kind"] not in KINDS:
        raise BadConfig(f"{where}: 'kind' must be one of {list(KINDS)} (got {cfg['kind']!r})")
    ints = {"epochs": 0, "max_steps": 0, "batch_size": 1, "seed": None, "warmup_steps": 0, "log_every": 1, "save_every": 0}
    for k, lo in ints.items():
        v = cfg[k]
        if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo):
            raise BadConfig(f"{where}: '{k}' must be an integer" + (f" >= {lo}" if lo is not None else "") + f" (got {v!r})")
    for k in ("group_by_length", "step_logprob_feature"):
        if not isinstance(cfg[k], bool):
            raise BadConfig(f"{where}: '{k}' must be true or false")
    for k in ("lm_loss_weight", "pairwise_loss_weight"):
        if not _is_num(cfg[k]) or cfg[k] < 0:
            raise BadConfig(f"{where}: '{k}' must be a non-negative number (got {cfg[k]!r})")
    if cfg["kind"] == "regression" and (cfg["step_logprob_feature"] or cfg["lm_loss_weight"] > 0):
        raise BadConfig(f"{where}: 'step_logprob_feature' and 'lm_loss_weight' need the LM head of kind autoregressive or orm, not regression")
    if cfg["epochs"] == 0 and cfg["max_steps"] == 0:
        raise BadConfig(f"{where}: set 'epochs' or 'max_steps' above 0")
    for k in ("learning_rate", "weight_decay", "grad_clip"):
        if not _is_num(cfg[k]) or cfg[k] < 0:
            raise BadConfig(f"{where}: '{k}' must be a non-negative number (got {cfg[k]!r})")
    if cfg["learning_rate"] <= 0:
        raise BadConfig(f"{where}: 'learning_rate' must be > 0")
    if cfg["lr_schedule"] not in ("cosine", "constant"):
        raise BadConfig(f"{where}: 'lr_schedule' must be 'cosine' or 'constant'")
    for k in ("max_length", "threads"):
        v = cfg[k]
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise BadConfig(f"{where}: '{k}' must be null or an integer >= 1 (got {v!r})")
    if cfg["eval_file"] is not None and not isinstance(cfg["eval_file"], str):
        raise BadConfig(f"{where}: 'eval_file' must be null or a path string")
    if cfg["format"] is not None:
        if not isinstance(cfg["format"], dict):
            raise BadConfig(f"{where}: 'format' must be null or an object")
        unknown_fmt = set(cfg["format"]) - set(PrmFormat().to_dict())
        if unknown_fmt:
            raise BadConfig(f"{where}: 'format' has unknown key(s) {sorted(unknown_fmt)}")
    try:
        cfg["format"] = PrmFormat.from_dict(cfg["format"] or {})
    except FormatError as e:
        raise BadConfig(f"{where}: 'format': {e}") from None
    if cfg["model_config"] is not None and not isinstance(cfg["model_config"], dict):
        raise BadConfig(f"{where}: 'model_config' must be an object of LlamaConfig fields")
    return cfg


@dataclass
class Example:
    question: str
    steps: list[str]  # as the model sees them (one joined step for an ORM)
    labels: list[float]
    line: int


def load_examples(path: str | os.PathLike[str], kind: str, fmt: PrmFormat) -> list[Example]:
    """Parse and check a train/eval JSONL file; BadConfig names the file and line of the first problem."""
    p = Path(path)
    if not p.is_file():
        raise BadConfig(f"data file not found: {p}")
    out: list[Example] = []
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{p} line {n}"
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadConfig(f"{where}: not valid JSON: {e}") from None
            if not isinstance(r, dict):
                raise BadConfig(f"{where}: must be a JSON object")
            q, steps = r.get("question"), r.get("steps")
            if not isinstance(q, str):
                raise BadConfig(f"{where}: 'question' must be a string")
            if not isinstance(steps, list) or not steps or not all(isinstance(s, str) for s in steps):
                raise BadConfig(f"{where}: 'steps' must be a non-empty list of strings")
            labels = r.get("labels")
            if kind == "orm":
                if "outcome" in r:
                    labels = [r["outcome"]]
                elif not (isinstance(labels, list) and len(labels) == 1):
                    raise BadConfig(f"{where}: an ORM needs 'outcome' (one label for the solution) or exactly one label")
                what = "'outcome'" if "outcome" in r else "'labels'"
            else:
                if not isinstance(labels, list) or len(labels) != len(steps):
                    got = len(labels) if isinstance(labels, list) else type(labels).__name__
                    raise BadConfig(f"{where}: 'labels' must be a list with one label per step ({len(steps)} steps, got {got})")
                what = "'labels'"
            for v in labels:
                if not _is_num(v) or not 0.0 <= v <= 1.0:
                    raise BadConfig(f"{where}: {what} must be numbers in [0, 1] (got {v!r})")
            out.append(Example(q, steps_for_kind(kind, steps, fmt), [float(v) for v in labels], n))
    if not out:
        raise BadConfig(f"{p} has no records")
    return out


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


def build_model_and_tokenizer(cfg: dict[str, Any], texts: list[str]) -> tuple[Any, Any, int]:
    """(model, tokenizer, context length) for the config; the step tag is one token of the tokenizer."""
    from transformers import (
        AutoModelForCausalLM,
        AutoModelForTokenClassification,
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        LlamaForTokenClassification,
    )

    fmt: PrmFormat = cfg["format"]
    regression = cfg["kind"] == "regression"
    if cfg["base"] is None:
        from prm_raft.tiny.train_policy import build_tokenizer

        mc = {**DEFAULT_MODEL_CONFIG, **(cfg["model_config"] or {})}
        ctx = int(mc["max_position_embeddings"])
        tokenizer = build_tokenizer(texts + [fmt.prompt_template, fmt.step_separator], ctx)
        ensure_tag_token(tokenizer, fmt)
        try:
            config = LlamaConfig(
                vocab_size=len(tokenizer),
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
                **({"num_labels": 1} if regression else {}),
                **mc,
            )
            model = LlamaForTokenClassification(config) if regression else LlamaForCausalLM(config)
        except (TypeError, ValueError) as e:
            raise BadConfig(f"'model_config' is not a valid LlamaConfig: {e}") from None
    else:
        try:
            tokenizer = AutoTokenizer.from_pretrained(cfg["base"])
        except Exception as e:  # noqa: BLE001
            raise BadConfig(f"cannot load a tokenizer from base {cfg['base']}: {e}") from None
        added = ensure_tag_token(tokenizer, fmt)
        if regression:
            model = AutoModelForTokenClassification.from_pretrained(cfg["base"], num_labels=1, dtype=torch.float32)
        else:
            model = AutoModelForCausalLM.from_pretrained(cfg["base"], dtype=torch.float32)
        if added or model.get_input_embeddings().weight.shape[0] < len(tokenizer):
            model.resize_token_embeddings(len(tokenizer))
        ctx = int(getattr(model.config, "max_position_embeddings", 0) or tokenizer.model_max_length)
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
    try:
        label_token_ids(tokenizer, fmt)
        tag_token_id(tokenizer, fmt)
    except FormatError as e:
        raise BadConfig(str(e)) from None
    max_length = min(cfg["max_length"] or ctx, ctx)
    return model, tokenizer, max_length


def encode_examples(tokenizer: Any, examples: list[Example], fmt: PrmFormat, max_length: int, path: str) -> list[PrmInput]:
    out = []
    for ex in examples:
        e = build_prm_input(tokenizer, ex.question, ex.steps, fmt)
        if len(e.input_ids) > max_length:
            raise BadConfig(f"{path} line {ex.line}: {len(e.input_ids)} tokens, more than max_length {max_length}")
        out.append(e)
    return out


def loss_fn(kind: str, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Soft cross-entropy against [p, 1-p] (autoregressive, orm: the 2-way softmax is a sigmoid of the logit) or MSE
    of sigmoid vs p (regression); mean over tags."""
    if kind == "regression":
        return torch.mean((torch.sigmoid(logits) - targets) ** 2)
    return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)


def pairwise_loss(logits: torch.Tensor, targets: torch.Tensor, tag_rows: torch.Tensor, groups: list[int]) -> torch.Tensor:
    """Within-question ranking: for solutions a, b of one question with min-label targets t_a > t_b, the mean over
    pairs of (t_a - t_b) * -log sigmoid(S_a - S_b), S = a solution's min step logit; 0 when the batch has no pair."""
    n = len(groups)
    inf = torch.tensor(float("inf"))
    score = torch.full((n,), inf).scatter_reduce(0, tag_rows, logits, reduce="amin", include_self=False)
    target = torch.full((n,), inf).scatter_reduce(0, tag_rows, targets, reduce="amin", include_self=False)
    g = torch.tensor(groups)
    gap = target[:, None] - target[None, :]
    pair = (g[:, None] == g[None, :]) & (gap > 0)
    if not bool(pair.any()):
        return logits.sum() * 0.0
    margin = score[:, None] - score[None, :]
    return (gap * torch.nn.functional.softplus(-margin))[pair].sum() / pair.sum()


def lm_loss(outputs: TagOutputs, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per token of the steps, each step weighted by its label (right steps count)."""
    return -(targets * outputs.step_logprob).sum() / (targets * outputs.step_tokens).sum().clamp(min=1.0)


def lr_at(step: int, total: int, peak: float, warmup: int, schedule: str) -> float:
    if warmup and step < warmup:
        return peak * (step + 1) / warmup
    if schedule == "constant":
        return peak
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


@torch.no_grad()
def predict(
    model: Any, kind: str, tokenizer: Any, encoded: list[PrmInput], fmt: PrmFormat, readout: Readout = Readout(), batch_size: int = 64
) -> list[float]:
    """Scores for every tag of every encoded example, in order."""
    was_training = model.training
    model.eval()
    label_ids = label_token_ids(tokenizer, fmt) if kind != "regression" else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out: list[float] = []
    for s in range(0, len(encoded), batch_size):
        batch = collate(encoded[s : s + batch_size], pad)
        outputs = tag_outputs(model, kind, batch, label_ids, step_logprob=readout.uses_step_logprob)
        out.extend(scores_from_outputs(kind, outputs, readout).tolist())
    model.train(was_training)
    return out


def auc(scores: list[float], labels: list[int]) -> float | None:
    """ROC AUC (Mann-Whitney, ties count half); None when only one class is present."""
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    rank_sum = sum(r for r, y in zip(ranks, labels) if y)
    return (rank_sum - pos * (pos + 1) / 2) / (pos * neg)


def score_metrics(scores: list[float], targets: list[float]) -> dict[str, Any]:
    """Step accuracy (score >= 0.5 vs target >= 0.5), AUC and Brier (mean squared error) over all tags."""
    hard = [int(t >= 0.5) for t in targets]
    acc = sum(int(s >= 0.5) == y for s, y in zip(scores, hard)) / len(scores)
    a = auc(scores, hard)
    return {
        "tags": len(scores),
        "positive_rate": round(sum(hard) / len(hard), 4),
        "accuracy": round(acc, 4),
        "auc": None if a is None else round(a, 4),
        "brier": round(sum((s - t) ** 2 for s, t in zip(scores, targets)) / len(scores), 4),
    }


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def _replace_dir_atomically(tmp: Path, out: Path) -> None:
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def epoch_order(lengths: list[int], bs: int, gen: torch.Generator, group_by_length: bool, questions: list[int] | None = None) -> list[int]:
    """One epoch's example order. Grouped by length (less padding): a random permutation is cut into mega-batches
    of 32 batches, each sorted by length and cut into batches, and the batches are shuffled. With `questions` (a
    question id per example): each question's examples together, the questions in a random order."""
    if questions is not None:
        by_question: dict[int, list[int]] = {}
        for i, q in enumerate(questions):
            by_question.setdefault(q, []).append(i)
        keys = list(by_question)
        return [i for k in torch.randperm(len(keys), generator=gen).tolist() for i in by_question[keys[k]]]
    perm = torch.randperm(len(lengths), generator=gen).tolist()
    if not group_by_length:
        return perm
    mega = 32 * bs
    batches: list[list[int]] = []
    for s in range(0, len(perm), mega):
        chunk = sorted(perm[s : s + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[j : j + bs] for j in range(0, len(chunk), bs)]
    return [i for b in torch.randperm(len(batches), generator=gen).tolist() for i in batches[b]]


def resume_dir_for(cfg: dict[str, Any]) -> Path:
    out = Path(cfg["output_dir"])
    return out.parent / f".{out.name}.resume"


def resume_key(cfg: dict[str, Any]) -> str:
    """Everything that determines the run: a resume state from another config or data is ignored."""
    settings = {k: cfg[k] for k in DEFAULTS if k not in ("format", "log_every", "save_every", "threads", "output_dir")}
    settings["format"] = cfg["format"].to_dict()
    settings["train_sha256"] = sha256_file(cfg["train_file"])
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()


def load_resume_state(resume_dir: Path, key: str) -> dict[str, Any] | None:
    path = resume_dir / "state.pt"
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001 - a torn or foreign file: start over
        emit("warning", message=f"ignoring unreadable resume state {path}: {e}")
        return None
    if state.get("key") != key:
        emit("warning", message=f"ignoring resume state {path}: it belongs to another config or data")
        return None
    return state


def save_resume_state(resume_dir: Path, state: dict[str, Any]) -> None:
    """Write the state to a temporary file, then rename it over state.pt (a crash mid-write leaves the old one)."""
    resume_dir.mkdir(parents=True, exist_ok=True)
    tmp = resume_dir / f"state.pt.tmp-{os.getpid()}"
    torch.save(state, tmp)
    os.replace(tmp, resume_dir / "state.pt")


def train(cfg: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    fmt: PrmFormat = cfg["format"]
    kind: str = cfg["kind"]
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg["seed"])

    examples = load_examples(cfg["train_file"], kind, fmt)
    eval_examples = load_examples(cfg["eval_file"], kind, fmt) if cfg["eval_file"] else []
    texts = [ex.question + "".join(ex.steps) for ex in examples]
    model, tokenizer, max_length = build_model_and_tokenizer(cfg, texts)
    encoded = encode_examples(tokenizer, examples, fmt, max_length, cfg["train_file"])
    eval_encoded = encode_examples(tokenizer, eval_examples, fmt, max_length, cfg["eval_file"]) if eval_examples else []
    label_ids = label_token_ids(tokenizer, fmt) if kind != "regression" else None
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    bs = cfg["batch_size"]
    lengths = [len(e.input_ids) for e in encoded]
    question_ids: dict[str, int] = {}
    questions = [question_ids.setdefault(ex.question, len(question_ids)) for ex in examples]
    steps_per_epoch = math.ceil(len(encoded) / bs)
    total = cfg["max_steps"] or cfg["epochs"] * steps_per_epoch
    n_params = sum(p.numel() for p in model.parameters())
    emit("start", kind=kind, params=n_params, examples=len(encoded), tags=sum(len(e.tag_positions) for e in encoded), total=total, max_length=max_length)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    # The readout's weight on the step log-likelihood and its bias: trained with the model, never decayed.
    readout_w = torch.nn.Parameter(torch.tensor(READOUT_INIT_WEIGHT if cfg["step_logprob_feature"] else 0.0))
    readout_b = torch.nn.Parameter(torch.tensor(0.0))
    if cfg["step_logprob_feature"]:
        no_decay += [readout_w, readout_b]
    need_logprob = cfg["step_logprob_feature"] or cfg["lm_loss_weight"] > 0
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg["learning_rate"],
    )
    gen = torch.Generator().manual_seed(cfg["seed"])
    order: list[int] = []
    window, window_n = 0.0, 0
    loss_first: float | None = None
    loss_last: float | None = None
    start_step = 0
    resume_dir = resume_dir_for(cfg)
    key = resume_key(cfg)
    state = load_resume_state(resume_dir, key)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        order, start_step = state["order"], state["step"]
        with torch.no_grad():
            readout_w.copy_(state["readout"][0])
            readout_b.copy_(state["readout"][1])
        window, window_n, loss_first, loss_last = state["window"], state["window_n"], state["loss_first"], state["loss_last"]
        emit("resumed", step=start_step, total=total, path=str(resume_dir))
    fail_at = int(os.environ.get("PRM_TRAIN_FAIL_AT_STEP", "0") or 0)  # test hook: simulate a crash
    model.train()
    t0 = time.monotonic()
    for step in range(start_step, total):
        if fail_at and step + 1 == fail_at:
            raise RuntimeError(f"PRM_TRAIN_FAIL_AT_STEP={fail_at}: simulated crash")
        if len(order) < bs:
            # whole epochs in order: an epoch's leftover examples go first in the next batch
            order += epoch_order(lengths, bs, gen, cfg["group_by_length"], questions if cfg["pairwise_loss_weight"] > 0 else None)
        idx, order = order[:bs], order[bs:]
        rows = [encoded[i] for i in idx]
        batch = collate(rows, pad)
        targets = torch.tensor([y for i in idx for y in examples[i].labels], dtype=torch.float32)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, cfg["learning_rate"], cfg["warmup_steps"], cfg["lr_schedule"])
        outputs = tag_outputs(model, kind, batch, label_ids, step_logprob=need_logprob)
        # Without the feature the step log-likelihood is read for the LM loss only, not for the score.
        scored = outputs if cfg["step_logprob_feature"] else outputs._replace(step_logprob=None)
        logits = score_logits(kind, scored, readout_w, readout_b)
        loss = loss_fn(kind, logits, targets)
        if cfg["pairwise_loss_weight"] > 0:
            loss = loss + cfg["pairwise_loss_weight"] * pairwise_loss(logits, targets, batch["tag_rows"], [questions[i] for i in idx])
        if cfg["lm_loss_weight"] > 0:
            loss = loss + cfg["lm_loss_weight"] * lm_loss(outputs, targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["grad_clip"])
        opt.step()
        window += float(loss.detach())
        window_n += 1
        if (step + 1) % cfg["log_every"] == 0 or step + 1 == total:
            mean = window / window_n
            if loss_first is None:
                loss_first = mean
            loss_last = mean
            emit("progress", step=step + 1, total=total, loss=round(mean, 6), lr=round(opt.param_groups[0]["lr"], 8), elapsed=round(time.monotonic() - t0, 1))
            window, window_n = 0.0, 0
        if cfg["save_every"] and (step + 1) % cfg["save_every"] == 0 and step + 1 < total:
            save_resume_state(
                resume_dir,
                {
                    "key": key,
                    "step": step + 1,
                    "model": model.state_dict(),
                    "optimizer": opt.state_dict(),
                    "generator": gen.get_state(),
                    "order": order,
                    "window": window,
                    "window_n": window_n,
                    "loss_first": loss_first,
                    "loss_last": loss_last,
                    "readout": [readout_w.detach().clone(), readout_b.detach().clone()],
                },
            )
    train_seconds = time.monotonic() - t0
    model.eval()
    readout = Readout(float(readout_w), float(readout_b)) if cfg["step_logprob_feature"] else Readout()

    metrics: dict[str, Any] = {
        "loss_first": loss_first,
        "loss_last": loss_last,
        "steps": total,
        "train_seconds": round(train_seconds, 1),
    }
    if eval_encoded:
        scores = predict(model, kind, tokenizer, eval_encoded, fmt, readout)
        metrics["eval"] = score_metrics(scores, [y for ex in eval_examples for y in ex.labels])

    out = Path(cfg["output_dir"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.model_max_length = max_length
        tokenizer.save_pretrained(tmp)
        good, bad = label_token_ids(tokenizer, fmt)
        settings = {k: cfg[k] for k in DEFAULTS if k not in ("format",)}
        prm_config = {
            "format_version": FORMAT_VERSION,
            "kind": kind,
            **fmt.to_dict(),
            "step_tag_id": tag_token_id(tokenizer, fmt),
            "good_token_id": good,
            "bad_token_id": bad,
            "max_length": max_length,
            "score": SCORE_READOUT[kind] + (f" plus {readout.step_logprob_weight:.4g} * log P(step | prefix) {readout.bias:+.4g} before the sigmoid" if readout.uses_step_logprob else ""),
            **({"readout": {"step_logprob_weight": readout.step_logprob_weight, "bias": readout.bias}} if readout.uses_step_logprob else {}),
            "params": n_params,
            "train_file_sha256": sha256_file(cfg["train_file"]),
            "train": settings,
            "metrics": metrics,
        }
        (tmp / PRM_CONFIG).write_text(json.dumps(prm_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        _replace_dir_atomically(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(resume_dir, ignore_errors=True)
    return out, metrics


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.prm_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="job config JSON file")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        out, metrics = train(cfg)
    except BadConfig as e:
        emit("error", message=str(e), retryable=False)
        print(f"prm_train: {e}", file=sys.stderr)
        return 2
    except torch.OutOfMemoryError as e:
        emit("error", message=f"out of memory: {e}", retryable=True)
        return 3
    except Exception as e:  # noqa: BLE001 - a crash: retryable
        traceback.print_exc()
        emit("error", message=f"{type(e).__name__}: {e}", retryable=True)
        return 1
    emit("done", output=str(out.resolve()), metrics=metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
