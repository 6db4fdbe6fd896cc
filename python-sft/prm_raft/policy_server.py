"""A small CPU policy server speaking vLLM's OpenAI-compatible completions wire format.

    python -m prm_raft.policy_server --model DIR --host 127.0.0.1 --port 8100 [--served-model-name NAME]
        [--max-n N] [--max-prompts N] [--max-batch ROWS]

Endpoints (requests validated at the edge by pydantic; errors in ``prm_raft.serving``'s format):

- ``GET /health`` -> 200 once the model is loaded (503 while loading);
- ``GET /v1/models`` -> the one served model, with ``max_model_len``;
- ``POST /v1/completions`` -> ``model``, ``prompt`` (string or list of at most ``--max-prompts`` strings), ``n`` (at
  most ``--max-n``), ``temperature`` (0 = greedy), ``top_p``, ``max_tokens`` (default 16), ``stop`` (string or list),
  ``seed``; ``stream: true`` is rejected; ``logprobs`` is ignored (answered with null), ``echo: true`` prepends the
  prompt; a null field means its default, other fields are ignored.

A request's prompts and samples run as one left-padded batch (``prompts x n`` rows, in chunks of at most
``--max-batch`` rows) under one lock; a stopping criterion ends generation as soon as every row has hit EOS or
a stop string. Stop strings are cut from the text, as vLLM does. A stop string that is one special token (a chat
model's ``<|im_end|>``, ``</s>``) ends generation at that token: the decoded text leaves special tokens out, so it
could never be found there. Same ``seed`` + same request => same output.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Threads that sleep while they wait instead of spinning: with busy-waiting OpenMP threads, a 2-thread job on a
# 2-core machine that other processes also use runs 10x slower; passive waiting costs little when it is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from fastapi import Depends, FastAPI, Request  # noqa: E402
from pydantic import BaseModel, ConfigDict, Field, model_validator  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
)

from prm_raft import serving  # noqa: E402
from prm_raft.serving import ApiError  # noqa: E402

GREEDY_TEMPERATURE = 1e-5  # like vLLM: a temperature below this means greedy decoding
DEFAULT_MAX_N = 256  # the pipeline samples 16 per prompt; the paper's best-of-N goes to 64
DEFAULT_MAX_PROMPTS = 1024
USAGE = (
    'A completion request is {"model": "<name>", "prompt": "<text>" or ["<text>", ...], "n": 1, "temperature": 1.0, '
    '"top_p": 1.0, "max_tokens": 16, "stop": "<text>" or ["<text>", ...], "seed": <int>, "echo": false} (OpenAI\'s completions API).'
)


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length"
    stop_reason: str | None  # the stop string that ended the text, else None
    completion_tokens: int


class _StopCriteria(StoppingCriteria):
    """Marks each row done at EOS, at a stop token or at the first stop string in its generated text; records where."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: list[str], eos_ids: set[int], stop_ids: dict[int, str] | None = None) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = stops
        self.eos_ids = eos_ids
        self.stop_ids = stop_ids or {}
        self.done_len: dict[int, int] = {}  # row -> number of generated tokens when it finished

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        batch = input_ids.shape[0]
        gen = input_ids[:, self.prompt_len :]
        n_gen = gen.shape[1]
        out = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        for row in range(batch):
            if row in self.done_len:
                out[row] = True
                continue
            if n_gen == 0:
                continue
            if int(gen[row, -1]) in self.eos_ids or int(gen[row, -1]) in self.stop_ids:
                self.done_len[row] = n_gen
                out[row] = True
                continue
            if self.stops:
                text = self.tokenizer.decode(gen[row].tolist(), skip_special_tokens=True)
                if any(s in text for s in self.stops):
                    self.done_len[row] = n_gen
                    out[row] = True
        return out


def _cut_at_stop(text: str, stops: list[str]) -> tuple[str, str | None]:
    """Cut `text` before the earliest stop string (ties: the first in list order)."""
    best: tuple[int, str] | None = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or i < best[0]):
            best = (i, s)
    if best is None:
        return text, None
    return text[: best[0]], best[1]


def weights_root(model_dir: str) -> str:
    """The dir plus a hash of its weight files: clients key caches on `root`, and a retrained model may reuse a path."""
    files = sorted(p for p in Path(model_dir).glob("*") if p.suffix in (".safetensors", ".bin") and p.is_file())
    if not files:
        return model_dir
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return f"{model_dir}@sha256:{h.hexdigest()[:16]}"


