"""Train a process (or outcome) reward model, on transformers' Trainer.

    python -m prm_raft.prm_train --config job.json
    accelerate launch --config_file python-sft/accelerate/cpu.yaml -m prm_raft.prm_train --config job.json

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
- ``epochs`` (1), ``max_steps`` (0 = use epochs; otherwise it wins), ``learning_rate`` (1e-3), ``batch_size`` (8,
  per device), ``seed`` (0), ``warmup_steps`` (0), ``lr_schedule`` (``"cosine"`` to 10% or ``"constant"``),
  ``weight_decay`` (0.0, on matrices only), ``grad_clip`` (1.0; 0 = none; the LM's gradient norm, the readout's
  scalars apart), ``max_length`` (tokens per solution;
  default the model's context), ``threads`` (torch CPU threads; default torch's choice), ``log_every`` (10),
  ``eval_file`` (same format as train_file: step accuracy / AUC / Brier after training, in the metrics), ``format``
  (overrides of :class:`prm_raft.prm_format.PrmFormat`), ``model_config`` (with ``base`` null);
- ``bf16`` (null = true on a CUDA machine, false otherwise): bf16 mixed precision (fp32 master weights; under
  DeepSpeed, DeepSpeed's bf16); it must agree with the accelerate config's ``mixed_precision``;
  ``gradient_checkpointing`` (false): recompute activations in the backward pass (less memory, slower);
  ``lora`` (null): ``{"r": 16, "alpha": 32, "dropout": 0.05, "target_modules": [...]}`` (as in :mod:`prm_raft.sft`)
  trains LoRA adapters instead of all weights, plus the step tag's embedding row (a new token) and, for kind
  regression, the score head; they are merged into the written checkpoint, a plain model. One process or
  data-parallel only (not under DeepSpeed or FSDP, where the weights are sharded);
- ``save_steps`` (200; 0 = never): every that many steps the Trainer writes a checkpoint (weights, optimizer,
  scheduler, RNG state) to ``.<output_dir name>.checkpoints/checkpoint-N`` beside the output; a restarted job resumes
  from the newest complete one (the same final weights as an uninterrupted run), refuses checkpoints of a job with
  other settings or data (``prm-job.json`` there), and deletes the directory once the output is written;
- ``group_by_length`` (true: batches of similar lengths, less padding);
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

Events and exit codes are those of :mod:`prm_raft.train_job`: JSON lines on stdout (``progress``, ``checkpoint``,
``done`` with ``output`` and ``metrics`` {steps, loss_first, loss_last, train_runtime, eval}, ``error``); exit 0 done,
2 bad config or data (the message names the file and line), 3 out of GPU memory (and ``failure.json`` beside
``output_dir``, in its parent directory), anything else a crash (retryable). Test hook: ``PRM_RAFT_PRM_TRAIN_FAULT=oom@STEP`` or
``crash@STEP`` (``:once``: once per checkpoints directory). Deterministic for a given seed on a given machine
(seeded data order and init, deterministic algorithms; on a GPU only where torch has them).

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

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
    steps_for_kind,
    tag_outputs,
    tag_token_id,
)
from prm_raft.sft import parse_lora  # noqa: E402
from prm_raft.train_job import (  # noqa: E402
    EXIT_OK,
    BadInput,
    Emit,
    check_job_identity,
    check_precision,
    cli,
    find_resume_checkpoint,
    is_main_process,
    make_emitter,
    read_json_config,
    replace_dir_atomically,
    run_guarded,
    trainer_callbacks,
    trainer_metrics,
)

PRM_CONFIG = "prm_config.json"
JOB_FILE = "prm-job.json"
FAULT_ENV = "PRM_RAFT_PRM_TRAIN_FAULT"
READOUT_INIT_WEIGHT = 0.2  # a start that lets the step log-likelihood count; trained from there

BadConfig = BadInput  # the name this module's callers use
emit = make_emitter()  # to sys.stdout as it is at each event (callers redirect it)

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
    "save_steps": 200,
    "group_by_length": True,
    "step_logprob_feature": False,
    "lm_loss_weight": 0.0,
    "pairwise_loss_weight": 0.0,
    "bf16": None,
    "gradient_checkpointing": False,
    "lora": None,
}
# Settings that do not change the trained weights: left out of the job identity that guards the checkpoints.
NOT_IDENTITY = ("output_dir", "threads", "log_every", "save_steps", "eval_file", "gradient_checkpointing")

SCORE_READOUT = {
    "autoregressive": "softmax over the [good, bad] token logits at each step tag; score = P(good)",
    "orm": "softmax over the [good, bad] token logits at the one tag after the whole response; score = P(good)",
    "regression": "sigmoid of the scalar head (token classification, 1 label) at each step tag",
}


def log(msg: str) -> None:
    print(f"[prm_train] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# Config and data
# --------------------------------------------------------------------------------------------------


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def load_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    raw, where = read_json_config(path)
    return validate_config(raw, where=where)


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
    ints = {"epochs": 0, "max_steps": 0, "batch_size": 1, "seed": None, "warmup_steps": 0, "log_every": 1, "save_steps": 0}
    for k, lo in ints.items():
        v = cfg[k]
        if not isinstance(v, int) or isinstance(v, bool) or (lo is not None and v < lo):
            raise BadConfig(f"{where}: '{k}' must be an integer" + (f" >= {lo}" if lo is not None else "") + f" (got {v!r})")
    for k in ("group_by_length", "step_logprob_feature", "gradient_checkpointing"):
        if not isinstance(cfg[k], bool):
            raise BadConfig(f"{where}: '{k}' must be true or false")
    if cfg["bf16"] is not None and not isinstance(cfg["bf16"], bool):
        raise BadConfig(f"{where}: 'bf16' must be true, false or null (true on a CUDA machine)")
    if cfg["lora"] is not None:
        if not isinstance(cfg["lora"], dict):
            raise BadConfig(f"{where}: 'lora' must be null or an object")
        cfg["lora"] = parse_lora(cfg["lora"], where)
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


def pairwise_loss(logits: torch.Tensor, targets: torch.Tensor, tag_rows: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Within-question ranking: for solutions a, b of one question (`groups`: a question id per solution) with
    min-label targets t_a > t_b, the mean over pairs of (t_a - t_b) * -log sigmoid(S_a - S_b), S = a solution's min
    step logit; 0 when the batch has no pair."""
    inf = logits.new_full((len(groups),), float("inf"))
    score = inf.scatter_reduce(0, tag_rows, logits, reduce="amin", include_self=False)
    target = inf.scatter_reduce(0, tag_rows, targets.to(logits.dtype), reduce="amin", include_self=False)
    gap = target[:, None] - target[None, :]
    pair = (groups[:, None] == groups[None, :]) & (gap > 0)
    if not bool(pair.any()):
        return logits.sum() * 0.0
    margin = score[:, None] - score[None, :]
    return (gap * torch.nn.functional.softplus(-margin))[pair].sum() / pair.sum()


