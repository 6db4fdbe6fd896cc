"""The log-prob job (prm_raft.logprobs) on the shipped tiny policy (models/tinymath-policy, CPU).

Real runs call `logprobs.main` in this process (one import of torch / transformers for the file, the 2-core budget);
the CLI runs in a subprocess once for a real job (stdout holds JSON lines only) and once for bad input (exit 2,
before torch is imported). Byte-level offsets are checked with a byte-level BPE tokenizer trained here.
"""

from __future__ import annotations

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from prm_raft import logprobs  # noqa: E402  (light: imports no torch until a job runs)
from prm_raft.train_job import EXIT_BAD_INPUT, EXIT_OK  # noqa: E402

PYTHON_SFT = Path(__file__).resolve().parents[1]
SHIPPED_POLICY = PYTHON_SFT.parent / "models" / "tinymath-policy"
PROMPT = "Question: Tom has {a} apples and buys {b} more. How many apples does he have?\nAnswer:\n"


@pytest.fixture(scope="module")
def policy() -> Path:
    missing = [f for f in ("config.json", "model.safetensors", "tokenizer.json") if not (SHIPPED_POLICY / f).is_file()]
    if missing:
        pytest.fail(f"shipped model {SHIPPED_POLICY} lacks {', '.join(missing)}: models/ is committed in git, restore it", pytrace=False)
    return SHIPPED_POLICY


def records() -> list[dict[str, str]]:
    out = []
    for i, (a, b) in enumerate([(3, 4), (12, 9), (7, 30), (15, 15), (2, 2)]):
        s = a + b
        # Different lengths, so the job batches them in several length groups; one wrong answer.
        body = f"{a} + {b} = {s}\n" * (1 + i % 3) + f"#### {s if i != 2 else s + 1}"
        out.append({"id": f"q{i}/0", "prompt": PROMPT.format(a=a, b=b), "completion": body, "extra": "ignored"})
    out.append({"id": "q5/0", "prompt": PROMPT.format(a=1, b=1), "completion": ""})
    return out


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def job_file(tmp: Path, model: Path, **extra) -> tuple[Path, Path, Path]:
    inp = write_jsonl(tmp / "in.jsonl", records())
    out = tmp / "out" / "logprobs.jsonl"
    cfg = tmp / "job.json"
    cfg.write_text(json.dumps({"model": str(model), "input_file": str(inp), "output_file": str(out), "device": "cpu", **extra}), encoding="utf-8")
    return cfg, inp, out


def run_main(cfg: Path) -> tuple[int, list[dict]]:
    events = io.StringIO()
    code = logprobs.main(["--config", str(cfg)], events=events)
    return code, [json.loads(line) for line in events.getvalue().splitlines()]


def read_out(out: Path) -> dict[str, dict]:
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_id = {line["id"]: line for line in lines}
    assert len(by_id) == len(lines), "an id was written twice"
    return by_id


