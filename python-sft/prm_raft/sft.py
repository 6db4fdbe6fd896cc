"""SFT job: a base checkpoint and a JSONL of prompt/completion pairs in, a fine-tuned plain checkpoint out.

    python -m prm_raft.sft --config job.json
    accelerate launch --config_file python-sft/accelerate/cpu.yaml -m prm_raft.sft --config job.json

Config (JSON object; unknown keys, wrong types and missing files are errors; relative paths are relative to the
working directory)::

    {"model": DIR, "train_file": JSONL, "output_dir": DIR,                   (required)
     "method": "full" | "lora",                                              ("full")
     "lora": {"r": 16, "alpha": 32, "dropout": 0.05,
              "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},   (used when method = lora)
     "epochs": 1, "max_steps": -1, "learning_rate": 1e-5, "per_device_batch_size": 8,
     "gradient_accumulation_steps": 1, "max_length": 512, "bf16": false, "gradient_checkpointing": false,
     "save_steps": 50, "save_total_limit": 2, "seed": 0, "warmup_ratio": 0.0, "lr_scheduler": "cosine",
     "logging_steps": 5}

`train_file` holds one ``{"prompt": str, "completion": str}`` per line (other fields are ignored, blank lines are
skipped). The prompt and the completion are tokenized apart and concatenated: the prompt as the policy server encodes
it (with the special tokens the tokenizer adds, such as BOS), the completion without special tokens, then the
tokenizer's EOS once (not again when the completion already ends with it), so the model learns to stop. TRL's
``SFTTrainer`` trains on the completion and its EOS only (the prompt's tokens get label -100). Tokenizing the two
together instead would let a BPE merge across the boundary (a prompt ending in "\n" and a completion starting with
"\n" give one "\n\n" token) put prompt text into the loss and train on a context the served model never sees.

Stdout carries JSON lines only (everything else, including library output, goes to stderr)::

    {"event": "progress", "step": 120, "total": 900, "loss": 0.41}       every logging step
    {"event": "checkpoint", "step": 150, "path": ".../checkpoints/checkpoint-150"}
    {"event": "done", "output": "<output_dir>/final",
     "metrics": {"steps": N, "loss_first": x, "loss_last": y, "train_runtime": s}}
    {"event": "error", "message": "...", "retryable": false}             on a failure, before the exit

Layout of `output_dir`: ``checkpoints/checkpoint-N`` (the Trainer's own, with optimizer, scheduler and RNG state),
``sft-job.json`` (what determines the result, to refuse resuming another job's checkpoints), ``adapter/`` (LoRA
only: the trained adapter) and ``final/`` (the model and tokenizer; with LoRA the merged model, so any server loads
it as a plain checkpoint), which appears atomically (written as ``final.tmp`` and renamed). If ``final/`` exists
the job prints its done event and exits 0 without training. Otherwise it resumes from the newest complete
checkpoint, if any (the Trainer restores weights, optimizer, scheduler, RNG state and the position in the seeded
data order, so a resumed run ends with the same weights as an uninterrupted one).

Exit codes: 0 done; 2 bad config or data (the message on stderr says what and where); 3 out of GPU memory;
anything else (a traceback, exit 1) is retryable.

Test hook: ``PRM_RAFT_SFT_FAULT=oom@STEP`` or ``crash@STEP`` raises a fake CUDA OOM (exit 3) or a crash (exit 1)
when the run reaches global step STEP; append ``:once`` to fire only once per output_dir (a marker file in it), or
``:while=PATH`` to fire only while the file PATH exists.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, TextIO

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from prm_raft.train_job import (  # noqa: E402
    EXIT_OK,
    REQUIRED,
    BadInput,
    Emit,
    boolean,
    check_job_identity,
    check_keys,
    check_precision,
    cli,
    find_resume_checkpoint,
    int_at_least,
    is_int,
    is_num,
    make_emitter,
    non_empty_path,
    one_of,
    parse_fault,
    positive_number,
    read_json,
    read_json_config,
    replace_dir_atomically,
    run_guarded,
    trainer_callbacks,
    trainer_metrics,
    write_json_atomic,
)

FINAL_DIR = "final"
CHECKPOINTS_DIR = "checkpoints"
ADAPTER_DIR = "adapter"
JOB_FILE = "sft-job.json"
SUMMARY_FILE = "prm_raft_sft.json"  # written inside final/: the job's config and metrics
FAULT_ENV = "PRM_RAFT_SFT_FAULT"
LR_SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup", "polynomial", "inverse_sqrt")

# --------------------------------------------------------------------------------------------------
# Config
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoraSpec:
    r: int = 16
    alpha: float = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] | str = ("q_proj", "k_proj", "v_proj", "o_proj")  # or "all-linear"

    def peft_config(self, task_type: str, **extra: Any) -> Any:
        from peft import LoraConfig

        tm = self.target_modules
        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=tm if isinstance(tm, str) else list(tm),
            bias="none",
            task_type=task_type,
            **extra,
        )


@dataclass(frozen=True)
class SftJob:
    model: str
    train_file: str
    output_dir: str
    method: str = "full"
    lora: LoraSpec = field(default_factory=LoraSpec)
    epochs: float = 1
    max_steps: int = -1
    learning_rate: float = 1e-5
    per_device_batch_size: int = 8
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    bf16: bool = False
    gradient_checkpointing: bool = False
    save_steps: int = 50
    save_total_limit: int | None = 2
    seed: int = 0
    warmup_ratio: float = 0.0
    lr_scheduler: str = "cosine"
    logging_steps: int = 5

    def as_json(self) -> dict[str, Any]:
        d = asdict(self)
        if isinstance(self.lora.target_modules, tuple):
            d["lora"]["target_modules"] = list(self.lora.target_modules)
        return d


def _target_modules(v: Any) -> str | None:
    if v == "all-linear" or (isinstance(v, list) and v and all(isinstance(m, str) and m for m in v)):
        return None
    return 'must be a non-empty list of module names or "all-linear"'


_TOP_RULES: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "model": (REQUIRED, non_empty_path),
    "train_file": (REQUIRED, non_empty_path),
    "output_dir": (REQUIRED, non_empty_path),
    "method": ("full", one_of("full", "lora")),
    "lora": (None, lambda v: None if isinstance(v, dict) else "must be an object"),
    "epochs": (1, positive_number),
    "max_steps": (-1, lambda v: None if is_int(v) and (v == -1 or v >= 1) else "must be -1 (train for `epochs`) or an integer >= 1"),
    "learning_rate": (1e-5, positive_number),
    "per_device_batch_size": (8, int_at_least(1)),
    "gradient_accumulation_steps": (1, int_at_least(1)),
    "max_length": (512, int_at_least(2)),
    "bf16": (False, boolean),
    "gradient_checkpointing": (False, boolean),
    "save_steps": (50, int_at_least(1)),
    "save_total_limit": (2, lambda v: None if v is None or (is_int(v) and v >= 1) else "must be an integer >= 1 or null (keep all)"),
    "seed": (0, int_at_least(0)),
    "warmup_ratio": (0.0, lambda v: None if is_num(v) and 0 <= v < 1 else "must be a number in [0, 1)"),
    "lr_scheduler": ("cosine", one_of(*LR_SCHEDULERS)),
    "logging_steps": (5, int_at_least(1)),
}
_LORA_RULES: dict[str, tuple[Any, Callable[[Any], str | None]]] = {
    "r": (16, int_at_least(1)),
    "alpha": (32, positive_number),
    "dropout": (0.05, lambda v: None if is_num(v) and 0 <= v < 1 else "must be a number in [0, 1)"),
    "target_modules": (["q_proj", "k_proj", "v_proj", "o_proj"], _target_modules),
}


def parse_lora(raw: dict[str, Any], where: str) -> LoraSpec:
    """The "lora" object of a job config (SFT and PRM training share it); missing keys take their defaults."""
    lora = check_keys(where, raw, _LORA_RULES, "lora.")
    tm = lora["target_modules"]
    return LoraSpec(
        r=lora["r"],
        alpha=float(lora["alpha"]),
        dropout=float(lora["dropout"]),
        target_modules=tm if isinstance(tm, str) else tuple(tm),
    )


def parse_config(raw: Any, where: str = "config") -> SftJob:
    """Validate a decoded config object; paths are made absolute (relative to the working directory)."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: must be a JSON object")
    top = check_keys(where, raw, _TOP_RULES, "")
    top["lora"] = parse_lora(top["lora"] or {}, where)
    for key in ("model", "train_file", "output_dir"):
        top[key] = os.path.abspath(os.path.expanduser(top[key]))
    for key in ("epochs", "learning_rate", "warmup_ratio"):
        top[key] = float(top[key])
    return SftJob(**top)


