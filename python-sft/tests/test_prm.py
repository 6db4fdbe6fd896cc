"""PRM format, training, scoring server and exact tinymath labels, on tiny models (CPU, a few seconds of training).

The PRM server under test runs in a subprocess started at the top of the module (it imports transformers while
the in-process tests run); an ORM server and an out-of-memory one run in-process, on uvicorn threads.
"""

from __future__ import annotations

import io
import contextlib
import json
import math
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from prm_raft import prm_format, prm_server, prm_train, serving  # noqa: E402
from prm_raft.prm_format import PrmFormat, build_prm_input, ensure_tag_token, label_token_ids, tag_token_id  # noqa: E402
from prm_raft.tiny.labels import Reference, labels_for_record, outcome_label, step_labels  # noqa: E402

PYTHON_SFT = Path(__file__).resolve().parents[1]
TINY = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "max_position_embeddings": 128,
}

torch.set_num_threads(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def good_bad_rows(n: int = 16, seed: int = 0, good: float = 0.7, bad: float = 0.3) -> list[dict]:
    """Solutions whose steps are the words good/bad, with soft labels: learnable from the step text."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        steps = [rng.choice(["good", "bad"]) for _ in range(rng.randint(1, 3))]
        rows.append(
            {
                "question": f"q{i}",
                "steps": steps,
                "labels": [good if s == "good" else bad for s in steps],
                "outcome": good if steps[-1] == "good" else bad,
            }
        )
    return rows


def train_tiny(tmp: Path, name: str, rows: list[dict], kind: str = "autoregressive", **over) -> tuple[Path, dict]:
    cfg = {
        "base": None,
        "train_file": str(write_jsonl(tmp / f"{name}.jsonl", rows)),
        "output_dir": str(tmp / name),
        "kind": kind,
        "max_steps": 40,
        "batch_size": len(rows),  # the whole set every step: loss_first / loss_last are full-data losses
        "learning_rate": 1e-2,
        "lr_schedule": "constant",
        "log_every": 1,
        "seed": 0,
        "threads": 1,
        "model_config": TINY,
    }
    cfg.update(over)
    return prm_train.train(prm_train.validate_config(cfg))


def run_main(config: Path) -> tuple[int, list[dict]]:
    buf = io.StringIO()
    code = prm_train.main(["--config", str(config)], events=buf)
    return code, [json.loads(line) for line in buf.getvalue().splitlines()]


# --------------------------------------------------------------------------------------------------
# Module fixtures: a trained PRM served by a subprocess (started first, it loads while other tests run)
# --------------------------------------------------------------------------------------------------


class ServerProc:
    def __init__(self, model_dir: Path, name: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(PYTHON_SFT)}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prm_raft.prm_server", "--model", str(model_dir), "--port", str(self.port),
             "--served-model-name", name, "--threads", "1"],
            cwd=PYTHON_SFT, env=env, stdout=subprocess.DEVNULL, stderr=open(log, "w"),
        )

    def wait_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"server exited: {self.log.read_text()}"
            try:
                if http("GET", self.url + "/health")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready in {timeout}s: {self.log.read_text()}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def http(method: str, url: str, body: object = None, raw: bytes | None = None) -> tuple[int, object]:
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text = r.read()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        text = e.read()
        return e.code, (json.loads(text) if text else None)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("prm")


@pytest.fixture(scope="module")
def ar_model(workdir) -> Path:
    out, _ = train_tiny(workdir, "ar", good_bad_rows(), max_steps=15)
    return out


@pytest.fixture(scope="module")
def server(ar_model, workdir):
    s = ServerProc(ar_model, "tiny-prm", workdir / "server.log")
    yield s
    s.stop()


def test_server_process_starts(server):
    # requested first so the subprocess loads while the in-process tests below run
    assert server.proc.poll() is None


# --------------------------------------------------------------------------------------------------
# prm_format
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def char_tokenizer():
    from prm_raft.tiny.train_policy import build_tokenizer

    tok = build_tokenizer(["12 + 7 = 19\n#### 19 Question"], 512)
    assert ensure_tag_token(tok) is True
    assert ensure_tag_token(tok) is False  # idempotent
    return tok


@pytest.fixture(scope="module")
def bpe_tokenizer():
    """A byte-level BPE tokenizer (trained here, offline) to show the format holds beyond char tokenizers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    texts = ["Question: Ann has 12 apples. Answer: 12 + 7 = 19 ки\n#### 19 ки", "ки ки good bad + - 1 2 3"] * 20
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<s>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="</s>")
    ensure_tag_token(fast)
    return fast


WEIRD = ["", " ", "ки", " ки", "кики", "к", "и", "ки\n", "<eos>", "<bos>", "<pad>", "<unk>", "####", "+", "-",
         "12 + 7 = 19", "é漢字🙂", "\n\n", "Question:", "\t", "a ки b", "ки+", "-ки-"]


