"""The ``asymtune`` command: ``tune``, ``train``, ``predict``, ``diagnose``, ``report`` and ``data``.

``tune`` and ``train`` compose ``conf/tune.yaml`` / ``conf/train.yaml`` with Hydra; every
argument of the form ``key=value`` (or ``group=option``, ``+key=value``, ``~key``) is a Hydra
override, checked against the schema (:mod:`asymtune.config.schema`). ``train --config FILE``,
``predict --config FILE`` and ``diagnose --config FILE`` compose FILE as an experiment overlay,
then the same overrides.
``--cfg`` prints the composed config, each key with its meaning, instead of running.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def compose(config_name: str, overrides: Sequence[str], base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The resolved config ``conf/<config_name>.yaml`` with Hydra ``overrides``.

    With ``base`` (the content of a config file, e.g. an exported one), ``base`` is composed as an
    experiment overlay over the defaults and the overrides apply on top of it
    (:func:`asymtune.config.compose`).
    """
    from asymtune.config import compose as compose_config

    return compose_config(config_name, overrides, config_file=base)


def _read_config_file(value: str, expected: str) -> tuple[dict[str, Any], str]:
    import yaml

    from asymtune.config import ConfigError

    path = Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"--config {path}: no such file: expected {expected}")
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"--config {path}: not YAML ({' '.join(str(error).split())}): expected {expected}") from error
    if not isinstance(content, dict):
        raise ConfigError(f"--config {path}: holds {type(content).__name__}: expected a YAML mapping ({expected})")
    return content, str(path)


def _print_config(config: Mapping[str, Any], config_name: str) -> None:
    from asymtune.config import render_config

    print(render_config(config, config_name), end="")


def cmd_tune(args: argparse.Namespace) -> int:
    config = compose("tune", args.overrides)
    if args.cfg:
        _print_config(config, "tune")
        return EXIT_OK
    from asymtune.pipeline import run_tune  # checks the config before anything starts

    value = run_tune(config)
    print(f"asymtune: {config['objective']['metric']} of the selected settings (mean over datasets): {value:.4f}")
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    from asymtune.config import compose as compose_config

    content, source = None, "conf/train.yaml"
    if args.config:
        content, source = _read_config_file(args.config, "a config exported by 'asymtune tune'")
    config = compose_config("train", args.overrides, config_file=content, source=source)
    if args.cfg:
        _print_config(config, "train")
        return EXIT_OK
    from asymtune.train.command import format_result, run_train

    print(format_result(run_train(config, source=source, progress=not args.quiet)))
    return EXIT_OK


def cmd_predict(args: argparse.Namespace) -> int:
    import json

    from asymtune.config import compose as compose_config

    content, source = _read_config_file(args.config, "the model's train config (e.g. configs/<dataset>.yaml)")
    config = compose_config("train", args.overrides, config_file=content, source=source)
    from asymtune.predict import run_predict

    result = run_predict(
        config,
        Path(args.output),
        input_dir=Path(args.input) if args.input else None,
        labels=Path(args.labels) if args.labels else None,
        weights=Path(args.weights) if args.weights else None,
        model_uri=args.model,
        tracking_uri=args.tracking_uri,
        source=source,
    )
    print(json.dumps({k: round(v, 6) if isinstance(v, float) else v for k, v in result.items()}))
    return EXIT_OK


def cmd_diagnose(args: argparse.Namespace) -> int:
    import json

    from asymtune.config import compose as compose_config

    content, source = _read_config_file(args.config, "a train config (e.g. an exported one)")
    config = compose_config("train", args.overrides, config_file=content, source=source)
    from asymtune.train.diagnose_command import run_diagnose

    out_dir = Path(args.out) if args.out else None
    print(json.dumps(run_diagnose(config, Path(args.weights), split=args.split, out_dir=out_dir)))
    return EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from asymtune.report.build import build_report

    reports = build_report(Path(args.path), log_to_mlflow=not args.no_mlflow)
    print(f"asymtune: wrote {Path(args.path) / 'report.md'} and report.html ({len(reports)} datasets)")
    return EXIT_OK


