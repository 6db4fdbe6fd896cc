"""train_tiny_prm's data options and its within-prompt selection evaluation (no training, no server: fast)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from prm_raft.tiny import train_prm as T
from prm_raft.tiny.labels import Reference, step_labels

RECORD = {"id": "r1", "question": "Ann has 12 apples. She buys 7 more. She eats 5. How many?", "solution": "12 + 7 = 19\n19 - 5 = 14\n#### 14", "answer": "14"}


class FakeScorer:
    """Scores each step by a table lookup on the step text (default 0.5)."""

    table: dict[str, float] = {}

    def __init__(self, model_dir):  # noqa: ANN001
        self.model_dir = model_dir

    def score(self, items):  # noqa: ANN001
        return [[self.table.get(s, 0.5) for s in steps] for _, steps in items]


@pytest.fixture
def fake_scorer(monkeypatch):
    from prm_raft import prm_server

    monkeypatch.setattr(prm_server, "PrmScorer", FakeScorer)
    FakeScorer.table = {}
    return FakeScorer


RIGHT = "12 + 7 = 19\n19 - 5 = 14\n#### 14"
WRONG_SHORT = "12 + 7 = 19\n#### 19"
WRONG_ARITH = "12 + 7 = 18\n18 - 5 = 13\n#### 13"


def test_selection_picks_by_min_step_score_and_reports_baselines(fake_scorer):
    fake_scorer.table = {"12 + 7 = 18": 0.1, "#### 19": 0.2, "#### 14": 0.9, "19 - 5 = 14": 0.8}
    records = [RECORD, {**RECORD, "id": "r2"}]
    samples = [[WRONG_SHORT, RIGHT, WRONG_ARITH, ""], [WRONG_SHORT, WRONG_ARITH]]
    res = T.selection_eval(Path("x"), records, samples)
    assert res["problems"] == 2
    assert res["picked_correct"] == 0.5  # problem 1: the right one (min 0.5 > 0.2, 0.1); problem 2: none is right
    assert res["random_pick"] == round((1 / 4 + 0) / 2, 4)
    assert res["oracle"] == 0.5
    assert res["shortest_pick"] == 0.0  # the two-step wrong answer is the shortest
    assert res["decisive_problems"] == 1 and res["decisive_picked_correct"] == 1.0 and res["decisive_random_pick"] == 0.25


def test_selection_ties_count_the_mean_of_the_tied(fake_scorer):
    res = T.selection_eval(Path("x"), [RECORD], [[RIGHT, WRONG_ARITH]])  # every step 0.5: a tie
    assert res["picked_correct"] == 0.5


def test_drop_after_first_error_cuts_after_the_first_zero():
    rows = [
        {"steps": ["a", "b", "c"], "labels": [1.0, 0.0, 0.0]},
        {"steps": ["a", "b"], "labels": [1.0, 1.0]},
        {"steps": ["a", "b"], "labels": [0.0, 0.0]},
    ]
    out = T.drop_after_first_error(rows)
    assert [r["steps"] for r in out] == [["a", "b"], ["a", "b"], ["a"]]
    assert [r["labels"] for r in out] == [[1.0, 0.0], [1.0, 1.0], [0.0]]
    assert rows[0]["labels"] == [1.0, 0.0, 0.0]  # inputs untouched


def test_corruption_kinds_restrict_and_weight_the_draw():
    rng = random.Random(0)
    ref = Reference.from_solution(RECORD["solution"], RECORD["answer"])
    sols = T.synthetic_solutions(RECORD, rng, 2, with_reference=True, kinds=("wrong_result_nocarry", "wrong_result_nocarry"))
    assert len(sols) == 3 and step_labels(sols[0], ref) == [1, 1, 1]
    for bad in sols[1:]:  # one wrong result, everything else the reference's
        assert sum(x != y for x, y in zip(bad, sols[0])) == 1 and 0 in step_labels(bad, ref)


def test_default_corruption_draw_is_unchanged():
    """The default kinds draw exactly as before the option existed (the shipped model's data stays reproducible)."""
    a, b = random.Random(5), random.Random(5)
    got = T.synthetic_solutions(RECORD, a, 2, with_reference=True)
    ref = Reference.from_solution(RECORD["solution"], RECORD["answer"])
    want = [RECORD["solution"].split("\n")] + [T.corrupt(ref, k, b) for k in b.sample(T.CORRUPTIONS, k=2)]
    assert got == want


def test_parser_defaults_and_new_flags():
    args = T.build_parser().parse_args(["--data", "d", "--out", "o", "--after-error", "drop", "--corruption-kinds", "wrong_op,wrong_final"])
    assert args.after_error == "drop" and args.corruption_kinds == "wrong_op,wrong_final"
    d = T.build_parser().parse_args(["--data", "d", "--out", "o"])
    assert d.after_error == "zero" and d.corruption_kinds == ",".join(T.CORRUPTIONS) and d.selection_problems == 200


def test_label_tokens_flag_is_checked():
    assert T._label_tokens("{,}") == ("{", "}")
    for bad in ("{", "{,{", ",}", "a,b,c"):
        with pytest.raises(T.prm_train.BadConfig):
            T._label_tokens(bad)
    args = T.build_parser().parse_args(["--data", "d", "--out", "o", "--label-tokens", "{,}", "--no-group-by-length"])
    assert args.label_tokens == "{,}" and args.no_group_by_length


def test_selection_compares_with_majority_and_likelihood_on_problems_with_a_right_sample(fake_scorer):
    fake_scorer.table = {"12 + 7 = 18": 0.1, "#### 19": 0.2, "#### 14": 0.9, "19 - 5 = 14": 0.8}
    records = [RECORD, {**RECORD, "id": "r2"}, {**RECORD, "id": "r3"}]
    # r1: two wrong answers agree (13) and outvote the right one; r2: the right one is the majority; r3: none right
    samples = [[WRONG_ARITH, RIGHT, WRONG_ARITH], [RIGHT, RIGHT, WRONG_SHORT], [WRONG_SHORT, WRONG_ARITH]]
    loglik = [[-1.0, -2.0, -1.0], [-3.0, -3.0, -0.5], [-1.0, -1.0]]
    res = T.selection_eval(Path("x"), records, samples, loglik)
    assert res["problems_with_a_right_sample"] == 2
    assert res["picked_when_any_right"] == 1.0  # min step score finds the right one in r1 and r2
    assert res["majority_when_any_right"] == 0.5  # r1 wrong, r2 right
    assert res["likeliest_when_any_right"] == 0.0  # the likeliest is wrong in both
    assert res["random_when_any_right"] == round((1 / 3 + 2 / 3) / 2, 4)
    assert T.ship_gate(res)
    assert not T.ship_gate({**res, "picked_when_any_right": 0.5})  # a tie with majority does not ship
    assert not T.ship_gate({**res, "likeliest_when_any_right": None})  # an unmeasured baseline does not ship


def test_the_regenerate_command_gives_switches_without_a_value():
    ap = T.build_parser()
    T._DEFAULTS.update({a.dest: a.default for a in ap._actions if a.dest != "help"})
    args = ap.parse_args(["--data", "d", "--out", "o", "--step-logprob-feature", "--lm-loss-weight", "1", "--sample-cache", "c"])
    cmd = T.regenerate_command(args)
    assert "--step-logprob-feature" in cmd and cmd[cmd.index("--step-logprob-feature") + 1].startswith("--")
    assert cmd[cmd.index("--lm-loss-weight") + 1] == "1.0"
    assert "--sample-cache" not in cmd and "--pairwise-loss-weight" not in cmd  # where samples are kept, and defaults, are left out
