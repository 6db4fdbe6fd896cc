"""SmolLM2-135M-Instruct (``make smollm2``): what the character-level tiny policy cannot show — a byte-level BPE
tokenizer, a chat template, an EOS that is a chat token — through the policy server's engine and the SFT job.

Every test reads the converted checkpoint in models/smollm2-135m-instruct (``make test`` builds it first) and is
skipped, saying so, when it is not there. Generations are a few dozen tokens: the whole file takes about a minute
on 2 idle cores.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from prm_raft import sft, smollm2

MODEL = Path(os.environ.get("PRM_RAFT_TEST_SMOLLM2") or Path(__file__).resolve().parents[2] / "models" / "smollm2-135m-instruct")
pytestmark = pytest.mark.skipif(not (MODEL / "config.json").is_file(), reason=f"no {MODEL}: run `make smollm2` (make test does)")

QUESTION = "Tom has 3 apples and buys 4 more. How many apples does he have now?"
# The chat template's rendering of one user turn starts with its default system prompt; the prompt preset
# `smollm2-chat` (core/prompts.ts) writes the same text out, which tests/e2e/smollm2.e2e.test.ts checks.
SYSTEM = "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"


def chat_prompt(tokenizer, user: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(MODEL)


@pytest.fixture(scope="module")
def engine():
    import torch

    from prm_raft.policy_server import Engine

    torch.set_num_threads(2)
    return Engine(MODEL, max_batch=8)


# --------------------------------------------------------------------------------------------------
# The converted checkpoint
# --------------------------------------------------------------------------------------------------


def test_checkpoint_is_plain_and_matches_its_provenance(tokenizer):
    assert smollm2.up_to_date(MODEL)  # `make smollm2` would do nothing
    prov = json.loads((MODEL / "provenance.json").read_text())
    assert prov["wheel_sha256"] == smollm2.WHEEL_SHA256 and prov["gguf_sha256"] == smollm2.GGUF_SHA256
    config = json.loads((MODEL / "config.json").read_text())
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    assert prov["parameters"] == 134_515_008
    # The chat model's turn ends with <|im_end|>: that is its EOS, for generation and for SFT.
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.chat_template
    gen = json.loads((MODEL / "generation_config.json").read_text())
    assert gen["eos_token_id"] == tokenizer.eos_token_id == 2


# --------------------------------------------------------------------------------------------------
# Chat template: applied once
# --------------------------------------------------------------------------------------------------


def test_prompt_encoding_applies_the_chat_template_once(tokenizer, engine):
    prompt = chat_prompt(tokenizer, QUESTION)
    assert prompt.startswith(SYSTEM) and prompt.endswith("<|im_start|>assistant\n")
    ids = engine.encode(prompt)
    # The server adds nothing around the rendered template (no BOS in front of the first <|im_start|>) and the
    # text's special tokens are parsed as the ids the model was trained on.
    assert ids == tokenizer.apply_chat_template([{"role": "user", "content": QUESTION}], add_generation_prompt=True, tokenize=True, return_dict=False)
    im_start = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert ids[0] == im_start and ids.count(im_start) == 3  # system, user, assistant: once each
    # The SFT job reads the same prompt as the same ids: no template or BOS added on top.
    tok = sft.tokenize_examples(tokenizer, [prompt], ["7"])
    assert tok.input_ids[0][: tok.prompt_lengths[0]] == ids


# --------------------------------------------------------------------------------------------------
# SFT: completion-only loss at a BPE boundary, EOS once
# --------------------------------------------------------------------------------------------------


def _trainer_rows(tmp_path, pairs, tokenizer, **job):
    train = tmp_path / "train.jsonl"
    train.write_text("".join(json.dumps({"prompt": p, "completion": c}) + "\n" for p, c in pairs))
    cfg = {"model": str(MODEL), "train_file": str(train), "output_dir": str(tmp_path / "out"), "max_steps": 1,
           "per_device_batch_size": len(pairs), "max_length": 512, **job}
    job_obj = sft.parse_config(cfg)
    data = sft.read_train_file(job_obj.train_file)
    trainer = sft.build_trainer(job_obj, data, tokenizer, callbacks=[])
    rows = [trainer.train_dataset[i] for i in range(len(pairs))]
    return trainer.data_collator(rows)


@pytest.mark.parametrize("kind", ["chat", "plain"])
def test_loss_covers_exactly_the_completion_at_a_bpe_boundary(tokenizer, tmp_path, kind):
    # Two prompt/completion pairs whose tokens merge across the boundary when tokenized together: the chat prompt
    # ends with "\n" and the completion starts with a blank line ("\n" + "\n\n" -> "\n\n", "\n"); a plain prompt
    # ends with a space and the completion starts with a word (" " + "Tom" -> " Tom"). TRL's own tokenization of
    # prompt + completion then starts the loss inside the prompt, on a context the served model never sees.
    if kind == "chat":
        prompt = chat_prompt(tokenizer, QUESTION)
        completions = ["\n\nTom has 3 + 4 = 7 apples.\nThe answer is 7.", " He has 7 apples.", "7"]
    else:
        prompt = f"Question: {QUESTION}\nAnswer: "
        completions = ["Tom has 3 + 4 = 7 apples.\nThe answer is 7.", "\n7", "7"]
    p_ids = tokenizer(prompt)["input_ids"]
    joint = tokenizer(prompt + completions[0])["input_ids"]
    assert joint[: len(p_ids)] != p_ids, "the test needs a pair whose tokens merge across the boundary"

    batch = _trainer_rows(tmp_path, [(prompt, c) for c in completions], tokenizer)
    eos = tokenizer.eos_token_id
    for i, completion in enumerate(completions):
        ids, labels = batch["input_ids"][i].tolist(), batch["labels"][i].tolist()
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        n_p, n = len(p_ids), len(p_ids) + len(c_ids) + 1
        assert ids[:n_p] == p_ids  # the context the served model sees, token for token
        assert labels[:n_p] == [-100] * n_p  # no loss on any prompt token
        assert labels[n_p:n] == c_ids + [eos]  # loss on exactly the completion's tokens, then EOS
        assert tokenizer.decode(labels[n_p : n - 1]) == completion  # ... which spell the completion, no more
        assert all(x == -100 for x in labels[n:])  # padding (the pad token is the EOS token): no loss
        assert [x for x in labels if x != -100].count(eos) == 1  # EOS learned once


def test_eos_is_appended_once_when_the_completion_already_ends_with_it(tokenizer, tmp_path):
    prompt = chat_prompt(tokenizer, QUESTION)
    batch = _trainer_rows(tmp_path, [(prompt, "The answer is 7.<|im_end|>"), (prompt, "The answer is 7.")], tokenizer)
    a, b = batch["labels"][0].tolist(), batch["labels"][1].tolist()
    assert a == b  # the EOS already there is not doubled
    trained = [x for x in a if x != -100]
    assert trained[-1] == tokenizer.eos_token_id and trained.count(tokenizer.eos_token_id) == 1


# --------------------------------------------------------------------------------------------------
# Generation: EOS, stop strings that end inside a token
# --------------------------------------------------------------------------------------------------


def test_generation_stops_at_the_chat_eos_and_drops_it(tokenizer, engine):
    prompt = chat_prompt(tokenizer, "What is 2+3? Answer with the number only.")
    [[c]] = engine.complete([prompt], n=1, temperature=0, max_tokens=24)  # greedy: "2 + 3 = 5", then <|im_end|>
    assert c.finish_reason == "stop" and c.stop_reason is None  # ended by <|im_end|>, not by the length limit
    assert "5" in c.text and "<|im_end|>" not in c.text and "<|im_start|>" not in c.text
    assert c.completion_tokens < 24


def test_stop_strings_that_end_inside_a_token(tokenizer, engine):
    prompt = chat_prompt(tokenizer, QUESTION)
    [[free]] = engine.complete([prompt], n=1, temperature=0, max_tokens=32)
    gen_ids = tokenizer(free.text, add_special_tokens=False)["input_ids"]
    pieces = [tokenizer.decode([t]) for t in gen_ids]
    # A multi-character token after the first few, and a stop string that ends after its first character:
    # the stop is found in the decoded text although no token ends there.
    k = next(i for i, p in enumerate(pieces) if i >= 3 and len(p.strip()) >= 2)
    start = len("".join(pieces[:k]))
    first_char = start + (len(pieces[k]) - len(pieces[k].lstrip())) + 1  # through the token's first visible char
    stop = free.text[start - 3 : first_char]
    assert free.text.find(stop) == start - 3, "pick a stop that first occurs here"
    [[c]] = engine.complete([prompt], n=1, temperature=0, max_tokens=32, stop=[stop, "never-seen-stop"])
    assert c.finish_reason == "stop" and c.stop_reason == stop
    assert c.text == free.text[: start - 3]  # cut before the stop, as vLLM does; the rest of the token is dropped too
    assert c.completion_tokens <= free.completion_tokens  # generation ended at the token that completed the stop


def test_a_stop_string_that_is_a_special_token_ends_generation_at_it(tokenizer, engine):
    # A model whose EOS is another token (a base model's <|endoftext|>, a chat fine-tune that kept it) ends its turn
    # with <|im_end|>, which only a stop catches. The decoded text leaves special tokens out, so as a text stop it
    # never matched and generation ran on past the turn.
    from prm_raft.policy_server import Engine

    other = Engine(MODEL, model=engine.model, tokenizer=engine.tokenizer)
    other.eos_ids = {tokenizer.convert_tokens_to_ids("<|endoftext|>")}
    prompt = chat_prompt(tokenizer, "What is 2+3? Answer with the number only.")
    [[free]] = other.complete([prompt], n=1, temperature=0, max_tokens=24)
    [[c]] = other.complete([prompt], n=1, temperature=0, max_tokens=24, stop=["<|im_end|>"])
    assert (c.finish_reason, c.stop_reason) == ("stop", "<|im_end|>")
    assert "5" in c.text and "<|im_end|>" not in c.text
    assert free.text.startswith(c.text) and free.completion_tokens > c.completion_tokens  # without it: past the turn
    [[e]] = engine.complete([prompt], n=1, temperature=0, max_tokens=24, stop=["<|im_end|>"])
    assert (e.text, e.finish_reason, e.stop_reason) == (c.text, "stop", None)  # the model's own EOS: as before