@pytest.mark.parametrize("tok_name", ["char_tokenizer", "bpe_tokenizer"])
def test_tag_positions_point_at_the_tag_for_any_steps(tok_name, request):
    tok = request.getfixturevalue(tok_name)
    tag = tag_token_id(tok)
    rng = random.Random(1)
    for trial in range(300):
        steps = ["".join(rng.choice(WEIRD) for _ in range(rng.randint(0, 4))) for _ in range(rng.randint(1, 6))]
        question = "".join(rng.choice(WEIRD) for _ in range(rng.randint(0, 3)))
        ids, pos, starts = build_prm_input(tok, question, steps)
        assert len(pos) == len(steps)
        for step, start, p in zip(steps, starts, pos):  # each step's own tokens sit right before its tag
            assert ids[start:p] == prm_format._encode_text(tok, step)
        assert all(ids[p] == tag for p in pos), (steps, ids, pos)
        assert sum(i == tag for i in ids) == len(steps), f"a tag id outside the tag positions for {steps!r}"
        assert pos == sorted(set(pos))
        assert pos[-1] == len(ids) - 1  # the input ends with the last step's tag


def test_tag_and_label_tokens_are_single_tokens(char_tokenizer):
    tag = tag_token_id(char_tokenizer)
    assert char_tokenizer.convert_ids_to_tokens(tag) == "ки"
    good, bad = label_token_ids(char_tokenizer)
    assert char_tokenizer.convert_ids_to_tokens([good, bad]) == ["+", "-"]
    # the step text "ки" never turns into the tag: it is split into its characters
    ids, pos, _ = build_prm_input(char_tokenizer, "q", ["ки"])
    assert ids.count(tag) == 1 and pos == [len(ids) - 1]


def test_layout_is_question_then_steps_with_tags(char_tokenizer):
    ids, pos, _ = build_prm_input(char_tokenizer, "Q?", ["1 + 1 = 2", "#### 2"])
    text = char_tokenizer.decode(ids)
    assert text == "<bos>Question: Q?\nAnswer:\n1 + 1 = 2ки\n#### 2ки"
    assert prm_format.orm_steps(["a", "b"]) == ["a\nb"]
    with pytest.raises(prm_format.FormatError):
        tag_token_id(char_tokenizer, PrmFormat(step_tag="<<never added>>"))


# --------------------------------------------------------------------------------------------------
# exact tinymath labels
# --------------------------------------------------------------------------------------------------

REC = {"question": "...", "solution": "12 + 7 = 19\n19 - 5 = 14\n14 * 2 = 28\n#### 28", "answer": "28"}


def test_labels_correct_solution_all_ones():
    assert labels_for_record(["12 + 7 = 19", "19 - 5 = 14", "14 * 2 = 28", "#### 28"], REC) == [1, 1, 1, 1]
    assert labels_for_record(["7 + 12 = 19", "19 - 5 = 14", "2 * 14 = 28", "#### 28.0"], REC) == [1, 1, 1, 1]  # commutative, numeric answer


def test_labels_wrong_step_and_everything_after_zero():
    assert labels_for_record(["12 + 7 = 19", "19 - 5 = 15", "15 * 2 = 30", "#### 30"], REC) == [1, 0, 0, 0]
    # not carried: later steps are the reference's, the answer is even right, still 0 after the first error
    assert labels_for_record(["12 + 7 = 18", "19 - 5 = 14", "14 * 2 = 28", "#### 28"], REC) == [0, 0, 0, 0]
    assert labels_for_record(["12 + 7 = 19", "19 - 5 = 14", "14 * 2 = 28", "#### 29"], REC) == [1, 1, 1, 0]


def test_labels_right_arithmetic_on_a_wrong_carried_value_is_zero():
    # step 2 is arithmetically right but starts from 18, not the chain's 19
    assert labels_for_record(["12 + 7 = 19", "18 - 5 = 13", "13 * 2 = 26", "#### 26"], REC) == [1, 0, 0, 0]
    # right value from the wrong numbers is still a wrong step
    assert labels_for_record(["10 + 9 = 19", "19 - 5 = 14"], REC) == [0, 0]
    # wrong operation
    assert labels_for_record(["12 - 7 = 5"], REC) == [0]


def test_labels_edge_cases():
    ref = Reference.from_solution(REC["solution"])
    assert ref.answer == "28" and len(ref.equations) == 3
    assert step_labels([], ref) == []
    assert step_labels(["12 + 7 = 19", "some prose", "19 - 5 = 14"], ref) == [1, 0, 0]  # prose is not a step
    assert step_labels(["12 + 7 = 19", "19 - 5 = 14", "14 * 2 = 28", "28 + 0 = 28", "#### 28"], ref) == [1, 1, 1, 0, 0]
    assert step_labels(["12 + 7 = 19", "19 - 5 = 14", "14 * 2 = 28", "#### 28", "#### 28"], ref) == [1, 1, 1, 1, 0]
    assert step_labels(["12 + 7 = 19 = 19"], ref) == [0]  # chained equation
    assert outcome_label(["12 + 7 = 18", "#### 28"], "28") == 1  # the ORM label looks at the answer only
    assert outcome_label("12 + 7 = 19\n#### 27", "28") == 0
    assert outcome_label(["no answer"], "28") == 0


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["autoregressive", "regression", "orm"])
def test_training_lowers_the_loss(kind, tmp_path):
    out, metrics = train_tiny(tmp_path, kind, good_bad_rows(), kind=kind)
    assert metrics["loss_last"] < metrics["loss_first"] - 0.02, metrics
    cfg = json.loads((out / "prm_config.json").read_text())
    assert cfg["kind"] == kind and cfg["step_tag"] == "ки" and cfg["good_token"] == "+" and cfg["bad_token"] == "-"
    assert {"step_tag_id", "good_token_id", "bad_token_id", "max_length", "prompt_template", "step_separator"} <= set(cfg)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp dirs left behind


