"""README tables of the rhythm models from their cross_dataset.json files:
`tinyrhythm runs table --kind rhythm`.

    python scripts/rhythm_table.py runs/rhythm-cnn1 runs/rhythm-cnn3 runs/rhythm-cnn3-int8 runs/rhythm-cnn5 \
        [--lodo mitdb=runs/lodo-mitdb cinc2017=runs/lodo-cinc2017 holter=runs/lodo-holter]
"""

import sys

from tinyrhythm.cli import main

if __name__ == "__main__":
    sys.exit(main(["runs", "table", "--kind", "rhythm", *sys.argv[1:]]))
