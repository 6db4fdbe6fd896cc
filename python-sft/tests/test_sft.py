"""The SFT job (prm_raft.sft) on a tiny random LLaMA with a character-level tokenizer, built here.

One end-to-end run goes through the CLI in a subprocess (stdout holds JSON lines only; exit codes); the other runs
call `sft.main` in this process to share one import of torch / transformers / TRL (the 2-core budget).
"""

from __future__ import annotations

import io
import json
import os
import random
import string
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from prm_raft import sft, train_job  # noqa: E402  (light: imports no torch until a job runs)

PYTHON_SFT = Path(__file__).resolve().parents[1]
SHIPPED_POLICY = PYTHON_SFT.parent / "models" / "tinymath-policy"


def require_shipped(model: Path) -> None:
    """A shipped model (committed under models/) that is missing is a broken checkout, never a reason to skip."""
    missing = [f for f in ("config.json", "model.safetensors") if not (model / f).is_file()]
    if missing:
        pytest.fail(f"shipped model {model} lacks {', '.join(missing)}: models/ is committed in git, restore it (git checkout -- {model})", pytrace=False)


SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]
PROMPT = "Question: What is {a} + {b}?\nAnswer:\n"


def tinymath_pairs(n: int, seed: int = 0) -> list[dict[str, str]]:
    r = random.Random(seed)
    out = []
    for _ in range(n):
        a, b = r.randint(1, 20), r.randint(1, 20)
        out.append({"prompt": PROMPT.format(a=a, b=b), "completion": f"{a} + {b} = {a + b}\n#### {a + b}"})
    return out


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    """A tiny random LlamaForCausalLM + char tokenizer (BOS added by the post-processor, like tinymath-policy's),
    and a train file of 32 tinymath-like prompt/completion pairs."""
    import torch
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    root = tmp_path_factory.mktemp("tiny")
    vocab = {t: i for i, t in enumerate(SPECIALS + sorted(set(string.printable) - set("\r\x0b\x0c")))}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", 1)])
    tok.add_special_tokens(SPECIALS)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        clean_up_tokenization_spaces=False, model_max_length=256,
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, max_position_embeddings=256, bos_token_id=1, eos_token_id=2, pad_token_id=0,
        tie_word_embeddings=True,
    )
    model_dir = root / "model"
    LlamaForCausalLM(config).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    tiny = {"root": root, "model": model_dir, "train": write_jsonl(root / "train.jsonl", tinymath_pairs(32))}
    # The end-to-end CLI run starts now, in the background, so that its imports overlap the in-process tests.
    out = root / "cli"
    config = job_file(tiny, out, max_steps=4)
    stdout, stderr = open(root / "cli.stdout", "w+"), open(root / "cli.stderr", "w+")
    proc = start_cli(config, stdout, stderr)
    tiny["cli"] = {"out": out, "config": config, "proc": proc, "stdout": stdout, "stderr": stderr}
    yield tiny
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    stdout.close()
    stderr.close()


def job_file(tiny: dict[str, Path], out: Path, config_name: str | None = None, **overrides) -> Path:
    cfg = {
        "model": str(tiny["model"]), "train_file": str(tiny["train"]), "output_dir": str(out),
        "max_steps": 6, "per_device_batch_size": 4, "learning_rate": 1e-3, "save_steps": 2, "logging_steps": 1,
        "max_length": 128,
    }
    cfg.update(overrides)
    cfg = {k: v for k, v in cfg.items() if v is not None}
    path = out.parent / (config_name or f"{out.name}.job.json")
    path.write_text(json.dumps(cfg), encoding="utf-8")
    return path


def start_cli(config: Path, stdout, stderr) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "prm_raft.sft", "--config", str(config)],
        stdout=stdout, stderr=stderr, env=dict(os.environ, HF_HUB_OFFLINE="1"), cwd=PYTHON_SFT,
    )


def run_cli(config: Path, **env: str) -> tuple[int, list[str], str]:
    p = subprocess.run(
        [sys.executable, "-m", "prm_raft.sft", "--config", str(config)],
        capture_output=True, text=True, env=dict(os.environ, HF_HUB_OFFLINE="1", **env), timeout=600, cwd=PYTHON_SFT,
    )
    return p.returncode, p.stdout.splitlines(), p.stderr


def run_inproc(config: Path) -> tuple[int, list[dict]]:
    buf = io.StringIO()
    code = sft.main(["--config", str(config)], events=buf)
    return code, [json.loads(line) for line in buf.getvalue().splitlines()]


