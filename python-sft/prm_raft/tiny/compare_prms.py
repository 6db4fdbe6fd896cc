"""Train tiny reward models on Monte-Carlo label exports and compare them on tinymath (issue 4, item 3).

    python -m prm_raft.tiny.compare_prms --policy models/tinymath-policy --data data/tinymath --out runs/prm-compare \\
        --train hard=hard.jsonl --train soft=soft.jsonl --train er-2=er-2.jsonl --orm orm=hard.jsonl

Each ``--train NAME=FILE`` is a PRM training set as ``prm-raft label export --format jsonl`` writes it (one solution a
line: ``question``, ``steps``, ``labels`` in [0, 1], ``correct``; exactly what :mod:`prm_raft.prm_train` reads); each
``--orm NAME=FILE`` trains an ORM on such a file, labeled by each solution's ``correct``. Every model is fine-tuned
from the policy with the same settings (by default those of the shipped ``models/tinymath-prm``): only the labels
differ.

Held-out set, built once and shared by every model: ``--bon-samples`` temperature-1 policy samples (seeded) for each
of the first ``--test-problems`` problems of tinymath's TEST split, every step labeled exactly by
:mod:`prm_raft.tiny.labels`, every response graded by tinymath's exact answer check. The same responses serve the
step metrics and best-of-N. Each model is served by ``prm_raft.prm_server`` in a subprocess, scores every response
over HTTP, and is stopped. Written to ``--out``:

- ``samples.jsonl`` (+ ``samples.key``): the held-out responses with exact labels, reused while the key matches;
- ``models/NAME/``: the checkpoint, with ``compare_key.json`` (a hash of the training settings, the training data and
  the policy): a rerun skips a model whose key matches, so after a crash only what is missing is redone;
- ``data/NAME.orm.jsonl``: an ORM's training file (``outcome`` from ``correct``);
- ``bon/NAME.scores.jsonl``: one line per response in the ``prm-raft bon --scores`` format
  ``{"problem_id", "answer", "correct", "step_scores"}``; best-of-N numbers come from that command. Kept on a rerun
  while ``bon/NAME.scores.key`` (the model's key and the samples') matches; ``bon/NAME.server.log`` is the server's log;
- ``step_metrics.json`` and ``step_metrics.md``: step accuracy (score >= 0.5) and step AUC against the exact labels
  (for an ORM the same at the solution level, against correctness), and the AUC of the min step score against
  correctness.

Progress as JSON lines on stderr (a best-of-N preview among them: first N responses, one draw); the Markdown table on
stdout. Exit codes: 0 done, 2 bad arguments or data (the message names the file and line), 1 a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # stderr carries JSON lines only

import torch  # noqa: E402

from prm_raft import prm_train  # noqa: E402
from prm_raft.prm_format import PrmFormat  # noqa: E402
from prm_raft.prm_train import BadConfig, emit  # noqa: E402
from prm_raft.train_job import replace_dir_atomically  # noqa: E402
from prm_raft.tiny.tinymath import final_answer, load_jsonl, to_jsonl, write_atomic  # noqa: E402
from prm_raft.tiny.labels import Reference, same_answer, split_steps, step_labels  # noqa: E402
from prm_raft.tiny.train_prm import SAMPLE_MAX_TOKENS, majority_correct, pick_correct, sample_policy  # noqa: E402

# the shipped models/tinymath-prm (`make tiny-prm`); weight decay as train_tiny_prm sets it
SHIPPED = {"steps": 300, "batch_size": 32, "lr": 1e-3, "warmup": 30}
WEIGHT_DECAY = 0.01
SCORE_BATCH = 64
KEY_FILE = "compare_key.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Spec:
    name: str  # the model's name: the label set's, with "-s<seed>" when several training seeds are given
    kind: str  # prm_train kind: "autoregressive" or "orm"
    export: Path
    group: str  # the label set's name (--train/--orm NAME): the seeds of one group differ only in their seed
    seed: int


# --------------------------------------------------------------------------------------------------
# Arguments and inputs
# --------------------------------------------------------------------------------------------------


def name_file(text: str) -> tuple[str, Path]:
    name, sep, file = text.partition("=")
    if not sep or not file:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE, got {text!r}")
    if not NAME_RE.match(name):
        raise argparse.ArgumentTypeError(f"bad NAME {name!r} in {text!r}: letters, digits, '.', '_' and '-' only (it names files)")
    return name, Path(file)


def positive_ints(text: str) -> list[int]:
    try:
        ns = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not ns or min(ns) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return ns


def non_negative_ints(text: str) -> list[int]:
    try:
        ns = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if min(ns) < 0 or len(set(ns)) != len(ns):
        raise argparse.ArgumentTypeError(f"expected distinct non-negative integers, got {text!r}")
    return ns


def model_specs(args: argparse.Namespace) -> list[Spec]:
    seeds = args.seeds or [args.seed]
    named = [(n, "autoregressive", f) for n, f in args.train] + [(n, "orm", f) for n, f in args.orm]
    # seed-major: a run stopped early still has every label set at its first seeds
    specs = [Spec(f"{n}-s{seed}" if len(seeds) > 1 else n, kind, f, n, seed) for seed in seeds for n, kind, f in named]
    if not specs:
        raise BadConfig("nothing to compare: give at least one --train NAME=FILE or --orm NAME=FILE")
    dup = sorted(n for n, c in Counter(s.name for s in specs).items() if c > 1)
    if dup:
        raise BadConfig(f"model name(s) used twice: {dup}")
    return specs


def orm_rows(path: Path) -> list[dict[str, Any]]:
    """An ORM's training rows from a label export: the steps, and ``outcome`` = the solution's ``correct``."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            r = json.loads(line)  # load_examples has already checked every line
            if not isinstance(r.get("correct"), bool):
                raise BadConfig(f"{path} line {n}: an ORM needs 'correct' (true or false), got {r.get('correct')!r}")
            rows.append({"id": r.get("id"), "question": r["question"], "steps": r["steps"], "outcome": float(r["correct"])})
    return rows


