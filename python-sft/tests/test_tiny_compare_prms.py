"""compare_tiny_prms: argument and export errors, the scores file format, per-model resume, and one tiny end-to-end run
(the shipped policy, 2 test problems, 2 training steps, real servers)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from prm_raft.tiny import compare_prms as ctp
from prm_raft import prm_train
from prm_raft.tiny.tinymath import load_jsonl

ROOT = Path(__file__).resolve().parents[2]
POLICY = ROOT / "models" / "tinymath-policy"


def require_shipped(model: Path) -> None:
    """A shipped model (committed under models/) that is missing is a broken checkout, never a reason to skip."""
    missing = [f for f in ("config.json", "model.safetensors") if not (model / f).is_file()]
    if missing:
        pytest.fail(f"shipped model {model} lacks {', '.join(missing)}: models/ is committed in git, restore it (git checkout -- {model})", pytrace=False)


DATA = ROOT / "data" / "tinymath"


def export_line(question: str, steps: list[str], labels: list[float], correct: bool) -> dict:
    return {"id": "tm-train-1/0", "question": question, "steps": steps, "labels": labels, "counts": [], "correct": correct}


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def fake_policy(tmp_path) -> Path:
    """Enough of a checkpoint for the argument checks (config.json); nothing loads it."""
    d = tmp_path / "policy"
    d.mkdir()
    (d / "config.json").write_text("{}")
    return d


def error_of(capsys) -> str:
    lines = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert lines[-1]["event"] == "error"
    return lines[-1]["message"]


@pytest.mark.parametrize("text", ["noequals", "=f.jsonl", "hard=", "two words=f.jsonl", "../up=f.jsonl", "-x=f"])
def test_bad_name_file_is_an_argument_error(text):
    with pytest.raises(argparse.ArgumentTypeError):
        ctp.name_file(text)
    with pytest.raises(SystemExit) as e:
        ctp.main(["--out", "x", "--train", text])
    assert e.value.code == 2


def test_name_file_and_ns_parse():
    assert ctp.name_file("er-0.1=runs/a=b.jsonl") == ("er-0.1", Path("runs/a=b.jsonl"))
    args = ctp.build_parser().parse_args(["--out", "o", "--train", "hard=h.jsonl", "--orm", "orm=h.jsonl", "--ns", "2,4"])
    assert (args.ns, args.steps, args.batch_size, args.lr, args.threads) == ([2, 4], 300, 32, 1e-3, 1)
    assert [(s.name, s.kind) for s in ctp.model_specs(args)] == [("hard", "autoregressive"), ("orm", "orm")]
    with pytest.raises(SystemExit):
        ctp.build_parser().parse_args(["--out", "o", "--ns", "4,0"])


def test_nothing_to_compare_and_duplicate_names_exit_2(tmp_path, fake_policy, capsys):
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy)]) == 2
    assert "nothing to compare" in error_of(capsys)
    f = write_jsonl(tmp_path / "e.jsonl", [export_line("q", ["1 + 1 = 2", "#### 2"], [1, 1], True)])
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy), "--train", f"a={f}", "--orm", f"a={f}"]) == 2
    assert "used twice: ['a']" in error_of(capsys)


def test_malformed_export_names_the_file_and_line(tmp_path, fake_policy, capsys):
    good = export_line("q", ["1 + 1 = 2", "#### 2"], [1, 1], True)
    bad_labels = write_jsonl(tmp_path / "bad.jsonl", [good, {**good, "labels": [1]}])
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy), "--train", f"a={bad_labels}"]) == 2
    assert f"{bad_labels} line 2" in error_of(capsys)
    not_json = write_jsonl(tmp_path / "notjson.jsonl", [good, good, "{oops"])
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy), "--train", f"a={not_json}"]) == 2
    assert f"{not_json} line 3" in error_of(capsys)
    no_correct = write_jsonl(tmp_path / "nocorrect.jsonl", [good, {k: v for k, v in good.items() if k != "correct"}])
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy), "--orm", f"o={no_correct}"]) == 2
    assert f"{no_correct} line 2: an ORM needs 'correct'" in error_of(capsys)
    missing = tmp_path / "missing.jsonl"
    assert ctp.main(["--out", str(tmp_path / "o"), "--policy", str(fake_policy), "--train", f"a={missing}"]) == 2
    assert str(missing) in error_of(capsys)


def test_scores_lines_are_the_bon_format_exactly():
    rows = [
        {"problem_id": "p1", "answer": "14", "correct": True, "steps": ["7 * 2 = 14", "#### 14"], "id": "p1/0", "labels": [1, 1]},
        {"problem_id": "p1", "answer": None, "correct": False, "steps": [], "id": "p1/1", "labels": []},
    ]
    lines = ctp.scores_lines(rows, [[0.9, 0.8], []])
    assert lines == [
        {"problem_id": "p1", "answer": "14", "correct": True, "step_scores": [0.9, 0.8]},
        {"problem_id": "p1", "answer": None, "correct": False, "step_scores": []},
    ]


def test_metrics_and_preview_on_a_hand_made_case():
    rows = [
        {"problem_id": "a", "answer": "5", "correct": True, "labels": [1, 1]},
        {"problem_id": "a", "answer": "6", "correct": False, "labels": [0, 0]},
        {"problem_id": "a", "answer": "6", "correct": False, "labels": [1, 0]},
        {"problem_id": "b", "answer": None, "correct": False, "labels": []},
        {"problem_id": "b", "answer": "3", "correct": True, "labels": [1, 1]},
    ]
    scores = [[0.9, 0.7], [0.2, 0.1], [0.8, 0.3], [], [0.6, 0.6]]
    m = ctp.model_metrics("autoregressive", rows, scores)
    assert (m["level"], m["tags"], m["accuracy"], m["auc"], m["auc_min_score_vs_correct"]) == ("step", 8, 1.0, 1.0, 1.0)
    orm = ctp.model_metrics("orm", rows, [[0.9], [0.2], [0.6], [], [0.4]])
    assert (orm["level"], orm["tags"], orm["accuracy"], orm["auc"]) == ("solution", 4, 0.5, 0.75)
    p = ctp.bon_preview(rows, {"m": scores}, [1, 2, 3])
    assert p["first_response"] == 0.5  # b's first response has no answer
    assert p["pass_at_n"] == {1: 0.5, 2: 1.0, 3: 1.0}
    assert p["majority"] == {1: 0.5, 2: 1.0, 3: 0.5}  # a: "6" outvotes "5" at 3
    assert p["best_of_n"]["m"] == {1: 0.5, 2: 1.0, 3: 1.0}  # a response without steps is never picked
    w = ctp.within_prompt(rows, scores)
    assert w == {"problems_with_a_right_response": 2, "right_picks": 1.0, "pair_auc": 1.0}  # a: 2 pairs; b: 1, the empty one last
    flipped = ctp.within_prompt(rows, [[0.1], [0.9], [0.5], [], [0.6]])
    assert flipped == {"problems_with_a_right_response": 2, "right_picks": 0.5, "pair_auc": 0.3333}
    tied = ctp.within_prompt(rows, [[0.5], [0.5], [0.5], [], [0.5]])  # a constant score: a random pick in a
    assert tied["right_picks"] == round((1 / 3 + 1) / 2, 4) and tied["pair_auc"] == round(2 / 3, 4)
    assert ctp.selection_baselines(rows) == {"random": round((1 / 3 + 1 / 2) / 2, 4), "majority": 0.5}  # a: "6" wins


def test_seeds_train_one_model_per_label_set_and_seed_and_the_table_shows_the_spread(tmp_path):
    f = tmp_path / "x.jsonl"
    args = ctp.build_parser().parse_args(["--out", "o", "--train", f"hard={f}", "--orm", f"orm={f}", "--seeds", "0,2"])
    specs = ctp.model_specs(args)
    assert [(s.name, s.group, s.seed, s.kind) for s in specs] == [
        ("hard-s0", "hard", 0, "autoregressive"), ("orm-s0", "orm", 0, "orm"), ("hard-s2", "hard", 2, "autoregressive"), ("orm-s2", "orm", 2, "orm")]
    assert [s.name for s in ctp.model_specs(ctp.build_parser().parse_args(["--out", "o", "--train", f"hard={f}", "--seed", "3"]))] == ["hard"]
    for bad in ("1,1", "-1", "a"):
        with pytest.raises(SystemExit):
            ctp.build_parser().parse_args(["--out", "o", "--seeds", bad])
    model = lambda group, seed, auc, picks: {  # noqa: E731
        "kind": "autoregressive", "group": group, "seed": seed, "train_data": {"solutions": 1, "mean_label": 1},
        "metrics": {"level": "step", "accuracy": 1, "auc": auc, "brier": 0, "auc_min_score_vs_correct": auc},
        "within_prompt": {"right_picks": picks, "pair_auc": picks}}
    summary = {"samples": {"responses": 1, "per_problem": 1, "problems": 1, "without_steps": 0, "steps": 1, "step_positive_rate": 1, "correct_rate": 1},
               "position_only_step_auc": 0.5, "selection_baselines": {"random": 0.4, "majority": 0.5},
               "models": {"hard-s0": model("hard", 0, 0.8, 0.6), "hard-s2": model("hard", 2, 0.9, 0.7)}}
    md = ctp.markdown(summary)
    assert "| hard-s0 | 0.6 | 0.6 |" in md and "a random pick: 0.4, majority vote: 0.5" in md
    assert "| hard | 0, 2 | 0.850 ± 0.071 | 0.850 ± 0.071 | 0.650 ± 0.071 | 0.650 ± 0.071 |" in md


def test_a_model_with_the_same_key_is_not_trained_again(tmp_path, fake_policy, monkeypatch):
    calls = []

    def fake_train(cfg):
        calls.append(cfg["train_file"])
        out = Path(cfg["output_dir"])
        out.mkdir(parents=True)
        (out / "model.safetensors").write_text("w")
        return out, {}

    monkeypatch.setattr(prm_train, "train", fake_train)
    export = write_jsonl(tmp_path / "hard.jsonl", [export_line("q", ["1 + 1 = 2", "#### 2"], [1, 1], True)])
    spec = ctp.Spec("hard", "autoregressive", export, "hard", 0)
    args = ctp.build_parser().parse_args(["--out", str(tmp_path / "o")])
    out = tmp_path / "o"

    def train() -> float | None:
        return ctp.train_model(spec, export, fake_policy, ctp.dir_sha256(fake_policy), out, args)[2]

    assert train() is not None and len(calls) == 1
    assert (out / "models" / "hard" / "model.safetensors").is_file()
    assert not (out / "models" / ".hard.training").exists()
    assert train() is None and len(calls) == 1  # skipped
    args.lr = 5e-4  # another setting: trained again
    assert train() is not None and len(calls) == 2
    write_jsonl(export, [export_line("q", ["1 + 1 = 2", "#### 2"], [1, 0.5], True)])  # other labels
    assert train() is not None and len(calls) == 3
    (fake_policy / "README.md").write_text("docs only")  # not the policy's content
    assert train() is None and len(calls) == 3
    (fake_policy / "config.json").write_text('{"hidden_size": 8}')  # another policy
    assert train() is not None and len(calls) == 4


def test_the_within_question_recipe_reaches_every_model_alike(tmp_path, fake_policy):
    export = write_jsonl(tmp_path / "hard.jsonl", [export_line("q", ["1 + 1 = 2", "#### 2"], [1, 1], True)])
    plain = ctp.build_parser().parse_args(["--out", str(tmp_path / "o")])
    recipe = ctp.build_parser().parse_args(["--out", str(tmp_path / "o"), "--step-logprob-feature", "--lm-loss-weight", "1", "--pairwise-loss-weight", "3"])
    for name in ("hard", "er-2"):
        spec = ctp.Spec(name, "autoregressive", export, name, 0)
        cfg = ctp.train_config(spec, export, fake_policy, tmp_path / name, plain)
        assert (cfg["step_logprob_feature"], cfg["lm_loss_weight"], cfg["pairwise_loss_weight"]) == (False, 0.0, 0.0)  # the paper's step loss alone
        cfg = ctp.train_config(spec, export, fake_policy, tmp_path / name, recipe)
        assert (cfg["step_logprob_feature"], cfg["lm_loss_weight"], cfg["pairwise_loss_weight"]) == (True, 1.0, 3.0)


def test_end_to_end_two_problems(tmp_path, capsys):
    require_shipped(POLICY)
    export = []
    for r in load_jsonl(DATA / "train.jsonl")[:6]:
        steps = r["solution"].split("\n")
        export.append(export_line(r["question"], steps, [1.0] * len(steps), True))
        export.append(export_line(r["question"], steps[:-1] + ["#### 1000"], [1.0] * (len(steps) - 1) + [0.0], False))
    f = write_jsonl(tmp_path / "hard.jsonl", export)
    out = tmp_path / "out"
    argv = ["--policy", str(POLICY), "--data", str(DATA), "--out", str(out), "--train", f"hard={f}", "--orm", f"orm={f}",
            "--test-problems", "2", "--bon-samples", "3", "--ns", "1,3", "--steps", "2", "--batch-size", "4"]
    assert ctp.main(argv) == 0
    cap = capsys.readouterr()
    assert "| hard | PRM | 12 |" in cap.out and "| orm | ORM | 12 | 0.5 | solution (ORM) |" in cap.out
    events = [json.loads(x)["event"] for x in cap.err.splitlines() if x.startswith("{")]  # transformers may warn there too
    assert {"samples", "train", "progress", "model", "bon_preview"} <= set(events)
    samples = load_jsonl(out / "samples.jsonl")
    assert len(samples) == 6 and [s["problem_id"] for s in samples[::3]] == [r["id"] for r in load_jsonl(DATA / "test.jsonl")[:2]]
    for name in ("hard", "orm"):
        lines = load_jsonl(out / "bon" / f"{name}.scores.jsonl")
        assert len(lines) == 6
        for s, line in zip(samples, lines):
            assert set(line) == {"problem_id", "answer", "correct", "step_scores"}
            assert (line["problem_id"], line["answer"], line["correct"]) == (s["problem_id"], s["answer"], s["correct"])
            want = len(s["steps"]) if name == "hard" else min(1, len(s["steps"]))
            assert len(line["step_scores"]) == want and all(0 <= x <= 1 for x in line["step_scores"])
    metrics = json.loads((out / "step_metrics.json").read_text())
    assert metrics["models"]["orm"]["metrics"]["level"] == "solution" and metrics["models"]["hard"]["metrics"]["level"] == "step"
    # a rerun keeps the samples, both checkpoints and both scores files: nothing is trained, sampled or served again
    before = {name: (out / "bon" / f"{name}.scores.jsonl").read_bytes() for name in ("hard", "orm")}
    assert ctp.main(argv) == 0
    err = [json.loads(x) for x in capsys.readouterr().err.splitlines() if x.startswith("{")]
    assert [(e["model"], e["what"]) for e in err if e["event"] == "skip"] == [("hard", "training"), ("hard", "scoring"), ("orm", "training"), ("orm", "scoring")]
    assert not any(e["event"] == "train" for e in err) and [e["cached"] for e in err if e["event"] == "samples"] == [True]
    assert before == {name: (out / "bon" / f"{name}.scores.jsonl").read_bytes() for name in before}
    assert json.loads((out / "step_metrics.json").read_text())["models"]["hard"]["metrics"] == metrics["models"]["hard"]["metrics"]
