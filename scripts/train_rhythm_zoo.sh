#!/usr/bin/env bash
# Zoo v3: the recorder-independent rhythm models (task rhythm3), as trained for the package.
# Two single-thread jobs side by side on a 2-core machine; about 1.5 h in all.
set -euo pipefail
: "${TINYRHYTHM_DATA:?set TINYRHYTHM_DATA to the data folder}"
tinyrhythm train --model cnn5 --config configs/rhythm-cnn5.json --out runs/rhythm-cnn5 &
{ tinyrhythm train --model cnn3 --config configs/rhythm.json --out runs/rhythm-cnn3
  tinyrhythm train --model cnn1 --config configs/rhythm.json --out runs/rhythm-cnn1; } &
wait
tinyrhythm quantize runs/rhythm-cnn3 --method ptq --reduce-range --calibration minmax --out runs/rhythm-cnn3-int8 --threads 1
for m in rhythm-cnn1 rhythm-cnn3 rhythm-cnn5 rhythm-cnn3-int8; do
  python scripts/cross_dataset.py runs/$m --out runs/$m/cross_dataset.json > /dev/null
done
python scripts/package_zoo.py rhythm-cnn1=runs/rhythm-cnn1 rhythm-cnn3=runs/rhythm-cnn3 \
    rhythm-cnn5=runs/rhythm-cnn5 rhythm-cnn3-int8=runs/rhythm-cnn3-int8
