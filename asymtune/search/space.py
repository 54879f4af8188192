"""Search spaces from ``search_spaces/*.yaml``: validation, Optuna define-by-run, settings.

A space file has ``form`` (``paper`` or ``per_class``), ``params`` (what Optuna searches),
``fixed`` (settings every trial shares) and ``anchors`` (named settings evaluated first, such as
the baseline and the authors' defaults). Everything is checked against the dataset's classes in
:meth:`SearchSpace.bind` before any trial starts.

The rare set ``r`` is named by a keyword in anchors, and searched either flag by flag
(``rare: {type: rare_set}``, one yes/no per foreground class) or among keywords
(``rare: {type: categorical, choices: [dataset, every_class]}``):

- ``none``: no class is rare;
- ``all``: every foreground class is rare (still asymmetric: the background is not);
- ``dataset``: the dataset's rare classes;
- ``every_class``: every class is rare, the background included (``r`` all ones): the paper's
  symmetric control of margin, adversarial training and augmentation (method.md section 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from asymtune.method.settings import AsymmetrySettings, from_paper_form
from asymtune.results.layout import SETTINGS_KEY

FORMS = ("paper", "per_class")
PARAM_TYPES = ("float", "int", "categorical", "bool", "rare_set")
SCALAR_SETTINGS = ("mixup_alpha", "mixup_margin", "mixup_symmetric", "adv_eps", "adv_xi", "aug_p_bg", "schedule")
VECTOR_SETTINGS = ("margin", "gamma")
RARE_KEYWORDS = ("none", "all", "dataset", "every_class")


class SearchSpaceError(ValueError):
    """A search space file is malformed or does not fit the dataset."""


@dataclass(frozen=True)
class ParamSpec:
    """One searched quantity as written in the file (before per-class expansion)."""

    name: str
    type: str
    low: float | list[float] | None = None
    high: float | list[float] | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    per_class: str | None = None


@dataclass(frozen=True)
class SearchSpace:
    """A parsed search space file.

    Attributes:
        path: the file it came from (for error messages).
        form: ``"paper"`` or ``"per_class"``.
        params: searched quantities.
        fixed: settings shared by every trial.
        anchors: named points in paper form, evaluated first.
    """

    path: str
    form: str
    params: tuple[ParamSpec, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def from_file(cls, path: str | Path) -> SearchSpace:
        """Read and check the file's structure (class counts are checked by :meth:`bind`)."""
        path = Path(path)
        if not path.is_file():
            raise SearchSpaceError(f"search space file {path} does not exist: expected a YAML file")
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as error:
            raise SearchSpaceError(f"search space file {path} is not valid YAML: {error}") from error
        return cls.from_mapping(raw, str(path))

    @classmethod
    def from_mapping(cls, raw: Any, path: str = "<search space>") -> SearchSpace:
        if not isinstance(raw, Mapping):
            raise SearchSpaceError(f"{path}: expected a mapping with form, params, fixed, anchors")
        unknown = sorted(set(raw) - {"form", "params", "fixed", "anchors", "description"})
        if unknown:
            raise SearchSpaceError(f"{path}: unknown top-level keys {unknown}")
        form = raw.get("form", "paper")
        if form not in FORMS:
            raise SearchSpaceError(f"{path}: form={form!r}: expected one of {FORMS}")
        params_raw = raw.get("params") or {}
        if not isinstance(params_raw, Mapping) or not params_raw:
            raise SearchSpaceError(f"{path}: params must be a non-empty mapping of name -> spec")
        params = tuple(_parse_param(path, name, spec, form) for name, spec in params_raw.items())
        fixed = dict(raw.get("fixed") or {})
        for key in fixed:
            if key not in SCALAR_SETTINGS:
                raise SearchSpaceError(f"{path}: fixed.{key}: unknown setting, expected one of {SCALAR_SETTINGS}")
        anchors = {str(k): dict(v) for k, v in (raw.get("anchors") or {}).items()}
        for name, point in anchors.items():
            for key, value in point.items():
                if key not in (*VECTOR_SETTINGS, *SCALAR_SETTINGS, "rare"):
                    raise SearchSpaceError(f"{path}: anchors.{name}.{key}: unknown setting")
                if key == "rare" and value not in RARE_KEYWORDS:
                    raise SearchSpaceError(
                        f"{path}: anchors.{name}.rare={value!r}: expected one of {RARE_KEYWORDS}"
                    )
        return cls(path=path, form=form, params=params, fixed=fixed, anchors=anchors)

    def bind(self, class_names: Sequence[str], dataset_rare: Sequence[int]) -> BoundSpace:
        """Expand per-class params for a dataset's classes, checking every list length."""
        return BoundSpace(self, tuple(class_names), tuple(int(c) for c in dataset_rare))