def test_soft_labels_are_used_not_rounded(tmp_path):
    rows = [{"question": f"q{i}", "steps": ["s"] * (1 + i % 3), "labels": [0.3] * (1 + i % 3)} for i in range(8)]
    out, _ = train_tiny(tmp_path, "soft", rows, max_steps=60, learning_rate=2e-2)
    scorer = prm_server.PrmScorer(out)
    probs = [p for s in scorer.score([("q1", ["s", "s"]), ("zz", ["s"])]) for p in s]
    assert all(abs(p - 0.3) < 0.05 for p in probs), probs  # a cast to int would push these to 0
    hard = [{**r, "labels": [0.0] * len(r["labels"])} for r in rows]
    out0, _ = train_tiny(tmp_path, "hard", hard, max_steps=60, learning_rate=2e-2)
    probs0 = [p for s in prm_server.PrmScorer(out0).score([("q1", ["s", "s"])]) for p in s]
    assert all(p < 0.15 for p in probs0), probs0
    # the gradient of the soft cross-entropy wrt the (good - bad) logit gap is p - y: zero at p = y
    gap = torch.zeros(1, requires_grad=True)
    prm_train.loss_fn("autoregressive", gap, torch.tensor([0.3])).backward()
    assert gap.grad[0].item() == pytest.approx(0.5 - 0.3)


def test_training_is_deterministic(tmp_path):
    from safetensors.torch import load_file

    a, ma = train_tiny(tmp_path, "a", good_bad_rows(), max_steps=5)
    b, mb = train_tiny(tmp_path, "b", good_bad_rows(), max_steps=5)
    assert ma["loss_last"] == mb["loss_last"]
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_bad_config_and_data_exit_2_naming_the_line(tmp_path, capsys):
    good = write_jsonl(tmp_path / "ok.jsonl", good_bad_rows(4))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good.read_text() + json.dumps({"question": "q", "steps": ["a", "b"], "labels": [1.0]}) + "\n")
    cases = [
        ({"train_file": str(bad), "output_dir": str(tmp_path / "o")}, "bad.jsonl line 5"),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "kind": "classify"}, "'kind'"),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "epochs": "1"}, "'epochs'"),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "lerning_rate": 1}, "unknown key"),
        ({"train_file": str(tmp_path / "missing.jsonl"), "output_dir": str(tmp_path / "o")}, "not found"),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "lora": {"rank": 4}}, 'unknown key "lora.rank"'),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "save_every": 2}, "unknown key"),
        ({"train_file": str(good), "output_dir": str(tmp_path / "o"), "bf16": "yes"}, "'bf16'"),
    ] + ([] if torch.cuda.is_available() else [({"train_file": str(good), "output_dir": str(tmp_path / "o"), "bf16": True}, "needs a GPU")])
    for i, (cfg, needle) in enumerate(cases):
        p = tmp_path / f"c{i}.json"
        p.write_text(json.dumps(cfg))
        assert prm_train.main(["--config", str(p)]) == 2
        last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert last["event"] == "error" and last["retryable"] is False and needle in last["message"], last
    row = {"question": "q", "steps": ["a"], "labels": [1.5]}
    (tmp_path / "range.jsonl").write_text(json.dumps(row) + "\n")
    with pytest.raises(prm_train.BadConfig, match="line 1.*in \\[0, 1\\]"):
        prm_train.load_examples(tmp_path / "range.jsonl", "autoregressive", PrmFormat())
    with pytest.raises(prm_train.BadConfig, match="line 1: an ORM needs 'outcome'"):
        prm_train.load_examples(write_jsonl(tmp_path / "o.jsonl", [{"question": "q", "steps": ["a", "b"], "labels": [1, 0]}]), "orm", PrmFormat())