def train_file_for(spec: Spec, out: Path) -> tuple[Path, dict[str, Any]]:
    """Check the export (BadConfig names the file and line) and return the file to train on, with its label stats."""
    examples = prm_train.load_examples(spec.export, "autoregressive", PrmFormat())
    if spec.kind != "orm":
        labels = [y for ex in examples for y in ex.labels]
        return spec.export, {"solutions": len(examples), "steps": len(labels), "mean_label": round(sum(labels) / len(labels), 4)}
    rows = orm_rows(spec.export)
    path = out / "data" / f"{spec.name}.orm.jsonl"
    write_atomic(path, to_jsonl(rows))
    return path, {"solutions": len(rows), "mean_label": round(sum(r["outcome"] for r in rows) / len(rows), 4)}


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def dir_sha256(path: Path) -> str:
    """The checkpoint's content (weights, config, tokenizer); its README may change without changing the model."""
    return _hash({p.name: prm_train.sha256_file(p) for p in sorted(path.iterdir()) if p.is_file() and p.suffix != ".md"})


# --------------------------------------------------------------------------------------------------
# Held-out responses (shared by every model)
# --------------------------------------------------------------------------------------------------


def response_row(record: dict[str, Any], j: int, text: str) -> dict[str, Any]:
    steps = split_steps(text)
    answer = final_answer(text)
    return {
        "id": f"{record['id']}/{j}",
        "problem_id": record["id"],
        "question": record["question"],
        "text": text,
        "steps": steps,
        "labels": step_labels(steps, Reference.from_solution(record["solution"], record["answer"])),
        "answer": answer,
        "correct": same_answer(answer, record["answer"]),
    }