def _parse_param(path: str, name: str, spec: Any, form: str) -> ParamSpec:
    where = f"{path}: params.{name}"
    if not isinstance(spec, Mapping) or "type" not in spec:
        raise SearchSpaceError(f"{where}: expected a mapping with a 'type' ({', '.join(PARAM_TYPES)})")
    kind = spec["type"]
    if kind not in PARAM_TYPES:
        raise SearchSpaceError(f"{where}.type={kind!r}: expected one of {PARAM_TYPES}")
    if kind == "rare_set":
        if name != "rare":
            raise SearchSpaceError(f"{where}: a rare_set must be named 'rare'")
        return ParamSpec(name=name, type=kind)
    if name == "rare":
        return _parse_rare_keywords(where, spec)
    if name not in (*VECTOR_SETTINGS, *SCALAR_SETTINGS):
        raise SearchSpaceError(
            f"{where}: unknown setting {name!r}: expected one of {(*VECTOR_SETTINGS, *SCALAR_SETTINGS, 'rare')}"
        )
    per_class = spec.get("per_class")
    if per_class is not None:
        if name not in VECTOR_SETTINGS:
            raise SearchSpaceError(f"{where}.per_class: only {VECTOR_SETTINGS} can be per class")
        if per_class not in ("foreground", "all"):
            raise SearchSpaceError(f"{where}.per_class={per_class!r}: expected 'foreground' or 'all'")
    elif form == "per_class" and name in VECTOR_SETTINGS:
        raise SearchSpaceError(f"{where}: form per_class needs per_class: foreground|all on {name}")
    if kind in ("float", "int"):
        if "low" not in spec or "high" not in spec:
            raise SearchSpaceError(f"{where}: a {kind} needs low and high")
        return ParamSpec(
            name=name, type=kind, low=spec["low"], high=spec["high"], log=bool(spec.get("log", False)),
            per_class=per_class,
        )
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
            raise SearchSpaceError(f"{where}.choices: expected a non-empty list")
        return ParamSpec(name=name, type=kind, choices=tuple(choices), per_class=per_class)
    return ParamSpec(name=name, type="bool", per_class=per_class)


def _parse_rare_keywords(where: str, spec: Mapping[str, Any]) -> ParamSpec:
    """``rare: {type: categorical, choices: [...]}``: the rare set searched among keywords."""
    choices = spec.get("choices")
    if spec["type"] != "categorical" or not isinstance(choices, Sequence) or isinstance(choices, str) or not choices:
        raise SearchSpaceError(
            f"{where}: expected type rare_set (one flag per foreground class) or type categorical with "
            f"choices among {RARE_KEYWORDS}"
        )
    unknown = [choice for choice in choices if choice not in RARE_KEYWORDS]
    if unknown or len(set(choices)) != len(choices):
        raise SearchSpaceError(
            f"{where}.choices={list(choices)}: expected distinct keywords among {RARE_KEYWORDS}"
        )
    return ParamSpec(name="rare", type="categorical", choices=tuple(choices))


def _as_bounds(where: str, value: Any, count: int, class_labels: Sequence[str]) -> list[float]:
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != count:
            raise SearchSpaceError(
                f"{where} has {len(value)} values {list(value)}: expected {count}, one per class "
                f"({', '.join(class_labels)})"
            )
        return [float(v) for v in value]
    return [float(value)] * count


