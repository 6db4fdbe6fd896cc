"""tinymath: deterministic synthetic multi-step arithmetic word problems.

Every problem takes 2-4 steps over small non-negative integers (every intermediate result <= MAX_VALUE = 99; the only larger number is a $100 bill).
The solution has exactly one step per line, each an exactly checkable equation ``a op b = c``
(op is ``+``, ``-`` or ``*``), followed by a GSM8K-style final line ``#### <answer>``::

    {"id": "tinymath-train-000001", "question": "Ann has 12 apples. She buys 7 more. ...",
     "solution": "12 + 7 = 19\\n19 - 5 = 14\\n#### 14", "answer": "14"}

Splits come from fixed seeds (test first, then train, which skips any question already used), so
``python -m prm_raft.tiny.tinymath --out DIR`` writes byte-identical ``train.jsonl`` / ``test.jsonl`` on every run.

``check_step(line)`` checks one step line exactly: True (a right equation), False (a wrong one),
None (not an ``a op b = c`` equation). It checks the arithmetic only, not whether the step uses the
right numbers from the question.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable, Iterator

TRAIN_SIZE = 16000
TEST_SIZE = 2000  # standard error of a 40% accuracy: 1.1 points (it was 2.2 at 500, as large as the effects measured)
TEST_CORE_SIZE = 500  # the test split's first problems, which the train split excludes
TRAIN_SEED = 1
TEST_SEED = 2
MAX_VALUE = 99  # every intermediate result (and every number but a $100 bill) stays in [0, MAX_VALUE]
MAX_ADD = 15  # operands of "+" changes are in [2, MAX_ADD]
MAX_SUB = 20  # operands of "-" changes are in [2, MAX_SUB] (and never more than the current value)
MUL_MAX_VALUE = 15  # a value is multiplied (by 2 or 3) only when it is at most this

# --------------------------------------------------------------------------------------------------
# Checking one step
# --------------------------------------------------------------------------------------------------

_NUM = r"[-\u2212]?\d+(?:\.\d+)?"
_STEP_RE = re.compile(
    rf"^\s*(?P<a>{_NUM})\s*(?P<op>[+\-\u2212*\u00d7xX/\u00f7])\s*(?P<b>{_NUM})\s*=\s*(?P<c>{_NUM})\s*$"
)


def _num(text: str) -> Fraction:
    return Fraction(text.replace("\u2212", "-"))


def check_step(line: str) -> bool | None:
    """Check one reasoning step exactly.

    Returns True if ``line`` is an equation ``a op b = c`` (op one of ``+ - * / × x ÷ −``; integers or
    decimals, optionally negative; surrounding whitespace ignored) that is arithmetically right,
    False if it is such an equation but wrong (division by zero included), None if it is not one
    (text, the ``#### N`` answer line, an empty line, chained equations, units after the number...).
    """
    if not isinstance(line, str):
        return None
    m = _STEP_RE.match(line)
    if m is None:
        return None
    a, b, c = _num(m["a"]), _num(m["b"]), _num(m["c"])
    op = m["op"]
    if op == "+":
        value = a + b
    elif op in "-\u2212":
        value = a - b
    elif op in "*\u00d7xX":
        value = a * b
    else:  # "/" or "÷"
        if b == 0:
            return False
        value = a / b
    return value == c


def final_answer(text: str) -> str | None:
    """The answer after the last ``####`` marker of a solution (stripped), or None when there is none."""
    idx = text.rfind("####")
    if idx < 0:
        return None
    rest = text[idx + 4 :].strip()
    if not rest:
        return None
    return rest.split("\n", 1)[0].strip() or None


# --------------------------------------------------------------------------------------------------
# Vocabulary
# --------------------------------------------------------------------------------------------------

# (name, subject pronoun, object pronoun, possessive)
NAMES: list[tuple[str, str, str, str]] = [
    (n, "She", "her", "her")
    for n in ["Ann", "Mia", "Lily", "Emma", "Zoe", "Nora", "Ruth", "Ella", "Ava", "Kim", "Sara", "Lucy", "Jane", "Rosa", "Ivy"]
] + [
    (n, "He", "him", "his")
    for n in ["Bob", "Tom", "Sam", "Leo", "Max", "Ben", "Jack", "Paul", "Omar", "Raj", "Dan", "Eli", "Hugo", "Ned", "Carl"]
]
OBJECTS = [
    "apples", "marbles", "stickers", "pencils", "cookies", "books", "coins", "shells", "cards", "stamps",
    "eggs", "balloons", "beads", "candies", "toy cars", "crayons", "buttons", "rocks", "pens", "cupcakes",
    "oranges", "flowers", "blocks", "ribbons", "grapes", "nuts", "plums", "bottles", "badges", "kites",
]
CONTAINERS = ["box", "bag", "jar", "basket", "crate", "bin", "tin", "drawer"]
ITEMS = ["toy", "hat", "book", "ball", "cap", "game", "pen", "kite", "lamp", "mug"]
CONNECTORS = [""]


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]


