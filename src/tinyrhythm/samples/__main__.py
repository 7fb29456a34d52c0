"""`python -m tinyrhythm.samples`: the sample records' paths, one per line, for shell use."""

from . import names, path

for n in names():
    print(path(n))
