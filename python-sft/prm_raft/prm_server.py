"""The PRM service: scores every step of many solutions, one batched forward pass per request.

    python -m prm_raft.prm_server --model DIR --host 127.0.0.1 --port 8200 [--served-model-name NAME]

``DIR`` is a checkpoint written by ``prm_raft.prm_train`` (model, tokenizer, ``prm_config.json``). Endpoints:

- ``POST /v1/score`` ``{"model": NAME, "items": [{"id": "q17/3", "question": "...", "steps": ["...", "..."]}]}``
  -> ``200 {"model": NAME, "scores": [{"id": "q17/3", "step_scores": [0.93, 0.41]}]}``: one score in [0, 1] per
  step for a PRM, one per item for an ORM (``step_scores`` of length 1: the whole response as one step), in the
  order of ``items``. All items of a request go through the model as ONE right-padded batch: one forward pass
  for the request, every step of a response read off that response's row (never one pass per step).
- ``GET /health`` -> 200 once the model is loaded (503 while loading).
- ``GET /v1/models`` -> vLLM's list format: ``{"object": "list", "data": [{"id": NAME, "object": "model", ...,
  "max_model_len": ..., "kind": ...}]}``.

Errors are ``{"error": {"message": ..., "type": ..., "code": status}}`` with 400 (bad JSON, wrong types, empty
``items`` or ``steps``, too many items, an input longer than the model's limit — the message says the limit),
404 (unknown model or path), 405 (wrong method), 500 (a bug), 503 (still loading). One log line per request on
stderr. A lock serializes the model between the server's threads.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from prm_raft.prm_format import (  # noqa: E402
    KINDS,
    FormatError,
    PrmFormat,
    PrmInput,
    Readout,
    build_prm_input,
    collate,
    label_token_ids,
    scores_from_outputs,
    steps_for_kind,
    tag_outputs,
    tag_token_id,
)

PRM_CONFIG = "prm_config.json"
DEFAULT_MAX_ITEMS = 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_ERROR_TYPES = {400: "BadRequestError", 404: "NotFoundError", 405: "MethodNotAllowed", 413: "PayloadTooLarge", 503: "ServiceUnavailable"}


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": _ERROR_TYPES.get(status, "InternalServerError"), "code": status}}


class PrmScorer:
    """A trained PRM/ORM checkpoint and the one way to score with it."""

    def __init__(self, model_dir: str | os.PathLike[str]) -> None:
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
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.tokenizer.model_max_length = int(1e12)  # lengths are checked against self.max_length, with a clear error
        cls = AutoModelForTokenClassification if self.kind == "regression" else AutoModelForCausalLM
        self.model = cls.from_pretrained(model_dir, dtype=torch.float32)
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

    def encode(self, question: str, steps: Sequence[str]) -> PrmInput:
        return build_prm_input(self.tokenizer, question, steps_for_kind(self.kind, steps, self.fmt), self.fmt)

    @torch.no_grad()
    def score_encoded(self, encoded: Sequence[PrmInput]) -> list[list[float]]:
        """Scores for every tag of every encoded item: ONE forward pass over the right-padded batch."""
        batch = collate(encoded, self.pad_id)
        outputs = tag_outputs(self.model, self.kind, batch, self.label_ids, step_logprob=self.readout.uses_step_logprob)
        flat = scores_from_outputs(self.kind, outputs, self.readout).tolist()
        out, i = [], 0
        for e in encoded:
            n = len(e.tag_positions)
            out.append([min(1.0, max(0.0, float(s))) for s in flat[i : i + n]])
            i += n
        return out

    def score(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[list[float]]:
        return self.score_encoded([self.encode(q, steps) for q, steps in items])


def parse_score_request(body: Any, served_name: str, max_items: int) -> list[tuple[str, str, list[str]]]:
    """Validate a /v1/score body; (id, question, steps) per item, or ApiError."""
    if not isinstance(body, dict):
        raise ApiError(400, "request body must be a JSON object")
    model = body.get("model", served_name)
    if not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    if model != served_name:
        raise ApiError(404, f"The model `{model}` does not exist. This server serves `{served_name}`.")
    unknown = sorted(set(body) - {"model", "items"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {unknown}; a score request has 'model' and 'items'")
    items = body.get("items")
    if not isinstance(items, list):
        raise ApiError(400, "'items' must be a list of {id, question, steps} objects")
    if not items:
        raise ApiError(400, "'items' is empty: send at least one item")
    if len(items) > max_items:
        raise ApiError(400, f"too many items: {len(items)}; this server scores at most {max_items} items per request")
    out = []
    for i, it in enumerate(items):
        where = f"items[{i}]"
        if not isinstance(it, dict):
            raise ApiError(400, f"{where} must be an object with 'id', 'question', 'steps'")
        iid = it.get("id")
        if not isinstance(iid, str):
            raise ApiError(400, f"{where}.id must be a string")
        where = f"{where} (id {iid!r})"
        if not isinstance(it.get("question"), str):
            raise ApiError(400, f"{where}: 'question' must be a string")
        steps = it.get("steps")
        if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
            raise ApiError(400, f"{where}: 'steps' must be a list of strings")
        if not steps:
            raise ApiError(400, f"{where}: 'steps' is empty: a response needs at least one step to score")
        extra = sorted(set(it) - {"id", "question", "steps"})
        if extra:
            raise ApiError(400, f"{where}: unknown field(s) {extra}")
        out.append((iid, it["question"], steps))
    return out


class PrmServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], served_name: str, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        super().__init__(addr, _Handler)
        self.served_name = served_name
        self.max_items = max_items
        self.scorer: PrmScorer | None = None
        self.lock = threading.Lock()
        self.created = int(time.time())

    def models_body(self) -> dict[str, Any]:
        s = self.scorer
        assert s is not None
        return {
            "object": "list",
            "data": [
                {
                    "id": self.served_name,
                    "object": "model",
                    "created": self.created,
                    "owned_by": "prm-raft",
                    "root": s.model_dir,
                    "parent": None,
                    "max_model_len": s.max_length,
                    "kind": s.kind,
                }
            ],
        }

    def score(self, body: Any) -> tuple[dict[str, Any], str]:
        s = self.scorer
        assert s is not None
        items = parse_score_request(body, self.served_name, self.max_items)
        encoded = []
        for iid, question, steps in items:
            e = s.encode(question, steps)
            if len(e.input_ids) > s.max_length:
                raise ApiError(
                    400,
                    f"item {iid!r} is {len(e.input_ids)} tokens long (question, steps and one step tag per step); "
                    f"the limit is {s.max_length} tokens",
                )
            encoded.append(e)
        with self.lock:
            scores = s.score_encoded(encoded)
        resp = {"model": self.served_name, "scores": [{"id": iid, "step_scores": sc} for (iid, _, _), sc in zip(items, scores)]}
        n_tags = sum(len(sc) for sc in scores)
        return resp, f"items={len(items)} tags={n_tags} tokens={sum(len(e.input_ids) for e in encoded)}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "prm-raft-prm-server/0.1"
    server: PrmServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - our own one line per request instead
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
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                total += size
                if total > MAX_BODY_BYTES:
                    self.close_connection = True
                    raise ApiError(413, f"request body is over the limit of {MAX_BODY_BYTES} bytes")
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"request body is {length} bytes; the limit is {MAX_BODY_BYTES}")
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self, method: str) -> None:
        t0 = time.monotonic()
        self._status = 0
        summary = ""
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            body_bytes = self._read_body() if method == "POST" else b""
            routes = {("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/score")}
            if (method, path) not in routes:
                if any(p == path for _, p in routes):
                    raise ApiError(405, f"method {method} is not allowed on {path}")
                raise ApiError(404, f"unknown path: {method} {path}")
            if self.server.scorer is None:
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
                resp, summary = self.server.score(body)
                self._send(200, resp)
        except ApiError as e:
            summary = e.message
            self._send(e.status, error_body(e.status, e.message))
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            summary = "client disconnected"
        except Exception as e:  # noqa: BLE001 - every internal failure is a 500
            summary = f"internal error: {type(e).__name__}: {e}"
            try:
                self._send(500, error_body(500, f"internal server error: {type(e).__name__}: {e}"))
            except OSError:
                self.close_connection = True
        finally:
            print(
                f"prm_server {self.client_address[0]} {method} {path} {self._status or '-'} {time.monotonic() - t0:.3f}s {summary}".rstrip(),
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
    ap = argparse.ArgumentParser(prog="python -m prm_raft.prm_server", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a PRM checkpoint directory written by prm_raft.prm_train")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8200)
    ap.add_argument("--served-model-name", default=None, help="the model name clients send (default: the dir's basename)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--max-items", type=int, default=DEFAULT_MAX_ITEMS, help="most items in one request (one forward batch)")
    args = ap.parse_args(argv)

    model_dir = Path(args.model)
    if not (model_dir / "config.json").is_file() or not (model_dir / PRM_CONFIG).is_file():
        print(f"prm_server: --model {args.model} is not a PRM checkpoint directory (needs config.json and {PRM_CONFIG})", file=sys.stderr)
        return 2
    if args.max_items < 1:
        print("prm_server: --max-items must be >= 1", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    name = args.served_model_name or model_dir.resolve().name
    server = PrmServer((args.host, args.port), name, max_items=args.max_items)
    host, port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    print(f"prm_server listening on http://{host}:{port} (loading {model_dir})", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        t0 = time.monotonic()
        try:
            server.scorer = PrmScorer(model_dir)
        except FormatError as e:
            print(f"prm_server: {e}", file=sys.stderr, flush=True)
            return 2
        print(
            f"prm_server ready: model {name!r} ({server.scorer.kind}, max {server.scorer.max_length} tokens) "
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
