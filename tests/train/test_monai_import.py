"""MONAI imported through asymtune.monai_import: works, without loading the packages it hides."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from asymtune.monai_import import HIDDEN_FROM_MONAI, monai_module

# Run in a fresh interpreter: the test process may have imported MONAI or the hidden packages.
CHILD = """
import json, sys
import numpy as np, torch
from asymtune.train.inference import sliding_window_logits
from asymtune.train.case_metrics import hd95
from asymtune.models.registry import create_model
before = {name for name in %r if name in sys.modules}  # e.g. tqdm, which torch imports
assert "monai" not in sys.modules
image = np.zeros((1, 20, 20), dtype=np.float32)
logits = sliding_window_logits(lambda w: torch.ones(w.shape[0], 2, *w.shape[2:]), image, (16, 16), 2,
                               torch.device("cpu"))
a = torch.zeros(8, 8, dtype=torch.int64); a[1, 1] = 1
b = torch.zeros(8, 8, dtype=torch.int64); b[1, 4] = 1
distance = float(hd95(a, b, 2, (2.0, 1.0))[0])
net = create_model("dynunet", 2, 1, 2, base_channels=4, depth=3)
loaded = sorted(name for name in %r if name in sys.modules and name not in before)
assert "monai.inferers" in sys.modules and "monai.metrics" in sys.modules
import pandas  # still importable afterwards
print(json.dumps({"loaded": loaded, "logits": float(logits.mean()), "hd95": distance,
                  "dynunet": type(net).__name__, "pandas": pandas.__name__}))
"""


def test_monai_paths_work_without_loading_the_hidden_packages() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD % (HIDDEN_FROM_MONAI, HIDDEN_FROM_MONAI)],
        capture_output=True, text=True, timeout=300, check=False,  # the return code is asserted below
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == [], f"MONAI's import loaded {result['loaded']}"
    assert result["logits"] == pytest.approx(1.0)
    assert result["hd95"] == pytest.approx(3.0)  # one point 3 columns away, 1 mm per column
    assert result["dynunet"] == "DynUNet"
    assert result["pandas"] == "pandas"


def test_only_monai_modules_are_accepted() -> None:
    with pytest.raises(ValueError, match="'numpy': expected a MONAI module name"):
        monai_module("numpy")