def load_config(path: str | os.PathLike[str]) -> SftJob:
    return parse_config(*read_json_config(path))


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------


@dataclass
class TrainData:
    prompts: list[str]
    completions: list[str]
    lines: list[int]  # the 1-based line of each record in train_file
    sha256: str


def read_train_file(path: str) -> TrainData:
    where = f"train_file {path}"
    if not os.path.isfile(path):
        raise BadInput(f"{where}: file not found")
    prompts: list[str] = []
    completions: list[str] = []
    lines: list[int] = []
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            h.update(raw)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput(f"{where} line {lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise BadInput(f"{where} line {lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(rec, dict):
                raise BadInput(f'{where} line {lineno}: must be a JSON object with "prompt" and "completion"')
            for key in ("prompt", "completion"):
                if key not in rec:
                    raise BadInput(f'{where} line {lineno}: missing "{key}"')
                if not isinstance(rec[key], str):
                    raise BadInput(f'{where} line {lineno}: "{key}" must be a string')
            if not rec["completion"].strip():
                raise BadInput(f'{where} line {lineno}: empty "completion"')
            prompts.append(rec["prompt"])
            completions.append(rec["completion"])
            lines.append(lineno)
    if not prompts:
        raise BadInput(f"{where}: no records (empty dataset)")
    return TrainData(prompts, completions, lines, h.hexdigest())


@dataclass
class TokenizedData:
    input_ids: list[list[int]]
    completion_mask: list[list[int]]  # 1 on the completion's tokens and its EOS, 0 on the prompt's
    prompt_lengths: list[int]


def tokenize_examples(tokenizer: Any, prompts: list[str], completions: list[str]) -> TokenizedData:
    """Each example as prompt tokens + completion tokens + EOS (once), tokenized apart (see the module docstring)."""
    eos_id = tokenizer.eos_token_id
    ids: list[list[int]] = []
    masks: list[list[int]] = []
    p_lens: list[int] = []
    chunk = 1024
    for start in range(0, len(prompts), chunk):
        p_ids = tokenizer(prompts[start : start + chunk], add_special_tokens=True)["input_ids"]
        c_ids = tokenizer(completions[start : start + chunk], add_special_tokens=False)["input_ids"]
        for p, c in zip(p_ids, c_ids):
            c = list(c) if c and c[-1] == eos_id else [*c, eos_id]
            ids.append([*p, *c])
            masks.append([0] * len(p) + [1] * len(c))
            p_lens.append(len(p))
    return TokenizedData(ids, masks, p_lens)


def count_truncated(tokenizer: Any, data: TrainData, max_length: int, where: str) -> int:
    """How many examples exceed max_length (TRL keeps their start, so they lose their EOS); an example whose
    prompt alone fills max_length has nothing left to learn from and is bad data."""
    truncated = 0
    first: list[int] = []
    tok = tokenize_examples(tokenizer, data.prompts, data.completions)
    for i, (n_p, full) in enumerate(zip(tok.prompt_lengths, tok.input_ids)):
        if n_p >= max_length:
            raise BadInput(
                f"{where} line {data.lines[i]}: the prompt alone is {n_p} tokens, "
                f"max_length is {max_length}: no completion token would be trained on"
            )
        if len(full) > max_length:
            truncated += 1
            if len(first) < 5:
                first.append(data.lines[i])
    if truncated:
        log(
            f"warning: {truncated} of {len(data.prompts)} examples are longer than max_length={max_length} tokens and "
            f"are truncated (losing their EOS); first at lines {first}"
        )
    return truncated


# --------------------------------------------------------------------------------------------------
# Output dir: final, job identity, checkpoints
# --------------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[sft] {msg}", file=sys.stderr, flush=True)


def job_identity(job: SftJob, data_sha256: str) -> dict[str, Any]:
    """Everything that determines the trained weights (not logging or checkpointing cadence)."""
    d = job.as_json()
    for key in ("output_dir", "train_file", "save_steps", "save_total_limit", "logging_steps", "gradient_checkpointing"):
        d.pop(key)
    # Only the effective batch determines the run: after an out-of-memory the pipeline halves the per-device
    # batch and doubles accumulation, and the job must resume its own checkpoints.
    d["effective_batch_size"] = d.pop("per_device_batch_size") * d.pop("gradient_accumulation_steps")
    if job.method != "lora":
        d.pop("lora")
    d["train_file_sha256"] = data_sha256
    return d


def done_from_existing(final: Path, emit: Emit) -> None:
    summary = read_json(final / SUMMARY_FILE)
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    log(f"{final} exists: nothing to do")
    emit("done", output=str(final), metrics=metrics if isinstance(metrics, dict) else {})


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------


def _check_target_modules(job: SftJob) -> None:
    """LoRA target modules must name modules of the model (checked on the meta device: no weights are loaded)."""
    tm = job.lora.target_modules
    if job.method != "lora" or isinstance(tm, str):
        return
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(job.model)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()} | {name for name, _ in model.named_modules()}
    missing = [m for m in tm if m not in names]
    if missing:
        linear = sorted({name.rsplit(".", 1)[-1] for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)})
        raise BadInput(f'config: "lora.target_modules" names modules the model does not have: {missing} (its linear layers: {linear})')


