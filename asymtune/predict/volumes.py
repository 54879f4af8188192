"""One image in, its class map out, by the same sliding-window inference that validation and
test use (:meth:`asymtune.train.trainer.Trainer.predict_logits`).

The image is shaped as the training arrays were (:mod:`asymtune.data.prepared`,
:func:`asymtune.data.cases.case_split`): a 2-D network drops the singleton axis of an ``(X, Y, 1)``
file, a 2-D network on slices of 3-D images sees each slice along ``slice_axis``; the class map is
put back into the stored shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from asymtune.data.cases import case_split
from asymtune.data.prepared import PreparedCase
from asymtune.predict.spec import ModelInputs
from asymtune.train.trainer import Trainer


def predict_classes(
    trainer: Trainer, image: np.ndarray, inputs: ModelInputs, spacing: Sequence[float] | None = None
) -> np.ndarray:
    """The class index of every voxel of one normalised image.

    Args:
        trainer: holds the trained network, its device and its window (the training patch size).
        image: ``(C_in, *shape)`` float32, normalised as the training data
            (:func:`asymtune.data.prepared.normalise_image`); ``shape`` as stored.
        inputs: how the network takes the image (:class:`ModelInputs`).
        spacing: voxel size per axis of ``shape`` (default 1).

    Returns:
        ``(*shape)`` int64 class indices ``0..K-1``.
    """
    shape = tuple(image.shape[1:])
    spacing = tuple(spacing) if spacing is not None else (1.0,) * len(shape)
    axis = inputs.squeeze_axis(shape)
    if axis is not None:  # (C, X, Y, 1) -> (C, X, Y), as the prepared 2-D arrays
        image = np.squeeze(image, axis=axis + 1)
        spacing = spacing[:axis] + spacing[axis + 1 :]
    case = PreparedCase("case", image, np.zeros(image.shape[1:], dtype=np.uint8), spacing)
    split = case_split([case], inputs.slice_axis)  # one item, or one per slice along slice_axis
    predictions = [logits.argmax(0) for logits in trainer.calibrated(trainer.predict_logits(split))]
    if inputs.slice_axis is not None:
        classes = np.moveaxis(torch.stack(predictions).numpy(), 0, inputs.slice_axis)  # (S, a, b) -> (X, Y, Z)
    else:
        classes = predictions[0].numpy()
    if axis is not None:
        classes = np.expand_dims(classes, axis)
    return classes.astype(np.int64, copy=False)
