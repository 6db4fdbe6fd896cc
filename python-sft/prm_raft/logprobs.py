"""Log-prob job: a checkpoint and a JSONL of prompt/completion pairs in, each completion's per-token log-probs out
(PRL, issue 14: the same responses scored under the current policy and under the initial one).

    python -m prm_raft.logprobs --config job.json

Config (JSON object; unknown keys, wrong types and missing files are errors; relative paths are relative to the
working directory)::

    {"model": DIR, "input_file": JSONL, "output_file": JSONL,              (required)
     "batch_tokens": 8192,      at most this many (padded) tokens in one forward pass
     "max_batch_size": 64,      and at most this many sequences
     "max_length": null,        longest prompt + completion in tokens (null: the model's max_position_embeddings)
     "bf16": false,             load the weights in bfloat16 (needs a GPU that has it); log-softmax is in float32
     "device": "auto"}          "auto" (cuda if there is one, else cpu), "cpu", "cuda" or "cuda:N"

`input_file` holds one ``{"id": str, "prompt": str, "completion": str}`` per line (other fields are ignored, blank
lines are skipped, ids are unique; an empty completion is allowed and has no tokens). The prompt is encoded as the
policy server encodes it (special tokens added, so a BOS starts it), the completion on its own without special
tokens, and the two are concatenated: only the completion's tokens are scored, the prompt is their context. No EOS
is appended (the text a sampler returns ends at its stop string or at EOS, neither of which is in the text).

Each output line::

    {"id": str, "logprobs": [ln p(token_t | prompt, tokens_<t), ...], "char_ends": [int, ...]}

one entry per completion token. ``char_ends[t]`` is where token t ends in the completion, in UTF-16 code units (the
indices of a JavaScript string, so the TypeScript side compares them with the step splitter's offsets directly); they
are non-decreasing (several byte-level tokens of one character all end after it) and the last one is the
completion's length, so the tokens cover the completion exactly. Log-probs are float32 log-softmax values, ≤ 0.

Records are scored in batches of similar length (longest first, so an out-of-memory shows at once) and appended to
`output_file` batch by batch. A restarted job keeps the lines already written (a half-written last line is dropped)
and scores only the ids not yet there; the file's lines are in batch order, not input order. ``<output_file>.job.json``
records what determines the values (model, input file hash, bf16) and a restart with a different one is refused.

Stdout carries JSON lines only::

    {"event": "progress", "step": DONE, "total": N}                       after every batch
    {"event": "done", "output": OUTPUT_FILE, "metrics": {"responses": N, "scored": K, "tokens": T, "skipped": S}}
                                      N in the input, K scored by this run (T tokens), S found already written
    {"event": "error", "message": "...", "retryable": false}

Exit codes: 0 done; 2 bad config or data (the message on stderr says what and where); 3 out of GPU memory (also
``failure.json`` beside the output file); anything else (a traceback, exit 1) is retryable.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, TextIO

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from prm_raft.train_job import (  # noqa: E402
    EXIT_OK,
    REQUIRED,
    BadInput,
    Emit,
    boolean,
    check_job_identity,
    check_keys,
    check_precision,
    cli,
    int_at_least,
    make_emitter,
    non_empty_path,
    read_json_config,
    run_guarded,
)

# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogprobJob:
    model: str
    input_file: str
    output_file: str
    batch_tokens: int = 8192
    max_batch_size: int = 64
    max_length: int | None = None
    bf16: bool = False
    device: str = "auto"


def _device(v: Any) -> str | None:
    ok = isinstance(v, str) and (v in ("auto", "cpu", "cuda") or (v.startswith("cuda:") and v[5:].isdigit()))
    return None if ok else 'must be "auto", "cpu", "cuda" or "cuda:N"'


# The SFT job's config checker and rules, shared (same messages, same strictness).
_RULES: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "model": (REQUIRED, non_empty_path),
    "input_file": (REQUIRED, non_empty_path),
    "output_file": (REQUIRED, non_empty_path),
    "batch_tokens": (8192, int_at_least(1)),
    "max_batch_size": (64, int_at_least(1)),
    "max_length": (None, lambda v: None if v is None or (type(v) is int and v >= 2) else "must be an integer >= 2 or null"),
    "bf16": (False, boolean),
    "device": ("auto", _device),
}


def parse_config(raw: Any, where: str = "config") -> LogprobJob:
    """Validate a decoded config object; paths are made absolute (relative to the working directory)."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: must be a JSON object")
    out = check_keys(where, raw, _RULES, "")
    for key in ("model", "input_file", "output_file"):
        out[key] = os.path.abspath(os.path.expanduser(out[key]))
    return LogprobJob(**out)