def build_trainer(job: SftJob, data: TrainData, tokenizer: Any, callbacks: list[Any]) -> Any:
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(
        output_dir=str(Path(job.output_dir) / CHECKPOINTS_DIR),
        num_train_epochs=job.epochs,
        max_steps=job.max_steps,
        learning_rate=job.learning_rate,
        per_device_train_batch_size=job.per_device_batch_size,
        gradient_accumulation_steps=job.gradient_accumulation_steps,
        max_length=job.max_length,
        packing=False,
        completion_only_loss=True,  # prompt tokens get label -100
        bf16=job.bf16,  # TRL defaults bf16 to True: always pass it
        fp16=False,
        # TRL defaults gradient_checkpointing to True; transformers 5 renamed it activation_checkpointing (the old
        # name is a deprecated alias that mirrors the new one)
        activation_checkpointing=job.gradient_checkpointing,
        save_strategy="steps",
        save_steps=job.save_steps,
        save_total_limit=job.save_total_limit,
        save_only_model=False,  # optimizer, scheduler and RNG state too: exact resume
        logging_strategy="steps",
        logging_steps=job.logging_steps,
        logging_first_step=True,
        seed=job.seed,
        data_seed=job.seed,
        # transformers 5 dropped warmup_ratio: a float warmup_steps in [0, 1) is a ratio of the total steps
        warmup_steps=job.warmup_ratio if job.warmup_ratio > 0 else 0,
        lr_scheduler_type=job.lr_scheduler,
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=torch.cuda.is_available(),
        # fp32 master weights (bf16 is autocast); device_map=None so that the Trainer / DeepSpeed / FSDP place the
        # model (TRL would otherwise pick device_map="auto" on a single GPU and under FSDP).
        model_init_kwargs={"dtype": "float32", "device_map": None},
    )
    peft_config = job.lora.peft_config("CAUSAL_LM") if job.method == "lora" else None
    # Already tokenized (input_ids + completion_mask): TRL builds the labels from the mask, truncates to max_length
    # and leaves the tokens as they are.
    tok = tokenize_examples(tokenizer, data.prompts, data.completions)
    dataset = Dataset.from_dict({"input_ids": tok.input_ids, "completion_mask": tok.completion_mask})
    return SFTTrainer(
        model=job.model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=callbacks,
    )


