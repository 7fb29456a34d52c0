"""Downloading the full datasets from PhysioNet, verified against SHA256SUMS.txt.

Each file is fetched into `<name>.part` (resumed with an HTTP Range request when a
partial file is there), checked against the published SHA-256 and only then renamed
into place, so a file under its real name is always complete and verified.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

from ..errors import DataError, TinyRhythmError
from ..paths import sha256_file
from .base import DATASETS, Source


def sources() -> dict[str, Source]:
    """What can be downloaded: the `source` of every registered reader that has one."""
    return {name: cls.source for name, cls in DATASETS.items() if cls.source is not None}

PHYSIONET = "https://physionet.org/files"
CHUNK = 1 << 20


def parse_patients(spec: str) -> set[int]:
    """'0-9,15' -> {0..9, 15}."""
    out: set[int] = set()
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-")
                out.update(range(int(a), int(b) + 1))
            elif part:
                out.add(int(part))
    except ValueError:
        raise TinyRhythmError(f"--patients: cannot read {spec!r} (expected e.g. 0-9,15)") from None
    if not out or min(out) < 0 or max(out) > 10999:
        raise TinyRhythmError(f"--patients: ids must lie in 0..10999, got {spec!r}")
    return out


def icentia_patient_prefix(pid: int) -> str:
    return f"p{pid // 1000:02d}/p{pid:05d}/"


def _open(url: str, start: int = 0):
    req = urllib.request.Request(url, headers={"User-Agent": "tinyrhythm"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(req, timeout=60)
    except urllib.error.HTTPError as exc:
        raise DataError(url, f"HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise DataError(url, f"cannot connect ({getattr(exc, 'reason', exc)})") from None


def read_checksums(url: str) -> dict[str, str]:
    with _open(url) as resp:
        text = resp.read().decode("utf-8", "replace")
    sums = {}
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or len(parts[0]) != 64:
            raise DataError(url, f"line {i} is not '<sha256> <path>'")
        rel = parts[1].strip().lstrip("*")
        pure = PurePosixPath(rel)
        if not rel or "\\" in rel or pure.is_absolute() or ".." in pure.parts or rel != pure.as_posix():
            raise DataError(url, f"line {i} names {rel!r}, a path that would leave the download folder")
        sums[rel] = parts[0].lower()
    return sums


def safe_target(dest: Path, rel: str) -> Path:
    """dest/rel, refused where a symbolic link on the way would lead outside dest."""
    target = dest / rel
    root = dest.resolve()
    if not target.resolve().is_relative_to(root):
        raise DataError(target, "lies outside the download folder (a symbolic link on the way): refused")
    return target


def fetch(url: str, dest: Path, sha256: str) -> str:
    """Fetch one file into place. Returns 'present', 'downloaded' or 'resumed'."""
    if dest.is_file() and sha256_file(dest) == sha256:
        return "present"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    with _open(url, have) as resp:
        resumed = have > 0 and resp.status == 206
        with open(part, "ab" if resumed else "wb") as f:
            for block in iter(lambda: resp.read(CHUNK), b""):
                f.write(block)
    got = sha256_file(part)
    if got != sha256:
        part.unlink()
        raise DataError(url, f"SHA-256 mismatch (expected {sha256[:12]}..., got {got[:12]}...): download discarded")
    os.replace(part, dest)
    return "resumed" if resumed else "downloaded"


def download(name: str, out: str | os.PathLike, *, base_url: str = PHYSIONET, patients: set[int] | None = None,
             quiet: bool = False) -> dict:
    """Download dataset `name` into `out/<its folder>`; returns counts of what was done."""
    known = sources()
    if name not in known:
        raise TinyRhythmError(f"unknown dataset {name!r} to download; known: {', '.join(known)}")
    if patients is not None and name != "icentia11k":
        raise TinyRhythmError("--patients applies to icentia11k only")
    src = known[name]
    root = f"{base_url.rstrip('/')}/{src.slug}/{src.version}"
    sums = read_checksums(f"{root}/SHA256SUMS.txt")
    files = sorted(p for p in sums if src.select(p))
    if patients is not None:
        prefixes = tuple(icentia_patient_prefix(p) for p in sorted(patients))
        files = [p for p in files if p.startswith(prefixes)]
    if not files:
        raise DataError(f"{root}/SHA256SUMS.txt", "lists no files to download for this selection")
    dest = Path(out) / src.dest
    counts = {"present": 0, "downloaded": 0, "resumed": 0}
    it = files
    if not quiet:
        from tqdm import tqdm

        it = tqdm(files, desc=name, unit="file", file=sys.stderr, dynamic_ncols=True)
    targets = {rel: safe_target(dest, rel) for rel in files}  # all checked before the first byte is fetched
    for rel in it:
        counts[fetch(f"{root}/{rel}", targets[rel], sums[rel])] += 1
    if src.finish is not None:
        src.finish(dest)
    return {"dataset": name, "files": len(files), **counts, "dest": str(dest)}