def test_progress_and_done_events(tmp_path, capsys):
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"train_file": str(write_jsonl(tmp_path / "t.jsonl", good_bad_rows(6))), "output_dir": str(tmp_path / "out"),
                               "max_steps": 4, "batch_size": 3, "log_every": 2, "model_config": TINY, "threads": 1}))
    assert prm_train.main(["--config", str(cfg)]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    prog = [e for e in events if e["event"] == "progress"]
    assert [(e["step"], e["total"]) for e in prog] == [(2, 4), (4, 4)]
    assert events[-1]["event"] == "done" and events[-1]["output"] == str((tmp_path / "out").resolve())
    assert set(events[-1]["metrics"]) >= {"loss_first", "loss_last"}


# --------------------------------------------------------------------------------------------------
# scoring: in-process scorer, servers on threads
# --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def served_on_a_thread(app):
    """`app` on uvicorn as the server runs it (serving.uvicorn_server), on a free port, until the block ends."""
    server = serving.uvicorn_server(app, "prm_server", serving.DEFAULT_MAX_BODY_BYTES, serving.DEFAULT_RECEIVE_TIMEOUT)
    sock = socket.create_server(("127.0.0.1", 0))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the in-process server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def direct_probs(model_dir: Path, question: str, steps: list[str]) -> list[float]:
    """The model's own P(+) at each tag, computed without the server code: one unpadded full forward."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    cfg = json.loads((model_dir / "prm_config.json").read_text())
    ids, pos, _ = build_prm_input(tok, question, steps)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids])).logits[0]
    pair = logits[pos][:, [cfg["good_token_id"], cfg["bad_token_id"]]]
    return torch.softmax(pair, dim=-1)[:, 0].tolist()


@pytest.fixture(scope="module")
def orm_server(workdir):
    out, _ = train_tiny(workdir, "orm", good_bad_rows(), kind="orm", max_steps=10)
    app = prm_server.create_app("tiny-orm")
    app.state.model = prm_server.PrmScorer(out)
    with served_on_a_thread(app) as url:
        yield app.state.model, url, out


def test_orm_returns_one_score_per_item(orm_server):
    _, url, out = orm_server
    items = [{"id": "a", "question": "q1", "steps": ["good", "bad", "good"]}, {"id": "b", "question": "q2", "steps": ["bad"]}]
    status, body = http("POST", url + "/v1/score", {"model": "tiny-orm", "items": items})
    assert status == 200 and [s["id"] for s in body["scores"]] == ["a", "b"]
    assert [len(s["step_scores"]) for s in body["scores"]] == [1, 1]
    # the whole response as one step: the same as scoring the joined text as a single step
    assert body["scores"][0]["step_scores"][0] == pytest.approx(direct_probs(out, "q1", ["good\nbad\ngood"])[0], abs=1e-6)


def test_a_request_under_the_token_budget_takes_one_forward_pass(orm_server, monkeypatch):
    scorer, url, _ = orm_server
    calls = []
    model = scorer.model
    orig = model.base_model.forward
    monkeypatch.setattr(model.base_model, "forward", lambda *a, **k: calls.append(k["input_ids"].shape) or orig(*a, **k))
    items = [{"id": str(i), "question": "q" * (i + 1), "steps": ["good"] * (i + 1)} for i in range(5)]
    assert http("POST", url + "/v1/score", {"model": "tiny-orm", "items": items})[0] == 200
    assert len(calls) == 1 and calls[0][0] == 5


def test_regression_scores_are_sigmoids_in_range(tmp_path):
    out, _ = train_tiny(tmp_path, "reg", good_bad_rows(), kind="regression", max_steps=5)
    scorer = prm_server.PrmScorer(out)
    (s1, s2), = scorer.score([("q", ["good", "bad"])])
    assert 0.0 <= s1 <= 1.0 and 0.0 <= s2 <= 1.0
    from transformers import AutoModelForTokenClassification

    model = AutoModelForTokenClassification.from_pretrained(out).eval()
    ids, pos, _ = build_prm_input(scorer.tokenizer, "q", ["good", "bad"])
    with torch.no_grad():
        direct = torch.sigmoid(model(input_ids=torch.tensor([ids])).logits[0, pos, 0]).tolist()
    assert [s1, s2] == pytest.approx(direct, abs=1e-6)


@pytest.mark.parametrize(
    "lengths,budget",
    [([5, 9, 3, 9, 1, 7], 20), ([4] * 10, 16), ([50, 3, 2], 10), ([1], 1), ([7, 7, 7], 1000)],
)
def test_batches_are_longest_first_under_the_budget_and_cover_every_item_once(lengths, budget):
    batches = prm_server.plan_batches(lengths, budget)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= budget  # an item over the budget goes alone
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(lengths, reverse=True)
    assert len(prm_server.plan_batches([10] * 8, 40)) == 2  # full batches, not one item each


def test_forward_passes_keep_to_the_budget_and_answers_keep_request_order(ar_model, monkeypatch):
    scorer = prm_server.PrmScorer(ar_model)
    items = [(f"question {i}", ["good", "bad"] * (1 + i % 3)) for i in range(7)]
    budget = 2 * max(len(scorer.encode(q, steps).input_ids) for q, steps in items)  # two long items a pass
    scorer.max_batch_tokens = budget
    alone = [scorer.score([it])[0] for it in items]
    shapes = []
    orig = scorer.model.base_model.forward
    monkeypatch.setattr(scorer.model.base_model, "forward", lambda *a, **k: shapes.append(tuple(k["input_ids"].shape)) or orig(*a, **k))
    together = scorer.score(items)
    assert 1 < len(shapes) < len(items) and all(rows * width <= budget for rows, width in shapes)
    assert sum(rows for rows, _ in shapes) == len(items)
    for got, want in zip(together, alone):
        assert got == pytest.approx(want, abs=1e-6)


@pytest.fixture(scope="module")
def oom_server(ar_model):
    """A PRM server whose forward passes over 120 padded tokens fail as CUDA out-of-memory (the test hook)."""
    app = prm_server.create_app("tiny-prm")
    app.state.model = prm_server.PrmScorer(ar_model, fake_oom_above_tokens=120)
    with served_on_a_thread(app) as url:
        yield url


def test_out_of_memory_answers_507_asking_to_split(oom_server):
    items = [{"id": f"i{k}", "question": "q", "steps": ["good", "bad", "good"]} for k in range(8)]
    status, body = http("POST", oom_server + "/v1/score", {"model": "tiny-prm", "items": items})
    assert status == prm_server.OUT_OF_MEMORY == 507 and body["error"]["code"] == 507
    assert "too large for one forward pass, split the request" in body["error"]["message"]
    status, body = http("POST", oom_server + "/v1/score", {"model": "tiny-prm", "items": items[:2]})
    assert status == 200 and [s["id"] for s in body["scores"]] == ["i0", "i1"]  # the server still serves


def test_one_item_too_large_alone_is_named_with_its_token_count(oom_server, ar_model):
    from transformers import AutoTokenizer

    item = {"id": "long/1", "question": "q" * 30, "steps": ["good"] * 12}
    tokens = len(build_prm_input(AutoTokenizer.from_pretrained(ar_model), item["question"], item["steps"]).input_ids)
    assert 120 < tokens <= 128  # over the fake memory, within the model's limit
    status, body = http("POST", oom_server + "/v1/score", {"model": "tiny-prm", "items": [item]})
    assert status == 507 and f"item 'long/1' ({tokens} tokens)" in body["error"]["message"]


def test_fault_hook_device_and_dtype_are_validated():
    assert prm_server.parse_fault(None) is None and prm_server.parse_fault("oom-above-tokens:512") == 512
    with pytest.raises(prm_format.FormatError, match="oom-above-tokens:N"):
        prm_server.parse_fault("oom@3")
    cpu = prm_server.resolve_device("cpu")
    assert prm_server.resolve_dtype("auto", cpu) == torch.float32 and prm_server.resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert prm_server.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(prm_format.FormatError, match="expected auto, cpu, cuda or cuda:N"):
        prm_server.resolve_device("gpu")
    with pytest.raises(prm_format.FormatError, match="no such CUDA device"):
        prm_server.resolve_device(f"cuda:{torch.cuda.device_count()}")


# --------------------------------------------------------------------------------------------------
# the PRM server subprocess
# --------------------------------------------------------------------------------------------------

ITEMS = [
    {"id": "q17/3", "question": "Ann has 12 apples. How many?", "steps": ["12 + 7 = 19", "19 - 5 = 14", "#### 14"]},
    {"id": "short", "question": "q", "steps": ["good"]},
    {"id": "mid", "question": "Bob?", "steps": ["bad", "good", "", "ки"]},
]


def test_server_scores_equal_the_models_own_probabilities(server, ar_model):
    server.wait_ready()
    status, body = http("POST", server.url + "/v1/score", {"model": "tiny-prm", "items": ITEMS})
    assert status == 200 and body["model"] == "tiny-prm"
    assert [s["id"] for s in body["scores"]] == [it["id"] for it in ITEMS]
    for it, s in zip(ITEMS, body["scores"]):
        assert len(s["step_scores"]) == len(it["steps"])
        assert all(0.0 <= x <= 1.0 for x in s["step_scores"])
        assert s["step_scores"] == pytest.approx(direct_probs(ar_model, it["question"], it["steps"]), abs=1e-6)


def test_server_batch_equals_one_by_one(server):
    server.wait_ready()
    _, batch = http("POST", server.url + "/v1/score", {"model": "tiny-prm", "items": ITEMS})
    for it, s in zip(ITEMS, batch["scores"]):
        status, single = http("POST", server.url + "/v1/score", {"model": "tiny-prm", "items": [it]})
        assert status == 200
        assert single["scores"][0]["step_scores"] == pytest.approx(s["step_scores"], abs=1e-6)


def test_server_health_and_models(server):
    server.wait_ready()
    assert http("GET", server.url + "/health")[0] == 200
    status, body = http("GET", server.url + "/v1/models")
    assert status == 200 and body["object"] == "list" and body["data"][0]["id"] == "tiny-prm"
    assert body["data"][0]["object"] == "model" and body["data"][0]["max_model_len"] == 128


@pytest.mark.parametrize(
    "payload,status,needle",
    [
        (b"{not json", 400, "not valid JSON"),
        ([1, 2], 400, "JSON object"),
        ({"model": "other", "items": ITEMS}, 404, "does not exist"),
        ({"model": 3, "items": ITEMS}, 400, "'model': Input should be a valid string"),
        ({"model": "tiny-prm", "items": {}}, 400, "'items': Input should be a valid list"),
        ({"model": "tiny-prm", "items": []}, 400, "'items': List should have at least 1 item"),
        ({"model": "tiny-prm", "items": [{"id": 1, "question": "q", "steps": ["a"]}]}, 400, "'items[0].id': Input should be a valid string"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": None, "steps": ["a"]}]}, 400, "'items[0].question': Input should be a valid string"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": "q", "steps": "a"}]}, 400, "'items[0].steps': Input should be a valid list"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": "q", "steps": [1]}]}, 400, "'items[0].steps[0]': Input should be a valid string"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": "q", "steps": []}]}, 400, "'items[0].steps': List should have at least 1 item"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": "q", "steps": ["a"], "label": 1}]}, 400, "'items[0].label': Extra inputs are not permitted"),
        ({"model": "tiny-prm", "items": ITEMS, "n": 1}, 400, "'n': Extra inputs are not permitted"),
        ({"model": "tiny-prm", "items": ITEMS * 400}, 400, "at most 1024 items per request (--max-items)"),
        ({"model": "tiny-prm", "items": [{"id": "x", "question": "q" * 200, "steps": ["a"]}]}, 400, "the limit is 128 tokens"),
    ],
)
def test_server_rejects_bad_requests(server, payload, status, needle):
    server.wait_ready()
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    got, body = http("POST", server.url + "/v1/score", raw=raw)
    assert got == status and needle in body["error"]["message"], body
    if needle.startswith("'"):  # a field's error also says what a request looks like
        assert "A score request is" in body["error"]["message"]


def test_server_unknown_path_and_method(server):
    server.wait_ready()
    assert http("GET", server.url + "/v1/nope")[0] == 404
    status, body = http("GET", server.url + "/v1/score")
    assert status == 405 and "not allowed" in body["error"]["message"] and "use POST" in body["error"]["message"]


def test_server_logs_one_line_per_request(server):
    server.wait_ready()
    http("POST", server.url + "/v1/score", {"model": "tiny-prm", "items": ITEMS[:1]})
    deadline = time.monotonic() + 30
    while not (lines := [l for l in server.log.read_text().splitlines() if l.startswith("prm_server 127.0.0.1 POST /v1/score 200")]):
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.05)
    assert "items=1 tags=3" in lines[-1]
    assert "ready: model 'tiny-prm' (autoregressive, max 128 tokens) on cpu in float32" in server.log.read_text()


def test_a_crashed_job_resumes_exactly_from_the_trainers_checkpoint(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    rows = good_bad_rows(12)
    for r in rows:  # two solutions per question: the pairwise term and its grouped batches take part
        r["question"] = f"q{int(r['question'][1:]) // 2}"
    train = write_jsonl(tmp_path / "t.jsonl", rows)

    def job(name: str, out: str | None = None, **over) -> Path:
        p = tmp_path / f"{name}.json"
        p.write_text(json.dumps({"train_file": str(train), "output_dir": str(tmp_path / (out or name)), "max_steps": 6, "batch_size": 4,
                                 "save_steps": 2, "log_every": 1, "model_config": TINY, "threads": 1, "step_logprob_feature": True,
                                 "lm_loss_weight": 1.0, "pairwise_loss_weight": 1.0, **over}))
        return p

    code, straight = run_main(job("straight"))
    assert code == 0
    monkeypatch.setenv(prm_train.FAULT_ENV, "crash@5")
    with pytest.raises(RuntimeError, match="fake crash"):
        prm_train.main(["--config", str(job("resumed"))], events=io.StringIO())
    work = tmp_path / ".resumed.checkpoints"
    assert (work / "checkpoint-4").is_dir() and not (tmp_path / "resumed").exists()
    monkeypatch.delenv(prm_train.FAULT_ENV)
    code, events = run_main(job("other", out="resumed", learning_rate=5e-3))
    assert code == 2 and "differs in: learning_rate" in events[-1]["message"]  # another job's checkpoints are refused
    code, events = run_main(job("resumed"))
    assert code == 0
    assert [e["step"] for e in events if e["event"] == "progress"] == [5, 6]  # from checkpoint-4, not from step 1
    assert [e["loss"] for e in events if e["event"] == "progress"] == [e["loss"] for e in straight if e["event"] == "progress"][4:]
    wa, wb = load_file(tmp_path / "straight" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = (json.loads((tmp_path / n / "prm_config.json").read_text())["readout"] for n in ("straight", "resumed"))
    assert ra == rb
    assert not work.exists()  # removed once the output is written


def test_fake_oom_exits_3_with_a_failure_file(tmp_path, monkeypatch):
    monkeypatch.setenv(prm_train.FAULT_ENV, "oom@2")
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"train_file": str(write_jsonl(tmp_path / "t.jsonl", good_bad_rows(6))), "output_dir": str(tmp_path / "out"),
                               "max_steps": 4, "batch_size": 3, "log_every": 1, "model_config": TINY, "threads": 1}))
    code, events = run_main(cfg)
    assert code == 3 and events[-1]["event"] == "error" and events[-1]["retryable"] is True
    assert json.loads((tmp_path / "failure.json").read_text())["kind"] == "out_of_memory"


def test_lora_is_merged_with_the_tag_embedding_and_the_readout(tmp_path, monkeypatch, ar_model):
    """LoRA from a base PRM: the written checkpoint is a plain model whose scores are the trained (unmerged) model's."""
    from safetensors.torch import load_file

    rows = good_bad_rows(12)
    seen: list[list[float]] = []
    predict = prm_train.predict
    monkeypatch.setattr(prm_train, "predict", lambda *a, **k: seen.append(predict(*a, **k)) or seen[-1])
    eval_file = write_jsonl(tmp_path / "eval.jsonl", rows[:4])
    out, metrics = train_tiny(tmp_path, "lora", rows, base=str(ar_model), model_config=None, step_logprob_feature=True, max_steps=8,
                              eval_file=str(eval_file), lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})
    assert not (out / "adapter_config.json").exists()
    w, base = load_file(out / "model.safetensors"), load_file(ar_model / "model.safetensors")
    assert not any("lora" in k or "trainable_tokens" in k for k in w)
    assert not torch.equal(w["model.layers.0.self_attn.q_proj.weight"], base["model.layers.0.self_attn.q_proj.weight"])
    assert torch.equal(w["model.layers.0.self_attn.k_proj.weight"], base["model.layers.0.self_attn.k_proj.weight"])  # no adapter there
    cfg = json.loads((out / "prm_config.json").read_text())
    emb, emb0 = w["model.embed_tokens.weight"], base["model.embed_tokens.weight"]
    tag = cfg["step_tag_id"]
    assert not torch.equal(emb[tag], emb0[tag])  # the tag's row was trained and merged
    assert torch.equal(torch.cat([emb[:tag], emb[tag + 1 :]]), torch.cat([emb0[:tag], emb0[tag + 1 :]]))
    assert cfg["readout"]["step_logprob_weight"] != prm_train.READOUT_INIT_WEIGHT
    scorer = prm_server.PrmScorer(out)
    served = [p for s in scorer.score([(r["question"], r["steps"]) for r in rows[:4]]) for p in s]
    assert served == pytest.approx(seen[-1], abs=1e-5)


