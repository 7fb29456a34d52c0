"""Loading the original Icentia11k pickles without running code from them.

A pickle can name any importable callable and have it called on load; these files
come from the internet, so only the handful of names that numpy arrays, lists,
dicts, tuples and numbers need are admitted. Anything else raises UnsafePickleError.
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib

from ..errors import DataError

# (module, name) as written in the pickle -> where it lives in today's numpy/Python.
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"): ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"): ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"): ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"): ("numpy", "ndarray"),
    ("numpy", "dtype"): ("numpy", "dtype"),
    # Protocol-2 pickles written by Python 3 encode bytes as _codecs.encode(str, 'latin1').
    ("_codecs", "encode"): ("_codecs", "encode"),
    ("__builtin__", "bytes"): ("builtins", "bytes"),
    ("builtins", "bytes"): ("builtins", "bytes"),
}


class UnsafePickleError(DataError):
    pass


# The largest original Icentia11k file (a patient's 50 segments of float32 signal) unpacks to
# about 210 MB; a pickle asking for more is refused before the bytes are allocated. An
# opcode-dense pickle can still build ~8 bytes of pointers per byte read: at most ~2 GB.
MAX_BYTES = 256 << 20


class _Limited:
    """A file that refuses reads past `limit` bytes in all, checked before each read."""

    def __init__(self, f, path: str, limit: int):
        self._f, self._path, self._left = f, path, limit

    def _take(self, n: int) -> int:
        if n is None or n < 0 or n > self._left:
            raise UnsafePickleError(self._path, f"refused to load: the pickle asks for more than {MAX_BYTES >> 20} MB")
        self._left -= n
        return n

    def read(self, n: int = -1) -> bytes:
        return self._f.read(self._take(n))

    def readinto(self, b) -> int:
        return self._f.readinto(memoryview(b)[: self._take(len(b))])

    def readline(self, limit: int = -1) -> bytes:
        line = self._f.readline(min(self._left, 1 << 20))
        self._take(len(line))
        return line


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file, encoding="latin1")
        self._path = path

    def find_class(self, module: str, name: str):
        target = _ALLOWED.get((module, name))
        if target is None:
            raise UnsafePickleError(
                self._path, f"refused to load: the pickle asks for {module}.{name}, which is not a numpy array or plain data"
            )
        return super().find_class(*target)


def load(path: str | os.PathLike):
    """Unpickle a .pkl or .pkl.gz file admitting only numpy arrays and plain data."""
    path = str(path)
    if not os.path.isfile(path):
        raise DataError(path, "file not found")
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            return _RestrictedUnpickler(_Limited(f, path, MAX_BYTES), path).load()
    except UnsafePickleError:
        raise
    except (RecursionError, MemoryError):
        raise DataError(path, "refused to load: the pickle nests too deeply or asks for too much memory") from None
    except (pickle.UnpicklingError, EOFError, OSError, zlib.error, ValueError, TypeError, AttributeError,
            LookupError, UnicodeDecodeError) as exc:  # LookupError: also an unknown codec named in the stream
        raise DataError(path, f"unreadable or truncated pickle ({type(exc).__name__}: {exc})") from None