def load_config(path: str | os.PathLike[str]) -> LogprobJob:
    return parse_config(*read_json_config(path))


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


@dataclass
class Record:
    id: str
    prompt: str
    completion: str
    line: int


def read_input(path: str) -> tuple[list[Record], str]:
    """The records of `input_file` and the file's sha256."""
    where = f"input_file {path}"
    if not os.path.isfile(path):
        raise BadInput(f"{where}: file not found")
    records: list[Record] = []
    seen: dict[str, int] = {}
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            h.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"{where} line {lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(f"{where} line {lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise BadInput(f'{where} line {lineno}: must be a JSON object with "id", "prompt" and "completion"')
            for key in ("id", "prompt", "completion"):
                if key not in rec:
                    raise BadInput(f'{where} line {lineno}: missing "{key}"')
                if not isinstance(rec[key], str):
                    raise BadInput(f'{where} line {lineno}: "{key}" must be a string')
            if not rec["id"]:
                raise BadInput(f'{where} line {lineno}: empty "id"')
            if rec["id"] in seen:
                raise BadInput(f'{where} line {lineno}: id {json.dumps(rec["id"])} already on line {seen[rec["id"]]}')
            seen[rec["id"]] = lineno
            records.append(Record(rec["id"], rec["prompt"], rec["completion"], lineno))
    return records, h.hexdigest()


def read_done(path: Path, known: set[str]) -> set[str]:
    """Ids already in the output file. A last line cut short by a crash is removed from the file; a line that is
    not ours (bad JSON mid-file, an id the input does not have) means the file belongs to another job."""
    if not path.exists():
        return set()
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1  # everything after the last newline is a half-written line
    if keep < len(data):
        log(f"dropping a half-written last line of {path} ({len(data) - keep} bytes)")
        with open(path, "r+b") as f:
            f.truncate(keep)
    done: set[str] = set()
    for lineno, raw in enumerate(data[:keep].split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
            rid = rec["id"]
        except (ValueError, TypeError, KeyError):
            raise BadInput(f"output_file {path} line {lineno}: not a log-prob line; use a new output_file or delete it") from None
        if rid not in known:
            raise BadInput(f"output_file {path} line {lineno}: id {json.dumps(rid)} is not in input_file; it belongs to another job")
        done.add(rid)
    return done


def utf16_ends(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """Token end offsets (code points, as the tokenizer gives them) in UTF-16 code units, made non-decreasing, the
    last one the text's full length (a tokenizer that trims whitespace off its offsets still covered it)."""
    # prefix[i] = UTF-16 length of text[:i]
    prefix = [0] * (len(text) + 1)
    for i, ch in enumerate(text):
        prefix[i + 1] = prefix[i] + (2 if ord(ch) > 0xFFFF else 1)
    ends: list[int] = []
    high = 0
    for _, end in offsets:
        high = max(high, min(max(end, 0), len(text)))
        ends.append(prefix[high])
    if ends:
        ends[-1] = prefix[len(text)]
    return ends


# --------------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[logprobs] {msg}", file=sys.stderr, flush=True)


@dataclass
class Encoded:
    record: Record
    prompt_ids: list[int]
    completion_ids: list[int]
    char_ends: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.completion_ids)


def encode(tokenizer: Any, rec: Record, max_length: int) -> Encoded:
    where = f"input_file line {rec.line} (id {json.dumps(rec.id)})"
    prompt_ids = list(tokenizer(rec.prompt, add_special_tokens=True)["input_ids"])
    enc = tokenizer(rec.completion, add_special_tokens=False, return_offsets_mapping=True)
    completion_ids = list(enc["input_ids"])
    if completion_ids and not prompt_ids:
        raise BadInput(f"{where}: the prompt encodes to no tokens and the tokenizer adds no BOS: the first completion token has no context")
    if rec.completion and not completion_ids:
        raise BadInput(f"{where}: the completion encodes to no tokens")
    total = len(prompt_ids) + len(completion_ids)
    if total > max_length:
        raise BadInput(f"{where}: prompt + completion are {total} tokens, more than max_length {max_length} (the model's context)")
    return Encoded(rec, prompt_ids, completion_ids, utf16_ends(rec.completion, [tuple(o) for o in enc["offset_mapping"]]))


def batches(items: list[Encoded], batch_tokens: int, max_batch_size: int) -> list[list[Encoded]]:
    """Longest first; a batch grows while rows × its longest row stays within `batch_tokens` (a row longer than
    that goes alone)."""
    ordered = sorted(items, key=lambda e: e.length, reverse=True)
    out: list[list[Encoded]] = []
    current: list[Encoded] = []
    for e in ordered:
        longest = current[0].length if current else e.length
        if current and (len(current) + 1 > max_batch_size or (len(current) + 1) * longest > batch_tokens):
            out.append(current)
            current = []
        current.append(e)
    if current:
        out.append(current)
    return out


def score_batch(model: Any, batch: list[Encoded], pad_id: int, device: Any) -> list[list[float]]:
    """Each row's completion-token log-probs: right-padded (positions stay 0…n−1 for the real tokens), one forward
    pass, log-softmax in float32 one row at a time (the logits of a 7B vocabulary are large)."""
    import torch

    width = max(e.length for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        row = e.prompt_ids + e.completion_ids
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    with torch.inference_mode():
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
        out: list[list[float]] = []
        for i, e in enumerate(batch):
            p, c = len(e.prompt_ids), len(e.completion_ids)
            if c == 0:
                out.append([])
                continue
            # The logits at position t predict token t + 1.
            lp = torch.log_softmax(logits[i, p - 1 : p + c - 1].float(), dim=-1)
            target = ids[i, p : p + c].to(lp.device)
            picked = lp.gather(-1, target.unsqueeze(-1)).squeeze(-1).clamp(max=0.0)
            out.append([float(x) for x in picked.cpu().tolist()])
    return out


def resolve_device(job: LogprobJob) -> Any:
    import torch

    if job.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if job.device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f'config: "device": {json.dumps(job.device)} but no CUDA device is available; use "cpu" or "auto"')
    return torch.device(job.device)


def load_model(job: LogprobJob, device: Any) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not os.path.isdir(job.model):
        raise BadInput(f"model {job.model}: not a directory (a transformers checkpoint)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(job.model)
    except (OSError, ValueError) as e:
        raise BadInput(f"model {job.model}: cannot load its tokenizer: {e}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise BadInput(f"model {job.model}: its tokenizer is not a fast tokenizer; character offsets need one")
    try:
        model = AutoModelForCausalLM.from_pretrained(job.model, dtype=torch.bfloat16 if job.bf16 else torch.float32)
    except (OSError, ValueError) as e:
        raise BadInput(f"model {job.model}: cannot load it: {e}") from None
    model.to(device)
    model.eval()
    return tokenizer, model


def run(job: LogprobJob, emit: Emit) -> int:
    records, input_sha = read_input(job.input_file)
    out = Path(job.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    identity = {"model": job.model, "input_file_sha256": input_sha, "bf16": job.bf16}
    has_output = out.exists() and out.stat().st_size > 0
    check_job_identity(out.with_name(out.name + ".job.json"), identity, has_output)
    done = read_done(out, {r.id for r in records})
    todo = [r for r in records if r.id not in done]
    if done:
        log(f"resuming: {len(done)} of {len(records)} responses already in {out}")

    check_precision(job.bf16)
    device = resolve_device(job)
    tokenizer, model = load_model(job, device)
    max_length = job.max_length or getattr(model.config, "max_position_embeddings", None) or 1 << 30
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded = [encode(tokenizer, r, max_length) for r in todo]

    total = len(records)
    finished = len(done)
    tokens = 0
    emit("progress", step=finished, total=total)
    with open(out, "a", encoding="utf-8") as f:
        for batch in batches(encoded, job.batch_tokens, job.max_batch_size):
            for e, lps in zip(batch, score_batch(model, batch, pad_id, device)):
                if any(not math.isfinite(x) for x in lps):
                    raise RuntimeError(f"id {e.record.id}: a non-finite log-prob (the model's logits overflowed)")
                f.write(json.dumps({"id": e.record.id, "logprobs": lps, "char_ends": e.char_ends}) + "\n")
                tokens += len(lps)
            f.flush()
            os.fsync(f.fileno())
            finished += len(batch)
            emit("progress", step=finished, total=total)
    emit("done", output=str(out), metrics={"responses": total, "scored": len(todo), "tokens": tokens, "skipped": len(done)})
    return EXIT_OK


def main(argv: list[str] | None = None, events: TextIO | None = None) -> int:
    """Run the job; JSON events go to `events` (stdout by default). Returns the exit code for done, bad input and
    out-of-memory; any other error propagates (retryable)."""
    parser = argparse.ArgumentParser(prog="python -m prm_raft.logprobs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="job config (JSON)")
    ns = parser.parse_args(argv)
    emit = make_emitter(events if events is not None else sys.stdout)
    job: LogprobJob | None = None

    def job_run() -> int:
        nonlocal job
        job = load_config(ns.config)
        log(f"config: {json.dumps(asdict(job))}")
        return run(job, emit)

    return run_guarded(job_run, emit, log, lambda: Path(job.output_file).parent if job is not None else None)


if __name__ == "__main__":
    cli(main)