def test_gradient_checkpointing_trains_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    a, _ = train_tiny(tmp_path, "plain", good_bad_rows(), max_steps=3, lm_loss_weight=1.0)
    b, _ = train_tiny(tmp_path, "ckpt", good_bad_rows(), max_steps=3, lm_loss_weight=1.0, gradient_checkpointing=True)
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)


def test_accelerate_launch_cli(tmp_path):
    """The command a GPU run uses, on the CPU config: JSON events alone on stdout, a checkpoint the server loads."""
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"train_file": str(write_jsonl(tmp_path / "t.jsonl", good_bad_rows(8))), "output_dir": str(tmp_path / "out"),
                               "max_steps": 4, "batch_size": 4, "log_every": 2, "save_steps": 2, "model_config": TINY, "threads": 1}))
    p = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(PYTHON_SFT / "accelerate" / "cpu.yaml"),
         "-m", "prm_raft.prm_train", "--config", str(cfg)],
        capture_output=True, text=True, cwd=PYTHON_SFT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=600,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    events = [json.loads(line) for line in p.stdout.splitlines()]
    assert [(e["event"], e.get("step")) for e in events] == [("progress", 2), ("checkpoint", 2), ("progress", 4), ("checkpoint", 4), ("done", None)]
    assert events[-1]["output"] == str((tmp_path / "out").resolve()) and events[-1]["metrics"]["steps"] == 4
    assert prm_server.PrmScorer(tmp_path / "out").score([("q", ["good"])])[0][0] > 0


