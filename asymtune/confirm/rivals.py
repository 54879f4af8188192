"""The trained rivals of the confirmation (method.md section 8): what a user would train without
the tuner, confirmed with the same seeds as the tuned candidates and the baseline.

- ``authors_margin``, ``authors_focal``, ``authors_mixup``: one asymmetric technique at the
  authors' fixed strength (:data:`asymtune.method.settings.AUTHORS_STRENGTHS`), the rare set the
  dataset's own (the 2% rule, or its ``rare_classes``);
- ``authors_combined``: the three together;
- ``weighted_ce``, ``unified_focal``: the registered plain losses, no asymmetry;
- ``logit_offset``: the baseline with ``train.logit_offsets`` (:mod:`asymtune.train.offsets`):
  per-class logit offsets fitted on the validation split after training, added at test time.

A rival is trained from the baseline trial's contract (dataset, model, train options) with its
own setting (or loss). When a sweep trial trained exactly that setting (the space's
``authors_default`` anchor is ``authors_combined``), the rival *is* that trial, so its checkpoint
counts as the first seed. The logit-offset rival trains nothing: its models are the baseline's
confirmation models of the same seeds (:func:`asymtune.confirm.jobs.offset_job`), scored on
validation with cross-fitted offsets, so that it races and is chosen like the others, and an
export of it is the baseline's config with ``train.logit_offsets: true``.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

from asymtune.method.settings import authors_default
from asymtune.results.layout import FIXED_KEY, SETTINGS_KEY
from asymtune.results.spec import trial_spec
from asymtune.results.trials import TrialRecord

RIVAL_TRIAL_PREFIX = "rival-"
"""Trial id of a rival that no sweep trial trained: ``rival-<name>``."""


@dataclass(frozen=True)
class Rival:
    """One trained rival.

    Attributes:
        name: its name in ``confirm.rivals``.
        description: one line for the report.
        techniques: the authors' techniques switched on (``margin``, ``focal``, ``mixup``).
        loss: a registered plain loss that replaces ``train.loss`` (None: the asymmetric loss).
        offsets: the baseline's models with ``train.logit_offsets`` (derived, not trained).
    """

    name: str
    description: str
    techniques: tuple[str, ...] = ()
    loss: str | None = None
    offsets: bool = False


RIVALS: dict[str, Rival] = {rival.name: rival for rival in (
    Rival("authors_margin", "the authors' large margin: m = 1 on the rare classes", ("margin",)),
    Rival("authors_focal", "the authors' focal loss: gamma = 4 on the frequent classes", ("focal",)),
    Rival("authors_mixup", "the authors' asymmetric mixup: alpha = 0.2, mu = 0.2", ("mixup",)),
    Rival("authors_combined", "the authors' defaults combined: margin 1, focal gamma 4, mixup 0.2 / 0.2",
          ("margin", "focal", "mixup")),
    Rival("weighted_ce", "inverse-frequency weighted cross-entropy + soft Dice, no asymmetry", loss="weighted_ce"),
    Rival("unified_focal", "the Unified Focal loss (Yeung et al.), no asymmetry", loss="unified_focal"),
    Rival("logit_offset", "the baseline's models with per-class logit offsets fitted on the validation split",
          offsets=True),
)}


def check_rivals(names: Sequence[str]) -> None:
    """Refuse an unknown or repeated name in ``confirm.rivals``."""
    for name in names:
        if name not in RIVALS:
            raise ValueError(f"confirm.rivals: {name!r} is not a rival: expected names among {sorted(RIVALS)}")
    repeated = sorted({name for name in names if list(names).count(name) > 1})
    if repeated:
        raise ValueError(f"confirm.rivals: {repeated} named more than once: expected each rival once")


def rival_trial(rival: Rival, baseline: TrialRecord, trials: Sequence[TrialRecord]) -> TrialRecord | None:
    """The trial that trains ``rival``: a sweep trial with exactly its setting and the baseline's
    contract when one has results, else a stand-in record (no history, no checkpoint) built from
    the baseline's; None when the rival equals the baseline (a dataset without rare classes has
    no margin to add, for instance)."""
    spec = baseline.spec
    rare = [index in spec.rare for index in range(len(spec.class_names))]
    settings = authors_default(baseline.settings, rare, rival.techniques) if rival.techniques else baseline.settings
    if rival.loss is None and not rival.offsets and settings == baseline.settings:
        return None
    config = copy.deepcopy(baseline.config)
    config[SETTINGS_KEY] = settings.to_dict()
    if rival.loss is not None:
        config[FIXED_KEY]["train"]["loss"] = rival.loss
    if rival.offsets:
        config[FIXED_KEY]["train"]["logit_offsets"] = True
    for trial in trials:
        if trial.history and trial.error is None and trial.settings == settings and trial.spec == trial_spec(config):
            return trial
    return TrialRecord(trial_id=f"{RIVAL_TRIAL_PREFIX}{rival.name}", config=config, settings=settings, status="RIVAL")


def rival_trials(names: Sequence[str], baseline: TrialRecord, trials: Sequence[TrialRecord]) -> dict[str, TrialRecord]:
    """``{rival name: the trial that trains it}`` for the rivals of ``names`` that differ from the baseline."""
    found = {name: rival_trial(RIVALS[name], baseline, trials) for name in names}
    return {name: trial for name, trial in found.items() if trial is not None}
