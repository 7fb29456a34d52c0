"""Package several runs into the model zoo at once (`tinyrhythm zoo add` for each).

    python scripts/package_zoo.py NAME=RUN_DIR [NAME=RUN_DIR ...] [--onepass NAME ...]

A quantized run whose float parent is packaged in the same call names the parent by its zoo
name. Zoo v3.1: rhythm-cnn3=runs/rhythm-cnn3 rhythm-cnn3-int8=runs/rhythm-cnn3-int8 ...
with --onepass for the models whose one-pass agreement allows it (README, "Monitoring").
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tinyrhythm.runtime.package import add_to_zoo


def main(argv: list[str]) -> None:
    onepass = {argv[i + 1] for i, a in enumerate(argv) if a == "--onepass" and i + 1 < len(argv)}
    items = [a for i, a in enumerate(argv) if "=" in a and (i == 0 or argv[i - 1] != "--onepass")]
    names = {str(Path(item.split("=", 1)[1])): item.split("=", 1)[0] for item in items}
    for item in items:
        name, run = item.split("=", 1)
        parent = json.loads((Path(run) / "config.json").read_text()).get("parent")
        card = add_to_zoo(name, run, parent=names.get(str(Path(parent))) if parent else None,
                          monitor_engine="onepass" if name in onepass else None)
        m = card["metrics"]
        print(f"{name}: {card['params_table']} params, test CinC {m.get('cinc_score')}, AF F1 {m.get('af_f1')}, "
              f"macro F1 {m['macro_f1']}")


if __name__ == "__main__":
    main(sys.argv[1:])