def test_epoch_order_is_a_permutation_grouped_by_length():
    lengths = [(i * 7919) % 290 + 10 for i in range(1000)]
    for grouped in (False, True):
        order = prm_train.epoch_order(lengths, 8, torch.Generator().manual_seed(0), grouped)
        assert sorted(order) == list(range(1000))
        assert order == prm_train.epoch_order(lengths, 8, torch.Generator().manual_seed(0), grouped)
    order = prm_train.epoch_order(lengths, 8, torch.Generator().manual_seed(0), True)
    pad = sum(max(lengths[i] for i in order[s : s + 8]) * 8 - sum(lengths[i] for i in order[s : s + 8]) for s in range(0, 1000, 8))
    assert pad < 0.1 * sum(lengths)


DATA = PYTHON_SFT.parent / "data" / "tinymath"
MODELS = PYTHON_SFT.parent / "models"


def require_shipped(path: Path) -> None:
    """Shipped files (models/, data/tinymath/ are committed in git) that are missing are a broken checkout, never a
    reason to skip: the test fails, naming what is missing."""
    if not path.is_file():
        pytest.fail(f"{path} is missing: it is committed in git, restore it (git checkout -- {path.parent})", pytrace=False)


@pytest.mark.parametrize("name, steps_scored", [("tinymath-prm", 2), ("tinymath-orm", 1)])
def test_the_shipped_reward_models_load_and_score(name, steps_scored):
    model = MODELS / name
    for f in ("config.json", "model.safetensors", "prm_config.json", "tokenizer.json"):
        require_shipped(model / f)
    scorer = prm_server.PrmScorer(model)
    [scores] = scorer.score([("Ann has 12 apples and buys 7 more. How many does she have?", ["12 + 7 = 19", "#### 19"])])
    # A PRM scores every step; an ORM the whole response once.
    assert len(scores) == steps_scored and all(0.0 <= x <= 1.0 for x in scores), scores


