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
            return _RestrictedUnpickler(f, path).load()
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, OSError, zlib.error, ValueError, TypeError, AttributeError) as exc:
        raise DataError(path, f"unreadable or truncated pickle ({type(exc).__name__}: {exc})") from None