def held_out(args: argparse.Namespace, out: Path, policy: Path, policy_sha: str) -> tuple[list[dict[str, Any]], str]:
    """The held-out responses and their key (what determines them)."""
    test = Path(args.data) / "test.jsonl"
    if not test.is_file():
        raise BadConfig(f"--data {args.data} has no test.jsonl")
    records = load_jsonl(test)[: args.test_problems]
    key = _hash({"policy": policy_sha, "test": prm_train.sha256_file(test), "problems": len(records), "per_problem": args.bon_samples, "seed": args.seed, "max_tokens": SAMPLE_MAX_TOKENS})
    path, key_path = out / "samples.jsonl", out / "samples.key"
    if path.is_file() and key_path.is_file() and key_path.read_text().strip() == key:
        emit("samples", cached=True, path=str(path))
        return load_jsonl(path), key
    key_path.unlink(missing_ok=True)  # the key is written last: it never vouches for half-written samples
    t0 = time.monotonic()
    texts = sample_policy(policy, records, args.bon_samples, args.seed)
    rows = [response_row(r, j, t) for r, outs in zip(records, texts) for j, t in enumerate(outs)]
    write_atomic(path, to_jsonl(rows))
    write_atomic(key_path, key + "\n")
    emit("samples", cached=False, path=str(path), problems=len(records), responses=len(rows), seconds=round(time.monotonic() - t0, 1))
    return rows, key


def sample_stats(rows: list[dict[str, Any]], per_problem: int) -> dict[str, Any]:
    labels = [y for r in rows for y in r["labels"]]
    return {
        "problems": len({r["problem_id"] for r in rows}),
        "per_problem": per_problem,
        "responses": len(rows),
        "without_steps": sum(not r["steps"] for r in rows),
        "steps": len(labels),
        "step_positive_rate": round(sum(labels) / max(1, len(labels)), 4),
        "correct_rate": round(sum(r["correct"] for r in rows) / max(1, len(rows)), 4),
    }


# --------------------------------------------------------------------------------------------------
# Training (resumable per model)
# --------------------------------------------------------------------------------------------------