class Engine:
    """A causal LM and its tokenizer, with batched completion under one lock."""

    def __init__(self, model_dir: str | os.PathLike[str], max_batch: int = 256, *, model: Any = None, tokenizer: Any = None) -> None:
        """Load `model_dir`; or wrap an already loaded `model` and `tokenizer` (then `model_dir` is only a label)."""
        self.model_dir = str(model_dir)
        self.root = weights_root(self.model_dir)
        self.tokenizer = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(self.model_dir)
        self.model = model if model is not None else AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
        self.model.eval()
        cfg = self.model.config
        self.max_model_len = int(
            getattr(cfg, "max_position_embeddings", None) or getattr(self.tokenizer, "model_max_length", 2048)
        )
        eos = self.tokenizer.eos_token_id
        if eos is None:
            eos = getattr(cfg, "eos_token_id", None)
        eos_list = eos if isinstance(eos, list) else ([] if eos is None else [eos])
        self.eos_ids = {int(e) for e in eos_list}
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (eos_list[0] if eos_list else 0))
        self.max_batch = max(1, int(max_batch))
        self.lock = threading.Lock()

    def encode(self, prompt: str) -> list[int]:
        """Prompt token ids, special tokens (BOS) included as the tokenizer adds them."""
        return list(self.tokenizer(prompt, add_special_tokens=True)["input_ids"])

    def special_stop_ids(self, stops: list[str]) -> dict[int, str]:
        """The stop strings that are exactly one special token, by token id (decoding skips special tokens)."""
        out: dict[int, str] = {}
        for s in stops:
            ids = self.tokenizer(s, add_special_tokens=False)["input_ids"]
            if len(ids) == 1 and ids[0] not in out and self.tokenizer.decode(ids) == s and self.tokenizer.decode(ids, skip_special_tokens=True) == "":
                out[int(ids[0])] = s
        return out

    def complete(
        self,
        prompts: list[str] | list[list[int]],
        *,
        n: int = 1,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_tokens: int = 16,
        stop: list[str] | None = None,
        seed: int | None = None,
    ) -> list[list[Completion]]:
        """For each prompt, `n` completions. Prompts may be strings or already-encoded token id lists."""
        stops = [s for s in (stop or []) if s]
        stop_ids = self.special_stop_ids(stops)
        encoded = [p if isinstance(p, list) else self.encode(p) for p in prompts]
        greedy = temperature < GREEDY_TEMPERATURE
        rows_per_prompt = 1 if greedy else n
        per_chunk = max(1, self.max_batch // rows_per_prompt)
        results: list[list[Completion]] = []
        with self.lock, torch.inference_mode():
            if not greedy:
                torch.manual_seed(seed if seed is not None else secrets.randbits(63))
            for start in range(0, len(encoded), per_chunk):
                chunk = encoded[start : start + per_chunk]
                comps = self._generate(chunk, rows_per_prompt, greedy, temperature, top_p, max_tokens, stops, stop_ids)
                for i in range(len(chunk)):
                    row = comps[i * rows_per_prompt : (i + 1) * rows_per_prompt]
                    results.append(row * n if greedy else row)
        return results

    def _generate(
        self,
        chunk: list[list[int]],
        rows_per_prompt: int,
        greedy: bool,
        temperature: float,
        top_p: float,
        max_tokens: int,
        stops: list[str],
        stop_ids: dict[int, str] | None = None,
    ) -> list[Completion]:
        stop_ids = stop_ids or {}
        width = max(len(ids) for ids in chunk)
        input_ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, ids in enumerate(chunk):  # left padding
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[i, width - len(ids) :] = 1
        gen_cfg = GenerationConfig(
            # A preallocated cache: the growing default one re-concatenates every layer's keys and values each token,
            # which on a small model costs more than the forward pass (greedy tinymath evaluation ran about 2x faster).
            cache_implementation="static",
            max_new_tokens=max_tokens,
            do_sample=not greedy,
            temperature=None if greedy else float(temperature),
            top_p=None if greedy else float(top_p),
            top_k=None if greedy else 0,
            num_return_sequences=rows_per_prompt,
            eos_token_id=sorted(self.eos_ids) or None,
            pad_token_id=self.pad_id,
            bos_token_id=self.tokenizer.bos_token_id,
        )
        criteria = _StopCriteria(self.tokenizer, width, stops, self.eos_ids, stop_ids)
        out = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention,
            generation_config=gen_cfg,
            stopping_criteria=StoppingCriteriaList([criteria]),
        )
        gen = out[:, width:].tolist()
        comps: list[Completion] = []
        for row, toks in enumerate(gen):
            n_tok = criteria.done_len.get(row)
            if n_tok is None:  # ran to max_tokens (the criterion also saw the last token)
                toks = toks[:max_tokens]
                n_tok = len(toks)
            else:
                toks = toks[:n_tok]
            hit_eos = bool(toks) and toks[-1] in self.eos_ids
            hit_stop_token = bool(toks) and not hit_eos and toks[-1] in stop_ids
            text = self.tokenizer.decode(toks[:-1] if hit_eos or hit_stop_token else toks, skip_special_tokens=True)
            text, stop_reason = _cut_at_stop(text, stops)
            if stop_reason is None and hit_stop_token:
                stop_reason = stop_ids[toks[-1]]
            if stop_reason is not None or hit_eos:
                comps.append(Completion(text, "stop", stop_reason, n_tok))
            else:
                comps.append(Completion(text, "length", None, n_tok))
        return comps


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------