def lm_loss(outputs: TagOutputs, targets: torch.Tensor) -> torch.Tensor:
    """Mean negative log-likelihood per token of the steps, each step weighted by its label (right steps count)."""
    return -(targets * outputs.step_logprob).sum() / (targets * outputs.step_tokens).sum().clamp(min=1.0)


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



# --------------------------------------------------------------------------------------------------
# Training on the Trainer
# --------------------------------------------------------------------------------------------------


class PrmNet(torch.nn.Module):
    """What the Trainer trains and wraps (DDP, DeepSpeed, FSDP): the LM (or its LoRA wrapper) and, with
    ``step_logprob_feature``, the readout's weight on the step log-likelihood and its bias. Its forward is
    :func:`prm_raft.prm_format.tag_outputs` then :func:`~prm_raft.prm_format.score_logits`, the server's readout."""

    def __init__(self, lm: Any, kind: str, label_ids: tuple[int, int] | None, step_logprob_feature: bool, need_logprob: bool) -> None:
        super().__init__()
        self.lm = lm
        self.kind = kind
        self.label_ids = label_ids
        self.need_logprob = need_logprob
        self.step_logprob_feature = step_logprob_feature
        if step_logprob_feature:
            self.readout_w = torch.nn.Parameter(torch.tensor(READOUT_INIT_WEIGHT))
            self.readout_b = torch.nn.Parameter(torch.tensor(0.0))
        self._no_split_modules = getattr(lm, "_no_split_modules", None)  # the layers FSDP wraps one by one

    def forward(self, input_ids, attention_mask, tag_rows, tag_cols, step_token_rows, step_token_cols, step_token_step):  # noqa: ANN001
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "tag_rows": tag_rows,
            "tag_cols": tag_cols,
            "step_token_rows": step_token_rows,
            "step_token_cols": step_token_cols,
            "step_token_step": step_token_step,
        }
        model = self.lm.get_base_model() if self.lora else self.lm  # LoRA layers sit inside the base model
        outputs = tag_outputs(model, self.kind, batch, self.label_ids, step_logprob=self.need_logprob)
        if not self.step_logprob_feature:  # read for the LM loss only, not for the score
            return score_logits(self.kind, outputs._replace(step_logprob=None)), outputs
        return score_logits(self.kind, outputs, self.readout_w, self.readout_b), outputs

    @property
    def lora(self) -> bool:
        return hasattr(self.lm, "get_base_model")


