"""Tests for prm_raft.fetch_datasets that need no network: the offline failure, the skip of files
already present, the OpenMathInstruct-2 selection and the atomic writer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from prm_raft.fetch_datasets import (
    FetchError,
    manual_instructions,
    parse_only,
    select_omi2,
    write_jsonl_atomic,
)

PY_ROOT = Path(__file__).resolve().parents[1]
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused at once


def _run(*args, env_extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PY_ROOT), env.get("PYTHONPATH")) if p)
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("HF_DATASETS_OFFLINE", None)
    env["HF_ENDPOINT"] = UNREACHABLE
    env.update(env_extra or {})
    # The timeout guards against a hang: unreachable must fail fast, never wait on the network.
    return subprocess.run(
        [sys.executable, "-m", "prm_raft.fetch_datasets", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_unreachable_hub_exits_2_with_manual_instructions(tmp_path):
    out = tmp_path / "data"
    proc = _run("--out", str(out))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr
    assert "unreachable" in err and UNREACHABLE in err
    for name in ("gsm8k-train", "gsm8k-test", "math-train", "math500-test", "omi2"):
        assert f"{out}/{name}.jsonl" in err
    assert "question, answer" in err and "#### N" in err
    assert "problem, level" in err and "type, solution" in err
    assert "subject, level (an integer), unique_id" in err
    assert "generated_solution, expected_answer, problem_source" in err
    assert "augmented_math" in err and "augmented_gsm8k" in err
    assert "shared/data" in err
    # stdout stays JSON lines, ending with a non-retryable error event
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert events[-1]["event"] == "error" and events[-1]["retryable"] is False
    assert not out.exists()  # nothing written, not even the directory


def test_only_lists_just_the_requested_files(tmp_path):
    proc = _run("--out", str(tmp_path), "--only", "math500")
    assert proc.returncode == 2
    assert "math500-test.jsonl" in proc.stderr
    assert "gsm8k-train.jsonl" not in proc.stderr and "omi2.jsonl" not in proc.stderr


def test_existing_files_need_no_network(tmp_path):
    for name in ("gsm8k-train", "gsm8k-test"):
        (tmp_path / f"{name}.jsonl").write_text('{"question": "q", "answer": "#### 1"}\n')
    proc = _run("--out", str(tmp_path), "--only", "gsm8k")
    assert proc.returncode == 0, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e.get("status") for e in events[:-1]] == ["exists", "exists"]
    assert events[-1] == {"event": "done", "output": str(tmp_path)}


def test_unknown_dataset_name_exits_2(tmp_path):
    proc = _run("--out", str(tmp_path), "--only", "gsm8k,aime")
    assert proc.returncode == 2
    assert "unknown dataset 'aime'" in proc.stderr


def test_parse_only_groups_and_names():
    assert parse_only("gsm8k") == ["gsm8k-train", "gsm8k-test"]
    assert parse_only("math500,gsm8k-test,math500") == ["math500-test", "gsm8k-test"]
    assert parse_only(None) == ["gsm8k-train", "gsm8k-test", "math-train", "math500-test", "omi2"]
    with pytest.raises(FetchError):
        parse_only("nope")


def _omi2_row(i, source, problem=None):
    return {
        "problem": problem or f"problem {i}",
        "generated_solution": f"solution {i} \\boxed{{{i}}}",
        "expected_answer": str(i),
        "problem_source": source,
        "extra_column": "dropped",
    }


def test_select_omi2_filters_dedupes_caps_and_stops_early():
    def stream():
        yield _omi2_row(0, "gsm8k")  # an original GSM8K problem: not wanted
        yield _omi2_row(1, "augmented_math")
        yield _omi2_row(2, "augmented_math", problem="problem 1")  # same problem again: deduped
        yield _omi2_row(3, "math")
        yield _omi2_row(4, "augmented_gsm8k")
        yield _omi2_row(5, "augmented_math")
        yield _omi2_row(6, "augmented_math")  # over the cap of 2
        yield _omi2_row(7, "augmented_gsm8k")  # both sources full after this one
        raise AssertionError("read past the point where every source was full")

    progress = []
    rows = list(select_omi2(stream(), max_per_source=2, on_progress=lambda s, k: progress.append((s, k))))
    assert [r["expected_answer"] for r in rows] == ["1", "4", "5", "7"]
    assert set(rows[0]) == {"problem", "generated_solution", "expected_answer", "problem_source"}
    assert progress[-1] == (8, {"augmented_math": 2, "augmented_gsm8k": 2})


def test_select_omi2_rejects_a_changed_schema():
    with pytest.raises(FetchError, match="expected_answer"):
        list(select_omi2([{"problem": "p", "problem_source": "augmented_math"}], max_per_source=5))


def test_write_jsonl_atomic_leaves_nothing_on_failure(tmp_path):
    def rows():
        yield {"a": 1}
        raise ConnectionError("dropped")

    target = tmp_path / "x.jsonl"
    with pytest.raises(ConnectionError):
        write_jsonl_atomic(target, rows())
    assert list(tmp_path.iterdir()) == []
    assert write_jsonl_atomic(target, iter([{"a": 1}, {"b": "é"}])) == 2
    assert target.read_text(encoding="utf-8") == '{"a": 1}\n{"b": "é"}\n'


def test_manual_instructions_point_at_a_shared_copy(tmp_path):
    shared = tmp_path / "shared" / "data"
    (shared / "gsm8k").mkdir(parents=True)
    (shared / "gsm8k" / "train.jsonl").write_text("{}\n")
    out = tmp_path / "out"
    text = manual_instructions(out, ["gsm8k-train", "math-train"], shared)
    assert f"cp {shared / 'gsm8k' / 'train.jsonl'} {out / 'gsm8k-train.jsonl'}" in text
    assert "math-train.jsonl" in text and "\\boxed{}" in text
    assert "may be at ../shared/data" in manual_instructions(out, ["gsm8k-test"], None)
