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
from typing import Any, NamedTuple, Sequence

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


class PrmInput(NamedTuple):
    """One solution as the model sees it: token ids, the position of every step's tag, and where every step's
    own tokens start (step i's tokens are ``input_ids[step_starts[i]:tag_positions[i]]``)."""

    input_ids: list[int]
    tag_positions: list[int]
    step_starts: list[int]


def build_prm_input(tokenizer: Any, question: str, steps: Sequence[str], fmt: PrmFormat = DEFAULT_FORMAT) -> PrmInput:
    """The question, then each step followed by the tag token.

    ``len(tag_positions) == len(steps)``, ``input_ids[p] == tag id`` for every returned position and the tag
    id occurs nowhere else. Steps may be any strings (empty, unicode, containing the tag's characters).
    """
    tag = tag_token_id(tokenizer, fmt)
    prompt = fmt.prompt_template.format(question=question)
    ids = list(tokenizer(prompt, add_special_tokens=True, split_special_tokens=True)["input_ids"])
    sep = _encode_text(tokenizer, fmt.step_separator)
    positions: list[int] = []
    starts: list[int] = []
    for i, step in enumerate(steps):
        starts.append(len(ids))
        ids.extend(_encode_text(tokenizer, step))
        positions.append(len(ids))
        ids.append(tag)
        if i + 1 < len(steps):
            ids.extend(sep)
    return PrmInput(ids, positions, starts)


# --------------------------------------------------------------------------------------------------
# Reading scores off a model (training and scoring both call these)
# --------------------------------------------------------------------------------------------------


def steps_for_kind(kind: str, steps: Sequence[str], fmt: PrmFormat = DEFAULT_FORMAT) -> list[str]:
    """What the model sees as steps: the steps themselves for a PRM, one joined step for an ORM."""
    return orm_steps(steps, fmt) if kind == "orm" else list(steps)


def collate(encoded: Sequence[PrmInput], pad_id: int) -> dict[str, Any]:
    """Right-pad a batch of PrmInputs: tensors input_ids, attention_mask, the flat (row, position) index of every
    tag in order (row 0's tags first), and of every step token with the index of the tag (step) it belongs to."""
    import torch

    width = max(len(e.input_ids) for e in encoded)
    input_ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(encoded), width), dtype=torch.long)
    rows, cols, tok_rows, tok_cols, tok_step = [], [], [], [], []
    for i, e in enumerate(encoded):
        input_ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        attention[i, : len(e.input_ids)] = 1
        for start, tag in zip(e.step_starts, e.tag_positions):
            tok_rows.extend([i] * (tag - start))
            tok_cols.extend(range(start, tag))
            tok_step.extend([len(cols)] * (tag - start))
            rows.append(i)
            cols.append(tag)
    return {
        "input_ids": input_ids,
        "attention_mask": attention,
        "tag_rows": torch.tensor(rows, dtype=torch.long),
        "tag_cols": torch.tensor(cols, dtype=torch.long),
        "step_token_rows": torch.tensor(tok_rows, dtype=torch.long),
        "step_token_cols": torch.tensor(tok_cols, dtype=torch.long),
        "step_token_step": torch.tensor(tok_step, dtype=torch.long),
    }


class TagOutputs(NamedTuple):
    """The model's raw output at every tag of a batch, and (when asked) every step's log-likelihood."""

    values: Any  # autoregressive / orm: (tags, 2) [good, bad] next-token logits; regression: (tags,) head values
    step_logprob: Any  # (tags,) sum of log P(token | prefix) over each step's own tokens, or None
    step_tokens: Any  # (tags,) number of tokens in each step, or None


def tag_outputs(model: Any, kind: str, batch: dict[str, Any], label_ids: tuple[int, int] | None, *, step_logprob: bool = False) -> TagOutputs:
    """One forward pass for the whole batch. With `step_logprob`, also each step's log-likelihood under the
    model's own language-model head: how likely the model finds the step as written (the PRM is initialised
    from the policy, so this starts as the policy's own likelihood of the step)."""
    import torch

    rows, cols = batch["tag_rows"], batch["tag_cols"]
    if kind == "regression":
        if step_logprob:
            raise FormatError("a regression PRM has no language-model head: the step log-likelihood needs kind autoregressive or orm")
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return TagOutputs(out.logits[rows, cols, 0], None, None)
    assert label_ids is not None
    hidden = model.base_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    head = model.get_output_embeddings()
    values = head(hidden[rows, cols])[:, list(label_ids)]  # the LM head on the tag positions only
    if not step_logprob:
        return TagOutputs(values, None, None)
    t_rows, t_cols, t_step = batch["step_token_rows"], batch["step_token_cols"], batch["step_token_step"]
    logp = torch.log_softmax(head(hidden[t_rows, t_cols - 1]).float(), dim=-1)  # position t-1 predicts token t
    token_lp = logp.gather(1, batch["input_ids"][t_rows, t_cols][:, None])[:, 0]
    sums = torch.zeros(len(rows), dtype=token_lp.dtype, device=token_lp.device).index_add(0, t_step, token_lp)
    counts = torch.zeros(len(rows), dtype=token_lp.dtype, device=token_lp.device).index_add(0, t_step, torch.ones_like(token_lp))
    return TagOutputs(values, sums, counts)


@dataclass(frozen=True)
class Readout:
    """How a step's score is read: sigmoid(z_good - z_bad + step_logprob_weight * step log-likelihood + bias).
    The default (weight 0, bias 0) is the plain Math-Shepherd readout, P(good) of the 2-way softmax at the tag."""

    step_logprob_weight: float = 0.0
    bias: float = 0.0

    @property
    def uses_step_logprob(self) -> bool:
        return self.step_logprob_weight != 0.0

    @classmethod
    def from_dict(cls, d: Any) -> "Readout":
        if d is None:
            return cls()
        if not isinstance(d, dict) or set(d) - {"step_logprob_weight", "bias"}:
            raise FormatError(f"readout must be an object with step_logprob_weight and bias (got {d!r})")
        vals = {k: d[k] for k in ("step_logprob_weight", "bias") if k in d}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals.values()):
            raise FormatError(f"readout values must be numbers (got {d!r})")
        return cls(**{k: float(v) for k, v in vals.items()})


def score_logits(kind: str, outputs: TagOutputs, weight: Any = 0.0, bias: Any = 0.0) -> Any:
    """Each tag's score before the sigmoid: z_good - z_bad (the 2-way softmax's logit), plus `weight` times the step's
    log-likelihood and `bias` when the step log-likelihood was computed; a regression head's value as it is."""
    if kind == "regression":
        return outputs.values
    z = outputs.values[:, 0] - outputs.values[:, 1]
    if outputs.step_logprob is not None:
        z = z + weight * outputs.step_logprob + bias
    return z


def scores_from_outputs(kind: str, outputs: TagOutputs, readout: Readout = Readout()) -> Any:
    """Scores in [0, 1]: P(good) of the 2-way softmax over [good, bad] (with the readout's log-likelihood term), or
    the sigmoid of the scalar head."""
    import torch

    return torch.sigmoid(score_logits(kind, outputs, readout.step_logprob_weight, readout.bias))