def train_config(spec: Spec, train_file: Path, policy: Path, output_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    return prm_train.validate_config(
        {
            "base": str(policy.resolve()),
            "train_file": str(train_file.resolve()),
            "output_dir": str(output_dir.resolve()),
            "kind": spec.kind,
            "max_steps": args.steps,
            "batch_size": args.batch_size,
            "learning_rate": args.lr,
            "warmup_steps": args.warmup,
            "weight_decay": WEIGHT_DECAY,
            "seed": spec.seed,
            "threads": args.threads,
            "log_every": 50,
            "step_logprob_feature": args.step_logprob_feature,
            "lm_loss_weight": args.lm_loss_weight,
            "pairwise_loss_weight": args.pairwise_loss_weight,
        },
        where=f"model {spec.name}",
    )


def model_key(cfg: dict[str, Any], policy_sha: str) -> str:
    """What determines the weights: the settings, the training data and the policy's content (not their paths)."""
    settings = {k: v for k, v in cfg.items() if k not in ("base", "train_file", "output_dir", "threads", "log_every", "save_steps", "gradient_checkpointing", "format")}
    return _hash({**settings, "format": cfg["format"].to_dict(), "train_sha256": prm_train.sha256_file(cfg["train_file"]), "policy": policy_sha})


def train_model(spec: Spec, train_file: Path, policy: Path, policy_sha: str, out: Path, args: argparse.Namespace) -> tuple[Path, str, float | None]:
    """The model's checkpoint, its key, and its training seconds (None when an existing checkpoint with the same key was kept)."""
    final = out / "models" / spec.name
    # a fixed staging name: prm_train resumes a crashed run from its state beside it
    stage = out / "models" / f".{spec.name}.training"
    cfg = train_config(spec, train_file, policy, stage, args)
    key = model_key(cfg, policy_sha)
    key_path = final / KEY_FILE
    if key_path.is_file() and json.loads(key_path.read_text()).get("key") == key:
        emit("skip", model=spec.name, what="training", reason="a checkpoint with the same settings, data and policy exists", path=str(final))
        return final, key, None
    emit("train", model=spec.name, kind=spec.kind, data=str(train_file))
    t0 = time.monotonic()
    prm_train.train(cfg)
    seconds = round(time.monotonic() - t0, 1)
    (stage / KEY_FILE).write_text(json.dumps({"key": key, "export": str(spec.export), "kind": spec.kind}, indent=2) + "\n")
    replace_dir_atomically(stage, final)
    return final, key, seconds


# --------------------------------------------------------------------------------------------------
# Serving and scoring over HTTP
# --------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http(method: str, url: str, body: Any = None, timeout: float = 600) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        text = r.read()
    return json.loads(text) if text else None


@contextlib.contextmanager
def served(model_dir: Path, name: str, log_path: Path, threads: int, timeout: float = 300) -> Iterator[str]:
    """The real PRM server on a free port, until the block ends; its log goes to `log_path`."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "prm_raft.prm_server", "--model", str(model_dir), "--port", str(port), "--served-model-name", name, "--threads", str(threads)]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the PRM server for {name} exited with code {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                _http("GET", url + "/health", timeout=5)
                break
            except OSError:  # not listening yet, or 503 while loading
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the PRM server for {name} was not ready in {timeout}s; log {log_path}") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def score_all(url: str, name: str, rows: list[dict[str, Any]]) -> list[list[float]]:
    """Step scores for every row, SCORE_BATCH items a request; [] for a response without steps (nothing to score)."""
    scores: list[list[float]] = [[] for _ in rows]
    todo = [i for i, r in enumerate(rows) if r["steps"]]
    for s in range(0, len(todo), SCORE_BATCH):
        idx = todo[s : s + SCORE_BATCH]
        items = [{"id": rows[i]["id"], "question": rows[i]["question"], "steps": rows[i]["steps"]} for i in idx]
        try:
            resp = _http("POST", url + "/v1/score", {"model": name, "items": items})
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"POST {url}/v1/score for {name}: {e.code} {e.read()[:1000].decode(errors='replace')}") from None
        got = resp["scores"]
        if [g["id"] for g in got] != [it["id"] for it in items]:
            raise RuntimeError(f"the server for {name} answered other ids than it was asked")
        for i, g in zip(idx, got):
            scores[i] = g["step_scores"]
    return scores


def scores_for(spec: Spec, model_dir: Path, key: str, rows: list[dict[str, Any]], out: Path, threads: int) -> tuple[list[list[float]], dict[str, Any]]:
    """Every response's step scores from the served model, written to bon/NAME.scores.jsonl; kept from a previous
    run when its key (the model's and the samples') matches. Also the seconds it took (None when kept)."""
    path, key_path = out / "bon" / f"{spec.name}.scores.jsonl", out / "bon" / f"{spec.name}.scores.key"
    if path.is_file() and key_path.is_file() and key_path.read_text().strip() == key:
        emit("skip", model=spec.name, what="scoring", reason="scores of this model on these samples exist", path=str(path))
        return [line["step_scores"] for line in load_jsonl(path)], {"server_ready_seconds": None, "serve_and_score_seconds": None}
    key_path.unlink(missing_ok=True)
    t0 = time.monotonic()
    with served(model_dir, spec.name, out / "bon" / f"{spec.name}.server.log", threads) as url:
        ready = round(time.monotonic() - t0, 1)
        scores = score_all(url, spec.name, rows)
    write_atomic(path, to_jsonl(scores_lines(rows, scores)))
    write_atomic(key_path, key + "\n")
    return scores, {"server_ready_seconds": ready, "serve_and_score_seconds": round(time.monotonic() - t0, 1)}


def scores_lines(rows: list[dict[str, Any]], scores: list[list[float]]) -> list[dict[str, Any]]:
    """The `prm-raft bon --scores` format: exactly these four keys (the TypeScript schema is strict)."""
    return [{"problem_id": r["problem_id"], "answer": r["answer"], "correct": r["correct"], "step_scores": s} for r, s in zip(rows, scores)]


# --------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def model_metrics(kind: str, rows: list[dict[str, Any]], scores: list[list[float]]) -> dict[str, Any]:
    idx = [i for i, s in enumerate(scores) if s]
    correct = [int(rows[i]["correct"]) for i in idx]
    response_scores = [min(scores[i]) for i in idx]  # the ranking score (min over steps)
    if kind == "orm":  # one score per response: only solution-level agreement exists
        m = {"level": "solution", **prm_train.score_metrics(response_scores, correct)}
    else:
        m = {"level": "step", **prm_train.score_metrics([x for i in idx for x in scores[i]], [y for i in idx for y in rows[i]["labels"]])}
    m["auc_min_score_vs_correct"] = _round(prm_train.auc(response_scores, correct))
    return m


def within_prompt(rows: list[dict[str, Any]], scores: list[list[float]]) -> dict[str, Any]:
    """What RAFT and best-of-N live on: which response to ONE problem is right. Over the problems with a right
    response: the share whose top-scored response (min over steps; a fair tie-break) is right, i.e. best-of-N at N =
    all of them; and over the (right, wrong) pairs within a problem, the share ranked right first (ties half)."""
    picks, pairs, wins = [], 0, 0.0
    for idx in by_problem(rows).values():
        correct = [int(rows[i]["correct"]) for i in idx]
        keys = [min(scores[i]) if scores[i] else float("-inf") for i in idx]  # a response without steps is never picked
        if any(correct):
            picks.append(pick_correct(keys, correct))
        for i, (ki, ci) in enumerate(zip(keys, correct)):
            for kj, cj in zip(keys[i + 1 :], correct[i + 1 :]):
                if ci != cj:
                    pairs += 1
                    right, wrong = (ki, kj) if ci else (kj, ki)
                    wins += 1.0 if right > wrong else 0.5 if right == wrong else 0.0
    return {
        "problems_with_a_right_response": len(picks),
        "right_picks": _round(sum(picks) / len(picks)) if picks else None,
        "pair_auc": _round(wins / pairs) if pairs else None,
    }


def selection_baselines(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The label-free floors for `within_prompt`'s right picks, on the same problems: a random pick and majority vote."""
    rand, majority = [], []
    for idx in by_problem(rows).values():
        correct = [int(rows[i]["correct"]) for i in idx]
        if any(correct):
            rand.append(sum(correct) / len(correct))
            majority.append(majority_correct([rows[i]["answer"] for i in idx], correct))
    return {"random": _round(sum(rand) / len(rand)) if rand else None, "majority": _round(sum(majority) / len(majority)) if majority else None}


def by_problem(rows: list[dict[str, Any]]) -> dict[str, list[int]]:
    problems: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        problems.setdefault(r["problem_id"], []).append(i)
    return problems


def spread(xs: list[float | None]) -> str:
    """mean ± sample standard deviation over seeds (— when a value is missing)."""
    if not xs or any(x is None for x in xs):
        return "—"
    m = statistics.fmean(xs)  # type: ignore[arg-type]
    return f"{m:.3f} ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else f"{m:.3f}"  # type: ignore[arg-type]


def position_only_auc(rows: list[dict[str, Any]]) -> float | None:
    """What the step position alone achieves (earlier steps are more often right): a PRM must beat this."""
    return _round(prm_train.auc([-float(k) for r in rows for k in range(len(r["labels"]))], [y for r in rows for y in r["labels"]]))


def bon_preview(rows: list[dict[str, Any]], scores: dict[str, list[list[float]]], ns: list[int]) -> dict[str, Any]:
    """Best-of-N (min aggregation) on each problem's FIRST N responses, one draw; majority vote and pass@N beside it.
    A preview only: the official numbers average random N-subsets (`prm-raft bon --scores`)."""
    problems = by_problem(rows)

    def rate(pick: Any, n: int) -> float:
        return round(sum(bool(pick(idx[:n])) for idx in problems.values()) / len(problems), 4)

    def majority(idx: list[int]) -> bool:
        return bool(majority_correct([rows[i]["answer"] for i in idx], [int(rows[i]["correct"]) for i in idx]))

    def best(sc: list[list[float]]) -> Any:
        def pick(idx: list[int]) -> bool:
            scored = [i for i in idx if sc[i]]
            return bool(scored) and rows[max(scored, key=lambda i: min(sc[i]))]["correct"]
        return pick

    return {
        "note": "first N responses of each problem, one draw: a preview; official numbers: prm-raft bon --scores",
        "first_response": rate(lambda idx: rows[idx[0]]["correct"], 1),
        "pass_at_n": {n: rate(lambda idx: any(rows[i]["correct"] for i in idx), n) for n in ns},
        "majority": {n: rate(majority, n) for n in ns},
        "best_of_n": {name: {n: rate(best(sc), n) for n in ns} for name, sc in scores.items()},
    }


def _cell(x: Any) -> str:
    return "—" if x is None else str(x)


def markdown(summary: dict[str, Any]) -> str:
    s = summary["samples"]
    lines = [
        f"Held-out: {s['responses']} temperature-1 policy samples ({s['per_problem']} for each of the first {s['problems']} "
        f"tinymath TEST problems; {s['without_steps']} without steps), {s['steps']} steps of which {s['step_positive_rate']:.1%} "
        f"are right (exact labels); {s['correct_rate']:.1%} of the responses are right.",
        "",
        "| model | kind | train solutions | mean train label | level | accuracy (score >= 0.5) | AUC | Brier | AUC of min score vs correct |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in summary["models"].items():
        e, t = m["metrics"], m["train_data"]
        level = "solution (ORM)" if e["level"] == "solution" else "step"
        kind = "ORM" if m["kind"] == "orm" else "PRM"
        lines.append(f"| {name} | {kind} | {t['solutions']} | {t['mean_label']} | {level} | {e['accuracy']} | {_cell(e['auc'])} | {e['brier']} | {_cell(e['auc_min_score_vs_correct'])} |")
    lines.append(f"| step position alone | — | — | — | step | — | {_cell(summary['position_only_step_auc'])} | — | — |")
    base = summary["selection_baselines"]
    lines += [
        "",
        "Within a problem (what RAFT and best-of-N use): right picks = the share of the problems with a right response whose "
        f"top-scored response (min over steps) is right; a random pick: {_cell(base['random'])}, majority vote: "
        f"{_cell(base['majority'])}. Pair AUC = the share of (right, wrong) pairs of responses to one problem ranked right first.",
        "",
        "| model | right picks | pair AUC |",
        "|---|---|---|",
    ]
    lines += [f"| {name} | {_cell(m['within_prompt']['right_picks'])} | {_cell(m['within_prompt']['pair_auc'])} |" for name, m in summary["models"].items()]
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in summary["models"].values():
        groups.setdefault(m["group"], []).append(m)
    if any(len(ms) > 1 for ms in groups.values()):
        lines += [
            "",
            "Over training seeds (mean ± standard deviation; the seeds change the data order and the readout's init only):",
            "",
            "| labels | seeds | step AUC (ORM: solution) | AUC of min score vs correct | right picks | pair AUC |",
            "|---|---|---|---|---|---|",
        ]
        for group, ms in groups.items():
            lines.append(
                f"| {group} | {', '.join(str(m['seed']) for m in ms)} | {spread([m['metrics']['auc'] for m in ms])} | "
                f"{spread([m['metrics']['auc_min_score_vs_correct'] for m in ms])} | "
                f"{spread([m['within_prompt']['right_picks'] for m in ms])} | {spread([m['within_prompt']['pair_auc'] for m in ms])} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    if min(args.test_problems, args.bon_samples, args.threads, args.steps, args.batch_size) < 1:
        raise BadConfig("--test-problems, --bon-samples, --threads, --steps and --batch-size must be >= 1")
    torch.set_num_threads(args.threads)
    specs = model_specs(args)
    if max(args.ns) > args.bon_samples:
        raise BadConfig(f"--ns {max(args.ns)} is more than --bon-samples {args.bon_samples}")
    policy = Path(args.policy)
    if not (policy / "config.json").is_file():
        raise BadConfig(f"--policy {policy} is not a checkpoint directory (no config.json)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    train_files = {s.name: train_file_for(s, out) for s in specs}  # every export checked before hours of work
    policy_sha = dir_sha256(policy)
    rows, samples_key = held_out(args, out, policy, policy_sha)
    summary: dict[str, Any] = {
        "settings": {
            "policy": str(policy), "policy_sha256": policy_sha, "data": args.data, "seed": args.seed, "steps": args.steps,
            "batch_size": args.batch_size, "lr": args.lr, "warmup": args.warmup, "weight_decay": WEIGHT_DECAY, "init": "policy",
            "training_seeds": args.seeds or [args.seed], "step_logprob_feature": args.step_logprob_feature,
            "lm_loss_weight": args.lm_loss_weight, "pairwise_loss_weight": args.pairwise_loss_weight,
        },
        "samples": sample_stats(rows, args.bon_samples),
        "position_only_step_auc": position_only_auc(rows),
        "selection_baselines": selection_baselines(rows),
        "models": {},
    }
    all_scores: dict[str, list[list[float]]] = {}
    for spec in specs:
        train_file, train_data = train_files[spec.name]
        model_dir, trained_key, train_seconds = train_model(spec, train_file, policy, policy_sha, out, args)
        scores, timings = scores_for(spec, model_dir, _hash({"model": trained_key, "samples": samples_key}), rows, out, args.threads)
        all_scores[spec.name] = scores
        metrics = model_metrics(spec.kind, rows, scores)
        summary["models"][spec.name] = {
            "kind": spec.kind, "group": spec.group, "seed": spec.seed, "within_prompt": within_prompt(rows, scores), "export": str(spec.export), "export_sha256": prm_train.sha256_file(spec.export), "train_data": train_data,
            "metrics": metrics, "scores": str(out / "bon" / f"{spec.name}.scores.jsonl"), "train_seconds": train_seconds, **timings,
        }
        emit("model", name=spec.name, train_seconds=train_seconds, **timings, **metrics)
        # written after every model, so a crash keeps what is finished
        write_atomic(out / "step_metrics.json", json.dumps(summary, indent=2) + "\n")
        write_atomic(out / "step_metrics.md", markdown(summary))
    emit("bon_preview", **bon_preview(rows, all_scores, args.ns))
    return summary


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.tiny.compare_prms", description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", default="models/tinymath-policy", help="the tiny policy: sampled for the held-out set, and every model's init")
    ap.add_argument("--data", default="data/tinymath", help="tinymath directory (its test.jsonl)")
    ap.add_argument("--train", type=name_file, action="append", default=[], metavar="NAME=FILE", help="a PRM from this label export (repeatable)")
    ap.add_argument("--orm", type=name_file, action="append", default=[], metavar="NAME=FILE", help="an ORM from this export's per-solution 'correct' (repeatable)")
    ap.add_argument("--out", required=True, help="checkpoints, held-out samples, scores files and metrics")
    ap.add_argument("--test-problems", type=int, default=500, help="the first this many TEST problems (tinymath has 500)")
    ap.add_argument("--bon-samples", type=int, default=16, help="policy samples per test problem")
    ap.add_argument("--ns", type=positive_ints, default=[4, 8, 16], help="N for the best-of-N preview (comma-separated)")
    ap.add_argument("--steps", type=int, default=SHIPPED["steps"], help="training steps (every model the same)")
    ap.add_argument("--lr", type=float, default=SHIPPED["lr"])
    ap.add_argument("--batch-size", type=int, default=SHIPPED["batch_size"])
    ap.add_argument("--warmup", type=int, default=SHIPPED["warmup"])
    ap.add_argument("--seed", type=int, default=0, help="sampling seed (and the training seed without --seeds)")
    ap.add_argument("--seeds", type=non_negative_ints, default=None, help="training seeds, comma-separated: each label set trains one model per seed, named NAME-s<seed>")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (training, sampling, each server)")
    # Off by default: the paper's step loss alone. On, every model gets the shipped PRM's within-question recipe
    # (the step loss stays; only the labels differ between models either way).
    ap.add_argument("--step-logprob-feature", action="store_true", help="the score also reads each step's log-likelihood (prm_train)")
    ap.add_argument("--lm-loss-weight", type=float, default=0.0, help="label-weighted LM loss on the steps (prm_train)")
    ap.add_argument("--pairwise-loss-weight", type=float, default=0.0, help="within-question ranking loss (prm_train)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # prm_train's progress lines go to stdout: keep stdout for the table alone
    with contextlib.redirect_stdout(sys.stderr):
        try:
            summary = run(args)
        except BadConfig as e:
            emit("error", message=str(e), retryable=False)
            return 2
        except Exception as e:  # noqa: BLE001 - a crash: a rerun resumes
            traceback.print_exc()
            emit("error", message=f"{type(e).__name__}: {e}", retryable=True)
            return 1
    print(markdown(summary), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
