"""One exception type for every problem with user input.

The CLI turns a TinyRhythmError into a single line on stderr and exit code 2, so
messages must name the file (or setting) and the reason in one sentence.
"""

from __future__ import annotations

import os


class TinyRhythmError(Exception):
    """Bad input: a file, folder, option or setting the user can fix."""


class DataError(TinyRhythmError):
    """A data file or folder that cannot be read as what it claims to be."""

    def __init__(self, path: str | os.PathLike | None, reason: str):
        self.path = None if path is None else str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" if self.path else reason)

    def __reduce__(self):
        # Raised in store-building worker processes: must survive pickling back to the parent.
        return DataError, (self.path, self.reason)
