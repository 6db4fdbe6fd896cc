import json
import random
from pathlib import Path

import pytest

from prm_raft.tiny import tinymath
from prm_raft.tiny.tinymath import check_step, final_answer, generate_problem, generate_splits, load_jsonl

DATA = Path(__file__).resolve().parents[2] / "data" / "tinymath"


def test_generation_is_deterministic():
    a = generate_splits(train_size=300, test_size=50)
    b = generate_splits(train_size=300, test_size=50)
    assert a == b
    assert [r["id"] for r in a["train"][:2]] == ["tinymath-train-000001", "tinymath-train-000002"]
    assert a["test"][-1]["id"] == "tinymath-test-000050"


def test_cli_writes_identical_bytes(tmp_path):
    for d in ("a", "b"):
        assert tinymath.main(["--out", str(tmp_path / d), "--train-size", "200", "--test-size", "30"]) == 0
    for name in ("train.jsonl", "test.jsonl"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["test.jsonl", "train.jsonl"]  # no temp files left
    assert len((tmp_path / "a" / "train.jsonl").read_text().splitlines()) == 200


def test_committed_data_matches_the_generator():
    splits = generate_splits()
    for name, records in splits.items():
        assert (DATA / f"{name}.jsonl").read_text(encoding="utf-8") == tinymath.to_jsonl(records), name


def test_committed_splits_are_disjoint_and_sized():
    train = load_jsonl(DATA / "train.jsonl")
    test = load_jsonl(DATA / "test.jsonl")
    assert len(train) == tinymath.TRAIN_SIZE and len(test) == tinymath.TEST_SIZE == 2000
    # the test split starts with its core (the whole test split once), so growing it left train.jsonl as it was
    core = tinymath.generate_split("test", tinymath.TEST_CORE_SIZE, tinymath.TEST_SEED)
    assert test[: tinymath.TEST_CORE_SIZE] == core
    train_q = {r["question"] for r in train}
    test_q = {r["question"] for r in test}
    assert len(train_q) == len(train) and len(test_q) == len(test)  # no duplicates inside a split
    assert not train_q & test_q
    ids = [r["id"] for r in train + test]
    assert len(set(ids)) == len(ids)
    total = (DATA / "train.jsonl").stat().st_size + (DATA / "test.jsonl").stat().st_size
    assert total < 4.5e6


def test_every_step_checks_and_answers_match():
    records = load_jsonl(DATA / "train.jsonl") + load_jsonl(DATA / "test.jsonl")
    for r in records:
        assert set(r) == {"id", "question", "solution", "answer"}
        lines = r["solution"].split("\n")
        assert 2 <= len(lines) - 1 <= 4, r
        for line in lines[:-1]:
            assert check_step(line) is True, (r["id"], line)
            a, op, b, eq, c = line.split(" ")
            assert op in "+-*" and eq == "="
            assert 0 <= int(c) <= tinymath.MAX_VALUE and 0 <= int(a) <= 100 and 0 <= int(b) <= 100
        assert lines[-1] == f"#### {r['answer']}"
        assert check_step(lines[-1]) is None
        assert final_answer(r["solution"]) == r["answer"]
        assert r["answer"] == lines[-2].split(" = ")[1]  # the last step gives the answer
        assert r["question"].endswith("?")


def test_steps_chain_on_random_seeds():
    rng = random.Random(1234)
    for _ in range(2000):
        r = generate_problem(rng)
        lines = r["solution"].split("\n")
        assert all(check_step(line) for line in lines[:-1])
        # each step after the first uses a result of an earlier step
        results = []
        for i, line in enumerate(lines[:-1]):
            a, _, b, _, c = line.split(" ")
            if i > 0:
                assert a in results or b in results, r
            results.append(c)


@pytest.mark.parametrize(
    "line,expected",
    [
        ("12 + 7 = 19", True),
        ("19 - 5 = 14", True),
        ("6 * 7 = 42", True),
        ("6 × 7 = 42", True),
        ("6 x 7 = 42", True),
        ("  3*4=12  ", True),
        ("5 - 7 = -2", True),
        ("5 \u2212 7 = \u22122", True),
        ("7 / 2 = 3.5", True),
        ("12 / 4 = 3", True),
        ("0.5 + 0.25 = 0.75", True),
        ("12 + 7 = 18", False),
        ("19 - 5 = 15", False),
        ("6 * 7 = 43", False),
        ("7 / 2 = 3", False),
        ("4 / 0 = 0", False),
        ("5 - 7 = 2", False),
        ("#### 14", None),
        ("", None),
        ("Ann has 12 apples.", None),
        ("12 + 7 = 19 apples", None),
        ("12 + 7 + 1 = 20", None),
        ("12 + 7 = 19 = 19", None),
        ("12 + = 19", None),
        ("= 19", None),
        ("12 + 7", None),
        ("19", None),
        ("a + b = c", None),
        ("1,000 + 1 = 1,001", None),
    ],
)
def test_check_step(line, expected):
    assert check_step(line) is expected


def test_check_step_rejects_non_strings():
    assert check_step(None) is None  # type: ignore[arg-type]
    assert check_step(12) is None  # type: ignore[arg-type]


def test_final_answer():
    assert final_answer("1 + 2 = 3\n#### 3") == "3"
    assert final_answer("#### 1\n#### 22") == "22"
    assert final_answer("#### 7\nmore text") == "7"
    assert final_answer("1 + 2 = 3") is None
    assert final_answer("####   ") is None


def test_records_are_json_lines():
    line = (DATA / "test.jsonl").read_text().splitlines()[0]
    rec = json.loads(line)
    assert rec["id"] == "tinymath-test-000001"
    assert line.startswith('{"id": "tinymath-test-000001", "question": ')