def _save_final(job: SftJob, trainer: Any, tokenizer: Any, out: Path, summary: dict[str, Any]) -> Path:
    """Write the model + tokenizer into final.tmp, then rename it to final. All ranks call this (saving under
    DeepSpeed ZeRO-3 / FSDP gathers the weights collectively); only the main process writes."""
    final, tmp = out / FINAL_DIR, out / f"{FINAL_DIR}.tmp"
    main = trainer.is_world_process_zero()
    if main and tmp.exists():
        shutil.rmtree(tmp)
    if getattr(trainer, "is_fsdp_enabled", False):
        trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
    if job.method == "lora":
        adapter = out / ADAPTER_DIR
        trainer.save_model(str(adapter))
        trainer.accelerator.wait_for_everyone()
        if main:
            # Merge on CPU from a fresh copy of the base (works the same whether training was sharded or not).
            import torch
            from peft import PeftModel
            from transformers import AutoModelForCausalLM

            base = AutoModelForCausalLM.from_pretrained(job.model, dtype=torch.float32, device_map=None)
            merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
            merged.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
    else:
        trainer.save_model(str(tmp))  # the model and the processing class (tokenizer)
    if main:
        (tmp / "training_args.bin").unlink(missing_ok=True)
        write_json_atomic(tmp / SUMMARY_FILE, summary)
        replace_dir_atomically(tmp, final)
    trainer.accelerator.wait_for_everyone()
    return final