def make_collator(pad_id: int) -> Any:
    def collate_rows(rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = collate([r["input"] for r in rows], pad_id)
        batch["targets"] = torch.tensor([y for r in rows for y in r["labels"]], dtype=torch.float32)
        batch["groups"] = torch.tensor([r["question"] for r in rows], dtype=torch.long)
        return batch

    return collate_rows


class EpochSampler(torch.utils.data.Sampler):
    """One epoch's order (:func:`epoch_order`) drawn from the seed and the epoch alone: the same on every process and
    after a resume (the Trainer calls set_epoch and skips the batches it has trained)."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group_by_length: bool, questions: list[int] | None) -> None:
        self.lengths, self.batch_size, self.seed = lengths, batch_size, seed
        self.group_by_length, self.questions = group_by_length, questions
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):  # noqa: ANN204
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(epoch_order(self.lengths, self.batch_size, gen, self.group_by_length, self.questions))


def make_trainer(cfg: dict[str, Any], args: Any, net: PrmNet, dataset: list[dict[str, Any]], pad_id: int, callbacks: list[Any]) -> Any:
    from accelerate import DistributedType
    from transformers import Trainer
    from transformers.trainer_callback import PrinterCallback
    from transformers.utils import WEIGHTS_NAME

    kind = cfg["kind"]
    sampler = EpochSampler(
        [len(r["input"].input_ids) for r in dataset],
        cfg["batch_size"],
        cfg["seed"],
        cfg["group_by_length"],
        [r["question"] for r in dataset] if cfg["pairwise_loss_weight"] > 0 else None,
    )

    class PrmTrainer(Trainer):
        loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides it by the accumulation steps

        def _get_train_sampler(self, train_dataset=None):  # noqa: ANN001, ANN202
            return sampler

        def get_decay_parameter_names(self, model):  # noqa: ANN001, ANN202
            return [n for n, p in model.named_parameters() if p.ndim >= 2]  # matrices; not norms, biases, the readout

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001, ANN202
            targets, groups = inputs.pop("targets"), inputs.pop("groups")
            logits, outputs = model(**inputs)
            logits = logits.float()
            loss = loss_fn(kind, logits, targets)
            if cfg["pairwise_loss_weight"] > 0:
                loss = loss + cfg["pairwise_loss_weight"] * pairwise_loss(logits, targets, inputs["tag_rows"], groups)
            if cfg["lm_loss_weight"] > 0:
                loss = loss + cfg["lm_loss_weight"] * lm_loss(outputs, targets)
            return (loss, logits) if return_outputs else loss

        def _clip_grad_norm(self, model):  # noqa: ANN001, ANN202
            # The readout's two scalars stay out of the norm the LM is clipped to (as in the loop that trained the
            # shipped tiny PRMs): clipped with the LM's, their steps shrink whenever the LM's gradient is large, and
            # the readout settles at another weight (0.39 against 0.31 on the tiny PRM). Under DeepSpeed and FSDP
            # the engine clips its flat, sharded parameters as one.
            sharded = self.accelerator.distributed_type in (DistributedType.DEEPSPEED, DistributedType.FSDP)
            if not net.step_logprob_feature or sharded:
                return super()._clip_grad_norm(model)
            readout = {id(net.readout_w), id(net.readout_b)}
            return self.accelerator.clip_grad_norm_([p for p in model.parameters() if id(p) not in readout], self.args.max_grad_norm)

        def _save(self, output_dir=None, state_dict=None):  # noqa: ANN001, ANN202
            # PrmNet is not a PreTrainedModel: its state dict in one torch file, which keeps tied embeddings tied
            # (safetensors refuses shared tensors); _load_from_checkpoint reads it back on resume.
            if self.args.should_save:
                os.makedirs(output_dir, exist_ok=True)
                torch.save(state_dict if state_dict is not None else self.model.state_dict(), os.path.join(output_dir, WEIGHTS_NAME))

    trainer = PrmTrainer(model=net, args=args, train_dataset=dataset, data_collator=make_collator(pad_id), callbacks=callbacks)
    trainer.remove_callback(PrinterCallback)  # it prints log dicts to stdout, which carries the JSON events alone
    return trainer


def training_args(cfg: dict[str, Any], ckpt_dir: Path, bf16: bool) -> Any:
    from transformers import TrainingArguments

    cosine = cfg["lr_schedule"] == "cosine"
    return TrainingArguments(
        output_dir=str(ckpt_dir),
        num_train_epochs=cfg["epochs"],
        max_steps=cfg["max_steps"] or -1,
        per_device_train_batch_size=cfg["batch_size"],
        learning_rate=cfg["learning_rate"],
        weight_decay=cfg["weight_decay"],
        max_grad_norm=cfg["grad_clip"],
        warmup_steps=cfg["warmup_steps"],
        lr_scheduler_type="cosine_with_min_lr" if cosine else "constant_with_warmup",
        lr_scheduler_kwargs={"min_lr_rate": 0.1} if cosine else {},
        bf16=bf16,
        fp16=False,
        save_strategy="steps" if cfg["save_steps"] else "no",
        save_steps=cfg["save_steps"] or 1,
        save_total_limit=2,  # the newest and the one before it, in case the newest was cut off mid-write
        save_only_model=False,  # optimizer, scheduler and RNG state too: exact resume
        logging_strategy="steps",
        logging_steps=cfg["log_every"],
        seed=cfg["seed"],
        data_seed=cfg["seed"],
        report_to="none",
        disable_tqdm=True,
        remove_unused_columns=False,  # the collator needs every field
        dataloader_pin_memory=torch.cuda.is_available(),
        ddp_find_unused_parameters=False,  # every trainable parameter is used in every step
    )


def apply_lora(cfg: dict[str, Any], lm: Any, tokenizer: Any) -> Any:
    """LoRA adapters from the config, plus the step tag's embedding row (a new token, so it must learn) and, for
    kind regression, the score head (new too): peft trains them and merges them back when the output is written."""
    from peft import get_peft_model

    regression = cfg["kind"] == "regression"
    extra: dict[str, Any] = {"trainable_token_indices": {"embed_tokens": [tag_token_id(tokenizer, cfg["format"])]}}
    if regression:
        extra["modules_to_save"] = ["score"]
    try:
        return get_peft_model(lm, cfg["lora"].peft_config("TOKEN_CLS" if regression else "CAUSAL_LM", **extra))
    except ValueError as e:  # e.g. target modules the model does not have
        raise BadConfig(f"'lora': {e}") from None


def work_dir_for(cfg: dict[str, Any]) -> Path:
    """Beside the output: the Trainer's checkpoints and the job identity."""
    out = Path(cfg["output_dir"])
    return out.parent / f".{out.name}.checkpoints"


def job_identity(cfg: dict[str, Any], bf16: bool) -> dict[str, Any]:
    """Everything that determines the weights: checkpoints of a job that differs in any of it are refused."""
    d = {k: v for k, v in settings_json(cfg).items() if k not in NOT_IDENTITY}
    d["bf16"] = bf16
    d["train_file_sha256"] = sha256_file(cfg["train_file"])
    return d


def settings_json(cfg: dict[str, Any]) -> dict[str, Any]:
    d = {k: cfg[k] for k in DEFAULTS}
    d["format"] = cfg["format"].to_dict()
    d["lora"] = asdict(cfg["lora"]) if cfg["lora"] is not None else None
    return json.loads(json.dumps(d))  # tuples as lists: what the identity file reads back


@torch.no_grad()
def predict(net: Any, encoded: list[PrmInput], pad_id: int, device: Any, batch_size: int = 64) -> list[float]:
    """Scores for every tag of every encoded example, in order, through the (possibly wrapped) PrmNet: every process
    calls it (a sharded model gathers its weights collectively)."""
    was_training = net.training
    net.eval()
    out: list[float] = []
    for s in range(0, len(encoded), batch_size):
        batch = {k: v.to(device) for k, v in collate(encoded[s : s + batch_size], pad_id).items()}
        logits, _ = net(**batch)
        out.extend(torch.sigmoid(logits.float()).tolist())  # scores_from_outputs: the readout is in the logits
    net.train(was_training)
    return out


def final_weights(trainer: Any, net: PrmNet) -> tuple[Any, dict[str, Any] | None, Readout]:
    """(the LM to save, its state dict or None for its own, the readout). All processes call this: the state dict is
    gathered from ZeRO-3 / FSDP shards collectively; LoRA is merged into the LM (one process or data-parallel)."""
    if getattr(trainer, "is_fsdp_enabled", False):
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    state = trainer.accelerator.get_state_dict(trainer.model_wrapped)
    readout = Readout(float(state["readout_w"]), float(state["readout_b"])) if net.step_logprob_feature else Readout()
    if net.lora:
        return net.lm.merge_and_unload(), None, readout
    return net.lm, {k[len("lm.") :]: v for k, v in state.items() if k.startswith("lm.")}, readout


def train(cfg: dict[str, Any], emit: Emit = emit) -> tuple[Path, dict[str, Any]]:
    from transformers import set_seed

    fmt: PrmFormat = cfg["format"]
    kind: str = cfg["kind"]
    bf16 = cfg["bf16"] if cfg["bf16"] is not None else torch.cuda.is_available()
    check_precision(bf16)
    if cfg["lora"] is not None and (os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true" or os.environ.get("ACCELERATE_USE_FSDP") == "true"):
        raise BadConfig("'lora' needs the whole model on every process to merge it: one process or data-parallel, not DeepSpeed or FSDP")
    if cfg["threads"]:
        torch.set_num_threads(cfg["threads"])
    torch.use_deterministic_algorithms(True, warn_only=torch.cuda.is_available())

    examples = load_examples(cfg["train_file"], kind, fmt)
    eval_examples = load_examples(cfg["eval_file"], kind, fmt) if cfg["eval_file"] else []
    work = work_dir_for(cfg)
    resume = find_resume_checkpoint(work, log)
    check_job_identity(work / JOB_FILE, job_identity(cfg, bf16), has_checkpoints=resume is not None)
    callbacks = trainer_callbacks(emit, FAULT_ENV, work)
    args = training_args(cfg, work, bf16)  # before the model: under ZeRO-3 it is loaded partitioned

    set_seed(cfg["seed"])
    texts = [ex.question + "".join(ex.steps) for ex in examples]
    lm, tokenizer, max_length = build_model_and_tokenizer(cfg, texts)
    encoded = encode_examples(tokenizer, examples, fmt, max_length, cfg["train_file"])
    eval_encoded = encode_examples(tokenizer, eval_examples, fmt, max_length, cfg["eval_file"]) if eval_examples else []
    if cfg["gradient_checkpointing"]:
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    n_params = sum(p.numel() for p in lm.parameters())
    if cfg["lora"] is not None:
        lm = apply_lora(cfg, lm, tokenizer)
    net = PrmNet(lm, kind, label_token_ids(tokenizer, fmt) if kind != "regression" else None, cfg["step_logprob_feature"], cfg["step_logprob_feature"] or cfg["lm_loss_weight"] > 0)
    question_ids: dict[str, int] = {}
    dataset = [
        {"input": e, "labels": ex.labels, "question": question_ids.setdefault(ex.question, len(question_ids))} for e, ex in zip(encoded, examples)
    ]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    trainer = make_trainer(cfg, args, net, dataset, pad, callbacks)
    log(
        f"{'resuming from ' + resume if resume else 'starting'}: kind {kind}, {n_params:,} parameters, {len(encoded)} examples, "
        f"{sum(len(e.tag_positions) for e in encoded)} tags, max_length {max_length}"
    )
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = trainer_metrics(trainer, result.metrics.get("train_runtime", 0.0))
    if eval_encoded:
        scores = predict(trainer.model_wrapped, eval_encoded, pad, trainer.args.device)
        metrics["eval"] = score_metrics(scores, [y for ex in eval_examples for y in ex.labels])

    lm, lm_state, readout = final_weights(trainer, net)
    out = Path(cfg["output_dir"])
    if is_main_process():
        write_checkpoint(cfg, out, lm, lm_state, tokenizer, max_length, readout, n_params, metrics)
        shutil.rmtree(work, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    return out, metrics


def write_checkpoint(
    cfg: dict[str, Any], out: Path, lm: Any, lm_state: dict[str, Any] | None, tokenizer: Any, max_length: int, readout: Readout, n_params: int, metrics: dict[str, Any]
) -> None:
    """The model, the tokenizer and prm_config.json, written beside `out` and renamed over it."""
    fmt: PrmFormat = cfg["format"]
    kind: str = cfg["kind"]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        lm.save_pretrained(tmp, state_dict=lm_state)
        tokenizer.model_max_length = max_length
        tokenizer.save_pretrained(tmp)
        good, bad = label_token_ids(tokenizer, fmt)
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
            "train": {k: v for k, v in settings_json(cfg).items() if k != "format"},
            "metrics": metrics,
        }
        (tmp / PRM_CONFIG).write_text(json.dumps(prm_config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        replace_dir_atomically(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: list[str] | None = None, events: TextIO | None = None) -> int:
    """Run the job; JSON events go to `events` (stdout by default). Returns the exit code for done, bad input and
    out-of-memory; any other error propagates (retryable)."""
    ap = argparse.ArgumentParser(prog="python -m prm_raft.prm_train", description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True, help="job config JSON file")
    ns = ap.parse_args(argv)
    job_emit = make_emitter(events)
    cfg: dict[str, Any] | None = None

    def job() -> int:
        nonlocal cfg
        cfg = load_config(ns.config)
        out, metrics = train(cfg, job_emit)
        job_emit("done", output=str(out.resolve()), metrics=metrics)
        return EXIT_OK

    # failure.json beside the output (where the pipeline's job runner looks: its output_dir's parent)
    return run_guarded(job, job_emit, log, lambda: Path(cfg["output_dir"]).parent if cfg is not None else None)


if __name__ == "__main__":
    cli(main)
