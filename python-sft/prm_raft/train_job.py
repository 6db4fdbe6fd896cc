"""What the training jobs (:mod:`prm_raft.sft`, :mod:`prm_raft.prm_train`) share: exit codes and failure classes,
JSON events on stdout, the fault hook, Trainer checkpoints and the job identity that guards them, the atomic output
directory. Light: imports no torch or transformers until a job runs.

Stdout carries JSON lines only (:func:`cli` points fd 1 at stderr for everything else)::

    {"event": "progress", "step": 120, "total": 900, "loss": 0.41}       every logging step
    {"event": "checkpoint", "step": 150, "path": ".../checkpoint-150"}
    {"event": "done", "output": DIR, "metrics": {...}}
    {"event": "error", "message": "...", "retryable": false}

Exit codes: 0 done; 2 bad config or data; 3 out of GPU memory (also written to ``failure.json`` in the job's work
directory, which survives a multi-process launcher turning 3 into 1); anything else (a traceback, exit 1) retryable.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any, Callable, TextIO

EXIT_OK, EXIT_BAD_INPUT, EXIT_OOM = 0, 2, 3
FAILURE_FILE = "failure.json"

Emit = Callable[..., None]


class BadInput(Exception):
    """Bad config or data: exit code 2, not retryable."""


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def make_emitter(stream: TextIO | None = None) -> Emit:
    """JSON events from the main process to `stream` (None: whatever sys.stdout is at the time of the event)."""

    def emit(event: str, **fields: Any) -> None:
        if is_main_process():
            out = stream if stream is not None else sys.stdout
            out.write(json.dumps({"event": event, **fields}) + "\n")
            out.flush()

    return emit


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def replace_dir_atomically(tmp: Path, out: Path) -> None:
    """Rename the finished `tmp` to `out`, replacing an existing `out` (moved aside first, deleted after)."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if old.exists():
            shutil.rmtree(old)
        os.rename(out, old)
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def finite(x: Any) -> float | None:
    """A float for the JSON events; NaN and infinities (which JSON cannot carry) become null."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------------------------------
# Failure classes and the fault hook
# --------------------------------------------------------------------------------------------------


def is_oom(exc: BaseException) -> bool:
    """A CUDA out-of-memory error anywhere in the exception chain."""
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if type(e).__name__ == "OutOfMemoryError" or (isinstance(e, RuntimeError) and "out of memory" in str(e).lower()):
            return True
        e = e.__cause__ or e.__context__
    return False



def read_json_config(path: str | os.PathLike[str]) -> tuple[Any, str]:
    """A job's JSON config file, decoded, and the name to put in its errors; unreadable or not JSON is bad input."""
    where = f"config {path}"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise BadInput(f"{where}: cannot read: {e}") from None
    try:
        return json.loads(text), where
    except json.JSONDecodeError as e:
        raise BadInput(f"{where}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None

# Config rules: each maps a key to (default or REQUIRED, check); a check returns the problem with a value, or None.
# SFT, the log-prob job and their nested objects validate with these, so every job words its errors alike.

def is_int(v: Any) -> bool:
    return type(v) is int


def is_num(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def int_at_least(lo: int) -> Callable[[Any], str | None]:
    return lambda v: None if is_int(v) and v >= lo else f"must be an integer >= {lo}"


def positive_number(v: Any) -> str | None:
    return None if is_num(v) and v > 0 else "must be a number > 0"


def non_empty_path(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else "must be a non-empty string (a path)"


def boolean(v: Any) -> str | None:
    return None if type(v) is bool else "must be true or false"


def one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda v: None if v in choices and isinstance(v, str) else "must be one of " + ", ".join(map(json.dumps, choices))


REQUIRED = object()  # a rule's default: the key must be given


def check_keys(where: str, obj: dict[str, Any], rules: dict[str, tuple[Any, Callable[[Any], str | None]]], prefix: str) -> dict[str, Any]:
    unknown = [k for k in obj if k not in rules]
    if unknown:
        raise BadInput(f'{where}: unknown key "{prefix}{unknown[0]}" (allowed: {", ".join(prefix + k for k in rules)})')
    out: dict[str, Any] = {}
    for key, (default, rule) in rules.items():
        if key not in obj:
            if default is REQUIRED:
                raise BadInput(f'{where}: missing required key "{prefix}{key}"')
            out[key] = default
            continue
        problem = rule(obj[key])
        if problem:
            raise BadInput(f'{where}: "{prefix}{key}" {problem} (got {json.dumps(obj[key])})')
        out[key] = obj[key]
    return out


def parse_fault(spec: str | None, env: str = "the fault hook") -> tuple[str, int, bool, Path | None] | None:
    """TEST HOOK: oom@STEP | crash@STEP, optionally with :once (fire once per output folder) or :while=PATH (fire
    while the file PATH exists: a test breaks a stage, sees it fail, then fixes it by removing the file)."""
    if not spec:
        return None
    m = re.fullmatch(r"(oom|crash)@(\d+)(:once|:while=(.+))?", spec.strip())
    if not m:
        raise BadInput(f"{env}={spec!r}: expected oom@STEP or crash@STEP, optionally followed by :once or :while=PATH")
    return m.group(1), int(m.group(2)), m.group(3) == ":once", Path(m.group(4)) if m.group(4) else None


def run_guarded(job: Callable[[], int], emit: Emit, log: Callable[[str], None], work_dir: Callable[[], Path | None]) -> int:
    """Run a job, turning its failures into exit codes and an error event: bad input 2, out of memory 3 (and
    ``failure.json`` in `work_dir()`, when the job got far enough to know it); anything else propagates (exit 1)."""
    try:
        return job()
    except BadInput as e:
        log(f"error: {e}")
        emit("error", message=str(e), retryable=False)
        return EXIT_BAD_INPUT
    except Exception as e:
        if not is_oom(e):
            emit("error", message=f"{type(e).__name__}: {e}", retryable=True)
            raise
        log(f"error: out of GPU memory: {e} (lower the per-device batch or max_length, or set gradient_checkpointing)")
        emit("error", message=f"out of GPU memory: {str(e)[:500]}", retryable=True)
        where = work_dir()
        if where is not None:
            where.mkdir(parents=True, exist_ok=True)
            write_json_atomic(where / FAILURE_FILE, {"kind": "out_of_memory", "message": str(e)[:500]})
        return EXIT_OOM


def cli(main: Callable[..., int]) -> None:
    """Keep stdout for the JSON events: fd 1 is pointed at stderr so that anything else printed (by this process,
    by libraries, by C extensions) lands in the logs."""
    sys.stdout.flush()
    events = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    sys.exit(main(events=events))


# --------------------------------------------------------------------------------------------------
# Precision, checkpoints, job identity
# --------------------------------------------------------------------------------------------------


def check_precision(bf16: bool) -> None:
    """bf16 needs a GPU that has it, and must agree with the launcher: `accelerate launch` exports the config file's
    mixed_precision, and transformers applies it even when the job says bf16: false."""
    launcher_mp = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if launcher_mp != "no" and not (launcher_mp == "bf16" and bf16):
        raise BadInput(
            f'the accelerate config sets mixed_precision: {launcher_mp} but the job config has "bf16": '
            f"{json.dumps(bf16)}; make them agree (bf16 needs a GPU; use accelerate/cpu.yaml on CPU)"
        )
    import torch

    if bf16 and not torch.cuda.is_available():
        raise BadInput('config: "bf16": true needs a GPU and no CUDA device is available; set "bf16": false for CPU runs')
    if bf16 and not torch.cuda.is_bf16_supported():
        raise BadInput(f'config: "bf16": true but this GPU ({torch.cuda.get_device_name()}) does not support bf16')


def check_job_identity(path: Path, identity: dict[str, Any], has_checkpoints: bool) -> None:
    """Refuse to resume checkpoints written by a job that differs in what determines the weights; record ours."""
    previous = read_json(path)
    if has_checkpoints and isinstance(previous, dict) and isinstance(previous.get("identity"), dict):
        old = previous["identity"]
        diff = sorted(k for k in set(old) | set(identity) if old.get(k) != identity.get(k))
        if diff:
            raise BadInput(
                f"{path.parent} holds checkpoints of a different job (differs in: {', '.join(diff)}); "
                "use a new output_dir or delete the old one"
            )
    if is_main_process():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"identity": identity})


_CKPT_RE = re.compile(r"checkpoint-(\d+)")


def find_resume_checkpoint(ckpt_dir: Path, log: Callable[[str], None]) -> str | None:
    """The newest complete checkpoint-N (its trainer_state.json, which the Trainer writes last, parses and names
    step N); incomplete ones (a crash during a save) are removed."""
    if not ckpt_dir.is_dir():
        return None
    found = []
    for p in ckpt_dir.iterdir():
        m = _CKPT_RE.fullmatch(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for step, p in sorted(found, reverse=True):
        state = read_json(p / "trainer_state.json")
        if isinstance(state, dict) and state.get("global_step") == step:
            return str(p)
        log(f"removing incomplete checkpoint {p}")
        if is_main_process():
            shutil.rmtree(p, ignore_errors=True)
    return None


# --------------------------------------------------------------------------------------------------
# Trainer callbacks and metrics
# --------------------------------------------------------------------------------------------------


def trainer_callbacks(emit: Emit, fault_env: str, marker_dir: Path) -> list[Any]:
    """Progress (every logging step and the last step) and checkpoint events; with `fault_env` set (TEST HOOK), a fake OOM or crash at a given step (with
    ``:once``, only once per `marker_dir`)."""
    import torch
    from transformers import TrainerCallback

    class JsonProgress(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.global_step == state.max_steps:
                control.should_log = True  # the last window too, whatever the logging cadence: loss_last is the end

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ANN001
            if state.is_world_process_zero and logs and "loss" in logs:
                emit("progress", step=state.global_step, total=state.max_steps, loss=finite(logs["loss"]))

        def on_save(self, args, state, control, **kwargs):  # noqa: ANN001
            if state.is_world_process_zero:
                emit("checkpoint", step=state.global_step, path=os.path.join(args.output_dir, f"checkpoint-{state.global_step}"))

    callbacks: list[Any] = [JsonProgress()]
    fault = parse_fault(os.environ.get(fault_env), fault_env)
    if fault is not None:
        kind, at_step, once, while_path = fault
        marker = marker_dir / f".fault-fired-{kind}@{at_step}"

        class FaultInjector(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
                if state.global_step != at_step or (while_path is not None and not while_path.exists()):
                    return
                if once:
                    if marker.exists():
                        return
                    marker.parent.mkdir(parents=True, exist_ok=True)
                    marker.touch()
                if kind == "oom":
                    raise torch.OutOfMemoryError(f"CUDA out of memory. (fake, {fault_env} test hook, step {at_step})")
                raise RuntimeError(f"fake crash ({fault_env} test hook, step {at_step})")

        callbacks.append(FaultInjector())
    return callbacks


def trainer_metrics(trainer: Any, train_runtime: float) -> dict[str, Any]:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]  # restored on resume: the whole run
    return {
        "steps": trainer.state.global_step,
        "loss_first": finite(losses[0]) if losses else None,
        "loss_last": finite(losses[-1]) if losses else None,
        "train_runtime": round(float(train_runtime), 3),
    }
