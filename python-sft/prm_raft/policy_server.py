"""A small CPU policy server speaking vLLM's OpenAI-compatible completions wire format.

    python -m prm_raft.policy_server --model DIR --host 127.0.0.1 --port 8100 [--served-model-name NAME]

Endpoints (validated at the edge, errors as ``{"error": {"message", "type", "param", "code"}}``):

- ``GET /health`` -> 200 once the model is loaded (503 while loading);
- ``GET /v1/models`` -> the one served model, with ``max_model_len``;
- ``POST /v1/completions`` -> ``model``, ``prompt`` (string or list of strings), ``n``, ``temperature``
  (0 = greedy), ``top_p``, ``max_tokens`` (default 16), ``stop`` (string or list), ``seed``;
  ``stream: true`` is rejected; ``logprobs`` is ignored (answered with null), ``echo: true`` prepends the prompt.

A request's prompts and samples run as one left-padded batch (``prompts x n`` rows, in chunks of at most
``--max-batch`` rows) under one lock; a stopping criterion ends generation as soon as every row has hit EOS or
a stop string. Stop strings are cut from the text, as vLLM does. Same ``seed`` + same request => same output.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Threads that sleep while they wait instead of spinning: with busy-waiting OpenMP threads, a 2-thread job on a
# 2-core machine that other processes also use runs 10x slower; passive waiting costs little when it is idle.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from transformers import (  # noqa: E402
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    StoppingCriteria,
    StoppingCriteriaList,
)

GREEDY_TEMPERATURE = 1e-5  # like vLLM: a temperature below this means greedy decoding


@dataclass
class Completion:
    text: str
    finish_reason: str  # "stop" | "length"
    stop_reason: str | None  # the stop string that ended the text, else None
    completion_tokens: int


class _StopCriteria(StoppingCriteria):
    """Marks each row done at EOS or at the first stop string in its generated text; records where."""

    def __init__(self, tokenizer: Any, prompt_len: int, stops: list[str], eos_ids: set[int]) -> None:
        self.tokenizer = tokenizer
        self.prompt_len = prompt_len
        self.stops = stops
        self.eos_ids = eos_ids
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
            if int(gen[row, -1]) in self.eos_ids:
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
                comps = self._generate(chunk, rows_per_prompt, greedy, temperature, top_p, max_tokens, stops)
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
    ) -> list[Completion]:
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
        criteria = _StopCriteria(self.tokenizer, width, stops, self.eos_ids)
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
            text = self.tokenizer.decode(toks[:-1] if hit_eos else toks, skip_special_tokens=True)
            text, stop_reason = _cut_at_stop(text, stops)
            if stop_reason is not None or hit_eos:
                comps.append(Completion(text, "stop", stop_reason, n_tok))
            else:
                comps.append(Completion(text, "length", None, n_tok))
        return comps


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 405: "MethodNotAllowedError", 503: "ServiceUnavailableError"}


def error_body(status: int, message: str, param: str | None = None) -> dict[str, Any]:
    etype = _ERROR_TYPES.get(status, "InternalServerError" if status >= 500 else "BadRequestError")
    return {"error": {"message": message, "type": etype, "param": param, "code": status}}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass
class CompletionRequest:
    model: str
    prompts: list[str]
    n: int
    temperature: float
    top_p: float
    max_tokens: int
    stop: list[str]
    seed: int | None
    echo: bool


def parse_completion_request(body: Any, served_name: str) -> CompletionRequest:
    """Validate a /v1/completions body; raises ApiError(400/404) saying exactly what is wrong."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = body.get("model", served_name)
    if model is None:
        model = served_name
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string", "model")
    if model != served_name:
        raise ApiError(404, f"The model `{model}` does not exist. This server serves `{served_name}`.", "model")
    if body.get("stream") not in (None, False):
        raise ApiError(400, "'stream': true is not supported by this server; send 'stream': false", "stream")
    if "prompt" not in body or body["prompt"] is None:
        raise ApiError(400, "'prompt' is required (a string or a list of strings)", "prompt")
    prompt = body["prompt"]
    if isinstance(prompt, str):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        prompts = list(prompt)
    elif isinstance(prompt, list) and not prompt:
        raise ApiError(400, "'prompt' must not be an empty list", "prompt")
    else:
        raise ApiError(400, "'prompt' must be a string or a list of strings", "prompt")

    def get(name: str, default: Any) -> Any:
        v = body.get(name, default)
        return default if v is None else v

    n = get("n", 1)
    if not _is_int(n):
        raise ApiError(400, f"'n' must be an integer, got {json.dumps(n)}", "n")
    if n < 1:
        raise ApiError(400, f"'n' must be at least 1, got {n}", "n")
    temperature = get("temperature", 1.0)
    if not _is_number(temperature) or temperature < 0:
        raise ApiError(400, f"'temperature' must be a number >= 0, got {json.dumps(temperature)}", "temperature")
    top_p = get("top_p", 1.0)
    if not _is_number(top_p) or not 0 < top_p <= 1:
        raise ApiError(400, f"'top_p' must be a number in (0, 1], got {json.dumps(top_p)}", "top_p")
    max_tokens = get("max_tokens", 16)
    if not _is_int(max_tokens):
        raise ApiError(400, f"'max_tokens' must be an integer, got {json.dumps(max_tokens)}", "max_tokens")
    if max_tokens < 1:
        raise ApiError(400, f"'max_tokens' must be at least 1, got {max_tokens}", "max_tokens")
    stop = get("stop", [])
    if isinstance(stop, str):
        stop = [stop]
    elif not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise ApiError(400, "'stop' must be a string or a list of strings", "stop")
    seed = body.get("seed")
    if seed is not None and not _is_int(seed):
        raise ApiError(400, f"'seed' must be an integer, got {json.dumps(seed)}", "seed")
    if seed is not None:
        seed = int(seed) % (2**63)  # negative seeds are fine, torch wants them non-negative
    echo = get("echo", False)
    if not isinstance(echo, bool):
        raise ApiError(400, "'echo' must be a boolean", "echo")
    return CompletionRequest(model, prompts, n, float(temperature), float(top_p), max_tokens, stop, seed, echo)


class PolicyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], served_name: str) -> None:
        super().__init__(addr, _Handler)
        self.served_name = served_name
        self.engine: Engine | None = None
        self.created = int(time.time())

    def models_body(self) -> dict[str, Any]:
        assert self.engine is not None
        return {
            "object": "list",
            "data": [
                {
                    "id": self.served_name,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "prm-raft",
                    "root": self.engine.root,
                    "parent": None,
                    "max_model_len": self.engine.max_model_len,
                }
            ],
        }

    def completions(self, body: Any) -> tuple[dict[str, Any], str]:
        engine = self.engine
        assert engine is not None
        req = parse_completion_request(body, self.served_name)
        encoded = [engine.encode(p) for p in req.prompts]
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
        results = engine.complete(
            encoded,
            n=req.n,
            temperature=req.temperature,
            top_p=req.top_p,
            max_tokens=req.max_tokens,
            stop=req.stop,
            seed=req.seed,
        )
        choices = []
        completion_tokens = 0
        for p_idx, comps in enumerate(results):
            for j, c in enumerate(comps):
                completion_tokens += c.completion_tokens
                choices.append(
                    {
                        "index": p_idx * req.n + j,
                        "text": (req.prompts[p_idx] + c.text) if req.echo else c.text,
                        "logprobs": None,
                        "finish_reason": c.finish_reason,
                        "stop_reason": c.stop_reason,
                    }
                )
        prompt_tokens = sum(len(ids) for ids in encoded)
        resp = {
            "id": f"cmpl-{uuid.uuid4().hex}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.served_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        summary = f"prompts={len(req.prompts)} n={req.n} temperature={req.temperature:g} max_tokens={req.max_tokens} completion_tokens={completion_tokens}"
        return resp, summary


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "prm-raft-policy-server/0.1"
    server: PolicyServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default access log
        pass

    def _send(self, status: int, body: dict[str, Any] | None) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)
        self._status = status

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        t0 = time.monotonic()
        self._status = 0
        summary = ""
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            body_bytes = self._read_body()  # always, so a keep-alive connection stays in sync
            routes = {("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/completions")}
            if (method, path) not in routes:
                if any(p == path for _, p in routes):
                    raise ApiError(405, f"method {method} is not allowed on {path}")
                raise ApiError(404, f"unknown path: {method} {path}")
            if self.server.engine is None:
                raise ApiError(503, "the model is still loading")
            if path == "/health":
                self._send(200, None)
            elif path == "/v1/models":
                self._send(200, self.server.models_body())
            else:
                try:
                    body = json.loads(body_bytes.decode("utf-8"))
                except (UnicodeDecodeError, json.JSONDecodeError) as e:
                    raise ApiError(400, f"request body is not valid JSON: {e}") from None
                resp, summary = self.server.completions(body)
                self._send(200, resp)
        except ApiError as e:
            summary = e.message
            self._send(e.status, error_body(e.status, e.message, e.param))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            summary = "client disconnected"
        except Exception as e:  # noqa: BLE001 - report every internal failure as a 500
            summary = f"internal error: {type(e).__name__}: {e}"
            try:
                self._send(500, error_body(500, f"internal server error: {type(e).__name__}: {e}"))
            except OSError:
                self.close_connection = True
        finally:
            dt = time.monotonic() - t0
            print(
                f"policy_server {self.client_address[0]} {method} {path} {self._status or '-'} {dt:.3f}s {summary}".rstrip(),
                file=sys.stderr,
                flush=True,
            )

    def do_GET(self) -> None:  # noqa: N802
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._handle("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._handle("DELETE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.policy_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a local checkpoint directory (save_pretrained layout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8100)
    ap.add_argument("--served-model-name", default=None, help="the model name clients send (default: the dir's basename)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--max-batch", type=int, default=256, help="most rows (prompts x n) in one forward batch")
    args = ap.parse_args(argv)

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file():
        print(f"policy_server: --model {args.model} is not a checkpoint directory (no config.json)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.served_model_name or model_dir.resolve().name
    server = PolicyServer((args.host, args.port), name)
    host, port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    print(f"policy_server listening on http://{host}:{port} (loading {model_dir})", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        t0 = time.monotonic()
        server.engine = Engine(model_dir, max_batch=args.max_batch)
        print(
            f"policy_server ready: model {name!r} from {model_dir}, max_model_len {server.engine.max_model_len}, "
            f"loaded in {time.monotonic() - t0:.1f}s",
            file=sys.stderr,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
