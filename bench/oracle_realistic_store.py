"""Issue 18: how far any model could go on the realistic stores, told what no retrieval model is told.

Run: python bench/oracle_realistic_store.py [--store-pairs 20000] [--train-pairs 18500,200000] [--epochs 12]

The store of ``bench_training_recipes.py --pairs N`` scores its test gallery (the last 1,000 pairs
of ``realistic_pairs(N)``). Here an *oracle* is trained on pairs of the same world (the same maps,
fresh draws) **with their true shared factors**: per modality, a regressor from the z-scored
features to the 24 shared factors (ridge, and an MLP 512-512 trained with MSE), then the gallery is
ranked by the cosine between the two predictions. It is supervised with the latent the pairs were
made from, so it upper-bounds what a retrieval model learns from the pairs alone at the same size;
with ten times the pairs it shows where the curve flattens. Chance R@10 is 0.010.

Prints one JSON line per (train size, regressor) with R@10 both ways, and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def zscore_fit(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature (mean, std) of (N, D) ``x``."""
    return x.mean(axis=0), x.std(axis=0) + 1e-6


def ridge_predict(x_train: np.ndarray, z_train: np.ndarray, x_test: np.ndarray, alpha: float) -> np.ndarray:
    """(N_test, K) ridge regression predictions of the K factors (inputs already z-scored)."""
    gram = x_train.T @ x_train + alpha * np.eye(x_train.shape[1])
    weights = np.linalg.solve(gram, x_train.T @ z_train)
    return x_test @ weights


def mlp_predict(x_train: np.ndarray, z_train: np.ndarray, x_test: np.ndarray, epochs: int, seed: int = 0
                ) -> np.ndarray:
    """(N_test, K) predictions of a D-512-512-K ReLU MLP trained with MSE (Adam, batch 512, dropout 0.2)."""
    import torch

    torch.manual_seed(seed)
    d, k = x_train.shape[1], z_train.shape[1]
    net = torch.nn.Sequential(torch.nn.Linear(d, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(512, 512), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(512, k))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    xt, zt = torch.from_numpy(x_train), torch.from_numpy(z_train)
    steps_per_epoch = max(1, len(xt) // 512)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for step in range(steps_per_epoch):
            idx = order[step * 512:(step + 1) * 512]
            loss = torch.nn.functional.mse_loss(net(xt[idx]), zt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    with torch.no_grad():
        return net(torch.from_numpy(x_test)).numpy()


def recall_at_10(a: np.ndarray, b: np.ndarray) -> float:
    """R@10 of row i of ``a`` finding row i of ``b`` by cosine (gallery = all rows of ``b``)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    sim = a @ b.T
    rank = (sim > np.diag(sim)[:, None]).sum(axis=1)
    return float((rank < 10).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store-pairs", type=int, default=20000, help="the store whose test gallery is scored")
    parser.add_argument("--train-pairs", default="18500,200000", help="oracle training sizes (same world)")
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()

    import torch

    from vmnet_testkit.synthetic import realistic_pairs

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"load average at start {os.getloadavg()}")
    store = realistic_pairs(args.store_pairs, seed=0)
    test = slice(args.store_pairs - args.test, args.store_pairs)
    for n_train in (int(n) for n in args.train_pairs.split(",")):
        pairs = realistic_pairs(n_train, seed=0)  # same world as the store (the maps depend on the seed only)
        z = pairs.latent.astype(np.float32)
        predictions = {"ridge": {}, "mlp": {}}
        start = time.perf_counter()
        for side in ("music", "video"):
            x = getattr(pairs, side)
            mean, std = zscore_fit(x)
            x_train = ((x - mean) / std).astype(np.float32)
            x_test = ((getattr(store, side)[test] - mean) / std).astype(np.float32)
            predictions["ridge"][side] = ridge_predict(x_train.astype(np.float64), z, x_test, alpha=float(x.shape[1]))
            predictions["mlp"][side] = mlp_predict(x_train, z, x_test, args.epochs)
        for name, pred in predictions.items():
            print(json.dumps({"store_pairs": args.store_pairs, "oracle_train_pairs": n_train, "regressor": name,
                              "r10_v2m": round(recall_at_10(pred["video"], pred["music"]), 3),
                              "r10_m2v": round(recall_at_10(pred["music"], pred["video"]), 3),
                              "wall_s": round(time.perf_counter() - start, 1)}), flush=True)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
