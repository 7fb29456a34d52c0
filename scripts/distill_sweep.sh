#!/usr/bin/env bash
# Distillation runs of the compression study (CNN5 zoo model as teacher), in two lanes of
# one thread each. Run folders match the cells of configs/study-cinc2017.json, so
# `tinyrhythm study` picks them up as finished instead of training them again.
#   TINYRHYTHM_DATA=../shared/data bash scripts/distill_sweep.sh [RUNS_DIR]
set -euo pipefail
runs=${1:-runs/study}
mkdir -p "$runs"
kd() { # name student T alpha seed
  local name=$1
  if [ -f "$runs/$name/metrics.json" ]; then return; fi
  if [ -f "$runs/$name/checkpoint.pt" ]; then resume=--resume; else resume=; fi
  tinyrhythm distill --teacher cnn5 --student "$2" --temperature "$3" --alpha "$4" --seed "$5" \
    --config configs/cinc2017.json --store stores/cinc2017-62.5 --out "$runs/$name" --quiet $resume > "$runs/$name.log" 2>&1
}
( kd cnn3-kd-T4-a0.5-s0 cnn3 4 0.5 0; kd cnn3-kd-T1-a0.5-s0 cnn3 1 0.5 0; kd cnn3-kd-T2-a0.5-s0 cnn3 2 0.5 0
  kd cnn3-kd-T8-a0.5-s0 cnn3 8 0.5 0; kd cnn3-kd-T4-a0.1-s0 cnn3 4 0.1 0 ) &
( kd cnn3-kd-T4-a0.5-s1 cnn3 4 0.5 1; kd cnn3-kd-T4-a0.5-s2 cnn3 4 0.5 2; kd cnn1-kd-T4-a0.5-s0 cnn1 4 0.5 0
  kd cnn2-kd-T4-a0.5-s0 cnn2 4 0.5 0; kd cnn4-kd-T4-a0.5-s0 cnn4 4 0.5 0 ) &
wait