def sequence_loglik(model_dir: Path, prompt: str, completion: str) -> float:
    """The completion's log-likelihood from the model's own loss (labels −100 on the prompt), one sequence alone."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    p = tok(prompt, add_special_tokens=True)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p + c])
    labels = torch.tensor([[-100] * len(p) + c])
    with torch.inference_mode():
        loss = model(input_ids=ids, labels=labels).loss  # mean NLL over the len(c) scored tokens
    return -float(loss) * len(c)


def test_scores_completions_under_the_real_tiny_policy(tmp_path: Path, policy: Path) -> None:
    # A small token budget: several batches, right padding in most of them.
    cfg, _, out = job_file(tmp_path, policy, batch_tokens=150, max_batch_size=2)
    code, events = run_main(cfg)
    assert code == EXIT_OK
    assert events[-1]["event"] == "done" and events[-1]["output"] == str(out)
    assert events[-1]["metrics"] == {"responses": 6, "scored": 6, "tokens": sum(len(r["completion"]) for r in records()), "skipped": 0}
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[0]["step"] == 0 and progress[-1] == {"event": "progress", "step": 6, "total": 6}
    assert len(progress) >= 4  # more than one batch

    got = read_out(out)
    assert set(got) == {r["id"] for r in records()}
    for r in records():
        line = got[r["id"]]
        n = len(r["completion"])  # the tiny policy's tokenizer is character-level
        assert len(line["logprobs"]) == n and line["char_ends"] == list(range(1, n + 1))
        assert all(isinstance(x, float) and math.isfinite(x) and x <= 0 for x in line["logprobs"])
    assert got["q5/0"] == {"id": "q5/0", "logprobs": [], "char_ends": []}

    # The sum is the model's own sequence log-likelihood of the completion, computed alone (no batch, no padding).
    for r in records()[:3]:
        expected = sequence_loglik(policy, r["prompt"], r["completion"])
        assert math.isclose(sum(got[r["id"]]["logprobs"]), expected, rel_tol=1e-4, abs_tol=1e-3)


def test_cli_prints_json_lines_only(tmp_path: Path, policy: Path) -> None:
    cfg, _, out = job_file(tmp_path, policy)
    proc = subprocess.run(
        [sys.executable, "-m", "prm_raft.logprobs", "--config", str(cfg)],
        cwd=PYTHON_SFT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == EXIT_OK, proc.stderr
    events = [json.loads(line) for line in proc.stdout.splitlines()]  # every stdout line is JSON
    assert events[-1] == {"event": "done", "output": str(out), "metrics": {"responses": 6, "scored": 6, "tokens": events[-1]["metrics"]["tokens"], "skipped": 0}}
    assert len(read_out(out)) == 6


def test_resume_skips_ids_already_written_and_drops_a_half_written_line(tmp_path: Path, policy: Path) -> None:
    cfg, _, out = job_file(tmp_path, policy)
    out.parent.mkdir(parents=True)
    # A crashed earlier run of the same job: two whole lines (recognisable values) and half of a third.
    sentinel = [{"id": "q0/0", "logprobs": [-9.0], "char_ends": [99]}, {"id": "q3/0", "logprobs": [-8.0], "char_ends": [98]}]
    out.write_text("".join(json.dumps(s) + "\n" for s in sentinel) + '{"id": "q1/0", "logpro', encoding="utf-8")
    # Its identity, as that run recorded it (the same job).
    _, input_sha = logprobs.read_input(str(tmp_path / "in.jsonl"))
    (out.parent / "logprobs.jsonl.job.json").write_text(
        json.dumps({"identity": {"model": str(policy), "input_file_sha256": input_sha, "bf16": False}}), encoding="utf-8"
    )
    code, events = run_main(cfg)
    assert code == EXIT_OK
    assert events[-1]["metrics"]["skipped"] == 2 and events[-1]["metrics"]["scored"] == 4
    got = read_out(out)
    assert set(got) == {r["id"] for r in records()}
    assert got["q0/0"] == sentinel[0] and got["q3/0"] == sentinel[1]  # not scored again
    assert len(got["q1/0"]["logprobs"]) == len(records()[1]["completion"])  # the half line was redone whole

    # Everything done: a rerun scores nothing and says so.
    code, events = run_main(cfg)
    assert code == EXIT_OK and events[-1]["metrics"]["skipped"] == 6 and events[-1]["metrics"]["scored"] == 0


def test_refuses_to_resume_another_jobs_output(tmp_path: Path, policy: Path) -> None:
    cfg, inp, out = job_file(tmp_path, policy)
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps({"id": "q0/0", "logprobs": [-1.0], "char_ends": [1]}) + "\n", encoding="utf-8")
    (out.parent / "logprobs.jsonl.job.json").write_text(
        json.dumps({"identity": {"model": "/elsewhere/model", "input_file_sha256": "x", "bf16": False}}), encoding="utf-8"
    )
    code, events = run_main(cfg)
    assert code == EXIT_BAD_INPUT
    assert "different job" in events[-1]["message"] and "model" in events[-1]["message"]

    # An output line whose id the input does not have: another job's file.
    (out.parent / "logprobs.jsonl.job.json").unlink()
    out.write_text(json.dumps({"id": "other/0", "logprobs": [-1.0], "char_ends": [1]}) + "\n", encoding="utf-8")
    code, events = run_main(cfg)
    assert code == EXIT_BAD_INPUT and '"other/0" is not in input_file' in events[-1]["message"]


@pytest.mark.parametrize(
    ("lines", "extra", "message"),
    [
        (['{"id": "a", "prompt": "Q"}'], {}, 'line 1: missing "completion"'),
        (['{"id": "a", "prompt": "Q", "completion": "x"}', '{"id": "a", "prompt": "Q", "completion": "y"}'], {}, 'id "a" already on line 1'),
        (["not json"], {}, "line 1: not valid JSON"),
        (['{"id": "a", "prompt": "Q", "completion": 3}'], {}, '"completion" must be a string'),
        (['{"id": "a", "prompt": "Q", "completion": "x"}'], {"batch_size": 4}, 'unknown key "batch_size"'),
        (['{"id": "a", "prompt": "Q", "completion": "x"}'], {"device": "tpu"}, '"device" must be'),
    ],
)
def test_bad_input_exits_2_with_the_reason(tmp_path: Path, lines: list[str], extra: dict, message: str) -> None:
    inp = tmp_path / "in.jsonl"
    inp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"model": str(SHIPPED_POLICY), "input_file": str(inp), "output_file": str(tmp_path / "o.jsonl"), **extra}), encoding="utf-8")
    code, events = run_main(cfg)
    assert code == EXIT_BAD_INPUT
    assert events[-1]["event"] == "error" and events[-1]["retryable"] is False
    assert message in events[-1]["message"]


def test_cli_exits_2_on_a_missing_input_file_and_a_record_longer_than_the_context(tmp_path: Path, policy: Path) -> None:
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"model": str(policy), "input_file": str(tmp_path / "nope.jsonl"), "output_file": str(tmp_path / "o.jsonl")}), encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "prm_raft.logprobs", "--config", str(cfg)], cwd=PYTHON_SFT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == EXIT_BAD_INPUT
    assert "nope.jsonl: file not found" in proc.stderr

    long_cfg, _, _ = job_file(tmp_path, policy, max_length=40)
    code, events = run_main(long_cfg)
    assert code == EXIT_BAD_INPUT
    assert "more than max_length 40" in events[-1]["message"] and "line 1" in events[-1]["message"]


def test_batches_group_by_length_within_the_budget() -> None:
    def enc(i: int, n: int) -> logprobs.Encoded:
        return logprobs.Encoded(logprobs.Record(f"r{i}", "", "", i), [1] * n, [], [])

    items = [enc(i, n) for i, n in enumerate([5, 50, 7, 48, 6, 200])]
    got = [[e.record.id for e in b] for b in logprobs.batches(items, batch_tokens=100, max_batch_size=3)]
    assert got == [["r5"], ["r1", "r3"], ["r2", "r4", "r0"]]  # longest first; 200 > 100 goes alone; ≤ 3 rows
    for b in logprobs.batches(items, batch_tokens=100, max_batch_size=3):
        assert len(b) == 1 or len(b) * max(e.length for e in b) <= 100


def test_offsets_of_a_byte_level_tokenizer_cover_the_completion_in_utf16_units() -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(["12 + 30 = 42.\n\nThe answer is 42"] * 20, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>")

    # é is 2 UTF-8 bytes and one UTF-16 unit; 🙂 is 4 bytes, one code point, two UTF-16 units.
    text = "12 + 30 = 42.\n\nThe answer is 42 é 🙂!"
    e = logprobs.encode(tokenizer, logprobs.Record("a", "Q", text, 1), max_length=10_000)
    utf16_len = len(text.encode("utf-16-le")) // 2
    assert utf16_len == len(text) + 1
    assert len(e.char_ends) == len(e.completion_ids) > len(text.encode("utf-8")) // 4
    assert all(a <= b for a, b in zip(e.char_ends, e.char_ends[1:]))
    assert e.char_ends[-1] == utf16_len
    assert tokenizer.decode(e.completion_ids) == text
    # The byte tokens of 🙂 all end after it (UTF-16 end of "🙂" = utf16_len − 1, before "!").
    assert e.char_ends.count(utf16_len - 1) >= 2
    # Whole-character tokens end where their text ends: "12" is its own token, ending at 2.
    assert e.char_ends[0] <= 2

    assert logprobs.utf16_ends("a🙂b", [(0, 1), (1, 2), (1, 2), (2, 3)]) == [1, 3, 3, 4]
    assert logprobs.utf16_ends("ab ", [(0, 1), (1, 2)]) == [1, 3]  # trimmed trailing space still covered
