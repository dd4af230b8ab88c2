"""Training throughput of VM-NET: pairs per second with the paper's architecture and loss.

Paper setup: music 1140→2048→1024→512, video 1024→2048→512, batch 1000, Adam 3e-4, loss = 3 ·
music-anchored + 1 · video-anchored ranking (top-100 negatives) + 0.2 · structure per modality
(100 anchors). Inputs are random (throughput does not depend on their values). The timed loop is
exactly one training step of ``vmnet_core.learn.train`` (forward, both losses, backward, Adam).

    python bench/bench_train.py                       # CPU, 2 threads
    python bench/bench_train.py --device cuda --steps 200
    python bench/bench_train.py --threads 1 --no-structure
    python bench/bench_train.py --modes eager,compile,bf16 --rounds 3   # issue 17's candidates

Target (issue 3): at least 1,000 pairs/s on 2 CPU cores. Record results in docs/benchmarks.md.
With ``--modes`` the candidates run interleaved in one process (``--rounds`` rounds of
``--steps`` timed steps each, after their own warm-up): ``eager`` (the trainer's step),
``compile`` (``torch.compile`` of the model, inductor), ``bf16`` (autocast to bfloat16; on CUDA
``fp16`` with a gradient scaler is also offered). Each prints its median step and its ratio to eager.
"""

from __future__ import annotations

import argparse
import os
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
    parser.add_argument("--modes", default=None, help="compare: eager,compile,bf16[,fp16 on cuda]")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per mode with --modes")
    args = parser.parse_args()
    if args.modes:
        compare_modes(args)
        return

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


def compare_modes(args: argparse.Namespace) -> None:
    """Median step time of each mode in ``args.modes``, run interleaved, and its ratio to eager."""
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    config = TrainConfig(batch_size=args.batch, structure=not args.no_structure, device=args.device)
    steppers = {name: _stepper(name, device, config, args.batch) for name in args.modes.split(",")}
    for name, step in steppers.items():
        started = time.perf_counter()
        for _ in range(args.warmup):
            step()
        print(f"{name}: warm-up {time.perf_counter() - started:.1f} s (compilation included)", flush=True)
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for _ in range(args.rounds):
        for name, step in steppers.items():
            for _ in range(args.steps):
                started = time.perf_counter()
                step()
                times[name].append(time.perf_counter() - started)
    reference = statistics.median(times.get("eager") or next(iter(times.values())))
    print(f"device {args.device}, threads {torch.get_num_threads()}, batch {args.batch}, {args.rounds} rounds × "
          f"{args.steps} steps, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"  {name:<8} median step {1000 * median:7.1f} ms  {args.batch / median:8,.0f} pairs/s  "
              f"speed vs eager {reference / median:.2f}×")


def _stepper(mode: str, device: torch.device, config: TrainConfig, batch: int):
    """One training step of a fresh paper-size model (same seed) in ``mode``; synchronised on CUDA."""
    torch.manual_seed(0)
    model = VMNet(ModelConfig(capacity="full")).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    music = torch.randn(batch, model.config.music_dim, device=device)
    video = torch.randn(batch, model.config.video_dim, device=device)
    run_model = torch.compile(model) if mode == "compile" else model
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(mode)
    scaler = torch.amp.GradScaler(device.type) if mode == "fp16" else None

    def step() -> None:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            terms = loss_terms(run_model, music, video, config)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(terms["loss"]).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            terms["loss"].backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return step


if __name__ == "__main__":
    main()
