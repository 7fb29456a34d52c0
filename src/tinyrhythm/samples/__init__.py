"""Sample recordings shipped inside the package, so that the tool can be tried with no dataset.

    >>> from tinyrhythm import samples
    >>> samples.names()
    ['mitdb222_13m']
    >>> samples.path()          # a WFDB record path (no extension), for every reader and command
    PosixPath('.../tinyrhythm/samples/mitdb222_13m')

`python -m tinyrhythm.samples` prints the paths, for shell use:
`tinyrhythm monitor "$(python -m tinyrhythm.samples)" --reference atr`.
Sources and licences: ATTRIBUTION.md beside this file.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import TinyRhythmError

DEFAULT = "mitdb222_13m"


def _folder() -> Path:
    return Path(str(resources.files(__name__)))


def names() -> list[str]:
    """The sample records, by name."""
    return sorted(p.stem for p in _folder().glob("*.hea"))


def path(name: str = DEFAULT) -> Path:
    """The record path of a sample (WFDB: `path.hea`, `path.dat`, reference annotations `path.atr`)."""
    if name not in names():
        raise TinyRhythmError(f"no sample record {name!r}; samples: {', '.join(names())}")
    return _folder() / name


def attribution() -> str:
    """Where the samples come from and under which licence they are redistributed."""
    return (_folder() / "ATTRIBUTION.md").read_text()
