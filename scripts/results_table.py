"""Markdown result tables from training runs (the README's baseline and input-rate tables):
`tinyrhythm runs table --kind training`.

    python scripts/results_table.py runs/zoo
"""

import sys

from tinyrhythm.evaluate.tables import runs_table

if __name__ == "__main__":
    print(runs_table(sys.argv[1:] or ["runs/zoo"], "training"))
