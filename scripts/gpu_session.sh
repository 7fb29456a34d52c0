#!/usr/bin/env bash
# One lent-GPU session: the zoo's GPU jobs side by side within a time budget, from a packed store.
#
# A lent machine receives only the checkout (64 MiB) and has no registry and no ../shared, so
# everything travels in an ignored folder (.gpu: add /.gpu/ to .git/info/exclude) prepared here:
#   python scripts/pack_store.py pack ~/.cache/tinyrhythm/stores/<store> .gpu/store   # 43 MiB
#   mkdir -p .gpu/data/nstdb && cp $TINYRHYTHM_DATA/nstdb/nstdb.h5 .gpu/data/nstdb/    # augmentation noise
#   pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#       --platform manylinux_2_28_x86_64 -d .gpu/whl wfdb==4.3.1                     # imported, not used
# and run there (device tool: carry .gpu) as `BUDGET=480 bash scripts/gpu_session.sh`; the runs come
# back as $OUT/runs.tgz (no test split travels: `tinyrhythm calibrate RUN --out NEW` scores it here).
# The default jobs are the next zoo's candidates of the README's "Lead mixing": the zoo's recipe with lead
# mixing, as it shipped (equal dataset shares) and with square-root sampling; JOBS overrides the list; DEV=cpu PY=.venv/bin/python EXTRA_PATH=... rehearses it on a CPU.
set -u
BUDGET=${BUDGET:-420}
DEV=${DEV:-cuda}
PY=${PY:-python3}
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD/src${EXTRA_PATH:+:$EXTRA_PATH} TINYRHYTHM_DATA=$PWD/.gpu/data
if [ -z "${EXTRA_PATH:-}" ]; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl \
    && export PYTHONPATH=$PYTHONPATH:/tmp/site || exit 1
fi
# fail in seconds, not after the budget, when an import or the noise file is missing
$PY -c "import tinyrhythm.train.loop, tinyrhythm.datasets.nstdb as n; n.load_noise()" || exit 1
OUTD=${OUT:-/tmp/gpu_session}; mkdir -p "$OUTD"
{
  nvidia-smi -L 2>/dev/null
  $PY -c "import torch; print(torch.__version__, torch.cuda.is_available())"
  $PY scripts/pack_store.py unpack .gpu/store/pack.npz.xz /tmp/gstore
  $PY scripts/timed_train.py --store /tmp/gstore --budget "$BUDGET" --out runs/ --device "$DEV" ${JOBS:-\
    cnn3lm=configs/rhythm-gpu-leadmix-cnn3.json cnn5lm=configs/rhythm-gpu-leadmix-cnn5.json \
    cnn3lmp=configs/rhythm-gpu-leadmix-cnn3.json:dataset_size_power=0.5 cnn5lmp=configs/rhythm-gpu-leadmix-cnn5.json:dataset_size_power=0.5}
  echo "exit $?"
} 2>&1 | tee "$OUTD/log"
tar czf "$OUTD/runs.tgz" runs/
