"""Exact step labels for tinymath solutions (pure functions, no I/O).

tinymath's reference solution is a chain of steps ``a op b = c`` (one per line) and a final ``#### N`` line.
A candidate solution (a list of step strings, e.g. a policy sample split into lines) gets one label per step:

    label(step i) = 1  iff  every step before it has label 1  AND  step i is correct at position i,
                   else 0  (so once a step is wrong, every later step is 0).

"Correct at position i", for ``k`` = the number of equation steps before step i (the reference chain's
equations are ``r_1 .. r_n`` with results ``v_1 .. v_n`` and the answer ``A``):

- an equation step (``check_step(step)`` is not None) is correct iff ``k < n`` and
  (1) its arithmetic is right (``check_step`` is True),
  (2) its result equals ``v_{k+1}``, the reference chain's value at that step, and
  (3) it uses the right quantities: the same operation as ``r_{k+1}`` on the same two operands
      (in either order for ``+`` and ``*``, in order for ``-`` and ``/``).
  (3) is stricter than (2) alone: ``10 + 9 = 19`` where the reference says ``12 + 7 = 19`` reaches the right
  value from the wrong numbers, which is not a right step. (2) is implied by (1) and (3); it is kept explicit.
- the final answer line ``#### N`` is correct iff N equals the reference answer (as numbers: ``14.0`` = ``14``)
  and it is the first answer line. The prefix rule above still applies: an answer after a wrong step is 0
  even when N happens to be right. The answer line does not have to come after all n reference steps.
- anything else (prose, a chained equation, a blank line, a second answer line...) is wrong.

The ORM label of a whole solution is :func:`outcome_label`: 1 iff its final ``#### N`` answer is the reference
answer, whatever the steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from prm_raft.tiny.tinymath import _STEP_RE, check_step, final_answer

_ANSWER_RE = re.compile(r"^\s*####\s*(?P<n>\S.*?)\s*$")


@dataclass(frozen=True)
class Equation:
    a: Fraction
    op: str  # one of + - * /
    b: Fraction
    c: Fraction


def _frac(text: str) -> Fraction:
    return Fraction(text.replace("\u2212", "-"))


def parse_equation(line: str) -> Equation | None:
    """``a op b = c`` with the operator normalized to ``+ - * /``; None if the line is not one equation."""
    if not isinstance(line, str):
        return None
    m = _STEP_RE.match(line)
    if m is None:
        return None
    op = m["op"]
    op = "-" if op in "-\u2212" else "*" if op in "*\u00d7xX" else "/" if op in "/\u00f7" else "+"
    return Equation(_frac(m["a"]), op, _frac(m["b"]), _frac(m["c"]))


def parse_answer_line(line: str) -> str | None:
    """The N of a ``#### N`` line, else None."""
    if not isinstance(line, str):
        return None
    m = _ANSWER_RE.match(line)
    return m["n"] if m else None


def same_answer(got: str | None, ref: str) -> bool:
    """Numeric equality when both parse as numbers (``14.0`` = ``14``; commas as thousands separators), else exact text."""
    if got is None:
        return False
    g, r = got.strip().replace(",", ""), ref.strip().replace(",", "")
    try:
        return _frac(g) == _frac(r)
    except (ValueError, ZeroDivisionError):
        return g == r


@dataclass(frozen=True)
class Reference:
    equations: tuple[Equation, ...]
    answer: str

    @classmethod
    def from_solution(cls, solution: str, answer: str | None = None) -> "Reference":
        eqs = []
        ans = None
        for line in solution.split("\n"):
            if not line.strip():
                continue
            e = parse_equation(line)
            if e is not None:
                eqs.append(e)
                continue
            a = parse_answer_line(line)
            if a is not None:
                ans = a
                continue
            raise ValueError(f"reference solution line is neither an equation nor '#### N': {line!r}")
        if answer is None:
            answer = ans
        if answer is None:
            raise ValueError("reference solution has no '#### N' answer line and no answer was given")
        return cls(tuple(eqs), answer)


def _same_operands(got: Equation, ref: Equation) -> bool:
    if got.op != ref.op:
        return False
    if got.op in "+*":
        return sorted((got.a, got.b)) == sorted((ref.a, ref.b))
    return (got.a, got.b) == (ref.a, ref.b)


def step_is_correct(step: str, ref: Reference, k: int) -> bool:
    """Is `step` right as the step after `k` correct equation steps (see the module docstring)?"""
    e = parse_equation(step)
    if e is not None:
        if k >= len(ref.equations):
            return False
        r = ref.equations[k]
        return bool(check_step(step)) and e.c == r.c and _same_operands(e, r)
    n = parse_answer_line(step)
    if n is not None:
        return same_answer(n, ref.answer)
    return False


def step_labels(steps: Sequence[str], ref: Reference) -> list[int]:
    """One exact 0/1 label per step: 1 while the solution prefix up to and including the step is correct."""
    labels: list[int] = []
    k = 0  # correct equation steps so far
    ok = True
    for step in steps:
        if ok and step_is_correct(step, ref, k):
            labels.append(1)
            if parse_equation(step) is not None:
                k += 1
            else:  # a right answer line ends the solution: any step after it is wrong
                ok = False
        else:
            ok = False
            labels.append(0)
    return labels


def labels_for_record(steps: Sequence[str], record: dict) -> list[int]:
    """`step_labels` against a tinymath record (``solution`` and ``answer``)."""
    return step_labels(steps, Reference.from_solution(record["solution"], record.get("answer")))


def split_steps(text: str) -> list[str]:
    """A tinymath solution's steps: its non-blank lines, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def outcome_label(text_or_steps: str | Sequence[str], answer: str) -> int:
    """The ORM label: 1 iff the solution's last ``#### N`` answer is the reference answer."""
    text = text_or_steps if isinstance(text_or_steps, str) else "\n".join(text_or_steps)
    return int(same_answer(final_answer(text), answer))
