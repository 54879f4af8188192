"""Training speed: asymtune's training step against a plain PyTorch loop and against MONAI.

One process, three sides, interleaved step by step (``asymtune, plain, MONAI``, the order rotating
at every step, so that the load of a shared machine hits every side alike):

- ``asymtune``: :meth:`asymtune.train.trainer.Trainer.train_epoch` with one iteration per call
  (batch sampling, the schedule, the finite-loss check, the optimiser step; the per-epoch
  bookkeeping is paid at every step, so this errs against asymtune);
- ``plain loop``: the same U-Net (``asymtune.models``), the same loss module (the trainer's
  :class:`~asymtune.losses.AsymmetricLoss`), Adam with the same learning rate and the same batches
  (the same seeded draw of image indices), written in a few lines;
- ``MONAI``: ``monai.networks.nets.UNet`` (3 levels, 2 residual units per level, instance norm,
  of similar parameter count) with ``monai.losses.DiceCELoss``, Adam, the same batches.

A round is ``iterations`` steps of each side; images per second = iterations x batch / the side's
summed step time in the round. The ratios are taken per round; their median and range over the
rounds are reported.

    python bench/train_speed.py --rounds 10 --iterations 20 --out /tmp/train_speed.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _output import emit  # bench/ is on sys.path when a script runs

from asymtune.data import create_dataset
from asymtune.method.settings import from_paper_form
from asymtune.models import create_model
from asymtune.train.config import TrainConfig
from asymtune.train.trainer import Trainer

SIDES = ("asymtune", "plain", "monai")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def step_flops(model: torch.nn.Module, batch_shape: tuple[int, ...]) -> float:
    """Floating-point operations of the network's forward and backward pass on one batch
    (torch's FLOP counter: convolutions and matrix products; norms and the loss are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(batch_shape)).sum().backward()
    model.zero_grad(set_to_none=True)
    return float(counter.get_total_flops())


def make_sides(
    args: argparse.Namespace,
) -> tuple[dict[str, Callable[[], None]], dict[str, torch.nn.Module]]:
    """One training step of each side, and each side's network."""
    dataset = create_dataset("synth_lesions", image_size=args.image_size)
    rare = [i in dataset.rare_classes for i in range(dataset.num_classes)]
    settings = from_paper_form(dataset.num_classes, rare, margin=1.0, gamma=4.0)  # the authors' defaults
    config = TrainConfig(
        iterations_per_epoch=1, batch_size=args.batch_size, num_threads=args.threads,
        seed=0, device="cpu",
    )
    model_options = {"name": "unet", "base_channels": args.base_channels, "depth": 3, "norm": "instance"}
    trainer = Trainer(dataset, model_options, settings, config)

    images = torch.from_numpy(dataset.train.images)
    labels = torch.from_numpy(dataset.train.labels)
    n, batch = len(images), args.batch_size

    # The plain loop: same network, same loss module, same optimiser, same batch draw.
    torch.manual_seed(0)
    plain_model = create_model("unet", 2, 1, dataset.num_classes, base_channels=args.base_channels, depth=3)
    plain_loss = type(trainer.loss)(margin=settings.margin, gamma=settings.gamma)
    plain_optimizer = torch.optim.Adam(plain_model.parameters(), lr=config.learning_rate)
    plain_rng = np.random.default_rng(0)

    plain_model.train()

    def plain() -> None:
        index = torch.from_numpy(plain_rng.choice(n, size=batch, replace=batch > n))
        loss = plain_loss(plain_model(images[index]), labels[index])
        plain_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        plain_optimizer.step()

    sides: dict[str, Callable[[], None]] = {"asymtune": lambda: trainer.train_epoch(), "plain": plain}
    models = {"asymtune": trainer.model, "plain": plain_model}
    try:
        from monai.losses import DiceCELoss
        from monai.networks.nets import UNet as MonaiUNet
    except ImportError:
        print("monai not installed: the MONAI column is left out", file=sys.stderr)
        return sides, models
    torch.manual_seed(0)
    monai_model = MonaiUNet(
        spatial_dims=2, in_channels=1, out_channels=dataset.num_classes,
        channels=(args.base_channels, 2 * args.base_channels, 4 * args.base_channels), strides=(2, 2),
        num_res_units=2, norm="instance",
    )
    monai_loss = DiceCELoss(to_onehot_y=True, softmax=True, include_background=False)
    monai_optimizer = torch.optim.Adam(monai_model.parameters(), lr=config.learning_rate)
    monai_rng = np.random.default_rng(0)

    monai_model.train()

    def monai() -> None:
        index = torch.from_numpy(monai_rng.choice(n, size=batch, replace=batch > n))
        loss = monai_loss(monai_model(images[index]), labels[index].unsqueeze(1))
        monai_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        monai_optimizer.step()

    sides["monai"] = monai
    models["monai"] = monai_model
    return sides, models


def spread(values: list[float], digits: int = 3) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def command(args: argparse.Namespace) -> str:
    return (
        f"python bench/train_speed.py --rounds {args.rounds} --iterations {args.iterations} "
        f"--batch-size {args.batch_size} --base-channels {args.base_channels} --image-size {args.image_size} "
        f"--threads {args.threads}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=20, help="training steps per side and round")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1, as each trial of a sweep)")
    parser.add_argument("--quick", action="store_true", help="3 rounds of 5 steps: checks that it runs")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.iterations = 3, 5
    sides, models = make_sides(args)
    torch.set_num_threads(args.threads)
    batch_shape = (args.batch_size, 1, args.image_size, args.image_size)
    flops = {name: step_flops(model, batch_shape) for name, model in models.items()}
    for run in sides.values():  # warm-up steps, not timed (allocator, one-off kernel set-up)
        for _ in range(3):
            run()
    names = list(sides)
    rates: dict[str, list[float]] = {name: [] for name in names}
    step_seconds: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(args.rounds):
        seconds = dict.fromkeys(names, 0.0)
        for step in range(args.iterations):
            for name in names[step % len(names):] + names[: step % len(names)]:
                start = time.perf_counter()
                sides[name]()
                elapsed = time.perf_counter() - start
                seconds[name] += elapsed
                step_seconds[name].append(elapsed)
        for name in names:
            rates[name].append(args.iterations * args.batch_size / seconds[name])
    # The same step of two sides ran a few hundred milliseconds apart: their ratio is the least
    # exposed to the machine's load changing.
    paired = sorted(p / a for p, a in zip(step_seconds["plain"], step_seconds["asymtune"]))
    quartiles = statistics.quantiles(paired, n=4)
    ratios = {name: [a / b for a, b in zip(rates["asymtune"], rates[name])] for name in names if name != "asymtune"}
    labels = {
        "asymtune": "asymtune `Trainer.train_epoch` (one iteration per call)",
        "plain": "plain PyTorch loop (same U-Net, loss module, Adam, batches)",
        "monai": "MONAI `UNet` (16-32-64, 2 residual units) + `DiceCELoss`",
    }
    lines = [
        f"Command: `{command(args)}` (one process; {args.rounds} rounds of {args.iterations} steps per side, "
        f"interleaved step by step; batch {args.batch_size}x1x{args.image_size}x{args.image_size}, synth_lesions, "
        f"asymmetric CE + focal Dice at the authors' defaults, CPU, torch {torch.__version__})",
        "",
        "| side | parameters | GFLOP per step (network, fwd + bwd) | images/s, median (min-max over rounds) "
        "| asymtune / side, median (min-max) | GFLOP/s, median |",
        "|---|---|---|---|---|---|",
    ]
    for name in names:
        ratio = "1.000" if name == "asymtune" else spread(ratios[name])
        gflop_rate = statistics.median(rates[name]) / args.batch_size * flops[name] / 1e9
        lines.append(
            f"| {labels[name]} | {parameter_count(models[name]):,} | {flops[name] / 1e9:.2f} | "
            f"{spread(rates[name], 1)} | {ratio} | {gflop_rate:.1f} |"
        )
    summary = (
        f"asymtune / plain loop: {spread(ratios['plain'])} over rounds (goal >= 0.95); step by step (each asymtune "
        f"step against the plain step next to it, {len(paired)} pairs): median {statistics.median(paired):.3f}, "
        f"quartiles {quartiles[0]:.3f}-{quartiles[2]:.3f}"
    )
    if "monai" in ratios:
        summary += f"; asymtune / MONAI: {spread(ratios['monai'])}"
    lines += ["", summary + "."]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