@dataclass(frozen=True)
class _Dimension:
    """One Optuna parameter after expansion."""

    key: str
    type: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()


class BoundSpace:
    """A search space expanded for one dataset; picklable, usable as Optuna define-by-run.

    Optuna parameter names: scalars keep their name (``margin``), per-class values become
    ``margin.<class>``, the rare set ``rare.<class>`` (foreground classes only), or ``rare`` (a
    keyword of :data:`RARE_KEYWORDS`) when it is searched among keywords.
    """

    def __init__(self, space: SearchSpace, class_names: tuple[str, ...], dataset_rare: tuple[int, ...]) -> None:
        self.space = space
        self.class_names = class_names
        self.dataset_rare = dataset_rare
        num_classes = len(class_names)
        for index in dataset_rare:
            if not 0 < index < num_classes:
                raise SearchSpaceError(
                    f"dataset rare class {index}: expected a foreground class in 1..{num_classes - 1}"
                )
        dims: list[_Dimension] = []
        for spec in space.params:
            where = f"{space.path}: params.{spec.name}"
            if spec.type == "rare_set":
                dims += [_Dimension(f"rare.{name}", "bool") for name in class_names[1:]]
                continue
            if spec.per_class is None:
                keys = [spec.name]
                labels = [spec.name]
            else:
                first = 1 if spec.per_class == "foreground" else 0
                labels = list(class_names[first:])
                keys = [f"{spec.name}.{name}" for name in labels]
            if spec.type in ("float", "int"):
                lows = _as_bounds(f"{where}.low", spec.low, len(keys), labels)
                highs = _as_bounds(f"{where}.high", spec.high, len(keys), labels)
                for key, low, high in zip(keys, lows, highs):
                    if not low <= high or (spec.log and low <= 0):
                        raise SearchSpaceError(
                            f"{where}: low={low}, high={high}: expected low <= high (and low > 0 if log)"
                        )
                    dims.append(_Dimension(key, spec.type, low, high, spec.log))
            else:
                dims += [_Dimension(key, spec.type, choices=spec.choices) for key in keys]
        self.dimensions = tuple(dims)
        self._keys = {d.key for d in dims}
        self.anchor_points()  # an anchor that the space cannot hold stops here, before any trial

    # ---------------------------------------------------------------- Optuna define-by-run
    def __call__(self, trial: Any) -> dict[str, Any]:
        """Optuna define-by-run: suggest every dimension on ``trial``; returns the constant part of
        the trial's config, ``{"settings": <the per-class setting the point stands for>}``, so that a
        trial and everything that reads it later need no search space to know what it trained."""
        params: dict[str, Any] = {}
        for dim in self.dimensions:
            if dim.type == "float":
                params[dim.key] = trial.suggest_float(dim.key, dim.low, dim.high, log=dim.log)
            elif dim.type == "int":
                params[dim.key] = trial.suggest_int(dim.key, int(dim.low), int(dim.high), log=dim.log)
            elif dim.type == "categorical":
                params[dim.key] = trial.suggest_categorical(dim.key, list(dim.choices))
            else:
                params[dim.key] = trial.suggest_categorical(dim.key, [False, True])
        return {SETTINGS_KEY: self.to_settings(params).to_dict()}

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    # ------------------------------------------------------------------- params <-> settings
    def rare_from_keyword(self, keyword: str) -> tuple[bool, ...]:
        """The rare flags (one per class, background first) a keyword of :data:`RARE_KEYWORDS` names."""
        count = len(self.class_names)
        if keyword == "none":
            return (False,) * count
        if keyword == "all":  # every foreground class
            return (False,) + (True,) * (count - 1)
        if keyword == "every_class":  # the background too: the symmetric control
            return (True,) * count
        if keyword == "dataset":
            return tuple(index in self.dataset_rare for index in range(count))
        raise SearchSpaceError(f"{self.space.path}: rare={keyword!r}: expected one of {RARE_KEYWORDS}")

    def _rare_flags(self, params: Mapping[str, Any]) -> tuple[bool, ...]:
        if any(key.startswith("rare.") for key in self._keys):
            return (False,) + tuple(bool(params[f"rare.{name}"]) for name in self.class_names[1:])
        if "rare" in self._keys:
            return self.rare_from_keyword(str(params["rare"]))
        return self.rare_from_keyword("dataset")

    def to_settings(self, params: Mapping[str, Any]) -> AsymmetrySettings:
        """The per-class settings one point of this space stands for."""
        missing = sorted(self._keys - set(params))
        if missing:
            raise SearchSpaceError(f"{self.space.path}: point {dict(params)} lacks {missing}")
        rare = self._rare_flags(params)
        scalars = {**self.space.fixed, **{k: params[k] for k in SCALAR_SETTINGS if k in params}}
        num_classes = len(self.class_names)
        if self.space.form == "paper":
            return from_paper_form(
                num_classes, rare, margin=float(params.get("margin", 0.0)), gamma=float(params.get("gamma", 0.0)),
                **scalars,
            )
        vectors = {}
        for name in VECTOR_SETTINGS:
            vectors[name] = tuple(float(params.get(f"{name}.{cls}", 0.0)) for cls in self.class_names)
        return AsymmetrySettings(margin=vectors["margin"], gamma=vectors["gamma"], rare=rare, **scalars)

    def anchor_points(self) -> dict[str, dict[str, Any]]:
        """The anchors as Optuna parameter dicts of this space, clipped to its bounds.

        Raises:
            SearchSpaceError: if an anchor's rare set cannot be written in this space's
                parameters: a keyword missing from the searched ``rare`` choices, or
                ``every_class`` in a space that cannot make the background rare.
        """
        points = {}
        for name, anchor in self.space.anchors.items():
            keyword = anchor.get("rare", "dataset")
            rare = list(self.rare_from_keyword(keyword))
            settings = from_paper_form(
                len(self.class_names), rare, margin=float(anchor.get("margin", 0.0)),
                gamma=float(anchor.get("gamma", 0.0)),
            )
            point: dict[str, Any] = {}
            for dim in self.dimensions:
                if dim.key == "rare":  # searched among keywords
                    value: Any = keyword
                elif dim.key.startswith("rare."):
                    value = rare[self.class_names.index(dim.key[5:])]
                elif "." in dim.key:
                    vector, cls = dim.key.split(".", 1)
                    value = getattr(settings, vector)[self.class_names.index(cls)]
                else:
                    value = anchor.get(
                        dim.key, 0.0 if dim.type in ("float", "int") else dim.choices[0] if dim.choices else False
                    )
                if dim.type in ("float", "int"):
                    value = min(max(float(value), dim.low), dim.high)
                    value = int(value) if dim.type == "int" else value
                point[dim.key] = value
            self._check_anchor_rare(name, keyword, tuple(rare), point)
            points[name] = point
        return points

    def _check_anchor_rare(self, name: str, keyword: str, rare: tuple[bool, ...], point: Mapping[str, Any]) -> None:
        """Refuse an anchor whose rare set the point would replace by another one.

        Spaces that do not search ``rare`` have always run their anchors with the dataset's rare
        classes whatever keyword the anchor names (the baseline's ``rare: none`` changes nothing
        there); only ``every_class``, whose point is the symmetric control, is held to its word.
        """
        where = f"{self.space.path}: anchors.{name}.rare={keyword!r}"
        if "rare" in self._keys:
            choices = next(dim.choices for dim in self.dimensions if dim.key == "rare")
            if keyword not in choices:
                raise SearchSpaceError(f"{where}: expected one of the searched choices {list(choices)}")
        elif keyword == "every_class" and self._rare_flags(point) != rare:
            raise SearchSpaceError(
                f"{where}: this space cannot make the background rare (a rare_set has one flag per foreground "
                "class; without a rare param every trial uses the dataset's rare classes); expected "
                f"rare: {{type: categorical, choices: [..., every_class]}} in its params"
            )
