"""A ProcessBench-style benchmark for the tiny PRMs: tiny-policy solutions of tinymath TEST problems with their
exact first-error step.

    python-sft/.venv/bin/python -m prm_raft.tiny.processbench --data data/tinymath --policy models/tinymath-policy --out data/tinymath/processbench.json

(from the project root; the defaults are the shipped files, so the command without flags writes the same file).
``--samples`` temperature-1 policy samples for each of the first ``--problems`` test problems
(:func:`prm_raft.tiny.train_prm.sample_policy`, the pipeline's own sampling engine), each split into steps and
labelled exactly (:func:`prm_raft.tiny.labels.step_labels`): ``label`` is the index of the first step whose label is
0, or -1 when every step is right. Per problem the first sample of each kind is kept (one with an error, one
error-free), and the two kinds are balanced as ProcessBench balances its GSM8K subset: ``--per-kind`` of each,
taken in problem order. The file is ProcessBench's own format (one JSON array of ``{"id", "generator", "problem",
"steps", "final_answer_correct", "label"}``), so ``prm-raft prm eval --benchmark tinymath`` reads it with the
ProcessBench reader. Deterministic for a given seed on a given machine; it writes atomically. The shipped file (800
records, 236 KB) took 10 min 21 s on this project's 2 cores, shared with other jobs (4 min 33 s of CPU).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from prm_raft.tiny.labels import Reference, outcome_label, split_steps, step_labels
from prm_raft.tiny.tinymath import load_jsonl, write_atomic
from prm_raft.tiny.train_prm import sample_policy


def first_error(labels: list[int]) -> int:
    """ProcessBench's label: the index of the first wrong step, or -1 when every step is right."""
    return next((i for i, x in enumerate(labels) if x == 0), -1)


def benchmark_records(problems: list[dict], samples: list[list[str]], per_kind: int, generator: str) -> list[dict]:
    """Balanced ProcessBench records: per problem its first sample with an error and its first error-free one, then
    the first `per_kind` of each kind in problem order, interleaved (error, error-free, ...). Samples without a
    step are skipped. Fewer than `per_kind` of either kind is an error: the caller asks for more problems."""
    kinds: dict[bool, list[dict]] = {True: [], False: []}
    for problem, texts in zip(problems, samples, strict=True):
        ref = Reference.from_solution(problem["solution"], problem["answer"])
        seen: set[bool] = set()
        for j, text in enumerate(texts):
            steps = split_steps(text)
            if not steps:
                continue
            label = first_error(step_labels(steps, ref))
            has_error = label != -1
            if has_error in seen:
                continue
            seen.add(has_error)
            kinds[has_error].append(
                {
                    "id": f"{problem['id']}/{j}",
                    "generator": generator,
                    "problem": problem["question"],
                    "steps": steps,
                    "final_answer_correct": bool(outcome_label(steps, problem["answer"])),
                    "label": label,
                }
            )
    short = {("with an error" if k else "error-free"): len(v) for k, v in kinds.items() if len(v) < per_kind}
    if short:
        raise ValueError(f"too few samples for {per_kind} of each kind: {short}; raise --problems or --samples")
    return [r for pair in zip(kinds[True][:per_kind], kinds[False][:per_kind]) for r in pair]


def to_json(records: list[dict]) -> str:
    """A JSON array with one record per line: small diffs, and still what `json.load` reads."""
    return "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in records) + "\n]\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.tiny.processbench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/tinymath", help="tinymath folder (its test.jsonl is read)")
    ap.add_argument("--policy", default="models/tinymath-policy", help="the policy checkpoint that writes the solutions")
    ap.add_argument("--out", default="data/tinymath/processbench.json")
    ap.add_argument("--problems", type=int, default=1000, help="the first N test problems are sampled")
    ap.add_argument("--samples", type=int, default=4, help="samples per problem")
    ap.add_argument("--per-kind", type=int, default=400, help="records with an error, and error-free records, each")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if min(args.problems, args.samples, args.per_kind) < 1:
        print("--problems, --samples and --per-kind must be >= 1", file=sys.stderr)
        return 2
    start = time.monotonic()
    problems = load_jsonl(Path(args.data) / "test.jsonl")[: args.problems]
    samples = sample_policy(Path(args.policy), problems, args.samples, args.seed)
    try:
        records = benchmark_records(problems, samples, args.per_kind, Path(args.policy).name)
    except ValueError as e:
        print(str(e), file=sys.stderr)
        return 2
    write_atomic(Path(args.out), to_json(records))
    print(json.dumps({"event": "wrote", "path": args.out, "records": len(records), "seconds": round(time.monotonic() - start, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