class CompletionRequest(BaseModel):
    """A /v1/completions body. Unknown fields (``logprobs``, ``user``, ...) are ignored, as before."""

    model_config = ConfigDict(strict=True, extra="ignore")
    model: str | None = None
    prompt: list[str] = Field(min_length=1)
    n: int = Field(1, ge=1)
    temperature: float = Field(1.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(16, ge=1)
    stop: list[str] = []
    seed: int | None = None
    echo: bool = False
    stream: Literal[False] = False

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        data = {k: v for k, v in data.items() if v is not None}  # null means the default, as in OpenAI's API
        for key in ("prompt", "stop"):  # a string stands for a list of one
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
        return data


def create_app(
    served_name: str,
    *,
    max_n: int = DEFAULT_MAX_N,
    max_prompts: int = DEFAULT_MAX_PROMPTS,
    max_body_bytes: int = serving.DEFAULT_MAX_BODY_BYTES,
) -> FastAPI:
    """The policy server's routes; set `app.state.model` to an Engine to serve it."""
    app = serving.create_app(USAGE, max_body_bytes)
    created = int(time.time())

    @app.get("/v1/models")
    async def models(engine: Engine = Depends(serving.loaded)) -> dict[str, Any]:
        entry = {"id": served_name, "object": "model", "created": created, "owned_by": "prm-raft", "root": engine.root, "parent": None}
        return {"object": "list", "data": [{**entry, "max_model_len": engine.max_model_len}]}

    @app.post("/v1/completions")
    def completions(req: CompletionRequest, request: Request, engine: Engine = Depends(serving.loaded)) -> dict[str, Any]:
        if req.model is not None and req.model != served_name:
            raise ApiError(404, f"The model `{req.model}` does not exist. This server serves `{served_name}`.", "model")
        if req.n > max_n:
            raise ApiError(400, f"'n' is {req.n}; this server samples at most {max_n} completions per prompt (start it with a larger --max-n)", "n")
        if len(req.prompt) > max_prompts:
            raise ApiError(400, f"{len(req.prompt)} prompts in one request; this server takes at most {max_prompts} (send fewer, or start it with a larger --max-prompts)", "prompt")
        encoded = [engine.encode(p) for p in req.prompt]
        for i, ids in enumerate(encoded):
            where = "" if len(encoded) == 1 else f" (prompt {i})"
            if not ids:
                raise ApiError(400, f"the prompt{where} is empty", "prompt")
            if len(ids) + req.max_tokens > engine.max_model_len:
                raise ApiError(
                    400,
                    f"This model's maximum context length is {engine.max_model_len} tokens. However, you requested "
                    f"{len(ids) + req.max_tokens} tokens ({len(ids)} in the prompt{where}, {req.max_tokens} in the "
                    f"completion). Please reduce the length of the prompt or of max_tokens.",
                    "max_tokens",
                )
        seed = None if req.seed is None else req.seed % (2**63)  # negative seeds are fine, torch wants them non-negative
        results = engine.complete(
            encoded, n=req.n, temperature=req.temperature, top_p=req.top_p, max_tokens=req.max_tokens, stop=req.stop, seed=seed
        )
        choices = []
        completion_tokens = 0
        for p_idx, comps in enumerate(results):
            for j, c in enumerate(comps):
                completion_tokens += c.completion_tokens
                choices.append(
                    {
                        "index": p_idx * req.n + j,
                        "text": (req.prompt[p_idx] + c.text) if req.echo else c.text,
                        "logprobs": None,
                        "finish_reason": c.finish_reason,
                        "stop_reason": c.stop_reason,
                    }
                )
        prompt_tokens = sum(len(ids) for ids in encoded)
        request.state.summary = (
            f"prompts={len(req.prompt)} n={req.n} temperature={req.temperature:g} max_tokens={req.max_tokens} completion_tokens={completion_tokens}"
        )
        return {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": served_name,
            "choices": choices,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
        }

    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.policy_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a local checkpoint directory (save_pretrained layout)")
    serving.add_server_args(ap, default_port=8100)
    ap.add_argument("--max-batch", type=serving.positive_int, default=256, help="most rows (prompts x n) in one forward batch")
    ap.add_argument("--max-n", type=serving.positive_int, default=DEFAULT_MAX_N, help="most completions per prompt in one request")
    ap.add_argument("--max-prompts", type=serving.positive_int, default=DEFAULT_MAX_PROMPTS, help="most prompts in one request")
    args = ap.parse_args(argv)

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        print(f"policy_server: --model {args.model} is not a checkpoint directory (no config.json)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.served_model_name or model_dir.resolve().name
    app = create_app(name, max_n=args.max_n, max_prompts=args.max_prompts, max_body_bytes=args.max_body_bytes)

    def describe(engine: Engine) -> str:
        return f"model {name!r} from {model_dir}, max_model_len {engine.max_model_len}"

    return serving.serve(app, args, "policy_server", lambda: Engine(model_dir, max_batch=args.max_batch), describe)


if __name__ == "__main__":
    sys.exit(main())
