"""The PRM service: scores every step of many solutions, in forward passes under a token budget.

    python -m prm_raft.prm_server --model DIR --host 127.0.0.1 --port 8200 [--served-model-name NAME]
        [--device auto|cpu|cuda[:N]] [--dtype auto|float32|bfloat16|float16] [--max-batch-tokens N] [--max-items N]

``DIR`` is a checkpoint written by ``prm_raft.prm_train`` (model, tokenizer, ``prm_config.json``). Endpoints:

- ``POST /v1/score`` ``{"model": NAME, "items": [{"id": "q17/3", "question": "...", "steps": ["...", "..."]}]}``
  -> ``200 {"model": NAME, "scores": [{"id": "q17/3", "step_scores": [0.93, 0.41]}]}``: one score in [0, 1] per
  step for a PRM, one per item for an ORM (``step_scores`` of length 1: the whole response as one step), in the
  order of ``items``. Every step of a response is read off that response's row of one forward pass (never one
  pass per step). The items are sorted by length and grouped into forward passes of at most ``--max-batch-tokens``
  padded tokens (rows x the longest row; an item longer than that goes alone).
- ``GET /health`` -> 200 once the model is loaded (503 while loading).
- ``GET /v1/models`` -> vLLM's list format: ``{"object": "list", "data": [{"id": NAME, "object": "model", ...,
  "max_model_len": ..., "kind": ...}]}``.

Errors (``prm_raft.serving``'s format): 400 (bad JSON, wrong types, unknown fields, empty ``items`` or ``steps``,
more than ``--max-items`` items, an input longer than the model's limit — the message says the limit), 404 (unknown
model or path), 405 (wrong method), 413 (body over ``--max-body-bytes``), 503 (still loading), and **507** when a
forward pass runs out of device memory: the cache is freed and the message says "too large for one forward pass,
split the request" (with one item: its id and token count). The project's PRM client splits the request in halves
on a 507. A lock serializes the model between requests.

Test hook: ``PRM_RAFT_PRM_FAULT=oom-above-tokens:N`` makes every forward pass of more than N padded tokens raise a
CUDA out-of-memory error, so the 507 path runs on a CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402
from fastapi import Depends, FastAPI, Request  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field  # noqa: E402

from prm_raft import serving  # noqa: E402
from prm_raft.prm_format import (  # noqa: E402
    KINDS,
    FormatError,
    PrmFormat,
    PrmInput,
    Readout,
    TagOutputs,
    build_prm_input,
    collate,
    label_token_ids,
    scores_from_outputs,
    steps_for_kind,
    tag_outputs,
    tag_token_id,
)
from prm_raft.serving import ApiError  # noqa: E402

PRM_CONFIG = "prm_config.json"
DEFAULT_MAX_ITEMS = 1024
DEFAULT_MAX_BATCH_TOKENS = 16384  # a 7B PRM in bf16 scores 16K tokens in one pass on a 24 GB GPU with room to spare
FAULT_ENV = "PRM_RAFT_PRM_FAULT"
OUT_OF_MEMORY = 507
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
USAGE = 'A score request is {"model": "<name>", "items": [{"id": "<id>", "question": "<text>", "steps": ["<step>", ...]}, ...]}.'


class ForwardOutOfMemory(Exception):
    """A forward pass ran out of device memory (the cache is freed by then): the items need fewer per pass."""

    def __init__(self, rows: int, tokens: int) -> None:
        super().__init__(f"out of memory in a forward pass of {rows} items ({tokens} padded tokens)")
        self.rows = rows
        self.tokens = tokens


def resolve_device(spec: str) -> torch.device:
    """`auto` (CUDA when there is one), `cpu`, `cuda` or `cuda:N`; FormatError when it is not there."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", spec):
        raise FormatError(f"--device {spec!r}: expected auto, cpu, cuda or cuda:N")
    device = torch.device(spec)
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise FormatError(f"--device {spec}: no such CUDA device here ({torch.cuda.device_count()} visible); use --device cpu or auto")
    return device


def resolve_dtype(spec: str, device: torch.device) -> torch.dtype:
    """`auto`: bfloat16 on CUDA (float16 on GPUs without bf16), float32 on the CPU."""
    if spec != "auto":
        return DTYPES[spec]
    if device.type != "cuda":
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def parse_fault(spec: str | None) -> int | None:
    """TEST HOOK: `oom-above-tokens:N` -> N (forward passes of more padded tokens fail as out of memory)."""
    if not spec:
        return None
    m = re.fullmatch(r"oom-above-tokens:(\d+)", spec.strip())
    if not m:
        raise FormatError(f"{FAULT_ENV}={spec!r}: expected oom-above-tokens:N")
    return int(m.group(1))


