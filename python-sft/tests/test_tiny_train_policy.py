"""A few training steps of a very small model into a tmp dir.

In-process (a subprocess would spend most of its time importing torch and transformers); the fixture restores
the global torch state the job sets (threads, deterministic algorithms).
"""

import json

import pytest
import torch

from prm_raft.tiny import tinymath
from prm_raft.tiny import train_policy as train_tiny_policy

SMALL = ["--hidden", "32", "--layers", "1", "--heads", "2", "--intermediate", "64", "--batch-size", "4", "--warmup", "2", "--log-every", "2"]


@pytest.fixture
def run_job(capsys):
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()

    def run(*args: str) -> tuple[int, list[dict], str]:
        capsys.readouterr()
        code = train_tiny_policy.main(list(args))
        out = capsys.readouterr()
        events = [json.loads(line) for line in out.out.splitlines() if line.strip()]
        return code, events, out.err

    yield run
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


def test_train_a_few_steps(tmp_path, run_job):
    data = tmp_path / "data"
    assert tinymath.main(["--out", str(data), "--train-size", "64", "--test-size", "4"]) == 0
    out = tmp_path / "ckpt"
    code, events, err = run_job("--data", str(data), "--out", str(out), "--seed", "0", "--steps", "4", "--eval-limit", "2", *SMALL)
    assert code == 0, err
    kinds = [e["event"] for e in events]
    assert kinds[0] == "start" and kinds[-1] == "done" and "eval" in kinds
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["step"] for e in progress] == [2, 4] and all(e["total"] == 4 for e in progress)
    assert all(isinstance(e["loss"], float) for e in progress)
    assert events[-1]["output"] == str(out.resolve())
    assert (out / "model.safetensors").is_file() and (out / "README.md").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp dir left behind

    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    tok = AutoTokenizer.from_pretrained(out)
    assert isinstance(tok, PreTrainedTokenizerFast)
    text = "Question: Ann has  12 apples.\nAnswer:\n12 + 7 = 19\n19 - 5 = 14\n#### 14"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    assert [tok.pad_token, tok.bos_token, tok.eos_token] == ["<pad>", "<bos>", "<eos>"]
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.model_type == "llama" and model.config.max_position_embeddings == 384
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), len(tok))

    # same seed, same data => byte-identical weights (the evaluation does not touch them)
    out2 = tmp_path / "ckpt2"
    code, _, err = run_job("--data", str(data), "--out", str(out2), "--seed", "0", "--steps", "4", "--no-eval", *SMALL)
    assert code == 0, err
    assert (out / "model.safetensors").read_bytes() == (out2 / "model.safetensors").read_bytes()
    assert (out / "tokenizer.json").read_bytes() == (out2 / "tokenizer.json").read_bytes()

    # re-running into an existing dir replaces it
    code, _, err = run_job("--data", str(data), "--out", str(out2), "--seed", "1", "--steps", "2", "--no-eval", *SMALL)
    assert code == 0, err
    assert (out / "model.safetensors").read_bytes() != (out2 / "model.safetensors").read_bytes()
    assert json.loads((out2 / "training_info.json").read_text())["hparams"]["seed"] == 1


def test_bad_data_exits_2(tmp_path, run_job):
    code, events, _ = run_job("--data", str(tmp_path / "missing"), "--out", str(tmp_path / "ckpt"), "--steps", "1")
    assert code == 2
    assert events[-1]["event"] == "error" and "missing" in events[-1]["message"]
    assert not (tmp_path / "ckpt").exists()
