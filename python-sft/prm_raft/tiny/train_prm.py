"""Train the embedded default's tiny PRM (or ORM) on tinymath with EXACT step labels.

    python -m prm_raft.tiny.train_prm --data data/tinymath --policy models/tinymath-policy --out models/tinymath-prm --seed 0
    python -m prm_raft.tiny.train_prm --data data/tinymath --policy models/tinymath-policy --out models/tinymath-orm --kind orm --seed 0

Training solutions that contain wrong steps come from two sources:

- the tiny policy's own samples (``--samples-per-problem`` solutions per problem for the first ``--sample-problems``
  of the train problems used, temperature 1, through the CPU policy server's engine; ``--sample-cache`` keeps them),
  when ``--policy`` is a checkpoint directory; and
- synthetic corruptions of the reference solutions (:func:`corrupt`): a wrong result carried forward or not,
  a wrong operand or operation carried forward, a wrong final answer; plus the reference solutions themselves.

Every step is labeled exactly by :func:`prm_raft.tiny.labels.step_labels` (1 while the solution prefix is
still right, then 0); an ORM gets :func:`prm_raft.tiny.labels.outcome_label` (final answer right). The
model is fine-tuned from the policy (``--policy``, or ``--init-from`` an earlier stage; from scratch with ``--policy
none``) by :mod:`prm_raft.prm_train`, with its within-question options (``--step-logprob-feature``,
``--lm-loss-weight``, ``--pairwise-loss-weight``). The train problems used start at ``--first-problem``, so the
prompts a RAFT iteration samples (``train[:limit]``) can stay unseen by the reward model. Held-out evaluation: the same kinds of solutions built from the TEST split (policy
samples and corruptions), scored through :class:`prm_raft.prm_server.PrmScorer` (what the server runs): step
accuracy, step AUC against the exact labels, and the solution-level AUC of the min step score against final
correctness; the paired probe (:func:`paired_probe`); and WITHIN-PROMPT selection (:func:`selection_eval`, what RAFT
lives on): ``--selection-samples`` policy samples for each of the first ``--selection-problems`` test problems, the share
of problems whose highest-scoring response is right, next to a random pick, the oracle, majority voting and the
policy's own likelihood — the model's README says whether it passes the ship gate (:func:`ship_gate`: more right
picks than majority and likelihood among the problems that have a right sample) — (``--selection-compare DIR`` adds
another checkpoint, e.g. the ORM, on the same samples). Data options: ``--corruption-kinds`` (which corruptions
are drawn, repetition = weight) and ``--after-error drop`` (cut each training solution after its first wrong step).
The results and the exact regenerate command go into the checkpoint's README.md and
``tiny_prm_eval.json``. The checkpoint appears atomically. Deterministic for a given seed on a given machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shlex
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

from prm_raft import prm_train  # noqa: E402
from prm_raft.train_job import replace_dir_atomically  # noqa: E402
from prm_raft.tiny.tinymath import final_answer, load_jsonl, write_atomic  # noqa: E402
from prm_raft.tiny.labels import Equation, Reference, outcome_label, split_steps, step_labels  # noqa: E402

PROMPT_TEMPLATE = "Question: {question}\nAnswer:\n"
STOP = ["\n\n", "Question:"]
SAMPLE_MAX_TOKENS = 96


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


# --------------------------------------------------------------------------------------------------
# Synthetic corruptions (pure, seeded)
# --------------------------------------------------------------------------------------------------


def _fmt_num(x: Any) -> str:
    return str(int(x)) if x == int(x) else str(float(x))


def _eval(a: int, op: str, b: int) -> int:
    return a + b if op == "+" else a - b if op == "-" else a * b


def _render(a: int, op: str, b: int, c: int) -> str:
    return f"{_fmt_num(a)} {op} {_fmt_num(b)} = {_fmt_num(c)}"


def _perturb(rng: random.Random, v: int) -> int:
    """A nearby wrong integer (never v itself, never negative)."""
    while True:
        kind = rng.random()
        if kind < 0.5:
            w = v + rng.choice([-1, 1]) * rng.randint(1, 3)
        elif kind < 0.8:
            w = v + rng.choice([-1, 1]) * rng.choice([10, 20, 5, 4, 6])
        else:  # a digit slip
            s = list(str(v))
            i = rng.randrange(len(s))
            s[i] = str(rng.choice([d for d in range(10) if str(d) != s[i]]))
            w = int("".join(s))
        if w != v and w >= 0:
            return w


CORRUPTIONS = ("wrong_result_carry", "wrong_result_nocarry", "wrong_operand", "wrong_op", "wrong_final")


def corrupt(ref: Reference, kind: str, rng: random.Random) -> list[str]:
    """A solution (list of step lines incl. the ``#### N`` line) with one error of `kind` at a random step.

    - wrong_result_carry: step j's result is wrong; later steps use that wrong value and are arithmetically right;
    - wrong_result_nocarry: step j's result is wrong; later steps and the answer are the reference's;
    - wrong_operand: step j uses a wrong number (arithmetically right), carried forward;
    - wrong_op: step j swaps + and - (or * for +), arithmetically right, carried forward;
    - wrong_final: every step right, the final answer wrong.
    """
    eqs: list[Equation] = list(ref.equations)
    n = len(eqs)
    vals = [(int(e.a), e.op, int(e.b), int(e.c)) for e in eqs]
    if kind == "wrong_final":
        steps = [_render(*v) for v in vals]
        return steps + [f"#### {_perturb(rng, int(ref.answer))}"]
    j = rng.randrange(n)
    steps = [_render(*v) for v in vals[:j]]
    a, op, b, c = vals[j]
    if kind in ("wrong_result_carry", "wrong_result_nocarry"):
        new = (a, op, b, _perturb(rng, c))
    elif kind == "wrong_operand":
        if rng.random() < 0.5:
            a2 = _perturb(rng, a)
            new = (a2, op, b, _eval(a2, op, b))
        else:
            b2 = _perturb(rng, b)
            new = (a, op, b2, _eval(a, op, b2))
    elif kind == "wrong_op":
        op2 = {"+": "-", "-": "+", "*": "+"}[op]
        new = (a, op2, b, _eval(a, op2, b))
    else:
        raise ValueError(f"unknown corruption {kind!r}")
    steps.append(_render(*new))
    if kind == "wrong_result_nocarry":
        return steps + [_render(*v) for v in vals[j + 1 :]] + [f"#### {ref.answer}"]
    # carry the wrong value forward: later operands equal to a corrupted original value take the wrong one
    wrong = {c: new[3]} if new[3] != c else {}
    last = new[3]
    for a, op, b, c in vals[j + 1 :]:
        a2, b2 = wrong.get(a, a), wrong.get(b, b)
        c2 = _eval(a2, op, b2)
        if c2 != c:
            wrong[c] = c2
        steps.append(_render(a2, op, b2, c2))
        last = c2
    return steps + [f"#### {last}"]


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


def sample_policy(policy_dir: Path, records: list[dict], n: int, seed: int, batch: int = 512) -> list[list[str]]:
    """`n` samples per record at temperature 1 through the CPU policy server's engine (what the pipeline samples
    with), each cut at the policy's stop strings. Chunks of `batch` rows, each seeded from (`seed`, chunk index), so
    the result depends on nothing but the arguments."""
    from prm_raft.policy_server import Engine

    engine = Engine(policy_dir, max_batch=batch)
    per_chunk = max(1, batch // n)
    out: list[list[str]] = []
    for c, start in enumerate(range(0, len(records), per_chunk)):
        prompts = [PROMPT_TEMPLATE.format(question=r["question"]) for r in records[start : start + per_chunk]]
        completions = engine.complete(prompts, n=n, temperature=1.0, max_tokens=SAMPLE_MAX_TOKENS, stop=STOP, seed=seed * 1_000_003 + c)
        out += [[x.text for x in row] for row in completions]
    return out


def cached_samples(cache: Path | None, policy_dir: Path, records: list[dict], n: int, seed: int) -> list[list[str]]:
    """`sample_policy`, kept in `cache` under a hash of the policy's weights and every argument: a second training
    stage from the same samples does not sample again."""
    if cache is None:
        return sample_policy(policy_dir, records, n, seed)
    from prm_raft.policy_server import weights_root

    what = json.dumps([weights_root(str(policy_dir)), [r["question"] for r in records], n, seed, SAMPLE_MAX_TOKENS, STOP])
    path = cache / f"{hashlib.sha256(what.encode()).hexdigest()[:24]}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    samples = sample_policy(policy_dir, records, n, seed)
    write_atomic(path, json.dumps(samples))
    return samples


def policy_loglik(policy_dir: Path, records: list[dict], samples: list[list[str]], batch: int = 64) -> list[list[float]]:
    """The policy's log-likelihood of each sample given its prompt (the label-free score a reward model must beat)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(policy_dir)
    model = AutoModelForCausalLM.from_pretrained(policy_dir, dtype=torch.float32).eval()
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    flat = [(tok(PROMPT_TEMPLATE.format(question=records[i]["question"]))["input_ids"], tok(t, add_special_tokens=False)["input_ids"])
            for i, ss in enumerate(samples) for t in ss]
    scores: list[float] = []
    with torch.inference_mode():
        for s in range(0, len(flat), batch):
            chunk = flat[s : s + batch]
            width = max(len(p) + len(c) for p, c in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            for b, (p, c) in enumerate(chunk):
                ids[b, : len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
            logp = torch.log_softmax(model(input_ids=ids).logits.float(), dim=-1)
            for b, (p, c) in enumerate(chunk):
                pos = torch.arange(len(p) - 1, len(p) - 1 + len(c))
                scores.append(float(logp[b, pos, torch.tensor(c, dtype=torch.long)].sum()) if c else float("-inf"))
    out, i = [], 0
    for ss in samples:
        out.append(scores[i : i + len(ss)])
        i += len(ss)
    return out


def make_rows(record: dict, solutions: list[list[str]], source: str) -> list[dict]:
    ref = Reference.from_solution(record["solution"], record["answer"])
    rows = []
    for steps in solutions:
        if not steps:
            continue
        rows.append(
            {
                "id": record.get("id"),
                "source": source,
                "question": record["question"],
                "steps": steps,
                "labels": [float(x) for x in step_labels(steps, ref)],
                "outcome": float(outcome_label(steps, record["answer"])),
            }
        )
    return rows


def synthetic_solutions(
    record: dict, rng: random.Random, n_corrupt: int, with_reference: bool, kinds: tuple[str, ...] = CORRUPTIONS
) -> list[list[str]]:
    """The reference (optional) and `n_corrupt` corruptions, their kinds drawn without replacement from `kinds`
    (a kind listed twice is drawn up to twice: repetition is a weight)."""
    ref = Reference.from_solution(record["solution"], record["answer"])
    sols = [split_steps(record["solution"])] if with_reference else []
    for kind in rng.sample(kinds, k=min(n_corrupt, len(kinds))):
        sols.append(corrupt(ref, kind, rng))
    return sols


def drop_after_first_error(rows: list[dict]) -> list[dict]:
    """Each solution cut after its first wrong step (labels 1..1 0). The steps after it are 0 by definition and
    teach nothing but "later steps are worse" (the position shortcut); the causal model cannot see that they were
    cut, and a response's min step score is at most its first wrong step's score anyway."""
    out = []
    for r in rows:
        if 0.0 in r["labels"]:
            k = r["labels"].index(0.0) + 1
            r = {**r, "steps": r["steps"][:k], "labels": r["labels"][:k]}
        out.append(r)
    return out


def build_rows(
    records: list[dict],
    rng: random.Random,
    policy_samples: list[list[str]] | None,
    n_corrupt: int,
    with_reference: bool,
    kinds: tuple[str, ...] = CORRUPTIONS,
) -> list[dict]:
    rows: list[dict] = []
    for i, r in enumerate(records):
        if policy_samples is not None and i < len(policy_samples):
            rows += make_rows(r, [split_steps(t) for t in policy_samples[i]], "policy")
        rows += make_rows(r, synthetic_solutions(r, rng, n_corrupt, with_reference, kinds), "synthetic")
    return rows


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def label_stats(rows: list[dict]) -> dict[str, Any]:
    steps = [y for r in rows for y in r["labels"]]
    return {
        "solutions": len(rows),
        "steps": len(steps),
        "step_positive_rate": round(sum(steps) / max(1, len(steps)), 4),
        "solution_correct_rate": round(sum(r["outcome"] for r in rows) / max(1, len(rows)), 4),
        "from_policy": sum(r["source"] == "policy" for r in rows),
    }


# --------------------------------------------------------------------------------------------------
# Evaluation through the server's scorer
# --------------------------------------------------------------------------------------------------


def evaluate(model_dir: Path, rows: list[dict], kind: str, batch: int = 64) -> dict[str, Any]:
    from prm_raft.prm_server import PrmScorer

    scorer = PrmScorer(model_dir)
    scores: list[list[float]] = []
    for s in range(0, len(rows), batch):
        scores += scorer.score([(r["question"], r["steps"]) for r in rows[s : s + batch]])
    out: dict[str, Any] = {}
    for name in ("policy", "synthetic", "all"):
        idx = [i for i, r in enumerate(rows) if name == "all" or r["source"] == name]
        if not idx:
            continue
        res: dict[str, Any] = {}
        if kind != "orm":
            labels = [y for i in idx for y in rows[i]["labels"]]
            res["step"] = prm_train.score_metrics([s for i in idx for s in scores[i]], labels)
            # what the step position alone achieves (earlier steps are more often right): the PRM must beat this
            res["step"]["auc_position_only"] = _round(
                prm_train.auc([-float(k) for i in idx for k in range(len(rows[i]["labels"]))], [int(y >= 0.5) for y in labels])
            )
        sol_scores = [min(scores[i]) for i in idx]  # the response score used for ranking (min over steps)
        outcomes = [int(rows[i]["outcome"]) for i in idx]
        res["solution"] = {
            "solutions": len(idx),
            "correct_rate": round(sum(outcomes) / len(idx), 4),
            "auc_min_score_vs_correct": _round(prm_train.auc(sol_scores, outcomes)),
            "accuracy_min_score_vs_correct": round(sum(int(s >= 0.5) == y for s, y in zip(sol_scores, outcomes)) / len(idx), 4),
        }
        out[name] = res
    return out


def paired_probe(model_dir: Path, records: list[dict], kind: str, seed: int) -> dict[str, Any]:
    """Does the model check the arithmetic? For each record, its reference solution against the same solution with
    ONE wrong result: a PRM is compared at the wrong step (the error not carried, so nothing else differs before
    it), an ORM on the whole response (the error carried to a wrong final answer). Position and length are equal
    within a pair, so only the error itself can make the difference."""
    from prm_raft.prm_server import PrmScorer

    scorer = PrmScorer(model_dir)
    rng = random.Random(seed)
    diffs = []
    for r in records:
        ref = Reference.from_solution(r["solution"], r["answer"])
        good = split_steps(r["solution"])
        bad = corrupt(ref, "wrong_result_carry" if kind == "orm" else "wrong_result_nocarry", rng)
        g, b = scorer.score([(r["question"], good), (r["question"], bad)])
        j = 0 if kind == "orm" else next(i for i, (x, y) in enumerate(zip(good, bad)) if x != y)
        diffs.append(g[j] - b[j])
    return {
        "pairs": len(diffs),
        "wrong_scored_lower": round(sum(d > 0 for d in diffs) / len(diffs), 4),
        "mean_score_gap": round(sum(diffs) / len(diffs), 4),
    }


def pick_correct(keys: list[float], correct: list[int]) -> float:
    """Whether the highest-keyed response is right; ties: the mean correctness over the tied ones (a fair random
    tie-break, so a constant score counts as a random pick)."""
    best = max(keys)
    tied = [c for k, c in zip(keys, correct) if k == best]
    return sum(tied) / len(tied)


def majority_correct(answers: list[str | None], correct: list[int]) -> int:
    """Whether the first response with the most common answer is right (no answer never votes)."""
    votes = Counter(a for a in answers if a is not None)
    top = max(votes.values()) if votes else 0
    return next((c for a, c in zip(answers, correct) if a is not None and votes[a] == top), 0)


def selection_eval(
    model_dir: Path, records: list[dict], samples: list[list[str]], loglik: list[list[float]] | None = None, batch: int = 64
) -> dict[str, Any]:
    """What RAFT (and best-of-N) lives on: WITHIN-PROMPT selection. For each record, its policy samples (`samples[i]`,
    all for the same prompt) are scored, each response by its min step score (an ORM: its one score), and the response
    with the highest score is picked (ties: the mean correctness over the tied responses, i.e. a fair random tie-break).
    Returns the share of problems whose pick is correct, next to a random pick (the mean correct rate), the oracle
    (any sample correct), and the pick of the SHORTEST response (fewest steps; what a score that only falls with the
    step position picks), the label-free baselines a reward model must beat: the majority answer's first response and
    the response the policy itself finds likeliest (`loglik`), and the share of the problems WITH a right sample whose
    pick is right (``*_when_any_right``: the number the ship gate compares). ``decisive`` restricts to the problems with
    at least one right and one wrong sample, where the choice matters. An empty response is never picked over a
    non-empty one."""
    from prm_raft.prm_server import PrmScorer

    scorer = PrmScorer(model_dir)
    items = [(ri, si, split_steps(t)) for ri, ss in enumerate(samples) for si, t in enumerate(ss)]
    scored = [x for x in items if x[2]]
    flat: list[float] = []
    for s in range(0, len(scored), batch):
        flat += [min(sc) for sc in scorer.score([(records[ri]["question"], st) for ri, _, st in scored[s : s + batch]])]
    by_key = {(ri, si): v for (ri, si, _), v in zip(scored, flat)}

    picked, shortest, rand, oracle, decisive, majority, likeliest = [], [], [], [], [], [], []
    for ri, ss in enumerate(samples):
        if not ss:
            continue
        correct = [outcome_label(split_steps(t), records[ri]["answer"]) for t in ss]
        keys = [by_key.get((ri, si), float("-inf")) for si in range(len(ss))]
        p = pick_correct(keys, correct)
        picked.append(p)
        majority.append(majority_correct([final_answer(t) for t in ss], correct))
        if loglik is not None:
            likeliest.append(pick_correct(loglik[ri], correct))
        shortest.append(pick_correct([-len(split_steps(t)) if split_steps(t) else float("-inf") for t in ss], correct))
        rand.append(sum(correct) / len(correct))
        oracle.append(int(any(correct)))
        if 0 < sum(correct) < len(correct):
            decisive.append((p, sum(correct) / len(correct)))
    n = len(picked)
    any_right = [i for i, o in enumerate(oracle) if o]

    def when_any_right(xs: list[float]) -> float | None:
        return round(sum(xs[i] for i in any_right) / len(any_right), 4) if xs and any_right else None

    return {
        "problems_with_a_right_sample": len(any_right),
        "picked_when_any_right": when_any_right(picked),
        "random_when_any_right": when_any_right(rand),
        "majority_when_any_right": when_any_right(majority),
        "likeliest_when_any_right": when_any_right(likeliest),
        "problems": n,
        "samples_per_problem": max(len(ss) for ss in samples),
        "picked_correct": round(sum(picked) / n, 4),
        "random_pick": round(sum(rand) / n, 4),
        "oracle": round(sum(oracle) / n, 4),
        "shortest_pick": round(sum(shortest) / n, 4),
        "decisive_problems": len(decisive),
        "decisive_picked_correct": round(sum(p for p, _ in decisive) / max(1, len(decisive)), 4),
        "decisive_random_pick": round(sum(r for _, r in decisive) / max(1, len(decisive)), 4),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


README = """# {name}

A tiny {what} for tinymath, the embedded default's task: {arch}. Trained by `python-sft/prm_raft/tiny/train_prm.py`
through `python-sft/prm_raft/prm_train.py` (kind `{kind}`), fine-tuned from {base}.

How it scores (see `prm_config.json` and `python-sft/prm_raft/prm_format.py`, the one definition shared by training and
scoring): the input is `Question: {{question}}\\nAnswer:\\n`, then every step followed by the step tag `ки` (one special
token) and `\\n` between steps; {readout}. Serve it with
`python -m prm_raft.prm_server --model models/{name} --port 8200`.

## Training data

Exact labels: tinymath's steps are checkable, so a step is labeled 1 iff the solution prefix up to and including it is
right (every step so far arithmetically right and on the reference chain: same operands, same result; the `#### N` line
right iff N is the answer) and 0 from the first wrong step on (`prm_raft/tiny/labels.py`). {label_note}

Train split: {train_stats}.
Sources: {sources}.

## Measured (held-out: solutions built from the TEST split, never seen in training)

{eval_table}

Training: {steps} steps of batch {batch_size} (lr {lr}), {train_seconds}s of training on {threads} CPU threads;
whole script {total_seconds}s (sampling included; the machine's 1-minute load average was {load_start} at the start and
{load_end} at the end: other jobs shared its cores). Parameters: {params:,}; checkpoint {size_kb} KB.

{provenance}

## Regenerate

From the project root{stages}:

```
{command}
```

Deterministic for a given seed on a given machine (seeded sampling, shuffling and init; deterministic algorithms).
"""


def _eval_table(ev: dict[str, Any], kind: str) -> str:
    lines = []
    if kind != "orm":
        lines.append("| solutions from | tags | positive rate | step accuracy | step AUC | Brier | AUC of the step position alone |")
        lines.append("|---|---|---|---|---|---|---|")
        for name, res in ev.items():
            s = res["step"]
            lines.append(
                f"| {name} | {s['tags']} | {s['positive_rate']} | {s['accuracy']} | {s['auc']} | {s['brier']} | {s.get('auc_position_only')} |"
            )
        lines.append("")
    lines.append("| solutions from | solutions | correct rate | AUC of min step score vs final correctness | accuracy (min score >= 0.5) |")
    lines.append("|---|---|---|---|---|")
    for name, res in ev.items():
        s = res["solution"]
        lines.append(f"| {name} | {s['solutions']} | {s['correct_rate']} | {s['auc_min_score_vs_correct']} | {s['accuracy_min_score_vs_correct']} |")
    return "\n".join(lines)


def ship_gate(sel: dict[str, Any]) -> bool:
    """The tiny PRM ships only if, among held-out problems with a right sample, it picks a right response more often
    than both label-free baselines: majority voting and the policy's own likelihood."""
    picked = sel.get("picked_when_any_right")
    rivals = [sel.get("majority_when_any_right"), sel.get("likeliest_when_any_right")]
    return picked is not None and all(r is not None and picked > r for r in rivals)


def _selection_text(selection: dict[str, Any], args: argparse.Namespace) -> str:
    if not selection:
        return ""
    lines = [
        "",
        "",
        f"Within-prompt selection (what RAFT and best-of-N live on): {args.selection_samples} temperature-1 policy samples "
        f"(seed {args.seed + 3}) for each of the first {args.selection_problems} TEST problems; the response with the highest "
        "min step score is picked (ties: the mean over the tied ones). Right picks among the problems that have a right "
        "sample, beside a random pick, majority voting (the most common answer) and the policy's own likelihood "
        "(the likeliest response). **Ship gate**: beat both majority and likelihood.",
        "",
        "| model | problems with a right sample | picked right | random | majority | likeliest | gate |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, s in selection.items():
        lines.append(
            f"| {name} | {s['problems_with_a_right_sample']} | **{s['picked_when_any_right']}** | {s['random_when_any_right']} | "
            f"{s['majority_when_any_right']} | {s['likeliest_when_any_right']} | {'passed' if ship_gate(s) else 'FAILED'} |"
        )
    lines += [
        "",
        "Over all problems (*decisive*: at least one right and one wrong sample; *shortest*: the response with the fewest "
        "steps, what a score that only falls with the step position picks):",
        "",
        "| model | problems | picked correct | random pick | oracle (any correct) | shortest pick | decisive problems | decisive: picked | decisive: random |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in selection.items():
        lines.append(
            f"| {name} | {s['problems']} | **{s['picked_correct']}** | {s['random_pick']} | {s['oracle']} | {s['shortest_pick']} | "
            f"{s['decisive_problems']} | {s['decisive_picked_correct']} | {s['decisive_random_pick']} |"
        )
    return "\n".join(lines)


def regenerate_command(args: argparse.Namespace) -> list[str]:
    """The command line that trains this model again: the paths, the seed and every option off its default."""
    cmd = ["python", "-m", "prm_raft.tiny.train_prm", "--data", args.data, "--policy", args.policy or "none", "--out", args.out, "--seed", str(args.seed)]
    for flag, _default, value in _non_defaults(args):
        if isinstance(value, bool):  # a switch: present or not
            cmd += [flag] if value else []
            continue
        for v in value if isinstance(value, list) else [value]:
            cmd += [flag, str(v)]
    return cmd


def _command_from_root(cmd: list[str]) -> str:
    """The command as typed from the project root: a `cd` first when it ran elsewhere (its paths are relative to there)."""
    root = Path(__file__).resolve().parents[3]
    here = os.path.relpath(Path.cwd(), root)
    python = os.path.relpath(root / "python-sft" / ".venv" / "bin" / "python", Path.cwd())
    line = " ".join(shlex.quote(c) for c in [python, *cmd[1:]])
    return line if here == "." else f"cd {shlex.quote(here)}\n{line}"


def _load() -> str:
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:  # pragma: no cover
        return "unknown"


def _probe_text(probe: dict[str, Any], kind: str) -> str:
    where = "on the whole response (the error carried to a wrong answer)" if kind == "orm" else "at the wrong step (the error not carried)"
    return (
        f"Paired probe ({probe['pairs']} test problems): the reference solution against the same solution with one wrong result, "
        f"compared {where}: the wrong one scores lower in **{probe['wrong_scored_lower']:.0%}** of pairs (50% = no check), "
        f"mean score gap {probe['mean_score_gap']}."
    )


def run(args: argparse.Namespace) -> Path:
    t_start = time.monotonic()
    load_start = _load()
    data = Path(args.data)
    train_records = load_jsonl(data / "train.jsonl")
    test_records = load_jsonl(data / "test.jsonl")
    torch.set_num_threads(args.threads)
    policy = None if args.policy in (None, "", "none") else Path(args.policy)
    if policy is not None and not (policy / "config.json").is_file():
        if args.require_policy:
            raise prm_train.BadConfig(f"--policy {policy} is not a checkpoint directory")
        emit("warning", message=f"no policy checkpoint at {policy}: synthetic corruptions only, training from scratch")
        policy = None

    data_sha = prm_train.sha256_file(data / "train.jsonl")
    provenance = f"Inputs: tinymath `train.jsonl` sha256 `{data_sha}`."
    if policy is not None:
        info_path = policy / "training_info.json"
        pol_sha = json.loads(info_path.read_text()).get("train_data_sha256") if info_path.is_file() else None
        provenance += f" Policy `{args.policy}` trained on data sha256 `{pol_sha or 'unknown'}`."
        if pol_sha and pol_sha != data_sha:
            provenance += " **The policy was trained on another version of the data: regenerate the policy, then this model.**"
            emit("warning", message=f"the policy was trained on data sha256 {pol_sha}, not this data ({data_sha})")

    rng = random.Random(args.seed)
    # --first-problem keeps the reward model's problems apart from the prompts a RAFT iteration samples (train[:limit]).
    train_sel = train_records[args.first_problem : args.first_problem + args.train_problems]
    test_sel = test_records[: args.test_problems]
    train_samples = test_samples = sel_samples = None
    sel_records = test_records[: args.selection_problems]
    if policy is not None:
        t0 = time.monotonic()
        cache = Path(args.sample_cache) if args.sample_cache else None
        train_samples = cached_samples(cache, policy, train_sel[: args.sample_problems], args.samples_per_problem, args.seed)
        test_samples = cached_samples(cache, policy, test_sel, args.samples_per_problem, args.seed + 1)
        if sel_records and args.selection_samples > 0:
            sel_samples = cached_samples(cache, policy, sel_records, args.selection_samples, args.seed + 3)
        sel_loglik = policy_loglik(policy, sel_records, sel_samples) if sel_samples is not None else None
        emit("sampled", train_problems=len(train_samples), test_problems=len(test_samples), per_problem=args.samples_per_problem, seconds=round(time.monotonic() - t0, 1))
    kinds = tuple(k.strip() for k in args.corruption_kinds.split(",") if k.strip())
    unknown = sorted(set(kinds) - set(CORRUPTIONS))
    if unknown or not kinds:
        raise prm_train.BadConfig(f"--corruption-kinds: unknown kind(s) {unknown}; known: {', '.join(CORRUPTIONS)}")
    train_rows = build_rows(train_sel, rng, train_samples, args.corruptions, with_reference=True, kinds=kinds)
    if args.after_error == "drop":
        train_rows = drop_after_first_error(train_rows)
    test_rows = build_rows(test_sel, random.Random(args.seed + 1), test_samples, 2, with_reference=True)
    rng.shuffle(train_rows)
    emit("data", train=label_stats(train_rows), test=label_stats(test_rows))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.stage-{os.getpid()}"
    work = Path(tempfile.mkdtemp(prefix="tiny-prm-"))
    try:
        write_jsonl(work / "train.jsonl", train_rows)
        cfg = prm_train.validate_config(
            {
                "base": args.init_from or (str(policy) if policy is not None and args.init == "policy" else None),
                "train_file": str(work / "train.jsonl"),
                "output_dir": str(stage),
                "kind": args.kind,
                "max_steps": args.steps,
                "batch_size": args.batch_size,
                "learning_rate": args.lr,
                "warmup_steps": args.warmup,
                "seed": args.seed,
                "threads": args.threads,
                "log_every": args.log_every,
                "weight_decay": 0.01,
                "group_by_length": not args.no_group_by_length,
                "step_logprob_feature": args.step_logprob_feature,
                "lm_loss_weight": args.lm_loss_weight,
                "pairwise_loss_weight": args.pairwise_loss_weight,
                **({"format": dict(zip(("good_token", "bad_token"), _label_tokens(args.label_tokens)))} if args.label_tokens else {}),
                **(
                    {}
                    if args.init_from or (policy is not None and args.init == "policy")
                    else {
                        "model_config": {
                            "hidden_size": args.hidden,
                            "intermediate_size": args.intermediate,
                            "num_hidden_layers": args.layers,
                            "num_attention_heads": args.heads,
                            "num_key_value_heads": args.heads,
                            "max_position_embeddings": 384,
                        }
                    }
                ),
            },
            where="train_tiny_prm",
        )
        _, metrics = prm_train.train(cfg)
        t0 = time.monotonic()
        ev = evaluate(stage, test_rows, args.kind)
        probe = paired_probe(stage, test_sel, args.kind, args.seed + 2)
        selection: dict[str, Any] = {}
        if sel_samples is not None:
            selection[out.name] = selection_eval(stage, sel_records, sel_samples, sel_loglik)
            for other in args.selection_compare or []:
                selection[Path(other).name] = selection_eval(Path(other), sel_records, sel_samples, sel_loglik)
        emit("eval", seconds=round(time.monotonic() - t0, 1), paired=probe, selection=selection, **ev)
        if args.keep_data:
            keep = Path(args.keep_data)
            keep.mkdir(parents=True, exist_ok=True)
            write_jsonl(keep / "train.jsonl", train_rows)
            write_jsonl(keep / "test.jsonl", test_rows)
        prm_cfg = json.loads((stage / prm_train.PRM_CONFIG).read_text(encoding="utf-8"))
        size_kb = sum(p.stat().st_size for p in stage.iterdir() if p.is_file()) // 1024
        first = args.first_problem
        what = {"autoregressive": "process reward model (PRM)", "regression": "regression PRM", "orm": "outcome reward model (ORM)"}[args.kind]
        readout = {
            "autoregressive": "the score of a step is the 2-way softmax over the `+`/`-` next-token logits at its tag, P(`+`)",
            "regression": "the score of a step is the sigmoid of a scalar head at its tag",
            "orm": "the whole response is one step: the score is P(`+`) from the `+`/`-` logits at the one tag after it (`step_scores` has length 1)",
        }[args.kind]
        if args.step_logprob_feature:
            w = prm_cfg["readout"]
            readout += (
                f"; before the sigmoid the logit also gets {w['step_logprob_weight']:.3f} × the step's log-likelihood under the "
                f"model's own LM head, log P(step | question, earlier steps), and {w['bias']:+.3f} (`readout` in `prm_config.json`): "
                "within one prompt an unlikely step is a suspect step"
            )
        label_note = (
            "The ORM is trained on the outcome only: 1 iff the final `#### N` answer is right, whatever the steps."
            if args.kind == "orm"
            else "Labels are hard (0/1); the trainer takes soft labels too."
        )
        sources = (
            f"{args.samples_per_problem} temperature-1 policy samples for each of train problems {first + 1}-{first + args.sample_problems} "
            f"(from `{args.policy}`), plus for each of train problems {first + 1}-{first + args.train_problems} its reference solution and "
            f"{args.corruptions} synthetic corruptions (kinds drawn from: {', '.join(kinds)})"
            if policy is not None
            else f"for each of train problems {first + 1}-{first + args.train_problems} its reference solution and {args.corruptions} synthetic "
            f"corruptions (kinds drawn from: {', '.join(kinds)}); no policy samples (no policy checkpoint)"
        )
        test_sources = f"test: the first {len(test_sel)} test problems, " + (
            f"{args.samples_per_problem} policy samples each plus " if policy is not None else ""
        ) + "the reference and 2 corruptions each"
        mc = json.loads((stage / "config.json").read_text())
        arch = f"LLaMA architecture, {mc.get('num_hidden_layers')} layers, hidden {mc.get('hidden_size')}, {prm_cfg['params']:,} parameters, character-level tokenizer"
        total_seconds = round(time.monotonic() - t_start, 1)
        readme = README.format(
            name=out.name,
            what=what,
            arch=arch,
            kind=args.kind,
            base=f"the tiny policy `{args.policy}`" if policy is not None and args.init == "policy" else "scratch" + ("" if policy is not None else " (no policy checkpoint was found)"),
            readout=readout,
            label_note=label_note,
            train_stats=json.dumps(label_stats(train_rows)),
            sources=sources + "; " + test_sources + " " + json.dumps(label_stats(test_rows)),
            eval_table=_eval_table(ev, args.kind) + "\n\n" + _probe_text(probe, args.kind) + _selection_text(selection, args),
            steps=args.steps,
            batch_size=args.batch_size,
            lr=args.lr,
            train_seconds=round(metrics["train_runtime"], 1),
            threads=args.threads,
            total_seconds=total_seconds,
            provenance=provenance,
            load_start=load_start,
            load_end=_load(),
            params=prm_cfg["params"],
            size_kb=size_kb,
            command=_command_from_root(regenerate_command(args)),
            stages=f" (`make {args.make_target}` runs this after the stage it starts from, `--init-from`)" if args.init_from and args.make_target else "",
        )
        (stage / "README.md").write_text(readme, encoding="utf-8")
        (stage / "tiny_prm_eval.json").write_text(
            json.dumps(
                {"eval": ev, "paired_probe": probe, "selection": selection, "train_data": label_stats(train_rows), "test_data": label_stats(test_rows), "training": metrics, "total_seconds": total_seconds, "args": vars(args)},
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
        replace_dir_atomically(stage, out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(stage, ignore_errors=True)
    return out


_DEFAULTS: dict[str, Any] = {}


def _label_tokens(text: str) -> tuple[str, str]:
    parts = text.split(",")
    if len(parts) != 2 or not all(parts) or parts[0] == parts[1]:
        raise prm_train.BadConfig(f"--label-tokens must be two different tokens GOOD,BAD (got {text!r})")
    return parts[0], parts[1]


def _non_defaults(args: argparse.Namespace) -> list[tuple[str, Any, Any]]:
    out = []
    for k, d in _DEFAULTS.items():
        v = getattr(args, k)
        if v != d and k not in ("data", "policy", "out", "seed", "keep_data", "require_policy", "sample_cache", "make_target"):
            out.append(("--" + k.replace("_", "-"), d, v))
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.tiny.train_prm", description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="tinymath directory (train.jsonl, test.jsonl)")
    ap.add_argument("--policy", default="../models/tinymath-policy", help="tiny policy checkpoint to sample from and fine-tune ('none': scratch)")
    ap.add_argument("--out", required=True, help="checkpoint directory to write (replaced atomically)")
    ap.add_argument("--kind", default="autoregressive", choices=list(prm_train.KINDS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", default="policy", choices=["policy", "scratch"], help="fine-tune the policy, or train a fresh model (sizes below)")
    ap.add_argument("--hidden", type=int, default=64, help="with --init scratch (or no policy)")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--intermediate", type=int, default=192)
    ap.add_argument("--first-problem", type=int, default=0, help="index of the first train problem used (the problems before it stay unseen)")
    ap.add_argument("--train-problems", type=int, default=4000, help="train problems used for references + corruptions")
    ap.add_argument("--sample-problems", type=int, default=1500, help="train problems sampled from the policy (the first of those above)")
    ap.add_argument("--make-target", default=None, help="the Makefile target that runs this (named in the README's Regenerate section)")
    ap.add_argument("--sample-cache", default=None, help="keep the policy samples here, keyed by the policy's weights and the arguments")
    ap.add_argument("--init-from", default=None, help="a checkpoint to fine-tune instead of the policy (e.g. an earlier stage of this model)")
    ap.add_argument("--step-logprob-feature", action="store_true", help="the score also reads the step's log-likelihood (prm_train step_logprob_feature)")
    ap.add_argument("--lm-loss-weight", type=float, default=0.0, help="label-weighted LM loss on the steps (prm_train lm_loss_weight)")
    ap.add_argument("--pairwise-loss-weight", type=float, default=0.0, help="within-question ranking loss (prm_train pairwise_loss_weight)")
    ap.add_argument("--samples-per-problem", type=int, default=4)
    ap.add_argument("--corruptions", type=int, default=2, help="synthetic corruptions per train problem")
    ap.add_argument("--corruption-kinds", default=",".join(CORRUPTIONS), help="comma-separated kinds the corruptions are drawn from (without replacement; list a kind twice to weight it)")
    ap.add_argument("--after-error", default="zero", choices=["zero", "drop"], help="steps after a solution's first wrong step: labeled 0 (zero) or cut from the training solution (drop)")
    ap.add_argument(
        "--label-tokens", default=None,
        help="GOOD,BAD: the autoregressive/orm readout tokens instead of +,- (with tied embeddings the readout also moves "
        "these tokens' INPUT embeddings: + and - are the steps' operators; e.g. '{,}' never occurs in tinymath)",
    )
    ap.add_argument(
        "--no-group-by-length", action="store_true",
        help="plain random batches (prm_train groups similar lengths by default; with --after-error drop, length "
        "correlates with the labels, so grouped batches swing between mostly-positive and mostly-negative)",
    )
    ap.add_argument("--test-problems", type=int, default=300)
    ap.add_argument("--selection-problems", type=int, default=200, help="TEST problems for the within-prompt selection eval (0: skip)")
    ap.add_argument("--selection-samples", type=int, default=16, help="policy samples per selection problem")
    ap.add_argument("--selection-compare", action="append", default=None, help="another checkpoint (e.g. the ORM) to score on the same selection samples; repeatable")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--keep-data", default=None, help="also write the labeled train/test solutions here")
    ap.add_argument("--require-policy", action="store_true", help="fail (exit 2) if --policy is missing")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    _DEFAULTS.update({a.dest: a.default for a in ap._actions if a.dest != "help"})
    args = ap.parse_args(argv)
    try:
        out = run(args)
    except prm_train.BadConfig as e:
        emit("error", message=str(e), retryable=False)
        return 2
    emit("done", output=str(out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