def plan_batches(lengths: Sequence[int], max_batch_tokens: int) -> list[list[int]]:
    """Item indices grouped into forward passes: longest first, each pass's padded size (rows x its longest item)
    within `max_batch_tokens`; an item longer than the budget goes alone."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * lengths[batches[-1][0]] <= max_batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


class PrmScorer:
    """A trained PRM/ORM checkpoint and the one way to score with it."""

    def __init__(
        self,
        model_dir: str | os.PathLike[str],
        *,
        device: str = "cpu",
        dtype: str = "auto",
        max_batch_tokens: int = DEFAULT_MAX_BATCH_TOKENS,
        fake_oom_above_tokens: int | None = None,
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification, AutoTokenizer

        self.model_dir = str(Path(model_dir).resolve())
        cfg_path = Path(model_dir) / PRM_CONFIG
        if not cfg_path.is_file():
            raise FormatError(f"{model_dir} has no {PRM_CONFIG}: not a PRM checkpoint written by prm_raft.prm_train")
        self.config = json.loads(cfg_path.read_text(encoding="utf-8"))
        self.kind = self.config.get("kind")
        if self.kind not in KINDS:
            raise FormatError(f"{cfg_path}: unknown kind {self.kind!r}")
        self.fmt = PrmFormat.from_dict(self.config)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.max_batch_tokens = max_batch_tokens
        self.fake_oom_above_tokens = fake_oom_above_tokens
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.model_max_length = int(1e12)  # lengths are checked against self.max_length, with a clear error
        cls = AutoModelForTokenClassification if self.kind == "regression" else AutoModelForCausalLM
        self.model = cls.from_pretrained(model_dir, dtype=self.dtype).to(self.device)
        self.model.eval()
        # the checkpoint's recorded ids must be what this tokenizer gives: train and score cannot drift apart
        self.tag_id = tag_token_id(self.tokenizer, self.fmt)
        self.label_ids = label_token_ids(self.tokenizer, self.fmt) if self.kind != "regression" else None
        recorded = (self.config.get("step_tag_id"), self.config.get("good_token_id"), self.config.get("bad_token_id"))
        actual = (self.tag_id, *(self.label_ids or label_token_ids(self.tokenizer, self.fmt)))
        if recorded != actual:
            raise FormatError(f"{cfg_path}: token ids {recorded} (tag, good, bad) differ from the tokenizer's {actual}")
        ctx = int(getattr(self.model.config, "max_position_embeddings", 0) or 0) or None
        self.max_length = int(self.config.get("max_length") or ctx or self.tokenizer.model_max_length)
        if ctx:
            self.max_length = min(self.max_length, ctx)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.readout = Readout.from_dict(self.config.get("readout"))
        self.lock = threading.Lock()

    def encode(self, question: str, steps: Sequence[str]) -> PrmInput:
        return build_prm_input(self.tokenizer, question, steps_for_kind(self.kind, steps, self.fmt), self.fmt)

    def score_encoded(self, encoded: Sequence[PrmInput]) -> list[list[float]]:
        """Scores for every tag of every encoded item, in order, from forward passes under the token budget.
        Raises ForwardOutOfMemory when one runs out of device memory."""
        out: list[list[float]] = [[] for _ in encoded]
        with self.lock:
            for batch in plan_batches([len(e.input_ids) for e in encoded], self.max_batch_tokens):
                items = [encoded[i] for i in batch]
                try:
                    scores = self._forward(items)
                except torch.OutOfMemoryError:
                    scores = None  # handled below, outside the except: its traceback holds the pass's tensors
                if scores is None:
                    if self.device.type == "cuda":
                        torch.cuda.empty_cache()
                    raise ForwardOutOfMemory(len(items), len(items) * max(len(e.input_ids) for e in items))
                for i, s in zip(batch, scores):
                    out[i] = s
        return out

    @torch.no_grad()
    def _forward(self, encoded: Sequence[PrmInput]) -> list[list[float]]:
        """ONE forward pass over the right-padded batch."""
        batch = {k: v.to(self.device) for k, v in collate(encoded, self.pad_id).items()}
        tokens = batch["input_ids"].numel()
        if self.fake_oom_above_tokens is not None and tokens > self.fake_oom_above_tokens:
            raise torch.OutOfMemoryError(f"CUDA out of memory. (fake, {FAULT_ENV} test hook: {tokens} tokens)")
        outputs = tag_outputs(self.model, self.kind, batch, self.label_ids, step_logprob=self.readout.uses_step_logprob)
        outputs = TagOutputs(*(None if t is None else t.float() for t in outputs))  # the readout in float32, not bf16
        flat = scores_from_outputs(self.kind, outputs, self.readout).tolist()
        out, i = [], 0
        for e in encoded:
            n = len(e.tag_positions)
            out.append([min(1.0, max(0.0, float(s))) for s in flat[i : i + n]])
            i += n
        return out

    def score(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return self.score_encoded([self.encode(q, steps) for q, steps in items])


class ScoreItem(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    id: str
    question: str
    steps: list[str] = Field(min_length=1)


class ScoreRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")
    model: str | None = None
    items: list[ScoreItem] = Field(min_length=1)


def create_app(served_name: str, *, max_items: int = DEFAULT_MAX_ITEMS, max_body_bytes: int = serving.DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The PRM server's routes; set `app.state.model` to a PrmScorer to serve it."""
    app = serving.create_app(USAGE, max_body_bytes)
    created = int(time.time())

    @app.get("/v1/models")
    async def models(scorer: PrmScorer = Depends(serving.loaded)) -> dict[str, Any]:
        entry = {"id": served_name, "object": "model", "created": created, "owned_by": "prm-raft", "root": scorer.model_dir, "parent": None}
        return {"object": "list", "data": [{**entry, "max_model_len": scorer.max_length, "kind": scorer.kind}]}

    @app.post("/v1/score")
    def score(req: ScoreRequest, request: Request, scorer: PrmScorer = Depends(serving.loaded)) -> dict[str, Any]:
        if req.model is not None and req.model != served_name:
            raise ApiError(404, f"The model `{req.model}` does not exist. This server serves `{served_name}`.", "model")
        if len(req.items) > max_items:
            raise ApiError(400, f"too many items: {len(req.items)}; this server scores at most {max_items} items per request (--max-items); split the request", "items")
        encoded = []
        for it in req.items:
            e = scorer.encode(it.question, it.steps)
            if len(e.input_ids) > scorer.max_length:
                raise ApiError(
                    400,
                    f"item {it.id!r} is {len(e.input_ids)} tokens long (question, steps and one step tag per step); "
                    f"the limit is {scorer.max_length} tokens: shorten it or leave it out",
                    "items",
                )
            encoded.append(e)
        try:
            scores = scorer.score_encoded(encoded)
        except ForwardOutOfMemory as e:
            raise ApiError(OUT_OF_MEMORY, _oom_message(e, req.items, encoded, scorer)) from None
        tokens = sum(len(e.input_ids) for e in encoded)
        request.state.summary = f"items={len(req.items)} tags={sum(len(s) for s in scores)} tokens={tokens}"
        return {"model": served_name, "scores": [{"id": it.id, "step_scores": s} for it, s in zip(req.items, scores)]}

    return app


