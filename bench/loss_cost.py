"""Cost of each loss and regulariser per training step, relative to plain CE + soft Dice.

Same network (the default 2-D U-Net), same batch, one process; the variants run round-robin
(one step of each per round) so that machine noise hits all of them alike; the median step time
over the rounds is reported, and each ratio is taken against the plain step of the same rounds.

Besides single steps, whole iterations of the two schedules of ``schedule``
(:data:`asymtune.method.settings.SCHEDULES`, ``AsymmetrySettings.schedule``, default
``"separate"``), as ``Trainer._iteration`` runs them: ``separate`` takes an optimiser step on the
clean batch, then one on its adversarial version (and one on a mixup batch when mixup is on);
``summed`` takes one step on the sum of those losses.

    python bench/loss_cost.py --rounds 30 --out docs/bench_loss_cost.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from _output import emit  # bench/ is on sys.path when a script runs

from asymtune.data import create_dataset
from asymtune.losses import AsymmetricLoss, adversarial_perturbation, mixup_batch
from asymtune.models import create_model


def plain_ce_dice(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The baseline written in a few lines: cross-entropy + (1 - soft Dice) over foreground."""
    probs = logits.float().softmax(1)
    one_hot = F.one_hot(target, logits.shape[1]).movedim(-1, 1).float()
    dims = (0, *range(2, logits.ndim))
    tp = (probs * one_hot).sum(dims)
    dice = (2 * tp + 1e-5) / (probs.sum(dims) + one_hot.sum(dims) + 1e-5)
    return F.cross_entropy(logits.float(), target) + (1 - dice[1:]).mean()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--base-channels", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    dataset = create_dataset("synth_lesions")
    images = torch.from_numpy(dataset.train.images[: args.batch_size])
    labels = torch.from_numpy(dataset.train.labels[: args.batch_size])
    model = create_model("unet", 2, 1, 2, base_channels=args.base_channels, depth=3)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    asym = AsymmetricLoss(margin=[0.0, 1.0], gamma=[4.0, 0.0])
    rare = [False, True]
    variants: dict[str, Callable[[], torch.Tensor]] = {}

    try:
        from monai.losses import DiceFocalLoss

        monai_loss = DiceFocalLoss(to_onehot_y=True, softmax=True, include_background=False)
        variants["monai_dice_focal"] = lambda: monai_loss(model(images), labels.unsqueeze(1))
    except ImportError:
        print("monai not installed: pip install monai (the bench extra) to compare against it", file=sys.stderr)

    def step(loss_fn: Callable[[], torch.Tensor]) -> None:
        loss = loss_fn()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def adversarial() -> None:
        delta = adversarial_perturbation(model, images, labels, rare=rare, eps=10.0)
        step(lambda: asym(model(images + delta), labels))

    def mixup() -> None:
        batch = mixup_batch(images, labels, alpha=0.2, mu=0.2, rare=rare)
        step(lambda: asym(model(batch.images), batch.labels))

    def clean() -> None:
        step(lambda: asym(model(images), labels))

    def separate_adversarial() -> None:  # the default schedule with adversarial training on
        clean()
        adversarial()

    def separate_adversarial_mixup() -> None:
        clean()
        adversarial()
        mixup()

    def summed_adversarial() -> None:
        def total() -> torch.Tensor:
            clean_loss = asym(model(images), labels)
            delta = adversarial_perturbation(model, images, labels, rare=rare, eps=10.0)
            return clean_loss + asym(model(images + delta), labels)

        step(total)

    runs: dict[str, Callable[[], None]] = {
        "plain_ce_dice": lambda: step(lambda: plain_ce_dice(model(images), labels)),
        "asymmetric_ce_focal_dice": clean,
        "adversarial_step": adversarial,
        "mixup_step": mixup,
        "iteration_separate_adversarial": separate_adversarial,
        "iteration_separate_adversarial_mixup": separate_adversarial_mixup,
        "iteration_summed_adversarial": summed_adversarial,
        **{name: (lambda fn=fn: step(fn)) for name, fn in variants.items()},
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for round_index in range(args.warmup + args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            if round_index >= args.warmup:
                times[name].append(time.perf_counter() - start)
    ratios = {name: [t / p for t, p in zip(values, times["plain_ce_dice"])] for name, values in times.items()}
    lines = [
        f"Command: `python bench/loss_cost.py --rounds {args.rounds} --base-channels {args.base_channels} "
        f"--batch-size {args.batch_size} --threads {args.threads}` (U-Net {args.base_channels} channels, depth 3, "
        f"batch {args.batch_size}x1x64x64, CPU, torch {torch.__version__})",
        "",
        "| step | median ms | ratio to plain CE + soft Dice (median of per-round ratios) | vs MONAI DiceFocalLoss |",
        "|---|---|---|---|",
    ]
    monai_median = statistics.median(times["monai_dice_focal"]) if "monai_dice_focal" in times else None
    for name, values in times.items():
        median = statistics.median(values)
        versus = f"{median / monai_median:.3f}" if monai_median else "n/a"
        lines.append(f"| {name} | {1000 * median:.1f} | {statistics.median(ratios[name]):.3f} | {versus} |")
    clean_median = statistics.median(times["asymmetric_ce_focal_dice"])

    def per_clean(name: str) -> str:
        return f"{statistics.median(times[name]) / clean_median:.3f}"

    lines += [
        "",
        f"Adversarial step / clean asymmetric step: {per_clean('adversarial_step')} "
        "(the probe's forward + backward plus the training step on the perturbed batch). "
        "Per iteration of the default schedule (`schedule: separate`), which takes the clean step and then the "
        f"adversarial step: {per_clean('iteration_separate_adversarial')} x a clean iteration; with mixup too "
        f"(a third step): {per_clean('iteration_separate_adversarial_mixup')} x. The `summed` schedule (one step "
        f"on the sum of the clean and adversarial losses): {per_clean('iteration_summed_adversarial')} x.",
    ]
    return emit(lines, args.out)


if __name__ == "__main__":
    sys.exit(main())
