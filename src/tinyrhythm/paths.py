"""Output locations checked before any work is done, so a wrong --out is one line, not a traceback
after an hour of analysis."""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from .errors import DataError, TinyRhythmError


def _existing_parent_is_folder(path: Path) -> None:
    for parent in [path, *path.parents]:
        if parent.exists():
            if not parent.is_dir():
                raise DataError(parent, "is a file, not a folder: cannot write inside it")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise DataError(parent, "folder is not writable")
            return


def check_output_dir(path: str | os.PathLike) -> Path:
    """A folder to write into (created later): not a file, not under a file, writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(path, "--out is not a folder (a file of that name exists)")
    _existing_parent_is_folder(path)
    return path


def check_output_file(path: str | os.PathLike) -> Path:
    """A file to write (atomically, later): not a folder, its folder not under a file."""
    path = Path(path)
    if path.is_dir():
        raise TinyRhythmError(f"{path}: --out must be a file name such as report.html, not a folder")
    _existing_parent_is_folder(path.parent)
    return path


def check_annotation_extension(ext: str) -> str:
    """WFDB annotation extensions are letters (wfdb refuses anything else, after the work)."""
    if not re.fullmatch(r"[A-Za-z]{1,16}", ext or ""):
        raise TinyRhythmError(f"--ann-ext {ext!r}: an annotation extension is 1-16 letters (e.g. tr, qrs)")
    return ext


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux renameat2 RENAME_EXCHANGE); False where unavailable."""
    import ctypes

    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def replace_dir(work: str | os.PathLike, out: str | os.PathLike) -> None:
    """Put a finished folder `work` at `out`, replacing what is there so that at every instant
    `out` holds either the previous complete output or the new one, never neither."""
    import shutil

    work, out = Path(work), Path(out)
    if out.is_dir() and not out.is_symlink():
        if _exchange(work, out):  # out is the new folder now; work holds the old one
            shutil.rmtree(work, ignore_errors=True)
            return
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)  # a crash here leaves the previous output complete in OUT.old
        os.replace(work, out)
        shutil.rmtree(old, ignore_errors=True)
        return
    if out.exists() or out.is_symlink():
        out.unlink()
    os.replace(work, out)


def write_atomic(path: str | os.PathLike, data: str | bytes) -> Path:
    """Write a file whole or not at all: a temporary file beside it, flushed, then renamed over it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def sha256_file(path: str | os.PathLike) -> str:
    """SHA-256 of a file, read in 1 MiB blocks: the one hash every weights, card and download check uses."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """`write_atomic` of a JSON document (sorted keys, indented): stores, runs and checkpoints."""
    return write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")