def _oom_message(e: ForwardOutOfMemory, items: Sequence[ScoreItem], encoded: Sequence[PrmInput], scorer: PrmScorer) -> str:
    where = f"on {scorer.device} ({str(scorer.dtype).removeprefix('torch.')})"
    if len(items) == 1:
        return (
            f"item {items[0].id!r} ({len(encoded[0].input_ids)} tokens) is too large for one forward pass {where} even "
            "alone: shorten it, or serve the PRM on a device with more memory"
        )
    return (
        f"too large for one forward pass, split the request: {e} {where}, out of {len(items)} items "
        f"(or restart the server with a smaller --max-batch-tokens than {scorer.max_batch_tokens})"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.prm_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a PRM checkpoint directory written by prm_raft.prm_train")
    serving.add_server_args(ap, default_port=8200)
    ap.add_argument("--max-items", type=serving.positive_int, default=DEFAULT_MAX_ITEMS, help="most items in one request")
    ap.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    ap.add_argument("--dtype", default="auto", choices=["auto", *DTYPES], help="auto: bfloat16 on CUDA, float32 on the CPU")
    ap.add_argument("--max-batch-tokens", type=serving.positive_int, default=DEFAULT_MAX_BATCH_TOKENS, help="most padded tokens (rows x longest) in one forward pass")
    args = ap.parse_args(argv)

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file() or not (model_dir / PRM_CONFIG).is_file():
        print(f"prm_server: --model {args.model} is not a PRM checkpoint directory (needs config.json and {PRM_CONFIG})", file=sys.stderr)
        return 2
    try:
        device = resolve_device(args.device)
        fake_oom = parse_fault(os.environ.get(FAULT_ENV))
    except FormatError as e:
        print(f"prm_server: {e}", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.served_model_name or model_dir.resolve().name
    app = create_app(name, max_items=args.max_items, max_body_bytes=args.max_body_bytes)

    def load() -> PrmScorer:
        return PrmScorer(model_dir, device=str(device), dtype=args.dtype, max_batch_tokens=args.max_batch_tokens, fake_oom_above_tokens=fake_oom)

    def describe(s: PrmScorer) -> str:
        return f"model {name!r} ({s.kind}, max {s.max_length} tokens) on {s.device} in {str(s.dtype).removeprefix('torch.')}"

    return serving.serve(app, args, "prm_server", load, describe, bad_model=(FormatError,))


if __name__ == "__main__":
    sys.exit(main())
