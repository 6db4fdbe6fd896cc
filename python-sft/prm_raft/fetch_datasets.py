"""Fetch the public datasets, in their raw record formats, from the Hugging Face Hub.

    python -m prm_raft.fetch_datasets --out DIR [--only gsm8k,math,math500,omi2] [--force]

Writes one JSONL file per dataset into DIR, each atomically (a temporary file, then a rename):

    gsm8k-train.jsonl, gsm8k-test.jsonl  openai/gsm8k "main": question, answer
    math-train.jsonl                      EleutherAI/hendrycks_math (7 subjects): problem, level, type, solution
    math500-test.jsonl                    HuggingFaceH4/MATH-500: problem, solution, answer, subject, level, unique_id
    omi2.jsonl                            nvidia/OpenMathInstruct-2, streamed, only problem_source in
                                          augmented_math / augmented_gsm8k, one row per distinct problem,
                                          at most --omi2-max-per-source rows per source (the TypeScript side
                                          draws its 12.5K + 12.5K from these with a seed)

A file that already exists is kept (``--force`` fetches it again), so a re-run only fetches what is
missing and needs no network when nothing is. Progress is JSON lines on stdout
(``{"event":"progress",...}`` ... ``{"event":"done","output":DIR}``).

Exit codes: 0 done; 2 not retryable (the Hub is unreachable, offline mode without a cached copy, a
dataset gone or changed shape, a bad command line) with a message on stderr that says how to supply
the files by hand; 1 anything else (such as a connection dropped mid-download: retry).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

DEFAULT_ENDPOINT = "https://huggingface.co"
OMI2_SOURCES = ("augmented_math", "augmented_gsm8k")
MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)


class FetchError(Exception):
    """Not retryable: exit code 2 with this message."""


@dataclass(frozen=True)
class Spec:
    name: str  # output file stem
    group: str  # --only name
    fields: tuple[str, ...]
    what: str  # one line for the manual-supply instructions
    shared_copy: str | None = None  # path of a copy under .../shared/data, if one is usually there


SPECS = (
    Spec(
        "gsm8k-train",
        "gsm8k",
        ("question", "answer"),
        "GSM8K train (7,473 rows; openai/gsm8k, config \"main\"): question, answer "
        "(the worked solution ending '#### N')",
        "gsm8k/train.jsonl",
    ),
    Spec(
        "gsm8k-test",
        "gsm8k",
        ("question", "answer"),
        "GSM8K test (1,319 rows): question, answer (ending '#### N')",
        "gsm8k/test.jsonl",
    ),
    Spec(
        "math-train",
        "math",
        ("problem", "level", "type", "solution"),
        "MATH train (7,500 rows; e.g. EleutherAI/hendrycks_math, all 7 subjects): problem, "
        "level (\"Level 1\"..\"Level 5\"), type, solution (the answer in \\boxed{})",
    ),
    Spec(
        "math500-test",
        "math500",
        ("problem", "solution", "answer", "subject", "level", "unique_id"),
        "MATH500 (500 rows; HuggingFaceH4/MATH-500): problem, solution, answer, subject, "
        "level (an integer), unique_id",
        "math500/test.jsonl",
    ),
    Spec(
        "omi2",
        "omi2",
        ("problem", "generated_solution", "expected_answer", "problem_source"),
        "OpenMathInstruct-2 (nvidia/OpenMathInstruct-2) rows whose problem_source is augmented_math "
        "or augmented_gsm8k (any number; the pipeline draws 12.5K of each): problem, "
        "generated_solution, expected_answer, problem_source",
    ),
)
SPEC_BY_NAME = {s.name: s for s in SPECS}
GROUPS = {g: [s.name for s in SPECS if s.group == g] for g in dict.fromkeys(s.group for s in SPECS)}


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


# ---------------------------------------------------------------------------------------------
# Manual-supply instructions and the reachability check
# ---------------------------------------------------------------------------------------------


def find_shared_data(starts: Iterable[Path] | None = None) -> Path | None:
    """A ``shared/data`` directory beside the project or one of its ancestors, if there is one."""
    if starts is None:
        starts = (Path.cwd(), Path(__file__).resolve().parent)
    for start in starts:
        for d in (start, *start.parents):
            cand = d / "shared" / "data"
            if cand.is_dir():
                return cand
    return None


def manual_instructions(out_dir: Path, names: list[str], shared: Path | None) -> str:
    width = max(len(f"{out_dir / n}.jsonl") for n in names)
    lines = [f"Supply the raw files by hand instead: JSON lines (one object per line) in {out_dir}/:"]
    for n in names:
        lines.append(f"  {str(out_dir / n) + '.jsonl':<{width}}  {SPEC_BY_NAME[n].what}")
    copies = [(n, SPEC_BY_NAME[n].shared_copy) for n in names if SPEC_BY_NAME[n].shared_copy]
    if copies:
        if shared is not None:
            have = [(n, shared / c) for n, c in copies if (shared / c).is_file()]
            if have:
                lines.append(f"A copy of GSM8K and MATH500 in these formats is at {shared}:")
                for n, src in have:
                    lines.append(f"  cp {src} {out_dir / n}.jsonl")
        else:
            lines.append(
                "A copy of GSM8K and MATH500 may be at ../shared/data "
                "(gsm8k/train.jsonl, gsm8k/test.jsonl, math500/test.jsonl): copy them to the names above."
            )
    lines.append(
        f"Or run `python -m prm_raft.fetch_datasets --out DIR` on a machine that reaches the Hub and copy "
        f"DIR's files into {out_dir}/; files already there are kept and not fetched again."
    )
    return "\n".join(lines)


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_mode() -> bool:
    return any(
        os.environ.get(v, "").strip().upper() in ("1", "ON", "YES", "TRUE")
        for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    )


def hub_unreachable_reason(endpoint: str, timeout_s: float) -> str | None:
    """None if the Hub answers HTTP at all (any status), else why it could not be reached."""
    req = urllib.request.Request(f"{endpoint}/api/datasets/openai/gsm8k", method="HEAD")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s):
            return None
    except urllib.error.HTTPError:
        return None  # a server answered: reachable (a 5xx is for the loader's retries)
    except urllib.error.URLError as e:
        return str(e.reason)
    except (OSError, TimeoutError, ValueError) as e:
        return str(e) or type(e).__name__


# ---------------------------------------------------------------------------------------------
# Row sources (each yields raw-format dicts)
# ---------------------------------------------------------------------------------------------


def _pick(row: dict[str, Any], spec: Spec, where: str) -> dict[str, Any]:
    missing = [f for f in spec.fields if f not in row]
    if missing:
        raise FetchError(
            f"{where}: rows lack {', '.join(missing)} (the dataset changed shape; have: {', '.join(sorted(row))})"
        )
    return {f: row[f] for f in spec.fields}


def rows_gsm8k(split: str) -> Iterator[dict[str, Any]]:
    from datasets import load_dataset

    spec = SPEC_BY_NAME[f"gsm8k-{split}"]
    for row in load_dataset("openai/gsm8k", "main", split=split):
        yield _pick(row, spec, "openai/gsm8k")


def rows_math_train() -> Iterator[dict[str, Any]]:
    from datasets import load_dataset

    spec = SPEC_BY_NAME["math-train"]
    for subject in MATH_SUBJECTS:
        for row in load_dataset("EleutherAI/hendrycks_math", subject, split="train"):
            yield _pick(row, spec, f"EleutherAI/hendrycks_math {subject}")


def rows_math500() -> Iterator[dict[str, Any]]:
    from datasets import load_dataset

    spec = SPEC_BY_NAME["math500-test"]
    for row in load_dataset("HuggingFaceH4/MATH-500", split="test"):
        yield _pick(row, spec, "HuggingFaceH4/MATH-500")


def select_omi2(
    rows: Iterable[dict[str, Any]],
    max_per_source: int,
    sources: tuple[str, ...] = OMI2_SOURCES,
    on_progress: Callable[[int, dict[str, int]], None] | None = None,
    progress_every: int = 100_000,
) -> Iterator[dict[str, Any]]:
    """Rows of the wanted sources, the first per distinct problem, at most ``max_per_source`` each.

    Stops reading as soon as every source is full, so a stream is never read further than needed.
    """
    spec = SPEC_BY_NAME["omi2"]
    kept = {s: 0 for s in sources}
    seen: set[int] = set()
    scanned = 0
    for row in rows:
        scanned += 1
        if on_progress and scanned % progress_every == 0:
            on_progress(scanned, dict(kept))
        src = row.get("problem_source")
        if src not in kept or kept[src] >= max_per_source:
            continue
        key = hash((src, row.get("problem")))
        if key in seen:
            continue
        seen.add(key)
        kept[src] += 1
        yield _pick(row, spec, "nvidia/OpenMathInstruct-2")
        if all(k >= max_per_source for k in kept.values()):
            break
    if on_progress:
        on_progress(scanned, dict(kept))


def rows_omi2(split: str, max_per_source: int) -> Iterator[dict[str, Any]]:
    from datasets import load_dataset

    stream = load_dataset("nvidia/OpenMathInstruct-2", split=split, streaming=True)
    try:
        stream = stream.select_columns(list(SPEC_BY_NAME["omi2"].fields))
    except Exception:
        pass  # an older datasets: read every column
    yield from select_omi2(
        stream,
        max_per_source,
        on_progress=lambda scanned, kept: emit("progress", dataset="omi2", scanned=scanned, kept=kept),
    )


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def write_jsonl_atomic(
    path: Path, rows: Iterable[dict[str, Any]], on_row: Callable[[int], None] | None = None
) -> int:
    """Stream rows to a temporary file beside ``path``, then rename it into place; returns the count."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False))
                f.write("\n")
                n += 1
                if on_row:
                    on_row(n)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return n


