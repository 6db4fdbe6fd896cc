"""The tinymath ProcessBench builder: exact first-error labels, balancing, ProcessBench's record format (no model)."""

from __future__ import annotations

import json

import pytest

from prm_raft.tiny import processbench as P

PROBLEMS = [
    {"id": "t1", "question": "Ann has 12 apples. She buys 7 more. She eats 5. How many?", "solution": "12 + 7 = 19\n19 - 5 = 14\n#### 14", "answer": "14"},
    {"id": "t2", "question": "Bo has 3 bags of 4 pens. How many pens?", "solution": "3 * 4 = 12\n#### 12", "answer": "12"},
    {"id": "t3", "question": "Cy has 9 cards and loses 2. How many?", "solution": "9 - 2 = 7\n#### 7", "answer": "7"},
]

SAMPLES = [
    # t1: wrong at step 1 (wrong result), then right, then wrong at step 0 (wrong operands), then another right one.
    ["12 + 7 = 19\n19 - 5 = 13\n#### 13", "12 + 7 = 19\n19 - 5 = 14\n#### 14", "10 + 9 = 19\n19 - 5 = 14\n#### 14", "12 + 7 = 19\n19 - 5 = 14\n#### 14"],
    # t2: an empty sample (skipped), then a wrong final answer only, then nothing right.
    ["", "3 * 4 = 12\n#### 13", "3 + 4 = 7\n#### 7", "\n"],
    # t3: right only.
    ["9 - 2 = 7\n#### 7", "9 - 2 = 7\n#### 7", "9 - 2 = 7\n#### 7", "9 - 2 = 7\n#### 7"],
]


def test_first_error_is_the_first_zero_label_or_minus_one():
    assert P.first_error([1, 1, 0, 0]) == 2
    assert P.first_error([0]) == 0
    assert P.first_error([1, 1, 1]) == -1


def test_records_are_the_first_of_each_kind_per_problem_balanced_and_interleaved():
    records = P.benchmark_records(PROBLEMS, SAMPLES, per_kind=2, generator="tinymath-policy")
    assert [(r["id"], r["label"]) for r in records] == [("t1/0", 1), ("t1/1", -1), ("t2/1", 1), ("t3/0", -1)]
    first = records[0]
    assert set(first) == {"id", "generator", "problem", "steps", "final_answer_correct", "label"}
    assert first["generator"] == "tinymath-policy"
    assert first["problem"] == PROBLEMS[0]["question"]
    assert first["steps"] == ["12 + 7 = 19", "19 - 5 = 13", "#### 13"]
    assert first["final_answer_correct"] is False
    # A wrong final answer alone: the error is the answer line.
    assert records[2]["steps"] == ["3 * 4 = 12", "#### 13"] and records[2]["label"] == 1
    assert all(r["final_answer_correct"] for r in records if r["label"] == -1)


def test_per_kind_cuts_in_problem_order():
    records = P.benchmark_records(PROBLEMS, SAMPLES, per_kind=1, generator="g")
    assert [r["id"] for r in records] == ["t1/0", "t1/1"]


def test_too_few_of_a_kind_is_an_error_that_says_what_to_raise():
    with pytest.raises(ValueError, match=r"too few samples for 3 of each kind: \{'with an error': 2, 'error-free': 2\}; raise --problems"):
        P.benchmark_records(PROBLEMS, SAMPLES, per_kind=3, generator="g")


def test_to_json_is_one_json_array_with_a_record_per_line():
    records = P.benchmark_records(PROBLEMS, SAMPLES, per_kind=2, generator="g")
    text = P.to_json(records)
    assert json.loads(text) == records
    assert len(text.splitlines()) == len(records) + 2


def test_main_writes_the_file_from_the_policy_samples(tmp_path, monkeypatch):
    data = tmp_path / "tinymath"
    data.mkdir()
    (data / "test.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS), encoding="utf-8")
    asked = []

    def fake_sample(policy_dir, records, n, seed):  # noqa: ANN001
        asked.append((policy_dir.name, [r["id"] for r in records], n, seed))
        return [s[:n] for s in SAMPLES[: len(records)]]

    monkeypatch.setattr(P, "sample_policy", fake_sample)
    out = tmp_path / "pb.json"
    args = ["--data", str(data), "--policy", str(tmp_path / "policy"), "--out", str(out), "--samples", "4", "--seed", "3"]
    assert P.main([*args, "--problems", "3", "--per-kind", "2"]) == 0
    assert asked == [("policy", ["t1", "t2", "t3"], 4, 3)]
    written = json.loads(out.read_text(encoding="utf-8"))
    assert [r["id"] for r in written] == ["t1/0", "t1/1", "t2/1", "t3/0"]
    assert {r["generator"] for r in written} == {"policy"}
    # Too few: exit 2 and the file is left as it was.
    assert P.main([*args, "--problems", "1", "--per-kind", "2"]) == 2
    assert json.loads(out.read_text(encoding="utf-8")) == written
