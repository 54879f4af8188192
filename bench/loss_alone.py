"""The asymmetric loss alone against MONAI's DiceFocalLoss alone, forward and backward.

No network: a leaf tensor of logits ``B C H W [D]`` with ``requires_grad`` and a label map, the
same for both losses. One call is the loss's forward and the backward to the logits. Ours is
:class:`asymtune.losses.AsymmetricLoss` at the authors' setting (margin 1 on the rare classes,
focal exponent 4 on the background, both terms); MONAI's is
``DiceFocalLoss(to_onehot_y=True, softmax=True)``. Goal (issue 15): ours at most 0.8 of MONAI's
time.

Each repeat runs ``--rounds`` interleaved rounds, one call of each loss per round, the order
alternating from round to round so that machine noise and cache state hit both alike; a repeat's
ratio is the median time of ours over the median time of MONAI's. The table gives the median and
range of the repeats' ratios; the verdict uses the median.

    python bench/loss_alone.py --repeats 5 --rounds 100 --out docs/bench_loss_alone.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from _output import emit  # bench/ is on sys.path when a script runs

from asymtune.losses import AsymmetricLoss
from asymtune.method.settings import AUTHORS_STRENGTHS

GOAL = 0.8
"""Ours at most this fraction of MONAI's time (issue 15)."""

DEFAULT_SHAPES = ("8x3x64x64", "2x3x32x64x64")


@dataclass(frozen=True)
class CaseResult:
    """Per-repeat medians of one logits shape (seconds per call)."""

    shape: tuple[int, ...]
    ours: list[float]
    monai: list[float]

    @property
    def ratios(self) -> list[float]:
        return [ours / monai for ours, monai in zip(self.ours, self.monai)]


def parse_shape(text: str) -> tuple[int, ...]:
    """``"8x3x64x64"`` -> ``(8, 3, 64, 64)``: ``B C H W [D]`` with ``C >= 2``."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"shape {text!r}: expected B x C x H x W [x D], e.g. 8x3x64x64") from None
    if len(shape) not in (4, 5) or shape[1] < 2 or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"shape {text!r}: expected B x C x H x W [x D] with C >= 2")
    return shape


def interleaved_medians(
    first: Callable[[], None], second: Callable[[], None], rounds: int, warmup: int
) -> tuple[float, float]:
    """Median seconds per call of ``first`` and ``second`` over ``rounds`` alternating rounds."""
    times: tuple[list[float], list[float]] = ([], [])
    for round_index in range(warmup + rounds):
        order = ((0, first), (1, second)) if round_index % 2 == 0 else ((1, second), (0, first))
        for slot, call in order:
            start = time.perf_counter()
            call()
            if round_index >= warmup:
                times[slot].append(time.perf_counter() - start)
    return statistics.median(times[0]), statistics.median(times[1])


def measure(shape: tuple[int, ...], repeats: int, rounds: int, warmup: int, seed: int = 0) -> CaseResult:
    """Time both losses, forward and backward, on one random batch of ``shape``."""
    from monai.losses import DiceFocalLoss

    generator = torch.Generator().manual_seed(seed)
    classes = shape[1]
    logits = torch.randn(shape, generator=generator).requires_grad_(True)
    target = torch.randint(0, classes, (shape[0], *shape[2:]), generator=generator)
    rare = [0.0] + [1.0] * (classes - 1)  # class 0 the frequent background
    ours = AsymmetricLoss.from_rare_classes(rare, margin=AUTHORS_STRENGTHS["margin"], gamma=AUTHORS_STRENGTHS["gamma"])
    monai = DiceFocalLoss(to_onehot_y=True, softmax=True)
    target_channel = target.unsqueeze(1)  # MONAI takes B 1 H W [D]

    def run_ours() -> None:
        logits.grad = None
        ours(logits, target).backward()

    def run_monai() -> None:
        logits.grad = None
        monai(logits, target_channel).backward()

    result = CaseResult(shape, [], [])
    for _ in range(repeats):
        ours_s, monai_s = interleaved_medians(run_ours, run_monai, rounds, warmup)
        result.ours.append(ours_s)
        result.monai.append(monai_s)
    return result


def _range(values: Sequence[float], digits: int) -> str:
    return f"{statistics.median(values):.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def summarise(results: Sequence[CaseResult], command: str, threads: int, rounds: int, repeats: int) -> list[str]:
    """The Markdown block: one row per shape, the verdict per shape against :data:`GOAL`."""
    lines = [
        f"Command: `{command}` (logits a leaf tensor with requires_grad, one call = forward + backward; "
        f"{repeats} repeats of {rounds} interleaved rounds, order alternating; CPU, {threads} thread, "
        f"torch {torch.__version__})",
        "",
        "| logits B C H W [D] | ours median ms (range over repeats) | MONAI median ms (range) "
        "| ours / MONAI, median (range) | goal | verdict |",
        "|---|---|---|---|---|---|",
    ]
    verdicts = []
    for result in results:
        ratio = statistics.median(result.ratios)
        met = ratio <= GOAL
        verdicts.append(met)
        shape = " x ".join(str(size) for size in result.shape)
        lines.append(
            f"| {shape} | {_range([1000 * t for t in result.ours], 2)} | {_range([1000 * t for t in result.monai], 2)} "
            f"| {_range(result.ratios, 3)} | <= {GOAL} | {'met' if met else 'missed'} |"
        )
    met_count = sum(verdicts)
    lines += [
        "",
        f"Verdict: the goal (at most {GOAL} of MONAI's time, median of the repeats) is met for {met_count} of "
        f"{len(results)} shapes.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="+", type=parse_shape, default=[parse_shape(s) for s in DEFAULT_SHAPES],
                        metavar="BxCxHxW[xD]", help=f"logits shapes (default {' '.join(DEFAULT_SHAPES)})")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="3 repeats of 10 rounds on small shapes (a check)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.rounds, args.warmup = 3, 10, 2
        args.shapes = [(2, 3, 32, 32), (1, 3, 8, 16, 16)]
    if args.repeats < 1 or args.rounds < 1:
        parser.error(f"--repeats {args.repeats} --rounds {args.rounds}: expected both >= 1")
    torch.set_num_threads(args.threads)
    results = [measure(shape, args.repeats, args.rounds, args.warmup) for shape in args.shapes]
    shapes = " ".join("x".join(str(size) for size in shape) for shape in args.shapes)
    command = (
        "python bench/loss_alone.py --quick" if args.quick
        else f"python bench/loss_alone.py --shapes {shapes} --repeats {args.repeats} --rounds {args.rounds} "
        f"--threads {args.threads}"
    )
    return emit(summarise(results, command, args.threads, args.rounds, args.repeats), args.out)


if __name__ == "__main__":
    sys.exit(main())
