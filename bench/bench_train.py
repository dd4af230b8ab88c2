"""Training throughput of VM-NET: pairs per second with the paper's architecture and loss.

Paper setup: music 1140→2048→1024→512, video 1024→2048→512, batch 1000, Adam 3e-4, loss = 3 ·
music-anchored + 1 · video-anchored ranking (top-100 negatives) + 0.2 · structure per modality
(100 anchors). Inputs are random (throughput does not depend on their values). The timed loop is
exactly one training step of ``vmnet_core.learn.train`` (forward, both losses, backward, Adam).

    python bench/bench_train.py                       # CPU, 2 threads
    python bench/bench_train.py --device cuda --steps 200
    python bench/bench_train.py --threads 1 --no-structure

Target (issue 3): at least 1,000 pairs/s on 2 CPU cores. Record results in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from vmnet_core.learn.model import ModelConfig, VMNet
from vmnet_core.learn.train import TrainConfig, loss_terms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--no-structure", action="store_true", help="ranking loss only (the ablation)")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = VMNet(ModelConfig()).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    config = TrainConfig(batch_size=args.batch, structure=not args.no_structure, device=args.device)
    music = torch.randn(args.batch, model.config.music_dim, device=device)
    video = torch.randn(args.batch, model.config.video_dim, device=device)

    def step() -> None:
        terms = loss_terms(model, music, video, config)
        optimizer.zero_grad(set_to_none=True)
        terms["loss"].backward()
        optimizer.step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    model.train()
    for _ in range(args.warmup):
        step()
    sync()
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - start)
    median = statistics.median(times)
    total = sum(times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{platform.processor() or 'cpu'}"
    params = sum(p.numel() for p in model.parameters())
    print(f"device: {args.device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"model: paper architecture, {params / 1e6:.2f} M parameters; batch {args.batch}; "
          f"structure loss {'off' if args.no_structure else 'on'}")
    print(f"steps timed: {args.steps} (after {args.warmup} warm-up)")
    print(f"median step: {1000 * median:.1f} ms   mean step: {1000 * total / args.steps:.1f} ms")
    print(f"throughput: {args.batch / median:,.0f} pairs/s (median step), "
          f"{args.batch * args.steps / total:,.0f} pairs/s (mean)")


if __name__ == "__main__":
    main()