def steps(events: list[dict]) -> list[int]:
    return [e["step"] for e in events if e["event"] == "progress"]


def load_weights(model_dir: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(model_dir / "model.safetensors"))


# --------------------------------------------------------------------------------------------------
# Completion-only loss
# --------------------------------------------------------------------------------------------------


def test_labels_mask_the_prompt_and_end_with_eos(tiny, tmp_path):
    from transformers import AutoTokenizer

    job = sft.load_config(job_file(tiny, tmp_path / "labels"))
    data = sft.read_train_file(job.train_file)
    tokenizer = AutoTokenizer.from_pretrained(job.model)
    trainer = sft.build_trainer(job, data, tokenizer, callbacks=[])
    rows = [trainer.train_dataset[i] for i in range(4)]
    batch = trainer.data_collator(rows)
    eos = tokenizer.eos_token_id
    for i in range(4):
        prompt_ids = tokenizer(data.prompts[i])["input_ids"]
        full_ids = tokenizer(data.prompts[i] + data.completions[i])["input_ids"] + [eos]
        n_p, n = len(prompt_ids), len(full_ids)
        ids, labels = batch["input_ids"][i].tolist(), batch["labels"][i].tolist()
        assert ids[:n] == full_ids
        assert labels[:n_p] == [-100] * n_p  # prompt (with BOS): no loss
        assert labels[n_p:n] == full_ids[n_p:]  # completion: loss
        assert labels[n - 1] == eos  # the model learns to stop
        assert all(x == -100 for x in labels[n:])  # padding: no loss
        assert tokenizer.decode(labels[n_p : n - 1]) == data.completions[i]


# --------------------------------------------------------------------------------------------------
# LoRA
# --------------------------------------------------------------------------------------------------


