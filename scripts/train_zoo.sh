#!/usr/bin/env bash
# The recipe behind the shipped CinC 2017 zoo (model zoo v1): trains CNN1..CNN5 at 62.5 Hz,
# CNN3 with three seeds, and CNN3 at 250 Hz for the input-rate comparison. Two lanes of
# one thread each: on a 2-vCPU machine that is faster than one lane of two threads.
#   TINYRHYTHM_DATA=../shared/data bash scripts/train_zoo.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs/zoo}
mkdir -p "$runs"
tr() { # name, then extra options
  local name=$1; shift
  if [ -f "$runs/$name/metrics.json" ]; then return; fi
  if [ -f "$runs/$name/checkpoint.pt" ]; then resume=--resume; else resume=; fi
  tinyrhythm train --config configs/cinc2017.json --out "$runs/$name" --quiet $resume "$@" > "$runs/$name.log" 2>&1
}
tinyrhythm data build cinc2017 --task cinc2017 --fs 62.5 --hop 64 --out stores/cinc2017-62.5 --workers 2 --quiet
tinyrhythm data build cinc2017 --task cinc2017 --fs 250 --hop 256 --out stores/cinc2017-250 --workers 2 --quiet
s62=stores/cinc2017-62.5
( tr cnn5-s0 --model cnn5 --store $s62; tr cnn4-s0 --model cnn4 --store $s62; tr cnn3-s2 --model cnn3 --seed 2 --store $s62 ) &
( tr cnn3-s0 --model cnn3 --store $s62; tr cnn3-s1 --model cnn3 --seed 1 --store $s62;
  tr cnn3-250hz-s0 --model cnn3 --fs 250 --hop 256 --store stores/cinc2017-250;
  tr cnn1-s0 --model cnn1 --store $s62; tr cnn2-s0 --model cnn2 --store $s62 ) &
wait
