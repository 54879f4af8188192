"""``asymtune predict``: label maps from a trained model, for a folder of images or the test split.

The model is a train config (``conf/train.yaml`` shape, e.g. an exported ``configs/<dataset>.yaml``)
with its weights: a ``state_dict`` saved by ``asymtune train save_model=PATH`` (or a trial's
``state.pt``), or a model of the MLflow model registry (``models:/asymtune-<dataset>/<version>``,
which must fit the config's network). The config also says how images are normalised, which
window the sliding-window inference uses and which label values are written: those of its
training dataset, read from its prepared cache and ``dataset.json``, so that dataset must be on
disk where the config says.

Steps: check the weights' file and the input folder by name, build the model from the config
(:func:`asymtune.train.factory.build_trainer`), read every case's headers (all defects raised at
once), then per case: read, normalise (:func:`asymtune.data.prepared.normalise_image`), predict
(:func:`asymtune.predict.volumes.predict_classes`), write ``<case><ending>`` and, when a
reference label is there, score it. Without an input folder the config's own test split is
predicted, with its labels.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from asymtune.data.prepared import normalise_image
from asymtune.predict.inputs import dataset_cases, open_cases, read_image, read_label, scan_folder
from asymtune.predict.outputs import RECORD, case_row, write_label_map, write_metrics
from asymtune.predict.spec import ModelInputs, model_inputs
from asymtune.predict.volumes import predict_classes
from asymtune.train.factory import build_trainer
from asymtune.train.trainer import Trainer
from asymtune.train.weights import check_weights_file, load_weights

_LOG = logging.getLogger(__name__)


def run_predict(
    cfg: Mapping[str, Any],
    output: Path,
    input_dir: Path | None = None,
    labels: Path | None = None,
    weights: Path | None = None,
    model_uri: str | None = None,
    tracking_uri: str | None = None,
    source: str = "config",
) -> dict[str, Any]:
    """Predict every case and write its label map into ``output``.

    Args:
        cfg: the composed train config of the model.
        output: the folder for ``<case><ending>``, ``metrics.csv``/``metrics.json`` (with labels)
            and ``prediction.json`` (what was predicted with what).
        input_dir: images in the nnU-Net layout (``<case>_0000<ending>``, ...); None predicts
            the config's test split.
        labels: reference label maps ``<case><ending>`` for the cases of ``input_dir``.
        weights: a ``.pt`` state_dict or a trial's ``state.pt``.
        model_uri: a registered MLflow model (``models:/<name>/<version>``), instead of ``weights``.
        tracking_uri: the MLflow tracking URI that holds ``model_uri`` (default: MLflow's).
        source: how the user named the config, for messages.

    Returns:
        ``{"dataset", "cases", "output", "labels", **means}``: the means over cases of the
        per-case metrics when labels were given (``dice/<class>``, ..., ``mean_fg_dice``); with
        ``train.logit_offsets``, ``"logit_offsets": {class: offset}`` refitted on the config's
        validation split and added to every case's logits.

    Raises:
        ValueError: for a bad combination of options, a config that describes no valid run, weights
            that do not fit, and :class:`~asymtune.predict.inputs.InputError` naming every bad file.
        FileNotFoundError: for missing weights.
    """
    if (weights is None) == (model_uri is None):
        raise ValueError("expected exactly one of --weights (a .pt file) and --model (models:/<name>/<version>)")
    if labels is not None and input_dir is None:
        raise ValueError(f"--labels {labels} needs --input: the test split is scored against its own labels")
    if input_dir is not None and input_dir.resolve() == output.resolve():
        raise ValueError(f"--output {output} is the input folder: expected another folder for the label maps")
    if weights is not None:
        check_weights_file(weights)
    # No foreground oversampling: it only places training patches, and would read every training label.
    run = {**cfg, "train": {**dict(cfg["train"]), "oversample_foreground": 0.0}}
    try:
        trainer = build_trainer(run)
    except ValueError as error:
        raise ValueError(f"{source}: {error}") from error
    inputs = model_inputs(cfg, trainer.dataset)
    if input_dir is not None and not inputs.on_disk:
        raise ValueError(
            f"--input {input_dir}: the model of {source} was trained on data.source="
            f"{cfg['data'].get('source')!r}, generated in memory, so no file format or normalisation is known: "
            "expected a model trained on a dataset on disk (data.source nnunet or decathlon), or no --input "
            "to predict its test split"
        )
    if weights is not None:
        load_weights(trainer.model, weights)
    else:
        _load_registered(trainer, str(model_uri), tracking_uri)
    offsets = trainer.calibrate_logit_offsets()  # train.logit_offsets: refitted on validation, as after training

    if inputs.on_disk:
        rows, written = _predict_files(trainer, inputs, output, input_dir, labels)
    else:
        rows, written = _predict_synthetic_test(trainer, inputs, output)
    result: dict[str, Any] = {
        "dataset": inputs.dataset_name,
        "cases": len(written),
        "output": str(output),
        "labels": str(labels) if labels is not None else ("test split" if input_dir is None else None),
    }
    if offsets is not None:
        result["logit_offsets"] = dict(zip(inputs.class_names[1:], offsets[1:]))
    if rows:
        result.update(write_metrics(output, rows, inputs.class_names))
    _write_record(output, result, written, source, input_dir, weights, model_uri)
    return result


def _load_registered(trainer: Trainer, uri: str, tracking_uri: str | None) -> None:
    """Copy the weights of a registered MLflow model into the config's network."""
    import mlflow
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    previous = mlflow.get_tracking_uri()
    if tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pytorch.load_model(uri, map_location="cpu")
    except MlflowException as error:
        where = tracking_uri or previous
        message = " ".join(str(error.message).split())[:300]
        raise ValueError(
            f"--model {uri}: cannot be loaded from {where} ({message}): expected a registered model "
            "models:/<name>/<version> (--tracking-uri: the store that holds it)"
        ) from error
    finally:
        mlflow.set_tracking_uri(previous)
    try:
        trainer.model.load_state_dict(model.state_dict())
    except RuntimeError as error:
        raise ValueError(f"--model {uri} does not fit the model of the config: {str(error)[:300]}") from error


def _predict_files(
    trainer: Trainer, inputs: ModelInputs, output: Path, input_dir: Path | None, labels: Path | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Predict image files: ``input_dir``'s, or the test split's files in the training dataset."""
    if input_dir is not None:
        cases = scan_folder(input_dir, inputs, labels)
    else:
        test_ids = list(dict.fromkeys(trainer.dataset.test.case_ids or ()))  # slices share their volume's id
        cases = dataset_cases(inputs, test_ids)
    opened = open_cases(cases, inputs)
    output.mkdir(parents=True, exist_ok=True)  # only once every case's files are sound
    rows, written = [], []
    for number, case in enumerate(opened, 1):
        image = normalise_image(read_image(case), inputs.channel_names, inputs.ct_statistics)
        classes = predict_classes(trainer, image, inputs, case.spacing)
        path = write_label_map(
            output / f"{case.case.case_id}{inputs.output_ending}", classes, inputs.label_values, case.reference
        )
        images = [str(p) for p in case.case.images]
        written.append({"case": case.case.case_id, "images": images, "label_map": str(path)})
        label = read_label(case, inputs)
        if label is not None:
            rows.append(case_row(case.case.case_id, classes, label, inputs.class_names, case.spacing))
        _LOG.info("predicted %s (%d/%d): %s", case.case.case_id, number, len(opened), path)
    return rows, written


def _predict_synthetic_test(
    trainer: Trainer, inputs: ModelInputs, output: Path
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Predict the test split of a dataset generated in memory; label maps get an identity affine."""
    split = trainer.dataset.test
    logits = trainer.calibrated(trainer.predict_logits(split))
    output.mkdir(parents=True, exist_ok=True)
    rows, written = [], []
    for index, (item, (_, label)) in enumerate(zip(logits, split.cases())):
        case_id = f"{inputs.dataset_name}_test_{index:03d}"
        classes = item.argmax(0).numpy()
        path = write_label_map(output / f"{case_id}{inputs.output_ending}", classes, inputs.label_values)
        written.append({"case": case_id, "images": [], "label_map": str(path)})
        rows.append(case_row(case_id, classes, np.asarray(label), inputs.class_names, split.spacing(index)))
    return rows, written


def _write_record(
    output: Path, result: Mapping[str, Any], written: list[dict[str, Any]], source: str,
    input_dir: Path | None, weights: Path | None, model_uri: str | None,
) -> None:
    """``prediction.json``: the config, the model, the input and every case's files."""
    from asymtune.versions import code_version, library_versions

    record = {
        "config": source,
        "weights": str(weights) if weights is not None else None,
        "model": model_uri,
        "input": str(input_dir) if input_dir is not None else "test split",
        **{key: value for key, value in result.items() if key in ("dataset", "labels", "logit_offsets")},
        "cases": written,
        "code_version": code_version(),
        "libraries": library_versions(),
    }
    (output / RECORD).write_text(json.dumps(record, indent=2) + "\n")

