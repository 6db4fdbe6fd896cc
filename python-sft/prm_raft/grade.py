"""Answer extraction and grading, in batches (JSONL in, JSONL out).

    python -m prm_raft.grade --in FILE.jsonl --out FILE.jsonl [--workers N]

Each input line is ``{"kind": "math"|"gsm8k"|"tinymath", "prediction": "...", "reference": "..."}``
(any other key is passed through unchanged); each output line is the input object plus
``"extracted"`` (string or null) and ``"correct"`` (boolean), in input order.

Exit codes: 0 done; 2 bad input (a malformed line, an unreadable file: not retryable); 1 anything else.

Grading rules, by kind:

* ``gsm8k``: the answer is the number after the last ``####``, else after the last
  "The answer is[:]" (MetaMath), else in the last ``\\boxed{}``, else the last number in the text.
  Thousands commas, currency signs and units are dropped; decimals are never rounded; numbers are
  compared exactly as rationals (``18.0 == 18``, ``17.6 != 18``, ``0.5 == 1/2``). A boxed answer that
  is not a plain number (``\\frac{35}{2}``) goes to math-verify.
* ``math``: the last top-level ``\\boxed{}`` / ``\\fbox{}`` (nested braces handled), else the text
  after the last "The answer is[:]" / "The final answer is", else the last math span
  (``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``). Prediction and reference are both wrapped in
  ``\\boxed{}`` (math-verify only parses LaTeX inside a math environment) and compared with
  ``math_verify.verify(gold, pred)``, gold first.
* ``tinymath``: the integer after the last ``####`` (else the last integer), compared exactly.

math-verify's timeouts use ``signal.alarm``, which works only in a process's main thread, so a batch
is cut into one contiguous shard per worker process (``python -m prm_raft.grade --worker FILE``,
never one process per answer); each child grades on its main thread and streams one result line
per answer. A math-verify exception or timeout on one item makes that item incorrect, never the
batch; so does a child that dies or hangs on an item (sympy stuck in C code ignores alarms): the
parent kills it, marks that one item incorrect and starts a fresh child on the rest of the shard.
Answers that need no math-verify (tinymath, gsm8k numbers: no sympy runs) and small batches on the
main thread are graded in-process (a child needs ~3 s to import sympy).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import threading
from fractions import Fraction
from typing import Any, Callable, Iterable

KINDS = ("math", "gsm8k", "tinymath")

# Up to this many items, a caller on the main thread grades in-process by default (a worker
# process spends ~3 s importing sympy and math-verify before its first answer).
IN_PROCESS_MAX = 48
# A shard worker gets this long to start, and then this long per answer, before it is killed
# (math-verify's own alarms bound one answer at ~5 s per parse and per comparison; this guard is for
# sympy stuck in C code, where an alarm cannot interrupt it).
STARTUP_DEADLINE_S = 120.0
ITEM_DEADLINE_S = 60.0

# math-verify limits, per parse and per comparison (seconds).
PARSE_TIMEOUT_S = 5
VERIFY_TIMEOUT_S = 5
# Longer extracted answers are not handed to sympy (they are prose, not an answer).
MAX_ANSWER_CHARS = 1000


class BadInput(ValueError):
    """Bad input: the caller must fix the data (exit code 2, not retryable)."""


# ---------------------------------------------------------------------------------------------
# Text scanning helpers
# ---------------------------------------------------------------------------------------------

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")


def _match_brace(text: str, open_idx: int) -> int:
    """Index of the ``}`` matching the ``{`` at ``open_idx`` (escaped ``\\{``/``\\}`` skipped), or -1."""
    depth = 0
    i = open_idx
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def boxed_contents(text: str) -> list[str]:
    """Contents of the top-level ``\\boxed{..}`` / ``\\fbox{..}`` in order (``\\boxed 5`` too).

    A box that never closes (a truncated generation) is ignored. A box inside another box is part
    of the outer one's content, so ``[-1]`` is the last top-level box.
    """
    out: list[str] = []
    pos = 0
    while True:
        m = _BOX_RE.search(text, pos)
        if not m:
            return out
        i = m.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == "{":
            j = _match_brace(text, i)
            if j < 0:
                pos = m.end()
                continue
            out.append(text[i + 1 : j].strip())
            pos = j + 1
        else:
            # "\boxed 5" (TeX allows a single token argument): up to whitespace or a math delimiter.
            mm = re.match(r"[^\s$]+", text[i:])
            if mm and i > m.end():
                out.append(mm.group(0).rstrip(".,;"))
                pos = i + mm.end()
            else:
                pos = m.end()


_MATH_DELIMS = (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$"))


def _find_close(text: str, close: str, start: int) -> int:
    i = start
    while True:
        j = text.find(close, i)
        if j < 0:
            return -1
        if close.startswith("$") and j > 0 and text[j - 1] == "\\":
            i = j + 1  # an escaped dollar sign is text, not a delimiter
            continue
        return j


def math_spans(text: str) -> list[str]:
    """Contents of the math spans ``$..$``, ``$$..$$``, ``\\(..\\)``, ``\\[..\\]``, in order."""
    spans: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        if text.startswith("\\$", i):
            i += 2
            continue
        for opener, closer in _MATH_DELIMS:
            if text.startswith(opener, i):
                j = _find_close(text, closer, i + len(opener))
                if j < 0:
                    return spans  # unclosed: nothing after it is a span
                spans.append(text[i + len(opener) : j])
                i = j + len(closer)
                break
        else:
            i += 1
    return spans


# "The answer is: 42" (MetaMath), "The answer is 42", "The final answer is $42$" (Minerva).
_ANSWER_IS_RE = re.compile(r"(?:final\s+answer|the\s+answer)\s+is\s*:?", re.IGNORECASE)


def _after_last(pattern: re.Pattern[str], text: str) -> str | None:
    last = None
    for last in pattern.finditer(text):
        pass
    return None if last is None else text[last.end() :]


def _answer_is_tail(text: str) -> str | None:
    """The answer after the last "The answer is[:]": a math span if one opens it, else the line."""
    rest = _after_last(_ANSWER_IS_RE, text)
    if rest is None:
        return None
    rest = rest.lstrip()
    for opener, _ in _MATH_DELIMS:
        if rest.startswith(opener):
            spans = math_spans(rest)
            if spans and spans[0].strip():
                return spans[0].strip()
            break
    line = rest.split("\n", 1)[0].strip()
    line = line.rstrip(" .;")
    if len(line) >= 2 and line[0] == "$" and line[-1] == "$":
        line = line[1:-1].strip()
    if _match_brace("{" + line + "}", 0) != len(line) + 1:
        return None  # unbalanced braces: a truncated generation, not an answer
    return line or None


# ---------------------------------------------------------------------------------------------
# Numbers (gsm8k, tinymath)
# ---------------------------------------------------------------------------------------------

# A number in running text: optional sign (not a binary minus such as "16-3"), optional currency,
# digits with optional thousands commas, optional decimals, optional "/denominator".
_NUM_RE = re.compile(
    r"(?:(?<![\w.)\]}])[-\u2212])?"
    r"(?:\\?\$\s?)?"
    r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?(?![\d])"
    r"|(?:(?<![\w.)\]}])[-\u2212])?(?<![\d,])\.\d+"
)
# An integer in running text (not a piece of a decimal such as 2.5; "7." at a sentence end is 7).
_INT_RE = re.compile(r"(?:(?<![\w.)\]}])-)?(?<![\d.])\d+(?!\d)(?!\.\d)")
_PLAIN_NUM_RE = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+)?$")


def _clean_number(s: str) -> str:
    """Canonical text of a number match: no currency, thousands commas, spaces; ASCII minus."""
    s = s.replace("\u2212", "-").replace("\\$", "").replace("$", "")
    s = re.sub(r"(?<=\d),(?=\d{3})", "", s)
    return re.sub(r"\s+", "", s)


def to_fraction(s: str) -> Fraction | None:
    """Exact value of a plain number ``-1234``, ``17.60``, ``.5``, ``3/4``; None if not one."""
    s = s.strip()
    if not _PLAIN_NUM_RE.match(s):
        return None
    try:
        if "/" in s:
            a, b = s.split("/")
            den = int(b)
            return None if den == 0 else Fraction(a) / den
        return Fraction(s)
    except (ValueError, ZeroDivisionError):
        return None


def _unbox_text(s: str) -> str:
    """Drop LaTeX dressing around a number: ``\\$``, ``\\text{ dollars}``, ``\\%``, ``{,}``."""
    s = re.sub(r"\\(?:text|textbf|mbox|mathrm|textnormal)\s*\{[^{}]*\}", " ", s)
    s = s.replace("{,}", ",").replace("\\!", "").replace("\\,", "").replace("\\ ", " ")
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = re.sub(r"^\\(?:left)?\(|\\(?:right)?\)$", "", s.strip())
    return s.strip().rstrip(".")


def plain_number(s: str) -> str | None:
    """The canonical number if ``s`` is only a number with units/currency dressing, else None."""
    cleaned = _clean_number(_unbox_text(s))
    if re.fullmatch(r"-?\d+(?:\.\d+)?[a-zA-Z]{2,}", cleaned):
        # "18 dollars" (a unit word written without \text): keep the number only. A single letter
        # ("2x") is not taken for a unit.
        cleaned = re.match(r"-?\d+(?:\.\d+)?", cleaned).group(0)  # type: ignore[union-attr]
    return cleaned if to_fraction(cleaned) is not None else None


def _first_number(s: str) -> str | None:
    m = _NUM_RE.search(s)
    return _clean_number(m.group(0)) if m else None


def _last_number(s: str) -> str | None:
    last = None
    for last in _NUM_RE.finditer(s):
        pass
    return _clean_number(last.group(0)) if last else None


_HASHES_RE = re.compile(r"####")


def extract_gsm8k(text: str) -> tuple[str | None, bool]:
    """(answer, is_plain_number). A non-number answer comes only from ``\\boxed{}`` (LaTeX)."""
    tail = _after_last(_HASHES_RE, text)
    if tail is not None:
        n = _first_number(tail.split("\n", 1)[0])
        if n is not None:
            return n, True
    tail = _after_last(_ANSWER_IS_RE, text)
    if tail is not None:
        line = tail.split("\n", 1)[0]
        latex = _answer_is_tail(text)
        if latex and re.search(r"\\(?:[dt]?frac|sqrt|boxed)(?![A-Za-z])", latex):
            # "The answer is: \frac{35}{2}" must not read as 35: a boxed answer decides, else
            # math-verify compares the LaTeX.
            boxes = [b for b in boxed_contents(latex) if b]
            if boxes:
                n = plain_number(boxes[-1])
                return (n, True) if n is not None else (boxes[-1], False)
            return latex, False
        n = _first_number(line)
        if n is not None:
            return n, True
    boxes = [b for b in boxed_contents(text) if b]
    if boxes:
        n = plain_number(boxes[-1])
        if n is not None:
            return n, True
        return boxes[-1], False
    n = _last_number(text)
    return (n, True) if n is not None else (None, False)


def extract_tinymath(text: str) -> str | None:
    tail = _after_last(_HASHES_RE, text)
    if tail is not None:
        m = re.match(r"\s*(-?\d+(?:\.\d+)?)", tail)
        if m:
            return m.group(1)
    last = None
    for last in _INT_RE.finditer(text):
        pass
    return last.group(0) if last else None


def extract_math(text: str) -> str | None:
    boxes = [b for b in boxed_contents(text) if b]
    if boxes:
        return boxes[-1]
    tail = _answer_is_tail(text)
    if tail:
        return tail
    spans = [s.strip() for s in math_spans(text) if s.strip()]
    return spans[-1] if spans else None


def extract(kind: str, prediction: str) -> str | None:
    if kind == "gsm8k":
        return extract_gsm8k(prediction)[0]
    if kind == "math":
        return extract_math(prediction)
    if kind == "tinymath":
        return extract_tinymath(prediction)
    raise BadInput(f"unknown kind {kind!r}")


# ---------------------------------------------------------------------------------------------
# Comparison
# ---------------------------------------------------------------------------------------------


def _normalize_tex(s: str) -> str:
    """Trivial, meaning-preserving normalisation for an exact string shortcut."""
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\left(?![a-zA-Z])|\\right(?![a-zA-Z])", "", s)
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = re.sub(r"\s+", "", s)
    return s.rstrip(".")


def _mv_parse(latex: str) -> list[Any]:
    from math_verify import LatexExtractionConfig, parse

    config = [LatexExtractionConfig(boxed_match_priority=0)]
    latex = latex.strip()
    candidates = []
    if _match_brace("{" + latex + "}", 0) == len(latex) + 1:
        candidates.append("\\boxed{" + latex + "}")
    if "$" not in latex:
        candidates.append("$" + latex + "$")
    for cand in candidates:
        parsed = parse(cand, extraction_config=config, parsing_timeout=PARSE_TIMEOUT_S)
        if parsed:
            return parsed
    return []


def math_equal(reference: str, answer: str) -> bool:
    """math-verify equivalence of two bare LaTeX answers (reference is the gold)."""
    from math_verify import verify

    if _normalize_tex(reference) == _normalize_tex(answer) and _normalize_tex(answer):
        return True
    if len(answer) > MAX_ANSWER_CHARS:
        return False
    gold = _mv_parse(reference)
    pred = _mv_parse(answer)
    if not gold or not pred:
        return False
    return bool(verify(gold, pred, timeout_seconds=VERIFY_TIMEOUT_S))


def _reference_number(reference: str) -> str | None:
    """A gsm8k/tinymath reference: a number, or a worked solution ending ``#### N``."""
    n = plain_number(reference)
    if n is not None:
        return n
    n, is_num = extract_gsm8k(reference)
    return n if is_num else None


class _NeedsMathVerify(BaseException):
    """The fast pass met an answer only math-verify can judge (not an Exception: nothing swallows it)."""


def _defer_to_math_verify(reference: str, answer: str) -> bool:
    raise _NeedsMathVerify


def grade_one(item: dict[str, Any]) -> dict[str, Any]:
    """Grade one validated item; never raises for a bad prediction."""
    from math_verify.errors import TimeoutException

    return _grade(item, math_equal, (Exception, TimeoutException))


def grade_without_math_verify(item: dict[str, Any]) -> dict[str, Any] | None:
    """grade_one's result when it needs no math-verify (tinymath, gsm8k numbers), else None.

    The same code as grade_one up to the first math-verify call, so the same result; no sympy runs,
    so it is safe on any thread and needs no worker process to guard it.
    """
    try:
        return _grade(item, _defer_to_math_verify, (Exception,))
    except _NeedsMathVerify:
        return None


def _grade(
    item: dict[str, Any],
    equal: Callable[[str, str], bool],
    wrong: tuple[type[BaseException], ...],
) -> dict[str, Any]:
    """Grade with ``equal`` for LaTeX comparisons; an exception in ``wrong`` makes the answer incorrect."""
    kind = item["kind"]
    prediction = item["prediction"]
    reference = str(item["reference"])
    extracted: str | None = None
    correct = False
    try:
        if kind == "gsm8k":
            extracted, is_num = extract_gsm8k(prediction)
            if extracted is not None:
                ref_num = _reference_number(reference)
                if is_num and ref_num is not None:
                    correct = to_fraction(extracted) == to_fraction(ref_num)
                else:
                    correct = equal(ref_num if ref_num is not None else reference, extracted)
        elif kind == "tinymath":
            extracted = extract_tinymath(prediction)
            ref = _reference_number(reference)
            if extracted is not None and ref is not None:
                correct = re.fullmatch(r"-?\d+", extracted) is not None and (
                    re.fullmatch(r"-?\d+", ref) is not None and int(extracted) == int(ref)
                )
        elif kind == "math":
            extracted = extract_math(prediction)
            if extracted is not None:
                correct = equal(reference, extracted)
        else:  # validated before; kept for direct callers
            raise BadInput(f"unknown kind {kind!r}")
    except BadInput:
        raise
    except wrong:
        correct = False
    out = dict(item)
    out["extracted"] = extracted
    out["correct"] = bool(correct)
    return out


# ---------------------------------------------------------------------------------------------
# Validation and batching
# ---------------------------------------------------------------------------------------------


def validate_item(obj: Any) -> str | None:
    """What is wrong with one input record, or None if it is well-formed."""
    if not isinstance(obj, dict):
        return f"expected a JSON object, got {type(obj).__name__}"
    for key in ("kind", "prediction", "reference"):
        if key not in obj:
            return f"missing key {key!r}"
    kind = obj["kind"]
    if not isinstance(kind, str) or kind not in KINDS:
        return f"unknown kind {kind!r} (expected one of {', '.join(KINDS)})"
    if not isinstance(obj["prediction"], str):
        return f"'prediction' must be a string, got {type(obj['prediction']).__name__}"
    ref = obj["reference"]
    if isinstance(ref, bool) or not isinstance(ref, (str, int, float)):
        return f"'reference' must be a string, got {type(ref).__name__}"
    if isinstance(ref, float) and not math.isfinite(ref):
        return "'reference' must be a finite number or a string"
    if not str(ref).strip():
        return "'reference' is empty"
    return None


def default_workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 4))


