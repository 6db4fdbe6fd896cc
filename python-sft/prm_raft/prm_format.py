"""THE one definition of how a process reward model sees a solution, shared by PRM training and PRM scoring.

Convention (Math-Shepherd, as in the ER-PRM paper): the question, then every step followed by a step tag;
the model's next-token logits AT each tag position, restricted to the good/bad label tokens (``+`` / ``-``)
and soft-maxed over those two, give the probability that the solution is still on track after that step.
A regression PRM reads a scalar head at the same positions; an ORM sees the whole response as one step.

The reference code looks the tag up as ``" ки"`` when training and as ``"ки"`` when scoring, which are two
different token ids for some tokenizers. Here :func:`build_prm_input` returns the token ids and the tag
positions itself, and both the trainer and the server call it, so the two cannot disagree:

- the tag is ONE token: :func:`ensure_tag_token` adds it to the tokenizer as a special (added) token, and the
  tag id is the id of that token;
- the question and every step are encoded with ``split_special_tokens=True``, so no text (a step containing
  ``ки``, ``<eos>``, ...) can ever produce a tag or another special token: the tag ids appear exactly at the
  returned positions and nowhere else;
- pieces are encoded separately and concatenated, so the positions are exact for any tokenizer.

Layout (``F`` = :class:`PrmFormat`; the default matches the tiny policy's prompt)::

    tokenizer(F.prompt_template.format(question=q))      # with the tokenizer's own specials (e.g. <bos>)
    + for each step i: tokens(step_i) + [TAG] + (tokens(F.step_separator) unless i is the last step)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Sequence

STEP_TAG = "ки"  # Math-Shepherd's step tag
GOOD_TOKEN = "+"
BAD_TOKEN = "-"
PROMPT_TEMPLATE = "Question: {question}\nAnswer:\n"  # the tiny policy's prompt (tiny.train_policy.PROMPT_TEMPLATE)
STEP_SEPARATOR = "\n"
FORMAT_VERSION = 1

KINDS = ("autoregressive", "regression", "orm")


class FormatError(ValueError):
    """The tokenizer cannot represent the format (a label token that is not one token, a missing tag...)."""


@dataclass(frozen=True)
class PrmFormat:
    step_tag: str = STEP_TAG
    good_token: str = GOOD_TOKEN
    bad_token: str = BAD_TOKEN
    prompt_template: str = PROMPT_TEMPLATE
    step_separator: str = STEP_SEPARATOR

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PrmFormat":
        known = {f.name for f in fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        for k, v in kw.items():
            if not isinstance(v, str):
                raise FormatError(f"format field {k!r} must be a string")
        fmt = cls(**kw)
        if not fmt.step_tag:
            raise FormatError("step_tag must not be empty")
        if "{question}" not in fmt.prompt_template:
            raise FormatError("prompt_template must contain {question}")
        if fmt.good_token == fmt.bad_token:
            raise FormatError("good_token and bad_token must differ")
        return fmt


DEFAULT_FORMAT = PrmFormat()


def ensure_tag_token(tokenizer: Any, fmt: PrmFormat = DEFAULT_FORMAT) -> bool:
    """Add the step tag to `tokenizer` as one special token unless it already is one. True if added
    (the caller must then resize the model's embeddings)."""
    from tokenizers import AddedToken

    if _tag_id_or_none(tokenizer, fmt) is not None:
        return False
    tokenizer.add_tokens([AddedToken(fmt.step_tag, special=True, normalized=False)], special_tokens=True)
    if _tag_id_or_none(tokenizer, fmt) is None:  # pragma: no cover - a tokenizer that refuses added tokens
        raise FormatError(f"could not add the step tag {fmt.step_tag!r} to the tokenizer as one token")
    return True


def _tag_id_or_none(tokenizer: Any, fmt: PrmFormat) -> int | None:
    ids = tokenizer(fmt.step_tag, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        return None
    tid = int(ids[0])
    if tokenizer.convert_ids_to_tokens(tid) != fmt.step_tag:
        return None
    if tid == getattr(tokenizer, "unk_token_id", None):
        return None
    return tid


def tag_token_id(tokenizer: Any, fmt: PrmFormat = DEFAULT_FORMAT) -> int:
    """The id of the step tag: one token, or FormatError."""
    tid = _tag_id_or_none(tokenizer, fmt)
    if tid is None:
        raise FormatError(f"the step tag {fmt.step_tag!r} is not one token of this tokenizer (call ensure_tag_token)")
    return tid


def label_token_ids(tokenizer: Any, fmt: PrmFormat = DEFAULT_FORMAT) -> tuple[int, int]:
    """(good id, bad id): the `+` and `-` tokens whose logits at a tag form the 2-way softmax."""
    out = []
    for tok in (fmt.good_token, fmt.bad_token):
        ids = tokenizer(tok, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
            raise FormatError(f"the label token {tok!r} is not one known token of this tokenizer (got ids {ids})")
        out.append(int(ids[0]))
    return out[0], out[1]


def _encode_text(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return list(tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"])


def orm_steps(steps: Sequence[str], fmt: PrmFormat = DEFAULT_FORMAT) -> list[str]:
    """An ORM sees the whole response as one step: the steps joined by the step separator."""
    return [fmt.step_separator.join(steps)]


def build_prm_input(
    tokenizer: Any, question: str, steps: Sequence[str], fmt: PrmFormat = DEFAULT_FORMAT
) -> tuple[list[int], list[int]]:
    """(input_ids, tag_positions): the question, then each step followed by the tag token.

    ``len(tag_positions) == len(steps)``, ``input_ids[p] == tag id`` for every returned position and the tag
    id occurs nowhere else. Steps may be any strings (empty, unicode, containing the tag's characters).
    """
    tag = tag_token_id(tokenizer, fmt)
    prompt = fmt.prompt_template.format(question=question)
    ids = list(tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)["input_ids"])
    sep = _encode_text(tokenizer, fmt.step_separator)
    positions: list[int] = []
    for i, step in enumerate(steps):
        ids.extend(_encode_text(tokenizer, step))
        positions.append(len(ids))
        ids.append(tag)
        if i + 1 < len(steps):
            ids.extend(sep)
    return ids, positions


# --------------------------------------------------------------------------------------------------
# Reading scores off a model (training and scoring both call these)
# --------------------------------------------------------------------------------------------------


def steps_for_kind(kind: str, steps: Sequence[str], fmt: PrmFormat = DEFAULT_FORMAT) -> list[str]:
    """What the model sees as steps: the steps themselves for a PRM, one joined step for an ORM."""
    return orm_steps(steps, fmt) if kind == "orm" else list(steps)


def collate(encoded: Sequence[tuple[list[int], list[int]]], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch of (input_ids, tag_positions): tensors input_ids, attention_mask, and the flat
    (row, position) index of every tag in order (row 0's tags first)."""
    import torch

    width = max(len(ids) for ids, _ in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    rows, cols = [], []
    for i, (ids, pos) in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention[i, : len(ids)] = 1
        rows.extend([i] * len(pos))
        cols.extend(pos)
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "tag_rows": torch.tensor(rows, dtype=torch.long),
        "tag_cols": torch.tensor(cols, dtype=torch.long),
    }


def tag_outputs(model: Any, kind: str, batch: dict[str, Any], label_ids: tuple[int, int] | None) -> Any:
    """The raw model output at every tag of `batch` (one forward pass for the whole batch):
    autoregressive / orm: a (tags, 2) tensor of the [good, bad] next-token logits at the tag;
    regression: a (tags,) tensor of the scalar head's value at the tag."""
    rows, cols = batch["tag_rows"], batch["tag_cols"]
    if kind == "regression":
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return out.logits[rows, cols, 0]
    assert label_ids is not None
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    logits = model.get_output_embeddings()(hidden[rows, cols])  # the LM head on the tag positions only
    return logits[:, list(label_ids)]


def scores_from_outputs(kind: str, outputs: Any) -> Any:
    """Scores in [0, 1]: P(good) from the 2-way softmax over [good, bad], or sigmoid of the scalar head."""
    import torch

    if kind == "regression":
        return torch.sigmoid(outputs)
    return torch.softmax(outputs, dim=-1)[:, 0]