def test_lora_final_is_a_merged_plain_checkpoint(tiny, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    out = tmp_path / "lora"
    cfg = job_file(tiny, out, method="lora", max_steps=3, learning_rate=1e-2,
                   lora={"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]})
    code, events = run_inproc(cfg)
    assert code == 0 and events[-1]["event"] == "done" and events[-1]["metrics"]["steps"] == 3
    final = out / "final"
    assert not (final / "adapter_config.json").exists()
    weights = load_weights(final)
    assert not any("lora" in k for k in weights)
    base_w = load_weights(tiny["model"])
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(weights[q], base_w[q])  # the adapter was merged in
    k = "model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(weights[k], base_w[k])  # untouched where there was no adapter

    merged = AutoModelForCausalLM.from_pretrained(final).eval()
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny["model"]), out / "adapter").eval()
    x = torch.tensor([[1, 40, 41, 42, 43, 44]])
    with torch.no_grad():
        torch.testing.assert_close(merged(x).logits, with_adapter(x).logits, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# Crash, resume, OOM
# --------------------------------------------------------------------------------------------------


def test_crash_then_resume_from_checkpoint_gives_the_same_weights(tiny, tmp_path, monkeypatch):
    # uninterrupted
    code, events = run_inproc(job_file(tiny, tmp_path / "whole", max_steps=4))
    assert code == 0 and steps(events) == [1, 2, 3, 4]
    # crash at step 3 (after the checkpoint of step 2), then rerun
    out = tmp_path / "crashed"
    cfg = job_file(tiny, out, max_steps=4)
    monkeypatch.setenv(sft.FAULT_ENV, "crash@3")
    buf = io.StringIO()
    with pytest.raises(RuntimeError, match="fake crash"):
        sft.main(["--config", str(cfg)], events=buf)
    first = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert steps(first) == [1, 2] and not (out / "final").exists()
    assert max(e["step"] for e in first if e["event"] == "checkpoint") == 2
    monkeypatch.delenv(sft.FAULT_ENV)
    code, second = run_inproc(cfg)
    assert code == 0
    assert steps(second) == [3, 4]  # resumed after checkpoint-2, not from step 1
    assert second[-1]["metrics"]["steps"] == 4
    assert second[-1]["metrics"]["loss_first"] == events[0]["loss"]  # from the restored log history
    losses = [e["loss"] for e in events if e["event"] == "progress"]
    assert [e["loss"] for e in second if e["event"] == "progress"] == losses[2:]
    a, b = load_weights(tmp_path / "whole" / "final"), load_weights(out / "final")
    assert a.keys() == b.keys()
    import torch

    assert all(torch.equal(a[k], b[k]) for k in a)  # exact resume


def test_once_fault_then_guard_then_retry(tiny, tmp_path, monkeypatch, capsys):
    out = tmp_path / "once"
    cfg = job_file(tiny, out, max_steps=3)
    monkeypatch.setenv(sft.FAULT_ENV, "crash@3:once")
    with pytest.raises(RuntimeError, match="fake crash"):
        sft.main(["--config", str(cfg)], events=io.StringIO())
    # the checkpoints left behind belong to this job: another config is refused
    code, _ = run_inproc(job_file(tiny, out, "other.job.json", max_steps=3, learning_rate=5e-4))
    assert code == 2 and "differs in: learning_rate" in capsys.readouterr().err
    code, events = run_inproc(cfg)  # same env: the once-fault does not fire again, the retry gets through
    assert code == 0 and steps(events) == [3]


def test_identity_keeps_only_the_effective_batch():
    """After an out-of-memory the pipeline halves the per-device batch and doubles accumulation: same job."""
    base = sft.SftJob(model="m", train_file="t", output_dir="o", per_device_batch_size=8, gradient_accumulation_steps=1)
    halved = sft.SftJob(model="m", train_file="t", output_dir="o", per_device_batch_size=4, gradient_accumulation_steps=2)
    bigger = sft.SftJob(model="m", train_file="t", output_dir="o", per_device_batch_size=8, gradient_accumulation_steps=2)
    assert sft.job_identity(base, "h") == sft.job_identity(halved, "h")
    assert sft.job_identity(base, "h") != sft.job_identity(bigger, "h")


def test_fake_oom_exits_3(tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(sft.FAULT_ENV, "oom@2")
    code, events = run_inproc(job_file(tiny, tmp_path / "oom"))
    assert code == train_job.EXIT_OOM == 3
    assert steps(events) == [1]  # the fault fires before step 2 is logged
    assert "out of GPU memory" in capsys.readouterr().err
    # The marker a launcher cannot swallow: it says out-of-memory even if the exit code comes back as 1.
    assert json.loads((tmp_path / "oom" / train_job.FAILURE_FILE).read_text())["kind"] == "out_of_memory"
    assert events[-1]["event"] == "error" and events[-1]["retryable"] is True


def test_oom_is_recognised_through_the_exception_chain():
    import torch

    assert train_job.is_oom(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert train_job.is_oom(RuntimeError("CUDA error: out of memory"))
    try:
        try:
            raise torch.OutOfMemoryError("x")
        except Exception as inner:
            raise ValueError("wrapped") from inner
    except ValueError as e:
        assert train_job.is_oom(e)
    assert not train_job.is_oom(RuntimeError("fake crash"))


# --------------------------------------------------------------------------------------------------
# Bad config and data: exit 2, naming the problem
# --------------------------------------------------------------------------------------------------


def bad_case(name: str, tiny: dict[str, Path], tmp: Path) -> tuple[Path, str]:
    out = tmp / "bad"
    if name == "unknown key":
        return job_file(tiny, out, learning_rte=1e-4), 'unknown key "learning_rte"'
    if name == "unknown lora key":
        return job_file(tiny, out, method="lora", lora={"rank": 4}), 'unknown key "lora.rank"'
    if name == "missing model":
        cfg = job_file(tiny, out)
        raw = json.loads(cfg.read_text())
        del raw["model"]
        cfg.write_text(json.dumps(raw))
        return cfg, 'missing required key "model"'
    if name == "wrong type":
        return job_file(tiny, out, per_device_batch_size="8"), '"per_device_batch_size" must be an integer >= 1'
    if name == "bool for int":
        return job_file(tiny, out, max_steps=True), '"max_steps" must be -1'
    if name == "bad scheduler":
        return job_file(tiny, out, lr_scheduler="cosine_annealing"), '"lr_scheduler" must be one of'
    if name == "missing train file":
        return job_file(tiny, out, train_file=str(tmp / "nope.jsonl")), "nope.jsonl: file not found"
    if name == "missing model dir":
        return job_file(tiny, out, model=str(tmp / "nomodel")), "not a checkpoint directory"
    if name == "line without completion":
        recs = tinymath_pairs(20)
        recs[16] = {"prompt": "Question: What is 1 + 1?\nAnswer:\n", "answer": "2"}
        train = write_jsonl(tmp / "bad.jsonl", recs)
        return job_file(tiny, out, train_file=str(train)), 'line 17: missing "completion"'
    if name == "non-string prompt":
        train = write_jsonl(tmp / "bad.jsonl", [{"prompt": 3, "completion": "x"}])
        return job_file(tiny, out, train_file=str(train)), 'line 1: "prompt" must be a string'
    if name == "not json":
        train = tmp / "bad.jsonl"
        train.write_text(json.dumps(tinymath_pairs(1)[0]) + "\n{oops\n")
        return job_file(tiny, out, train_file=str(train)), "line 2: not valid JSON"
    if name == "empty dataset":
        train = tmp / "empty.jsonl"
        train.write_text("\n\n")
        return job_file(tiny, out, train_file=str(train)), "no records (empty dataset)"
    if name == "prompt longer than max_length":
        return job_file(tiny, out, max_length=20), "line 1: the prompt alone is"
    if name == "bf16 on CPU":
        return job_file(tiny, out, bf16=True), '"bf16": true needs a GPU'
    if name == "lora target not in model":
        return job_file(tiny, out, method="lora", lora={"target_modules": ["query_key_value"]}), "query_key_value"
    if name == "config not json":
        cfg = tmp / "broken.json"
        cfg.write_text('{"model": ')
        return cfg, "not valid JSON"
    raise AssertionError(name)


BAD_CASES = [
    "unknown key", "unknown lora key", "missing model", "wrong type", "bool for int", "bad scheduler",
    "missing train file", "missing model dir", "line without completion", "non-string prompt", "not json",
    "empty dataset", "prompt longer than max_length", "bf16 on CPU", "lora target not in model", "config not json",
]


@pytest.mark.parametrize("name", BAD_CASES)
def test_bad_config_or_data_exits_2(name, tiny, tmp_path, capsys):
    if name == "bf16 on CPU":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is present: bf16 is allowed")
    cfg, message = bad_case(name, tiny, tmp_path)
    code, events = run_inproc(cfg)
    err = capsys.readouterr().err
    assert code == train_job.EXIT_BAD_INPUT == 2, err
    assert [(e["event"], e["retryable"]) for e in events] == [("error", False)] and message in events[0]["message"]
    assert message in err
    assert not (tmp_path / "bad" / "final").exists()


def test_launcher_mixed_precision_must_match_the_job(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch` exports from a GPU config
    code, events = run_inproc(job_file(tiny, tmp_path / "mp"))
    assert code == 2 and [e["event"] for e in events] == ["error"] and "mixed_precision: bf16" in capsys.readouterr().err


def test_bad_config_cli_exit_code_and_stderr(tiny, tmp_path):
    cfg, message = bad_case("line without completion", tiny, tmp_path)
    code, lines, err = run_cli(cfg)
    assert code == 2 and [json.loads(line)["event"] for line in lines] == ["error"] and message in err


def test_config_defaults(tiny, tmp_path):
    cfg = tmp_path / "min.json"
    cfg.write_text(json.dumps({"model": "m", "train_file": "t.jsonl", "output_dir": "o"}))
    job = sft.load_config(cfg)
    assert job.model == os.path.abspath("m")
    d = job.as_json()
    del d["model"], d["train_file"], d["output_dir"]
    assert d == {
        "method": "full", "lora": {"r": 16, "alpha": 32.0, "dropout": 0.05, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "epochs": 1.0, "max_steps": -1, "learning_rate": 1e-5, "per_device_batch_size": 8, "gradient_accumulation_steps": 1,
        "max_length": 512, "bf16": False, "gradient_checkpointing": False, "save_steps": 50, "save_total_limit": 2,
        "seed": 0, "warmup_ratio": 0.0, "lr_scheduler": "cosine", "logging_steps": 5,
    }


def test_incomplete_checkpoint_is_skipped(tmp_path):
    ck = tmp_path / "checkpoints"
    for n in (2, 4, 6):
        (ck / f"checkpoint-{n}").mkdir(parents=True)
    (ck / "checkpoint-2" / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    (ck / "checkpoint-4" / "trainer_state.json").write_text(json.dumps({"global_step": 4}))
    (ck / "checkpoint-6" / "trainer_state.json").write_text('{"global_st')  # crashed mid-save
    assert train_job.find_resume_checkpoint(ck, print) == str(ck / "checkpoint-4")
    assert not (ck / "checkpoint-6").exists()
    assert train_job.find_resume_checkpoint(tmp_path / "none", print) is None


def test_fault_hook_spec():
    assert train_job.parse_fault(None) is None
    assert train_job.parse_fault("oom@7") == ("oom", 7, False, None)
    assert train_job.parse_fault("crash@3:once") == ("crash", 3, True, None)
    assert train_job.parse_fault("crash@1:while=/tmp/broken") == ("crash", 1, False, Path("/tmp/broken"))
    with pytest.raises(train_job.BadInput, match="SOME_ENV='segfault@3'"):
        train_job.parse_fault("segfault@3", "SOME_ENV")


# --------------------------------------------------------------------------------------------------
# accelerate configs
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,kind,procs", [("cpu", "NO", 1), ("multi-gpu-zero3", "DEEPSPEED", 8), ("fsdp", "FSDP", 8)])
def test_accelerate_configs_parse(name, kind, procs):
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    path = PYTHON_SFT / "accelerate" / f"{name}.yaml"
    cfg = load_config_from_file(str(path))  # rejects unknown top-level keys
    assert cfg.distributed_type.value == kind and cfg.num_processes == procs
    assert cfg.mixed_precision == ("no" if name == "cpu" else "bf16")
    args = launch_command_parser().parse_args(["--config_file", str(path), "-m", "prm_raft.sft", "--config", "job.json"])
    for section in (cfg.deepspeed_config or {}, cfg.fsdp_config or {}):
        unknown = [k for k in section if not hasattr(args, k)]
        assert not unknown, f"{name}.yaml: keys accelerate launch does not know: {unknown}"
    _validate_launch_command(args)  # the launcher's own checks, short of starting processes
    assert args.num_processes == procs


# --------------------------------------------------------------------------------------------------
# The shipped tinymath policy (committed under models/: missing, the test fails)
# --------------------------------------------------------------------------------------------------


def test_two_steps_on_the_shipped_policy(tmp_path):
    require_shipped(SHIPPED_POLICY)
    from transformers import AutoModelForCausalLM

    train = write_jsonl(tmp_path / "train.jsonl", tinymath_pairs(8))
    out = tmp_path / "policy"
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({
        "model": str(SHIPPED_POLICY), "train_file": str(train), "output_dir": str(out), "max_steps": 2,
        "per_device_batch_size": 4, "save_steps": 2, "logging_steps": 1, "max_length": 256,
    }))
    code, events = run_inproc(cfg)
    assert code == 0 and steps(events) == [1, 2]
    AutoModelForCausalLM.from_pretrained(out / "final")


# --------------------------------------------------------------------------------------------------
# CLI end to end
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cli_run(tiny):
    c = tiny["cli"]
    code = c["proc"].wait(timeout=600)
    c["stdout"].seek(0)
    c["stderr"].seek(0)
    return {"out": c["out"], "config": c["config"], "code": code, "lines": c["stdout"].read().splitlines(), "err": c["stderr"].read()}


def test_cli_progress_checkpoints_and_final(cli_run):
    assert cli_run["code"] == 0, cli_run["err"]
    events = [json.loads(line) for line in cli_run["lines"]]  # every stdout line is a JSON event
    assert {e["event"] for e in events} == {"progress", "checkpoint", "done"}
    assert steps(events) == [1, 2, 3, 4]
    for e in events:
        if e["event"] == "progress":
            assert e["total"] == 4 and isinstance(e["loss"], float) and set(e) == {"event", "step", "total", "loss"}
    out = cli_run["out"]
    ckpts = [e for e in events if e["event"] == "checkpoint"]
    assert [e["step"] for e in ckpts] == [2, 4]
    assert ckpts[-1]["path"] == str(out / "checkpoints" / "checkpoint-4")
    done = events[-1]
    assert done["event"] == "done" and done["output"] == str(out / "final")
    m = done["metrics"]
    assert m["steps"] == 4 and m["loss_first"] == events[0]["loss"]
    assert m["loss_last"] == [e for e in events if e["event"] == "progress"][-1]["loss"]
    assert m["train_runtime"] > 0
    assert not (out / "final.tmp").exists()
    assert "[sft]" in cli_run["err"]  # logs on stderr

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out / "final")
    tok = AutoTokenizer.from_pretrained(out / "final")
    assert type(model).__name__ == "LlamaForCausalLM" and tok.eos_token == "<eos>"


def test_final_exists_exits_0_without_training(cli_run):
    assert cli_run["code"] == 0, cli_run["err"]
    final = cli_run["out"] / "final"
    mtime = (final / "model.safetensors").stat().st_mtime_ns
    code, lines, err = run_cli(cli_run["config"])
    assert code == 0, err
    events = [json.loads(line) for line in lines]
    assert [e["event"] for e in events] == ["done"]
    assert events[0]["output"] == str(final)
    assert events[0]["metrics"] == json.loads(cli_run["lines"][-1])["metrics"]  # read back from final/
    assert (final / "model.safetensors").stat().st_mtime_ns == mtime
    assert "nothing to do" in err
