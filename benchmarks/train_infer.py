"""Training and inference throughput on one CPU thread.

1. Training windows/s end to end (window store reads + class-balanced sampling +
   augmentation + forward/backward/step) against compute only (random tensors, same
   model and batch); the ratio shows what the data path costs (goal >= 0.9).
2. Inference windows/s per model (batch 256, eval mode).
3. `predict` on 1,700 CinC records (read + resample + window + classify), the figure
   behind "well under a minute".

    TINYRHYTHM_DATA=../shared/data python benchmarks/train_infer.py --store stores/cinc2017-62.5
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from tinyrhythm import models
from tinyrhythm.datasets import Cinc2017, load_noise
from tinyrhythm.datasets.files import read_any
from tinyrhythm.inference import predict_signals
from tinyrhythm.runtime import LoadedModel, ModelCard
from tinyrhythm.train.augment import Augmenter
from tinyrhythm.train.config import AugmentConfig
from tinyrhythm.windows.store import WindowStore


def train_rate(model, batches, batch_size, make_batch) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for i in range(batches + 2):
        if i == 2:
            t = time.perf_counter()
        x, y = make_batch()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batches * batch_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--records", type=int, default=1700)
    args = ap.parse_args()
    torch.set_num_threads(1)
    store = WindowStore(args.store)
    idx, weights = store.indices("train"), store.sample_weights("train")
    p = weights / weights.sum()
    rng = np.random.default_rng(0)
    aug = Augmenter(AugmentConfig(), store.fs, load_noise())
    gen = torch.Generator().manual_seed(0)
    n_cls = len(store.classes)
    bs = args.batch_size

    def real_batch():
        xb, yb = store.batch(rng.choice(idx, size=bs, p=p))
        return aug(torch.from_numpy(xb).unsqueeze(1), gen), torch.from_numpy(yb)

    xr, yr = torch.randn(bs, 1, store.window_length), torch.randint(0, n_cls, (bs,))
    print(f"training, 1 thread, batch {bs}, {store.window_length}-sample windows at {store.fs:g} Hz")
    print(f"{'model':<8} {'end-to-end w/s':>15} {'compute-only w/s':>17} {'ratio':>6}")
    for name in ("cnn1", "cnn3", "cnn5"):
        torch.manual_seed(0)
        e2e = train_rate(models.create(name, n_cls, store.window_length), args.batches, bs, real_batch)
        torch.manual_seed(0)
        comp = train_rate(models.create(name, n_cls, store.window_length), args.batches, bs, lambda: (xr, yr))
        print(f"{name:<8} {e2e:15.0f} {comp:17.0f} {e2e / comp:6.2f}")

    for threads in (1, 2):
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        rate = train_rate(models.create("cnn3", n_cls, store.window_length), args.batches, bs, lambda: (xr, yr))
        print(f"cnn3 compute-only with {threads} thread(s): {rate:.0f} w/s")
    torch.set_num_threads(1)

    print("\ninference, 1 thread, batch 256")
    print(f"{'model':<8} {'windows/s':>10} {'ms/window':>10}")
    x = torch.randn(256, 1, store.window_length)
    for name in models.REGISTRY:
        m = models.create(name, n_cls, store.window_length).eval()
        with torch.no_grad():
            m(x)
            t = time.perf_counter()
            reps = 3 if name == "teacher" else 10
            for _ in range(reps):
                m(x)
            rate = reps * 256 / (time.perf_counter() - t)
        print(f"{name:<8} {rate:10.0f} {1000 / rate:10.3f}")

    ds = Cinc2017()
    heas = [ds.root / f"{p.split('/')[-1]}.hea" for p in ds.patients()[: args.records]]
    card = ModelCard(name="cnn3", format="torch", task="cinc2017", classes=tuple(store.classes), fs=store.fs,
                     input_length=store.window_length)
    lm = LoadedModel("cnn3", models.create("cnn3", n_cls, store.window_length).eval(), card)
    t = time.perf_counter()
    items = [read_any(h) for h in heas]
    t_read = time.perf_counter() - t
    predict_signals(lm, [(s, fs) for _, s, fs in items])
    t_all = time.perf_counter() - t
    print(f"\npredict cnn3 on {len(heas)} CinC records, 1 thread: {t_all:.1f} s "
          f"({t_read:.1f} s reading), {len(heas) / t_all:.0f} records/s")


if __name__ == "__main__":
    main()