def _grade_shard(shard: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [grade_one(item) for item in shard]


def _fault_hook(item: dict[str, Any]) -> None:
    """Test hook: PRM_RAFT_GRADE_FAULT="hang:<marker>,crash:<marker>" makes a shard worker hang
    (uninterruptibly, like sympy stuck in C code) or die on a prediction containing <marker>."""
    for spec in os.environ.get("PRM_RAFT_GRADE_FAULT", "").split(","):
        mode, _, marker = spec.partition(":")
        if not marker or marker not in item.get("prediction", ""):
            continue
        if mode == "hang":
            import signal
            import time

            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        elif mode == "crash":
            os._exit(70)


def _worker_main(path: str) -> int:
    """Shard worker: grade the JSONL records in ``path``; one result line per record on stdout."""
    import math_verify  # noqa: F401  (import before "ready": a broken install fails the batch)

    out = sys.stdout
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    with open(path, encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            _fault_hook(item)
            g = grade_one(item)
            out.write(json.dumps({"extracted": g["extracted"], "correct": g["correct"]}) + "\n")
            out.flush()
    return 0


def _item_deadline_s() -> float:
    try:
        return float(os.environ.get("PRM_RAFT_GRADE_ITEM_DEADLINE_S", "") or ITEM_DEADLINE_S)
    except ValueError:
        return ITEM_DEADLINE_S


class _ShardRunner:
    """Grades one shard in a child process; a child that hangs or dies on an item is killed, that
    item is marked incorrect, and a fresh child takes the rest of the shard."""

    def __init__(self, items: list[dict[str, Any]], indices: list[int], results: list[Any]):
        self.items = items
        self.indices = indices
        self.results = results
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            pending = list(self.indices)
            while pending:
                done = self._run_child(pending)
                if done < len(pending):
                    # The child died or hung on pending[done]: that item alone is graded incorrect.
                    i = pending[done]
                    self.results[i] = {
                        "extracted": _safe_extract(self.items[i]),
                        "correct": False,
                    }
                    print(
                        f"grade: worker failed or timed out on item {i}; marked incorrect",
                        file=sys.stderr,
                    )
                    pending = pending[done + 1 :]
                else:
                    pending = []
        except BaseException as e:  # reported by grade_items on the calling thread
            self.error = e

    def _run_child(self, pending: list[int]) -> int:
        """Run one child over ``pending``; return how many results it delivered."""
        import subprocess

        fd, tmp = tempfile.mkstemp(prefix="prm-raft-grade-", suffix=".jsonl")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for i in pending:
                    it = self.items[i]
                    rec = {"kind": it["kind"], "prediction": it["prediction"], "reference": it["reference"]}
                    f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            env = dict(os.environ)
            pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
            env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH")) if p)
            proc = subprocess.Popen(
                [sys.executable, "-m", "prm_raft.grade", "--worker", tmp],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env=env,
                text=True,
                encoding="utf-8",
            )
            delivered = 0
            try:
                assert proc.stdout is not None
                if self._readline(proc, STARTUP_DEADLINE_S) != {"ready": True}:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(
                        f"grade worker failed to start (exit code {proc.returncode}); see its stderr above"
                    )
                deadline = _item_deadline_s()
                for i in pending:
                    res = self._readline(proc, deadline)
                    if res is None:
                        break
                    self.results[i] = res
                    delivered += 1
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
            return delivered
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    @staticmethod
    def _readline(proc: Any, timeout_s: float) -> dict[str, Any] | None:
        """One JSON line from the child, or None if it ends or says nothing for ``timeout_s``."""
        timer = threading.Timer(timeout_s, proc.kill)
        timer.daemon = True
        timer.start()
        try:
            line = proc.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            return None
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            return None
        return obj if isinstance(obj, dict) else None


def _safe_extract(item: dict[str, Any]) -> str | None:
    try:
        return extract(item["kind"], item["prediction"])
    except Exception:
        return None


def grade_items(
    items: list[dict[str, Any]],
    workers: int | None = None,
    in_process: bool | None = None,
) -> list[dict[str, Any]]:
    """Grade a batch; returns each item plus ``extracted`` and ``correct``, in input order.

    Raises BadInput if an item is malformed. By default the answers that need no math-verify
    (tinymath, gsm8k numbers) are graded in-process, and of the rest a small batch on the main thread
    too; otherwise the rest is cut into one contiguous shard per worker process (``workers`` defaults
    to min(cpus, 4)); a child stuck or dead on an item costs that item only. ``in_process`` True or
    False grades the whole batch in-process or in workers.
    """
    for i, item in enumerate(items):
        problem = validate_item(item)
        if problem:
            raise BadInput(f"item {i}: {problem}")
    if in_process is not None:
        return _grade_batch(items, workers, in_process)
    # A worker would cost a process and the ~3 s math-verify import for answers that need neither.
    fast = [grade_without_math_verify(item) for item in items]
    rest = [item for item, g in zip(items, fast) if g is None]
    on_main = threading.current_thread() is threading.main_thread()
    slow = iter(_grade_batch(rest, workers, on_main and len(rest) <= IN_PROCESS_MAX))
    return [g if g is not None else next(slow) for g in fast]


def _grade_batch(items: list[dict[str, Any]], workers: int | None, in_process: bool) -> list[dict[str, Any]]:
    """Grade validated items in-process (main thread only) or in shard worker processes."""
    if not items:
        return []
    workers = default_workers() if workers is None else max(1, int(workers))
    on_main = threading.current_thread() is threading.main_thread()
    if in_process:
        if not on_main:
            raise RuntimeError("in-process grading needs the main thread (math-verify uses signal.alarm)")
        return _grade_shard(items)

    n_shards = min(workers, len(items))
    size = -(-len(items) // n_shards)
    results: list[Any] = [None] * len(items)
    runners = [
        _ShardRunner(items, list(range(s, min(s + size, len(items)))), results)
        for s in range(0, len(items), size)
    ]
    threads = [threading.Thread(target=r.run, name=f"grade-shard-{k}", daemon=True) for k, r in enumerate(runners)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in runners:
        if r.error is not None:
            raise r.error
    out = []
    for item, res in zip(items, results):
        rec = dict(item)
        rec["extracted"] = res["extracted"]
        rec["correct"] = bool(res["correct"])
        out.append(rec)
    return out


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def read_items(path: str) -> list[dict[str, Any]]:
    """Read and validate a JSONL file; BadInput names ``file:line`` and what is wrong."""
    items: list[dict[str, Any]] = []
    try:
        f = open(path, encoding="utf-8")
    except OSError as e:
        raise BadInput(f"{path}: cannot read input: {e.strerror or e}") from e
    with f:
        try:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise BadInput(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from e
                problem = validate_item(obj)
                if problem:
                    raise BadInput(f"{path}:{lineno}: {problem}")
                items.append(obj)
        except UnicodeDecodeError as e:
            raise BadInput(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    return items


def write_jsonl_atomic(path: str, records: Iterable[dict[str, Any]]) -> None:
    """Write records to a temporary file beside ``path``, then rename it into place."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False))
                f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def summary(graded: list[dict[str, Any]]) -> str:
    n = len(graded)
    k = sum(1 for g in graded if g["correct"])
    pct = 100.0 * k / n if n else 0.0
    line = f"graded {n}: {k} correct ({pct:.1f}%)"
    kinds = sorted({g["kind"] for g in graded})
    if len(kinds) > 1:
        parts = []
        for kind in kinds:
            sub = [g for g in graded if g["kind"] == kind]
            sk = sum(1 for g in sub if g["correct"])
            parts.append(f"{kind} {sk}/{len(sub)} ({100.0 * sk / len(sub):.1f}%)")
        line += "; " + ", ".join(parts)
    return line


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prm_raft.grade",
        description="Extract and grade math answers with math-verify (JSONL in, JSONL out).",
    )
    parser.add_argument("--in", dest="inp", required=True, help="input JSONL: kind, prediction, reference")
    parser.add_argument("--out", required=True, help="output JSONL: the input plus extracted, correct")
    parser.add_argument(
        "--workers", type=_positive_int, default=None, help="worker processes (default: min(cpus, 4))"
    )
    if argv is None:
        argv = sys.argv[1:]
    if len(argv) == 2 and argv[0] == "--worker":  # internal: one shard worker (see _ShardRunner)
        return _worker_main(argv[1])
    args = parser.parse_args(argv)  # argparse exits 2 on a bad command line
    try:
        items = read_items(args.inp)
        out_dir = os.path.dirname(os.path.abspath(args.out))
        if not os.path.isdir(out_dir):
            raise BadInput(f"{args.out}: output directory {out_dir} does not exist")
        graded = grade_items(items, workers=args.workers)
        write_jsonl_atomic(args.out, graded)
    except BadInput as e:
        print(f"grade: {e}", file=sys.stderr)
        return 2
    print(summary(graded), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