def test_every_reference_solution_labels_all_ones_and_every_corruption_has_a_wrong_step():
    require_shipped(DATA / "test.jsonl")
    from prm_raft.tiny.tinymath import check_step, load_jsonl
    from prm_raft.tiny.labels import split_steps
    from prm_raft.tiny.train_prm import CORRUPTIONS, corrupt

    rng = random.Random(0)
    for rec in load_jsonl(DATA / "test.jsonl"):
        steps = split_steps(rec["solution"])
        assert labels_for_record(steps, rec) == [1] * len(steps), rec
        ref = Reference.from_solution(rec["solution"], rec["answer"])
        for kind in CORRUPTIONS:
            bad = corrupt(ref, kind, rng)
            labels = step_labels(bad, ref)
            assert 0 in labels and labels == sorted(labels, reverse=True), (kind, bad, labels)  # 1s, then 0s
            if kind != "wrong_result_nocarry":
                first = labels.index(0)
                later = [s for s in bad[first + 1 :] if not s.startswith("####")]
                assert all(check_step(s) for s in later), (kind, bad)  # errors are carried with right arithmetic


def test_chunked_request_body(orm_server):
    import http.client

    _, url, _ = orm_server
    body = json.dumps({"model": "tiny-orm", "items": [{"id": "a", "question": "q", "steps": ["good"]}]}).encode()
    conn = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=30)
    conn.request("POST", "/v1/score", body=iter([body[:10], body[10:]]), headers={"Content-Type": "application/json"}, encode_chunked=True)
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["scores"][0]["id"] == "a"
    conn.close()


# --------------------------------------------------------------------------------------------------
# Within-question training: the step log-likelihood readout, the LM loss, the pairwise loss
# --------------------------------------------------------------------------------------------------


