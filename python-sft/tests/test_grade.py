"""Tests for prm_raft.grade: tricky answer pairs (table-driven), real GSM8K model outputs, the CLI.

Pairs are drawn from math-verify's own tests (huggingface/Math-Verify tests/test_all.py), the MATH
grader's tests (hendrycks/math modeling/math_equivalence_test.py), the PRM800K grader's rules
(openai/prm800k prm800k/grading/grader.py) and the failure modes listed in DESIGN.md section 8.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prm_raft.grade import (
    BadInput,
    boxed_contents,
    extract,
    grade_items,
    grade_without_math_verify,
    math_spans,
    read_items,
    to_fraction,
)

FIXTURES = Path(__file__).parent / "fixtures" / "grade"
PY_ROOT = Path(__file__).resolve().parents[1]

ANY = object()  # "extracted" not asserted

# (id, kind, prediction, reference, expected correct, expected extracted or ANY)
CASES = [
    # ---------------------------------------------------------------- gsm8k: extraction order
    ("gsm8k-hashes", "gsm8k", "9 * 2 = $<<9*2=18>>18 a day.\n#### 18", "18", True, "18"),
    ("gsm8k-hashes-beat-last-number", "gsm8k", "#### 18\nThat is 18 dollars for 3 days.", "18", True, "18"),
    ("gsm8k-metamath-colon", "gsm8k", "So she makes 9 * 2 = 18 dollars.\nThe answer is: 18", "18", True, "18"),
    ("gsm8k-metamath-no-colon", "gsm8k", "Total: 7 + 5 = 12. The answer is 12.", "12", True, "12"),
    ("gsm8k-answer-is-beats-last-number", "gsm8k", "The answer is: 12\nCheck: 12 - 2 = 10", "12", True, "12"),
    ("gsm8k-boxed", "gsm8k", "so the total is \\boxed{42}.", "42", True, "42"),
    ("gsm8k-boxed-dollars-text", "gsm8k", "\\boxed{\\$18 \\text{ per day}}", "18", True, "18"),
    ("gsm8k-boxed-frac-vs-decimal", "gsm8k", "Each gets \\boxed{\\frac{35}{2}} cups.", "17.5", True, "\\frac{35}{2}"),
    ("gsm8k-answer-is-latex-frac", "gsm8k", "The answer is: \\frac{35}{2}", "18", False, "\\frac{35}{2}"),
    ("gsm8k-last-number", "gsm8k", "She has 16 - 3 - 4 = 9 eggs, so 9 * 2 = 18 dollars.", "18", True, "18"),
    ("gsm8k-binary-minus-not-sign", "gsm8k", "She has 20-7", "7", True, "7"),
    # ---------------------------------------------------------------- gsm8k: number formats
    ("gsm8k-no-rounding-17.6-vs-18", "gsm8k", "The answer is: 17.6", "18", False, "17.6"),
    ("gsm8k-no-rounding-6.75-vs-7", "gsm8k", "#### 6.75", "7", False, "6.75"),
    ("gsm8k-no-truncation-32.5-vs-32", "gsm8k", "#### 32.5", "32", False, "32.5"),
    ("gsm8k-18.0-equals-18", "gsm8k", "The answer is 18.0", "18", True, "18.0"),
    ("gsm8k-thousands-comma", "gsm8k", "The total is 1,000 apples.", "1000", True, "1000"),
    ("gsm8k-thousands-comma-in-reference", "gsm8k", "#### 5600", "5,600", True, "5600"),
    ("gsm8k-millions", "gsm8k", "#### 2,000,000", "2000000", True, "2000000"),
    ("gsm8k-currency-cents", "gsm8k", "It costs $5.00.", "5", True, "5.00"),
    ("gsm8k-currency-dollar-comma", "gsm8k", "The answer is: $1,234.50", "1234.5", True, "1234.50"),
    ("gsm8k-negative", "gsm8k", "The temperature is now -5 degrees.\n#### -5", "-5", True, "-5"),
    ("gsm8k-negative-vs-positive", "gsm8k", "#### -200", "200", False, "-200"),
    ("gsm8k-half-vs-fraction", "gsm8k", "#### 0.5", "1/2", True, "0.5"),
    ("gsm8k-percent-sign", "gsm8k", "So the discount is 25%.", "25", True, "25"),
    ("gsm8k-trailing-period", "gsm8k", "In total she has 75.", "75", True, "75"),
    ("gsm8k-reference-worked-solution", "gsm8k", "#### 9", "16 - 7 = <<16-7=9>>9\n#### 9", True, "9"),
    ("gsm8k-no-answer", "gsm8k", "I am not sure how to solve this.", "3", False, None),
    ("gsm8k-empty-prediction", "gsm8k", "", "3", False, None),
    # ---------------------------------------------------------------- tinymath
    ("tiny-hashes", "tinymath", "a = 3 + 4 = 7\nb = 7 * 2 = 14\n#### 14", "14", True, "14"),
    ("tiny-last-integer", "tinymath", "a = 3 + 4 = 7\nb = 7 * 2 = 14.", "14", True, "14"),
    ("tiny-wrong", "tinymath", "a = 3 + 4 = 7\n#### 7", "14", False, "7"),
    ("tiny-negative", "tinymath", "a = 3 - 5 = -2\n#### -2", "-2", True, "-2"),
    ("tiny-decimal-is-not-integer", "tinymath", "#### 3.5", "3", False, "3.5"),
    ("tiny-no-answer", "tinymath", "a = b +", "3", False, None),
    # ---------------------------------------------------------------- math: extraction
    ("math-boxed-frac", "math", "Thus $x = \\boxed{\\frac{1}{2}}$.", "\\frac12", True, "\\frac{1}{2}"),
    ("math-boxed-nested-braces", "math", "$\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\frac{\\sqrt{3}}{2}", True, "\\frac{\\sqrt{3}}{2}"),
    ("math-boxed-set-escaped-braces", "math", "The set is $\\boxed{\\{1,2\\}}$.", "\\{2, 1\\}", True, "\\{1,2\\}"),
    ("math-several-boxed-last-wins", "math", "First \\boxed{3}, no wait: \\boxed{4}.", "4", True, "4"),
    ("math-several-boxed-first-loses", "math", "First \\boxed{3}, no wait: \\boxed{4}.", "3", False, "4"),
    ("math-fbox", "math", "so $\\fbox{12}$", "12", True, "12"),
    ("math-boxed-no-braces", "math", "so the answer is $\\boxed 5$.", "5", True, "5"),
    ("math-truncated-box-no-answer", "math", "so the answer is \\boxed{\\frac{1}{", "\\frac12", False, None),
    ("math-metamath-answer-is", "math", "We add them up.\nThe answer is: 42", "42", True, "42"),
    ("math-minerva-final-answer", "math", "Final Answer: The final answer is $28\\%$. I hope it is correct.", "28\\%", True, "28\\%"),
    ("math-last-dollar-span", "math", "We get $x+1=6$, so $x = 5$.", "5", True, "x = 5"),
    ("math-display-span", "math", "Hence\n\\[ \\frac{14}{3} \\]", "\\frac{14}{3}", True, "\\frac{14}{3}"),
    ("math-no-answer", "math", "I could not finish.", "5", False, None),
    # ---------------------------------------------------------------- math: equivalences (must match)
    ("math-dfrac-vs-frac", "math", "\\boxed{\\dfrac{\\sqrt3}{2}}", "\\frac{\\sqrt{3}}{2}", True, ANY),
    ("math-tfrac-short", "math", "\\boxed{\\frac{8}{3}}", "\\tfrac83", True, ANY),
    ("math-0.5-vs-frac12", "math", "\\boxed{0.5}", "\\frac12", True, "0.5"),
    ("math-.1-vs-0.1", "math", "\\boxed{.1}", "0.1", True, ANY),
    ("math-1/2-vs-frac", "math", "\\boxed{1/2}", "\\frac{1}{2}", True, ANY),
    ("math-tuple-left-right", "math", "$\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$", "(3, \\frac{\\pi}{2})", True, ANY),
    ("math-interval-union", "math", "$\\boxed{[-1, -\\tfrac12) \\cup (-\\tfrac12, 0) \\cup (0, 1) \\cup (1, \\infty)}$",
     "[-1, -\\frac{1}{2}) \\cup (-\\frac{1}{2}, 0) \\cup (0, 1) \\cup (1, \\infty)", True, ANY),
    ("math-interval-membership", "math", "\\boxed{[2,5)}", "x \\in [2,5)", True, ANY),
    ("math-set-vs-pm", "math", "\\boxed{-2, 1+\\sqrt5, 1-\\sqrt5}", "\\{1\\pm\\sqrt{5},-2\\}", True, ANY),
    ("math-degrees", "math", "the angle is $\\boxed{90^\\circ}$", "90", True, "90^\\circ"),
    ("math-text-units", "math", "\\boxed{10\\text{ cm}}", "10", True, ANY),
    ("math-textnormal-units", "math", "The distance is $\\boxed{125\\textnormal{ miles}}.$", "125", True, ANY),
    ("math-mbox-units", "math", "$$\\boxed{15\\mbox{ cm}^2}$$", "15\\mbox{ cm}^2", True, ANY),
    ("math-percent", "math", "\\boxed{10\\%}", "10", True, ANY),
    ("math-dollar-sign", "math", "\\boxed{\\$10}", "10", True, ANY),
    ("math-thousands-latex-comma", "math", "\\boxed{14{,}916}", "14{,}916", True, ANY),
    ("math-thousands-comma-vs-plain", "math", "\\boxed{1,000,000}", "1000000", True, ANY),
    ("math-simplify-sqrt", "math", "\\boxed{\\sqrt{117}}", "3\\sqrt{13}", True, ANY),
    ("math-factored-polynomial", "math", "\\boxed{(x-2)(x+2)}", "\\left(x-2\\right)\\left(x+2\\right)", True, ANY),
    ("math-sqrt-short", "math", "\\boxed{10\\sqrt3 + \\sqrt{4}}", "10\\sqrt{3} + \\sqrt4", True, ANY),
    ("math-imaginary-frac", "math", "\\boxed{\\frac{3}{4}i}", "\\frac34i", True, ANY),
    ("math-equation-rhs", "math", "\\boxed{k = \\frac{1}{3}}", "\\frac13", True, ANY),
    ("math-text-answer", "math", "Therefore, $\\boxed{\\text{Evelyn}}$ is our answer.", "\\text{Evelyn}", True, ANY),
    ("math-choice-letter", "math", "\\boxed{C}", "\\text{(C)}", True, ANY),
    ("math-matrix", "math", "$\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}$", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", True, ANY),
    ("math-sqrt-list-full", "math", "The solutions are $\\boxed{\\sqrt{67},-\\sqrt{85}}$.", "\\sqrt{67},-\\sqrt{85}", True,
     "\\sqrt{67},-\\sqrt{85}"),
    ("math-sqrt-list-reordered", "math", "\\boxed{-\\sqrt{85}, \\sqrt{67}}", "\\sqrt{67},-\\sqrt{85}", True, ANY),
    ("math-comma-list-is-a-set", "math", "\\boxed{4, 10, -2}", "10, 4, -2", True, ANY),
    ("math-unreduced-fraction", "math", "\\boxed{2/4}", "\\frac{1}{2}", True, ANY),
    ("math-numeric-6-places", "math", "\\boxed{0.8660254}", "\\frac{\\sqrt{3}}{2}", True, ANY),
    # ---------------------------------------------------------------- math: must NOT match
    ("math-sqrt-list-truncated", "math", "\\boxed{\\sqrt{67}}", "\\sqrt{67},-\\sqrt{85}", False, "\\sqrt{67}"),
    ("math-sqrt-list-extra", "math", "\\boxed{\\sqrt{67},-\\sqrt{85}}", "\\sqrt{67}", False, ANY),
    ("math-pm-half", "math", "\\boxed{1 + \\sqrt{19}}", "1 \\pm \\sqrt{19}", False, ANY),
    ("math-17.6-vs-18", "math", "\\boxed{17.6}", "18", False, ANY),
    ("math-negative-sign", "math", "\\boxed{5}", "-5", False, ANY),
    ("math-interval-closed-vs-open", "math", "\\boxed{(-\\infty, 3)}", "(-\\infty, 3]", False, ANY),
    ("math-interval-vs-other-interval", "math", "\\boxed{(0,9)}", "[0,9)", False, ANY),
    ("math-tuple-order", "math", "\\boxed{(2,1)}", "(1,2)", False, ANY),
    ("math-tuple-sign", "math", "\\boxed{(6,31,1)}", "(6,31,-1)", False, ANY),
    ("math-comma-list-wrong-member", "math", "\\boxed{4, 12, 2}", "10, 4, 2", False, ANY),
    ("math-frac-sum-wrong", "math", "\\boxed{\\frac{1}{2} + 2/3}", "\\tfrac{1}{2} + \\frac1{72}", False, ANY),
    ("math-units-wrong-number", "math", "\\boxed{100}", "10\\text{ units}", False, ANY),
    ("math-different-plane", "math", "\\boxed{x + y - z + 2 = 0}", "5x - 7y + 11z + 4 = 0", False, ANY),
    ("math-percent-not-fraction", "math", "\\boxed{28}", "0.28", False, ANY),
    ("math-pi-not-3.14", "math", "\\boxed{3.14}", "\\pi", False, ANY),
    ("math-decimal-too-coarse", "math", "\\boxed{0.3333}", "\\frac{1}{3}", False, ANY),
    ("math-degrees-not-radians", "math", "\\boxed{\\frac{\\pi}{6}}", "30^\\circ", False, ANY),
    ("math-text-other-name", "math", "\\boxed{\\text{Briana}}", "\\text{Evelyn}", False, ANY),
    ("math-matrix-entry", "math", "\\boxed{\\begin{pmatrix} 1 \\\\ 3 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", False, ANY),
    ("math-polynomial-constant", "math", "\\boxed{x^2+2}", "x^2+1", False, ANY),
    ("math-close-decimal", "math", "\\boxed{12.0000001}", "12", False, ANY),
    ("math-huge-power-times-out", "math", "\\boxed{10^{10^{10}}}", "10", False, ANY),
]


def _ids(cases):
    return [c[0] for c in cases]


@pytest.fixture(scope="module")
def graded_cases():
    """All table cases graded in one in-process batch (one math-verify import for the module)."""
    from prm_raft import grade

    items = [{"id": c[0], "kind": c[1], "prediction": c[2], "reference": c[3]} for c in CASES]
    saved = grade.VERIFY_TIMEOUT_S
    grade.VERIFY_TIMEOUT_S = 2  # the huge-power case times out; don't wait the default 5 s
    try:
        out = grade_items(items, in_process=True)
    finally:
        grade.VERIFY_TIMEOUT_S = saved
    return {g["id"]: g for g in out}


def test_case_table_is_large_and_unique():
    ids = _ids(CASES)
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 60
    assert sum(1 for c in CASES if c[4]) >= 20 and sum(1 for c in CASES if not c[4]) >= 20


@pytest.mark.parametrize("case", CASES, ids=_ids(CASES))
def test_grading_case(case, graded_cases):
    case_id, kind, prediction, reference, correct, extracted = case
    got = graded_cases[case_id]
    assert got["correct"] is correct, f"{case_id}: extracted {got['extracted']!r}"
    if extracted is not ANY:
        assert got["extracted"] == extracted


def _fast_verdicts(items):
    return {it["id"]: grade_without_math_verify(it) for it in items}


def test_fast_pass_gives_the_math_verify_verdict_or_defers(graded_cases):
    """Answers graded without math-verify get exactly grade_one's result; a MATH answer always goes to
    math-verify (unless there is none to extract)."""
    fast = _fast_verdicts({"id": c[0], "kind": c[1], "prediction": c[2], "reference": c[3]} for c in CASES)
    assert {i: g for i, g in fast.items() if g is not None} == {i: graded_cases[i] for i, g in fast.items() if g is not None}
    assert all(fast[c[0]] is None for c in CASES if c[1] == "math" and graded_cases[c[0]]["extracted"] is not None)
    assert all(fast[c[0]] is not None for c in CASES if c[1] == "tinymath")
    assert any(c[1] == "gsm8k" and fast[c[0]] is None for c in CASES)  # a LaTeX answer such as \frac{35}{2}


def test_default_grading_of_numbers_starts_no_worker_and_imports_no_math_verify():
    """A large batch of tinymath and plain gsm8k numbers is graded in-process, without sympy."""
    code = (
        "import json, sys\n"
        "from prm_raft.grade import grade_items\n"
        "items = [{'kind': 'tinymath', 'prediction': f'{i} + 1 = {i + 1}\\n#### {i + 1}', 'reference': str(i + i % 2)} for i in range(200)]\n"
        "items += [{'kind': 'gsm8k', 'prediction': 'It costs 1000 + 200 = $1,200.', 'reference': '1200'}] * 100\n"
        "graded = grade_items(items, workers=2)\n"
        "print(json.dumps([sum(g['correct'] for g in graded), 'math_verify' in sys.modules]))\n"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PY_ROOT), env.get("PYTHONPATH")) if p)
    env["PRM_RAFT_GRADE_FAULT"] = "crash:+"  # a worker would die on every answer
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [200, False]


# ---------------------------------------------------------------------------------------------
# Real model outputs (openai/grade-school-math example_model_solutions, MIT): agree with OpenAI's
# own is_correct verdict on every solution, including decimals a rounding grader would accept.
# ---------------------------------------------------------------------------------------------

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def _gsm8k_fixture_items():
    items = []
    with open(FIXTURES / "gsm8k_example_model_solutions.jsonl", encoding="utf-8") as f:
        for line in f:
            rec = json.loads(line)
            for model in MODELS:
                items.append(
                    {
                        "id": f"L{rec['line']}/{model}",
                        "kind": "gsm8k",
                        "prediction": rec[model]["solution"],
                        "reference": rec["ground_truth"],
                        "expected": rec[model]["is_correct"],
                    }
                )
    return items


def test_gsm8k_real_model_outputs_match_openai_verdicts():
    items = _gsm8k_fixture_items()
    assert len(items) == 44
    graded = grade_items(items, in_process=True)
    wrong = [(g["id"], g["extracted"], g["expected"]) for g in graded if g["correct"] != g["expected"]]
    assert wrong == []
    fast = _fast_verdicts(items)
    assert [g for g in graded if fast[g["id"]] is not None] == [g for g in fast.values() if g is not None]
    # The rounding trap from DESIGN.md section 8 is in the fixture: 6.75 and 3.75 must stay wrong.
    by_id = {g["id"]: g for g in graded}
    assert by_id["L857/6b_finetuning"]["extracted"] == "6.75"
    assert by_id["L857/6b_finetuning"]["correct"] is False
    assert by_id["L939/6b_finetuning"]["extracted"] == "3.75"


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def test_boxed_contents_nesting_and_order():
    text = "a \\boxed{\\frac{1}{2}} b \\boxed{\\{1,\\boxed{2}\\}} c \\fbox{x} \\boxed{open"
    assert boxed_contents(text) == ["\\frac{1}{2}", "\\{1,\\boxed{2}\\}", "x"]


def test_math_spans_skip_escaped_dollars():
    text = "It costs \\$5 and \\$6, so $x = 11$ and $$y=2$$ and \\(z\\) \\[w\\]"
    assert math_spans(text) == ["x = 11", "y=2", "z", "w"]


def test_to_fraction_is_exact():
    assert to_fraction("18.0") == to_fraction("18")
    assert to_fraction("17.6") != to_fraction("18")
    assert to_fraction("0.5") == to_fraction("1/2")
    assert to_fraction("1/0") is None
    assert to_fraction("abc") is None


def test_extract_rejects_unknown_kind():
    with pytest.raises(BadInput):
        extract("physics", "42")


def test_grade_items_rejects_malformed_item():
    with pytest.raises(BadInput, match="item 1: unknown kind"):
        grade_items([{"kind": "math", "prediction": "", "reference": "1"}, {"kind": "x", "prediction": "", "reference": "1"}])


def test_worker_pool_isolates_a_hung_and_a_crashed_item(monkeypatch):
    """A child stuck in uninterruptible code, or dying, costs one item, never the batch."""
    monkeypatch.setenv("PRM_RAFT_GRADE_ITEM_DEADLINE_S", "2")
    monkeypatch.setenv("PRM_RAFT_GRADE_FAULT", "hang:HANG-HERE,crash:CRASH-HERE")
    items = [
        # shard 1: the child hangs on item 1 and is killed; a fresh child grades item 2
        {"id": 0, "kind": "gsm8k", "prediction": "#### 18", "reference": "18"},
        {"id": 1, "kind": "math", "prediction": "HANG-HERE \\boxed{5}", "reference": "5"},
        {"id": 2, "kind": "math", "prediction": "\\boxed{\\frac12}", "reference": "0.5"},
        # shard 2: the child dies on item 5
        {"id": 3, "kind": "tinymath", "prediction": "#### 4", "reference": "4"},
        {"id": 4, "kind": "tinymath", "prediction": "#### 5", "reference": "4"},
        {"id": 5, "kind": "tinymath", "prediction": "CRASH-HERE #### 4", "reference": "4"},
    ]
    graded = grade_items(items, workers=2, in_process=False)
    assert [g["id"] for g in graded] == [0, 1, 2, 3, 4, 5]
    assert [g["correct"] for g in graded] == [True, False, True, True, False, False]
    assert graded[1]["extracted"] == "5"  # extraction is still reported for the failed item
    assert graded[5]["extracted"] == "4"


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def _run_cli(*args, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PY_ROOT), env.get("PYTHONPATH")) if p)
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "prm_raft.grade", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + "\n")


def test_cli_grades_in_order_with_passthrough_keys(tmp_path):
    records = [
        {"id": "q1/0", "kind": "gsm8k", "prediction": "The answer is: 17.6", "reference": "18", "meta": {"n": 1}},
        {"id": "q1/1", "kind": "gsm8k", "prediction": "#### 18", "reference": "18"},
        {"id": "q2/0", "kind": "math", "prediction": "so $\\boxed{\\dfrac{1}{2}}$", "reference": "0.5"},
        {"id": "q3/0", "kind": "tinymath", "prediction": "no answer here", "reference": "7"},
        {"id": "q4/0", "kind": "math", "prediction": "Let me think about this", "reference": "\\frac{1}{2}"},
    ]
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_jsonl(inp, records)
    proc = _run_cli("--in", str(inp), "--out", str(out), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    graded = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [g["id"] for g in graded] == ["q1/0", "q1/1", "q2/0", "q3/0", "q4/0"]
    assert graded[0]["meta"] == {"n": 1}
    for rec, g in zip(records, graded):
        assert {k: g[k] for k in rec} == rec
    assert [g["correct"] for g in graded] == [False, True, True, False, False]
    assert [g["extracted"] for g in graded] == ["17.6", "18", "\\dfrac{1}{2}", None, None]
    assert proc.stderr.strip().splitlines()[-1].startswith("graded 5: 2 correct (40.0%)")
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_cli_malformed_line_exits_2_and_writes_nothing(tmp_path):
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    _write_jsonl(
        inp,
        [
            {"kind": "gsm8k", "prediction": "#### 1", "reference": "1"},
            {"kind": "gsm8k", "prediction": "#### 2", "reference": "2"},
            '{"kind": "gsm8k", "prediction": "#### 3", "reference": ',
        ],
    )
    proc = _run_cli("--in", str(inp), "--out", str(out))
    assert proc.returncode == 2
    assert f"{inp}:3:" in proc.stderr and "not valid JSON" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize(
    "record,message",
    [
        ({"kind": "physics", "prediction": "1", "reference": "1"}, "unknown kind 'physics'"),
        ({"kind": "math", "reference": "1"}, "missing key 'prediction'"),
        ({"kind": "math", "prediction": None, "reference": "1"}, "'prediction' must be a string"),
        ({"kind": "math", "prediction": "1", "reference": ["1"]}, "'reference' must be a string"),
        (["not", "an", "object"], "expected a JSON object"),
    ],
    ids=["unknown-kind", "missing-key", "null-prediction", "list-reference", "not-object"],
)
def test_read_items_names_file_line_and_problem(tmp_path, record, message):
    inp = tmp_path / "in.jsonl"
    _write_jsonl(inp, [{"kind": "math", "prediction": "1", "reference": "1"}, record])
    with pytest.raises(BadInput) as err:
        read_items(str(inp))
    assert str(err.value).startswith(f"{inp}:2: ")
    assert message in str(err.value)


def test_cli_missing_input_exits_2(tmp_path):
    proc = _run_cli("--in", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "out.jsonl"))
    assert proc.returncode == 2
    assert "nope.jsonl" in proc.stderr
    assert not (tmp_path / "out.jsonl").exists()