def row_source(name: str, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    if name == "gsm8k-train":
        return rows_gsm8k("train")
    if name == "gsm8k-test":
        return rows_gsm8k("test")
    if name == "math-train":
        return rows_math_train()
    if name == "math500-test":
        return rows_math500()
    if name == "omi2":
        return rows_omi2(args.omi2_split, args.omi2_max_per_source)
    raise FetchError(f"unknown dataset {name!r}")


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def parse_only(value: str | None) -> list[str]:
    if not value:
        return [s.name for s in SPECS]
    names: list[str] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        if part in GROUPS:
            names.extend(GROUPS[part])
        elif part in SPEC_BY_NAME:
            names.append(part)
        else:
            raise FetchError(
                f"--only: unknown dataset {part!r} (expected some of {', '.join(GROUPS)} "
                f"or {', '.join(SPEC_BY_NAME)})"
            )
    return list(dict.fromkeys(names))


def _is_not_found(e: BaseException) -> bool:
    names = {t.__name__ for t in type(e).__mro__}
    return bool(names & {"DatasetNotFoundError", "RepositoryNotFoundError", "GatedRepoError", "FileNotFoundError"})


def fetch(args: argparse.Namespace) -> int:
    out_dir = Path(args.out).resolve()
    names = parse_only(args.only)
    todo = [n for n in names if args.force or not (out_dir / f"{n}.jsonl").is_file()]
    for n in names:
        if n not in todo:
            emit("progress", dataset=n, status="exists", path=str(out_dir / f"{n}.jsonl"))
    if not todo:
        emit("done", output=str(out_dir))
        return 0

    shared = find_shared_data()
    endpoint = hub_endpoint()
    if not offline_mode():
        reason = hub_unreachable_reason(endpoint, args.hub_timeout)
        if reason is not None:
            raise FetchError(
                f"the Hugging Face Hub is unreachable at {endpoint} ({reason}); nothing was fetched.\n"
                + manual_instructions(out_dir, todo, shared)
            )

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create output directory {out_dir}: {e.strerror or e}") from e

    # Fail fast if the Hub stops answering mid-way, instead of the default long waits.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(max(args.hub_timeout, 1) * 2)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()

    for n in todo:
        path = out_dir / f"{n}.jsonl"
        emit("progress", dataset=n, status="fetching")
        t0 = time.monotonic()
        try:
            count = write_jsonl_atomic(path, row_source(n, args))
        except FetchError:
            raise
        except Exception as e:
            if offline_mode():
                raise FetchError(
                    f"{n}: offline mode (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE) and no cached copy "
                    f"({type(e).__name__}: {e}).\n"
                    + manual_instructions(out_dir, [m for m in todo if not (out_dir / f"{m}.jsonl").is_file()], shared)
                ) from e
            if _is_not_found(e):
                raise FetchError(
                    f"{n}: the dataset is not on the Hub at {endpoint} ({type(e).__name__}: {e}).\n"
                    + manual_instructions(out_dir, [n], shared)
                ) from e
            raise
        emit(
            "progress",
            dataset=n,
            status="written",
            rows=count,
            path=str(path),
            seconds=round(time.monotonic() - t0, 1),
        )
    emit("done", output=str(out_dir))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prm_raft.fetch_datasets",
        description="Fetch GSM8K, MATH, MATH500 and OpenMathInstruct-2 in their raw formats as JSONL.",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated subset of {','.join(GROUPS)} (or file names such as gsm8k-test)",
    )
    parser.add_argument("--force", action="store_true", help="fetch again files that already exist")
    parser.add_argument(
        "--hub-timeout", type=float, default=5.0, help="seconds to wait for the Hub to answer (default 5)"
    )
    parser.add_argument(
        "--omi2-split",
        default="train_1M",
        help="OpenMathInstruct-2 split to stream: train_1M (a fair 1M-row downsample, default), "
        "train_2M, train_5M or train (14M)",
    )
    parser.add_argument(
        "--omi2-max-per-source",
        type=int,
        default=200_000,
        help="keep at most this many distinct problems per source (default 200000)",
    )
    args = parser.parse_args(argv)
    if args.omi2_max_per_source < 1:
        parser.error("--omi2-max-per-source must be >= 1")
    if args.hub_timeout <= 0:
        parser.error("--hub-timeout must be > 0")
    try:
        return fetch(args)
    except FetchError as e:
        emit("error", retryable=False, message=str(e).split("\n", 1)[0])
        print(f"fetch_datasets: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # retryable: a dropped connection, a 5xx, a full disk...
        emit("error", retryable=True, message=f"{type(e).__name__}: {e}")
        print(f"fetch_datasets: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