def run(job: SftJob, emit: Emit) -> int:
    out = Path(job.output_dir)
    final = out / FINAL_DIR
    if final.is_dir():
        done_from_existing(final, emit)
        return EXIT_OK

    if not os.path.isdir(job.model) or not os.path.isfile(os.path.join(job.model, "config.json")):
        raise BadInput(f"model {job.model}: not a checkpoint directory (no config.json)")
    data = read_train_file(job.train_file)
    parse_fault(os.environ.get(FAULT_ENV), FAULT_ENV)  # a bad spec is bad input, before any work
    check_precision(job.bf16)

    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(job.model)
    except (OSError, ValueError) as e:
        raise BadInput(f"model {job.model}: cannot load its tokenizer: {e}") from None
    if tokenizer.eos_token is None:
        raise BadInput(f"model {job.model}: the tokenizer has no eos_token (needed to end each completion)")
    truncated = count_truncated(tokenizer, data, job.max_length, f"train_file {job.train_file}")
    _check_target_modules(job)

    ckpt_dir = out / CHECKPOINTS_DIR
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    resume = find_resume_checkpoint(ckpt_dir, log)
    check_job_identity(out / JOB_FILE, job_identity(job, data.sha256), has_checkpoints=resume is not None)
    log(f"resuming from {resume}" if resume else f"starting from {job.model}: {len(data.prompts)} examples")

    trainer = build_trainer(job, data, tokenizer, trainer_callbacks(emit, FAULT_ENV, out))
    result = trainer.train(resume_from_checkpoint=resume)
    metrics = trainer_metrics(trainer, result.metrics.get("train_runtime", 0.0))
    summary = {
        "config": job.as_json(),
        "train_file_sha256": data.sha256,
        "examples": len(data.prompts),
        "truncated": truncated,
        "resumed_from": resume,
        "metrics": metrics,
    }
    final = _save_final(job, trainer, tokenizer, out, summary)
    emit("done", output=str(final), metrics=metrics)
    return EXIT_OK


# --------------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None, events: TextIO | None = None) -> int:
    """Run the job; JSON events go to `events` (stdout by default). Returns the exit code for done, bad input and
    out-of-memory; any other error propagates (retryable)."""
    parser = argparse.ArgumentParser(prog="python -m prm_raft.sft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="job config (JSON)")
    ns = parser.parse_args(argv)
    emit = make_emitter(events if events is not None else sys.stdout)
    job: SftJob | None = None

    def job_run() -> int:
        nonlocal job
        job = load_config(ns.config)
        return run(job, emit)

    return run_guarded(job_run, emit, log, lambda: Path(job.output_dir) if job is not None else None)


if __name__ == "__main__":
    cli(main)