def test_pairwise_loss_counts_only_pairs_within_a_question():
    # solutions: q0 -> rows 0 (target 1) and 1 (target 0); q1 -> rows 2 (target 1) and 3 (target 1, no pair)
    tag_rows = torch.tensor([0, 0, 1, 2, 3])
    logits = torch.tensor([2.0, 0.5, 1.0, -3.0, 4.0], requires_grad=True)  # S = min per solution: 0.5, 1.0, -3.0, 4.0
    targets = torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0])
    loss = prm_train.pairwise_loss(logits, targets, tag_rows, torch.tensor([0, 0, 1, 1]))
    # one pair (row 0 better than row 1): softplus(-(0.5 - 1.0))
    assert loss.item() == pytest.approx(math.log1p(math.exp(0.5)))
    loss.backward()
    assert logits.grad[0].item() == 0.0 and logits.grad[1].item() < 0 < logits.grad[2].item()  # only the argmin steps move
    none = prm_train.pairwise_loss(logits, targets, tag_rows, torch.tensor([0, 1, 2, 3]))
    assert none.item() == 0.0


def test_epoch_order_by_question_keeps_each_question_together():
    questions = [i % 5 for i in range(40)]
    order = prm_train.epoch_order([10] * 40, 8, torch.Generator().manual_seed(0), True, questions)
    assert sorted(order) == list(range(40))
    runs = [questions[i] for i in order]
    assert sum(a != b for a, b in zip(runs, runs[1:])) == 4  # five blocks, one per question


def test_readout_with_the_step_loglikelihood_is_trained_saved_and_served(tmp_path):
    rows = good_bad_rows(12)
    for r in rows:  # two solutions per question, so the pairwise term has pairs
        r["question"] = f"q{int(r['question'][1:]) // 2}"
    out, _ = train_tiny(tmp_path, "lp", rows, step_logprob_feature=True, lm_loss_weight=1.0, pairwise_loss_weight=1.0, max_steps=10)
    cfg = json.loads((out / "prm_config.json").read_text())
    readout = prm_format.Readout.from_dict(cfg["readout"])
    assert readout.step_logprob_weight != prm_train.READOUT_INIT_WEIGHT  # trained, not left at its start
    scorer = prm_server.PrmScorer(out)
    got = scorer.score([("q0", ["good", "bad"])])[0]
    # by hand: sigmoid(z_good - z_bad + w * log P(step tokens | prefix) + b) from the model's own logits
    enc = scorer.encode("q0", ["good", "bad"])
    with torch.no_grad():
        logp = torch.log_softmax(scorer.model(input_ids=torch.tensor([enc.input_ids])).logits[0], -1)
    good, bad = scorer.label_ids
    want = []
    for start, tag in zip(enc.step_starts, enc.tag_positions):
        lp = sum(logp[t - 1, enc.input_ids[t]].item() for t in range(start, tag))
        z = logp[tag, good].item() - logp[tag, bad].item()
        want.append(1 / (1 + math.exp(-(z + readout.step_logprob_weight * lp + readout.bias))))
    assert got == pytest.approx(want, abs=1e-5)
    plain = prm_server.PrmScorer(out)
    plain.readout = prm_format.Readout()
    assert plain.score([("q0", ["good", "bad"])])[0] != pytest.approx(got, abs=1e-4)


def test_gradient_clipping_leaves_the_readout_out_of_the_norm(tmp_path):
    # A clip far below any gradient: AdamW's first step is lr * g / (|g| + eps), so a readout clipped with the LM
    # would move about lr / 100; kept out of the norm it moves about lr, while the LM's gradients stay clipped.
    lr = 1e-2
    out, _ = train_tiny(tmp_path, "clip", good_bad_rows(8), step_logprob_feature=True, max_steps=1, learning_rate=lr, grad_clip=1e-10)
    readout = prm_format.Readout.from_dict(json.loads((out / "prm_config.json").read_text())["readout"])
    assert abs(readout.step_logprob_weight - prm_train.READOUT_INIT_WEIGHT) > 0.5 * lr
    assert abs(readout.bias) > 0.5 * lr
    lm_moved, _ = train_tiny(tmp_path, "noclip", good_bad_rows(8), step_logprob_feature=True, max_steps=1, learning_rate=lr, grad_clip=0)
    init, _ = train_tiny(tmp_path, "init", good_bad_rows(8), step_logprob_feature=True, max_steps=1, learning_rate=1e-12)
    change = {name: max_weight_change(init, out_dir) for name, out_dir in (("clipped", out), ("unclipped", lm_moved))}
    assert change["clipped"] < 0.1 * change["unclipped"]


def max_weight_change(a: Path, b: Path) -> float:
    from transformers import AutoModelForCausalLM

    wa, wb = (AutoModelForCausalLM.from_pretrained(p).state_dict() for p in (a, b))
    return max((wa[k].float() - wb[k].float()).abs().max().item() for k in wa)


def test_readout_options_are_validated(tmp_path):
    good = write_jsonl(tmp_path / "ok.jsonl", good_bad_rows(4))
    base = {"train_file": str(good), "output_dir": str(tmp_path / "o")}
    with pytest.raises(prm_train.BadConfig, match="regression"):
        prm_train.validate_config({**base, "kind": "regression", "step_logprob_feature": True})
    with pytest.raises(prm_train.BadConfig, match="'pairwise_loss_weight' must be a non-negative number"):
        prm_train.validate_config({**base, "pairwise_loss_weight": -1})
    with pytest.raises(prm_train.BadConfig, match="'step_logprob_feature' must be true or false"):
        prm_train.validate_config({**base, "step_logprob_feature": "yes"})
    with pytest.raises(prm_format.FormatError):
        prm_format.Readout.from_dict({"step_logprob_weight": 1.0, "scale": 2})
