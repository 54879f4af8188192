"""``asymtune predict``: a trained model's label maps for a folder of images or its test split.

- :mod:`.spec`: what the model takes (channels, normalisation, window, label values), from its
  train config and training dataset;
- :mod:`.inputs`: the images to predict, found by name and checked by header, every defect naming
  its file;
- :mod:`.volumes`: one image in, its class map out (the evaluation's sliding window);
- :mod:`.outputs`: label maps on the input's grid, per-case metrics;
- :mod:`.command`: the command, step by step.
"""

from asymtune.predict.command import run_predict
from asymtune.predict.inputs import InputError
from asymtune.predict.spec import ModelInputs, model_inputs

__all__ = ["InputError", "ModelInputs", "model_inputs", "run_predict"]