class _Builder:
    """Collects sentences and solution steps; `add`/`sub`/`mul` return the new value."""

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.steps: list[str] = []

    def say(self, sentence: str) -> None:
        self.sentences.append(sentence)

    def step(self, a: int, op: str, b: int) -> int:
        c = a + b if op == "+" else a - b if op == "-" else a * b
        assert 0 <= c <= MAX_VALUE, (a, op, b, c)
        self.steps.append(f"{a} {op} {b} = {c}")
        return c

    def record(self, question: str, answer: int) -> dict[str, str]:
        assert self.steps[-1].endswith(f"= {answer}")
        solution = "\n".join(self.steps + [f"#### {answer}"])
        return {"question": " ".join(self.sentences + [question]), "solution": solution, "answer": str(answer)}


def _pick_op(rng: random.Random, value: int, allow_mul: bool = True) -> tuple[str, int]:
    """A random operation (op, operand) that keeps the value in [0, MAX_VALUE]."""
    choices = ["+", "-"]
    if allow_mul and 1 <= value <= MUL_MAX_VALUE:
        choices.append("*")
    op = rng.choice(choices)
    if op == "-" and value < 3:
        op = "+"
    if op == "+" and value > MAX_VALUE - 2:
        op = "-"
    if op == "+":
        return op, rng.randint(2, min(MAX_ADD, MAX_VALUE - value))
    if op == "-":
        return op, rng.randint(2, min(value, MAX_SUB))
    return op, rng.randint(2, min(3, MAX_VALUE // value))


def _person_op_sentence(rng: random.Random, who: tuple[str, str, str, str], friend: str, obj: str, op: str, k: int) -> str:
    name, subj, objp, poss = who
    p = rng.choice([name, subj])
    conn = rng.choice(CONNECTORS)
    if conn:
        p_lower = p if p == name else p.lower()
        lead = conn + p_lower
    else:
        lead = p
    if op == "+":
        form = rng.randrange(5)
        if form == 0:
            return f"{lead} buys {k} more."
        if form == 1:
            return f"{lead} finds {k} more."
        if form == 2:
            return f"{lead} gets {k} more from {friend}."
        if form == 3:
            return f"{conn}{friend} gives {name if p == name else objp} {k} more."
        return f"{lead} wins {k} more {obj}."
    if op == "-":
        form = rng.randrange(5)
        if form == 0:
            return f"{lead} gives {k} to {friend}."
        if form == 1:
            return f"{lead} loses {k}."
        if form == 2:
            return f"{lead} sells {k} of them."
        if form == 3:
            return f"{lead} gives {k} {obj} away."
        return f"{lead} trades away {k}."
    # multiply
    if k == 2 and rng.random() < 0.5:
        return f"{lead} doubles {poss} {obj}."
    if k == 3 and rng.random() < 0.5:
        return f"{lead} triples {poss} {obj}."
    return f"{lead} ends up with {k} times as many."


def _gen_person(rng: random.Random, n_steps: int) -> dict[str, str]:
    """One person's pile changes n_steps times (the first step may be groups x size)."""
    b = _Builder()
    who = rng.choice(NAMES)
    friend = rng.choice([n for n, *_ in NAMES if n != who[0]])
    obj = rng.choice(OBJECTS)
    name = who[0]
    if rng.random() < 0.35:
        groups, size = rng.randint(2, 5), rng.randint(2, 9)
        cont = rng.choice(CONTAINERS)
        b.say(f"{name} has {groups} {cont}s with {size} {obj} in each.")
        value = b.step(groups, "*", size)
        remaining = n_steps - 1
    else:
        value = rng.randint(3, 30)
        b.say(f"{name} has {value} {obj}.")
        remaining = n_steps
    for _ in range(remaining):
        op, k = _pick_op(rng, value)
        b.say(_person_op_sentence(rng, who, friend, obj, op, k))
        value = b.step(value, op, k)
    q = rng.choice(
        [
            f"How many {obj} does {name} have now?",
            f"How many {obj} does {name} have?",
        ]
    )
    return b.record(q, value)


def _gen_container(rng: random.Random, n_steps: int) -> dict[str, str]:
    """Things go into and out of a container."""
    b = _Builder()
    cont = rng.choice(CONTAINERS)
    obj = rng.choice(OBJECTS)
    names = rng.sample([n for n, *_ in NAMES], 2)
    value = rng.randint(5, 30)
    b.say(rng.choice([f"A {cont} holds {value} {obj}.", f"There are {value} {obj} in a {cont}."]))
    for i in range(n_steps):
        op, k = _pick_op(rng, value, allow_mul=True)
        who = names[i % 2]
        conn = rng.choice(CONNECTORS)
        if op == "+":
            s = rng.choice([f"{who} puts in {k} more.", f"{who} adds {k} {obj}.", f"{who} adds {k} more."])
        elif op == "-":
            s = rng.choice([f"{who} takes out {k}.", f"{who} takes {k} {obj}.", f"{who} removes {k}."])
        else:
            s = rng.choice([f"{who} makes the number {k} times as big.", f"The number of {obj} grows {k} times."])
        b.say(conn + s)
        value = b.step(value, op, k)
    q = rng.choice([f"How many {obj} are in the {cont} now?", f"How many {obj} are in the {cont}?"])
    return b.record(q, value)


def _gen_two_people(rng: random.Random, n_steps: int) -> dict[str, str]:
    """B's amount is defined from A's; later steps change B's pile; maybe ask for the total."""
    b = _Builder()
    (na, *_), who_b = rng.sample(NAMES, 2)
    nb = who_b[0]
    obj = rng.choice(OBJECTS)
    a_val = rng.randint(3, 30)
    b.say(f"{na} has {a_val} {obj}.")
    rel = rng.choice(["+", "-", "*"] if a_val <= MUL_MAX_VALUE else ["+", "-"])
    if rel == "+":
        k = rng.randint(2, MAX_ADD)
        b.say(f"{nb} has {k} more {obj} than {na}.")
    elif rel == "-":
        k = rng.randint(2, a_val - 1)
        b.say(f"{nb} has {k} fewer {obj} than {na}.")
    else:
        k = rng.randint(2, 3)
        b.say(f"{nb} has {k} times as many {obj} as {na}.")
    value = b.step(a_val, rel, k)
    ask_total = n_steps >= 3 and rng.random() < 0.5
    for _ in range(n_steps - 1 - (1 if ask_total else 0)):
        op, k = _pick_op(rng, value, allow_mul=False)
        b.say(_person_op_sentence(rng, who_b, na, obj, op, k))
        value = b.step(value, op, k)
    if ask_total and a_val + value <= MAX_VALUE:
        value = b.step(a_val, "+", value)
        q = f"How many {obj} do {na} and {nb} have together?"
    elif ask_total:  # the total would be too big; keep the step count with one more change to B
        op, k = _pick_op(rng, value, allow_mul=False)
        b.say(_person_op_sentence(rng, who_b, na, obj, op, k))
        value = b.step(value, op, k)
        q = f"How many {obj} does {nb} have now?"
    else:
        q = f"How many {obj} does {nb} have now?"
    return b.record(q, value)


def _gen_shopping(rng: random.Random, n_steps: int) -> dict[str, str]:
    """Buy k things at p dollars each, maybe another item, pay with a bill, get change."""
    b = _Builder()
    name, subj, *_ = rng.choice(NAMES)
    obj = rng.choice(OBJECTS)
    count, price = rng.randint(2, 5), rng.randint(2, 9)
    b.say(f"{name} buys {count} {obj} at ${price} each.")
    total = b.step(count, "*", price)
    extras = n_steps - 2
    for _ in range(extras):
        item = rng.choice(ITEMS)
        cost = rng.randint(2, 15)
        b.say(f"{subj} also buys a {item} for ${cost}.")
        total = b.step(total, "+", cost)
    bills = (10, 20, 50, 100)
    bill = next(x for x in bills if x > total)
    if rng.random() < 0.3 and bill < bills[-1]:
        bill = next(x for x in bills if x > bill)
    b.say(f"{subj} pays with a ${bill} bill.")
    change = b.step(bill, "-", total)
    return b.record(f"How much change does {name} get?", change)


GENERATORS: list[Callable[[random.Random, int], dict[str, str]]] = [
    _gen_person,
    _gen_person,
    _gen_container,
    _gen_two_people,
    _gen_shopping,
]


def generate_problem(rng: random.Random) -> dict[str, str]:
    """One problem (question, solution, answer) drawn from `rng`."""
    n_steps = rng.choice([2, 2, 2, 3, 3, 4])
    gen = rng.choice(GENERATORS)
    rec = gen(rng, n_steps)
    assert 2 <= len(rec["solution"].split("\n")) - 1 <= 4
    return rec


def _problems(seed: int) -> Iterator[dict[str, str]]:
    rng = random.Random(seed)
    while True:
        yield generate_problem(rng)


def generate_split(name: str, size: int, seed: int, exclude: Iterable[str] = ()) -> list[dict[str, str]]:
    """`size` records with distinct questions, none of them in `exclude`, ids ``tinymath-<name>-000001``..."""
    seen = set(exclude)
    out: list[dict[str, str]] = []
    for rec in _problems(seed):
        if rec["question"] in seen:
            continue
        seen.add(rec["question"])
        out.append({"id": f"tinymath-{name}-{len(out) + 1:06d}", **rec})
        if len(out) == size:
            return out
    raise AssertionError("unreachable")


def generate_splits(train_size: int = TRAIN_SIZE, test_size: int = TEST_SIZE) -> dict[str, list[dict[str, str]]]:
    """The fixed splits: the test core (the first TEST_CORE_SIZE problems from TEST_SEED), train from TRAIN_SEED minus
    the core, then the test split from TEST_SEED minus the train questions (so it starts with the core).

    The test split was the core alone until it grew to 2,000; ordering it this way kept train.jsonl, and the policy
    trained on it, byte-identical, and the two splits still share no question."""
    core = generate_split("test", min(test_size, TEST_CORE_SIZE), TEST_SEED)
    train = generate_split("train", train_size, TRAIN_SEED, exclude=(r["question"] for r in core))
    test = generate_split("test", test_size, TEST_SEED, exclude=(r["question"] for r in train))
    return {"train": train, "test": test}


def to_jsonl(records: Iterable[dict[str, str]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to a temporary file beside `path`, fsync it, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_jsonl(path: str | os.PathLike[str]) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.tiny.tinymath", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (train.jsonl and test.jsonl)")
    ap.add_argument("--train-size", type=int, default=TRAIN_SIZE)
    ap.add_argument("--test-size", type=int, default=TEST_SIZE)
    args = ap.parse_args(argv)
    if args.train_size < 1 or args.test_size < 1:
        print("--train-size and --test-size must be >= 1", file=sys.stderr)
        return 2
    splits = generate_splits(args.train_size, args.test_size)
    out = Path(args.out)
    for name, records in splits.items():
        write_atomic(out / f"{name}.jsonl", to_jsonl(records))
        print(json.dumps({"event": "wrote", "split": name, "records": len(records), "path": str(out / f"{name}.jsonl")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