def cmd_data(args: argparse.Namespace) -> int:
    from asymtune.data.check import check_dataset
    from asymtune.data.layouts import DatasetError

    try:
        if args.data_command == "prepare":
            from asymtune.data.builtin_real import prepare_builtin

            options = {"accumbens": True} if args.accumbens and args.name == "brain_atlas" else {}
            path = prepare_builtin(args.name, Path(args.out), **options)
            print(f"asymtune: wrote {path}")
        else:
            path = Path(args.path)
        print(check_dataset(path, layout=args.layout).to_text())
    except DatasetError as error:
        # Every defect on its own line (main() would fold them into one).
        print(f"asymtune data {args.data_command}: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asymtune", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tune = sub.add_parser("tune", help="run a sweep on every dataset, then report and export configs")
    tune.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. experiment=smoke output_dir=runs/a")
    show_config = "print the composed config, each key with its meaning, and exit"
    tune.add_argument("--cfg", action="store_true", help=show_config)
    tune.set_defaults(func=cmd_tune)
    train = sub.add_parser("train", help="train one setting and print its test metrics as JSON")
    train.add_argument(
        "--config", help="an exported config (configs/<dataset>.yaml of a sweep), composed as an overlay"
    )
    train.add_argument(
        "overrides", nargs="*", help="Hydra overrides, e.g. train.epochs=1 train.device=cpu model=dynunet"
    )
    train.add_argument("--cfg", action="store_true", help=show_config)
    train.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    train.set_defaults(func=cmd_train)
    predict = sub.add_parser(
        "predict", help="label maps of a trained model for a folder of images (nnU-Net layout) or its test split"
    )
    predict.add_argument("--config", required=True, help="the model's train config (e.g. configs/<dataset>.yaml)")
    weights = predict.add_mutually_exclusive_group(required=True)
    weights.add_argument("--weights", help="state_dict .pt (train save_model=...) or a trial's state.pt")
    weights.add_argument("--model", help="a registered MLflow model, models:/<name>/<version>")
    predict.add_argument("--tracking-uri", help="the MLflow store holding --model (default: MLflow's)")
    predict.add_argument(
        "-i", "--input", help="folder of <case>_0000.nii.gz (+ _0001 ... per channel); default: the test split"
    )
    predict.add_argument("-o", "--output", required=True, help="folder for <case>.nii.gz and the metrics")
    predict.add_argument("--labels", help="folder of reference <case>.nii.gz: per-case metrics (metrics.csv)")
    predict.add_argument("overrides", nargs="*", help="Hydra overrides of the config, e.g. train.device=cpu")
    predict.set_defaults(func=cmd_predict)
    diagnose = sub.add_parser(
        "diagnose", help="logit shift of a trained model: train against held-out boundary distances"
    )
    diagnose.add_argument("--config", required=True, help="the model's train config (e.g. configs/<dataset>.yaml)")
    diagnose.add_argument(
        "--weights", required=True, help="state_dict .pt (train save_model=...) or a trial's state.pt"
    )
    diagnose.add_argument("--split", default="test", help="held-out split: val or test (default test)")
    diagnose.add_argument("--out", help="folder for logit_shift.png")
    diagnose.add_argument("overrides", nargs="*", help="Hydra overrides of the config, as for train")
    diagnose.set_defaults(func=cmd_diagnose)
    report = sub.add_parser("report", help="rebuild report.md/report.html and configs from a sweep's output_dir")
    report.add_argument("path", help="the output_dir of 'asymtune tune'")
    report.add_argument("--no-mlflow", action="store_true", help="do not upload the report to MLflow")
    report.set_defaults(func=cmd_report)
    data = sub.add_parser("data", help="check a dataset on disk, or build a built-in real dataset")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="read every file of an nnU-Net v2 or Decathlon dataset, then summarise")
    check.add_argument("path", help="the dataset folder (holds dataset.json)")
    check.add_argument("--layout", choices=("auto", "nnunet", "decathlon"), default="auto", help="default: detected")
    check.set_defaults(func=cmd_data)
    prepare = data_sub.add_parser("prepare", help="build a real dataset from installed packages, then check it")
    prepare.add_argument("name", choices=("brain_atlas", "nuclei"), help="which dataset")
    prepare.add_argument("--out", default="data", help="parent folder (default data/)")
    prepare.add_argument("--accumbens", action="store_true", help="brain_atlas: add the nucleus accumbens class")
    prepare.set_defaults(func=cmd_data, layout="nnunet")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 bad input)."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, HydraException, OmegaConfBaseException) as error:
        # one line per line of the message (a dataset's defects stay one per line), spaces collapsed
        message = "\n  ".join(" ".join(line.split()) for line in str(error).splitlines() if line.strip())
        print(f"asymtune {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
