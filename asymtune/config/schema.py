"""The schema of ``conf/``: every key asymtune reads, its type, its one default and its meaning.

Each section is a dataclass whose field holds the key's type and default and whose docstring
(``Attributes:``) says what the key does; ``asymtune tune --cfg`` and ``docs/configuration.md`` show
both. Sections that training code checks itself are derived from that code's dataclass, so that
their defaults live in one place: ``train`` from :class:`asymtune.train.config.TrainConfig`,
``settings`` (of ``asymtune train``) from :class:`asymtune.method.settings.AsymmetrySettings`.

``TuneConfig`` (``conf/tune.yaml``) and ``TrainCommandConfig`` (``conf/train.yaml``) are stored
in Hydra's ConfigStore as ``tune_schema`` and ``train_schema``; each primary config lists its
schema first in its defaults, so that a key the schema does not have, or a value of the wrong
type, is refused while composing. ``data`` and ``model`` are open mappings: their keys depend on
the group option (``conf/data/*.yaml``, ``conf/model/*.yaml``), which holds their values.
"""

import dataclasses
import functools
import inspect
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Union

# ---------------------------------------------------------------------------------------------
# Sections of conf/tune.yaml
# ---------------------------------------------------------------------------------------------


@dataclass
class ObjectiveSection:
    """The validation metric each dataset's sweep optimises and the selection ranks by.

    Attributes:
        metric: a metric every trial reports: ``val/mean_fg_dice``, ``val/mean_fg_sensitivity``,
            ``val/mean_fg_precision``, or ``val/dice/<class>`` (also sensitivity, precision).
        mode: ``max`` or ``min``.
    """

    metric: str = "val/mean_fg_dice"
    mode: str = "max"


@dataclass
class RaySection:
    """The Ray runtime the trials run in.

    Attributes:
        address: null starts a local Ray runtime; ``auto`` or ``ray://host:10001`` joins a cluster.
        num_cpus: local runtime only: CPUs Ray may use (null: all of this machine's).
        include_dashboard: local runtime only: start Ray's dashboard.
        log_to_driver: show the trial processes' stdout and stderr (a trial's error is logged
            either way).
        worker_niceness: the niceness (-20 to 19) of the processes that run trials and confirmation
            trainings. 0, normal priority, is what a training started by hand gets and what a
            dedicated node should give; Ray's own default, 15, lets any other process on a shared
            node starve the trials. 15 or 19 keeps a sweep on a laptop in the background; below 0
            needs root or CAP_SYS_NICE on every node; null leaves it to Ray (``RAY_worker_niceness``).
    """

    address: str | None = None
    num_cpus: int | None = None
    include_dashboard: bool = False
    log_to_driver: bool = False
    worker_niceness: int | None = 0


@dataclass
class ResourcesSection:
    """What one trial (and one confirmation training with ``confirm.executor=ray``) reserves.

    Attributes:
        cpu: CPUs per trial (fractions allowed).
        gpu: GPUs per trial; 0.25 packs four trials on one GPU. Checked before any trial starts:
            a local runtime must have the GPUs, and a cluster must have them when Ray starts.
        wait_for_resources: on a cluster (``ray.address`` set) that lacks the CPUs or GPUs one
            trial asks for, log a warning and wait (an autoscaler may add nodes) instead of stopping.
    """

    cpu: float = 1.0
    gpu: float = 0.0
    wait_for_resources: bool = False


@dataclass
class MlflowSection:
    """Where trials, confirmations and the selected models are tracked.

    Attributes:
        tracking_uri: null: ``sqlite:///<output_dir>/mlflow.db`` (open it with
            ``mlflow ui --backend-store-uri ...``); or a tracking server ``http://host:5000``.
        experiment_name: the MLflow experiment of the sweep's runs.
        request_retries: retries per HTTP request to a tracking server; events that still fail
            wait in an outbox and are sent when the server answers.
        request_timeout_s: seconds per HTTP request to a tracking server.
        flush_timeout_s: at the end of a sweep, seconds to wait for an unreachable server to take
            the events of the outbox.
        system_metrics: every trial also logs its CPU, memory and GPU use at each epoch, as
            MLflow system metrics (``system/...``, the run page's "System metrics" tab).
    """

    tracking_uri: str | None = None
    experiment_name: str = "asymtune"
    request_retries: int = 2
    request_timeout_s: int = 10
    flush_timeout_s: float = 120.0
    system_metrics: bool = False


@dataclass
class OptunaSection:
    """Where the Optuna studies (one per dataset) are stored.

    Attributes:
        storage: null: ``sqlite:///<output_dir>/optuna.db``; an RDB URL (``postgresql://...``); or
            ``journal:///ABSOLUTE/PATH``: a journal file (``optuna.log``), safe on a shared filesystem
            (NFS), no database server.
    """

    storage: str | None = None


@dataclass
class SelectionSection:
    """Which trial the sweep chooses, on the validation split only.

    Attributes:
        constraint: null, or ``no_class_below_baseline``: every foreground class's Dice at least the
            baseline's.
    """

    constraint: str | None = None


@dataclass
class ConfirmSection:
    """After the sweeps: retrain the best trials and the baseline, choose again on validation,
    then test once.

    Attributes:
        enabled: retrain and test after the sweep.
        top_k: best trials retrained besides the baseline (2 or more also re-checks the choice).
        seeds: trainings per setting, with seeds ``train.seed``, ``train.seed + 1``, ...; 3 or more
            for real data (README: cost against intervals).
        max_seeds: the race's budget: one more seed of the candidates and the baseline at a time,
            up to this many, until validation decides (at most ``seeds``: no race).
        min_gain: the smallest gain of the objective worth having: the race stops once the
            leader's validation interval against the baseline lies below it.
        verdict_seeds: when the race ends with the leader better than the baseline on validation,
            the leader and the baseline (only they) are trained up to this many seeds before the
            test split is read, so that the test interval can confirm what validation showed (at
            most the race's seeds: no more seeds).
        train_ahead: with the ``ray`` executor, each round of the race also trains, on the slots free
            at that moment and on those that stay free while it waits (free at two readings 2 s apart),
            the seeds a later round may need; a result is logged only when a round
            needs it (the runs and the choice are those without it), the others are dropped: idle
            slots' time for a shorter confirmation (:mod:`asymtune.confirm.ahead`).
        reuse_trials: a sweep trial that trained every epoch counts as the training with seed
            ``train.seed`` (on the CPU it is that training, bit for bit) instead of training again.
        confidence: level of the paired t-intervals of selected - baseline.
        executor: ``ray`` (Ray tasks with the trials' resources) or ``local`` (in the driver, one
            after the other: no worker start-up, for tiny trainings).
        rivals: rivals confirmed with the same seeds and chosen among on validation like the
            tuned candidates (method.md section 8): ``authors_margin``, ``authors_focal``,
            ``authors_mixup``, ``authors_combined`` (the authors' fixed defaults), ``weighted_ce``,
            ``unified_focal``, ``logit_offset`` (the baseline's models with per-class logit
            offsets fitted on validation: no training; scored on validation cross-fitted).
    """

    enabled: bool = True
    top_k: int = 1
    seeds: int = 2
    max_seeds: int = 4
    min_gain: float = 0.01
    verdict_seeds: int = 8
    train_ahead: bool = True
    reuse_trials: bool = True
    confidence: float = 0.95
    executor: str = "ray"
    rivals: list[str] = field(
        default_factory=lambda: ["authors_margin", "authors_focal", "authors_mixup", "authors_combined", "logit_offset"]
    )


@dataclass
class ExportSection:
    """What is exported for each dataset besides ``configs/<dataset>.yaml``.

    Attributes:
        register_model: register the selected model in the MLflow model registry as
            ``<registered_model_prefix><dataset>``.
        registered_model_prefix: prefix of the registered model names.
    """

    register_model: bool = True
    registered_model_prefix: str = "asymtune-"


@dataclass
class ReportSection:
    """The report after the sweep.

    Attributes:
        enabled: write ``report.md``, ``report.html`` and ``configs/`` (``asymtune report`` can
            write them later).
    """

    enabled: bool = True


@dataclass
class SchedulerSection:
    """ASHA, which stops poor trials early on the objective, each rung only once the sweep's own
    trials show that its ranking predicts the last epoch's (``asymtune/search/scheduler.py``).

    Attributes:
        grace_period: epochs every trial trains before ASHA may stop it (at most ``train.epochs``).
        reduction_factor: at each rung ASHA keeps 1 / reduction_factor of the trials (more than 1).
        probe_trials: the first trials (anchors first) are never stopped, so that every rung can be
            measured against their last epoch (>= 0).
        min_pairs: trials that reached both a rung and the last epoch before that rung may stop a
            trial (>= 3); until then it lets every trial pass.
        min_rho: a rung whose Spearman rho (objective at the rung against the last epoch, over those
            trials) is below this lets every trial pass; -1 trusts every measured rung.
    """

    grace_period: int = 6
    reduction_factor: float = 3.0
    probe_trials: int = 4
    min_pairs: int = 4
    min_rho: float = 0.5


@dataclass
class SearchSection:
    """Optuna's TPE through Ray Tune's ``OptunaSearch``, ASHA stopping poor trials early.

    Attributes:
        space: a file of ``search_spaces/`` by name (``paper``, ``paper_full``, ``per_class``), or a
            path to a YAML file.
        num_samples: trials per dataset, the space's anchors (baseline, authors' defaults) included.
        max_concurrent_trials: trials that run at the same time.
        parallel_datasets: datasets whose sweeps (each then its confirmation) run at the same time, so
            that at most parallel_datasets x max_concurrent_trials trials run at once (1: one after the other).
        seed: seed of the TPE sampler.
        n_startup_trials: random trials before TPE models the results (anchors count).
        reuse_actors: the next trial runs in a finished trial's process (no new process, no imports
            again).
        checkpoint_every: epochs between checkpoints; a restarted trial repeats at most this many - 1
            epochs. ASHA's rungs and the last epoch are always checkpointed, with diagnostics
            (docs/benchmarks.md: orchestration overhead).
        checkpoints_to_keep: checkpoints kept per trial; older ones are deleted.
        max_failures: retries of a trial that raised (-1: retry without end).
        scheduler: ASHA, each rung measured on the sweep's trials before it stops any.
        warm_start: an earlier sweep to start from: its output_dir, or one Optuna study as
            STORAGE_URL#STUDY_NAME. Its best settings (of the same dataset, or of the dataset with the
            closest class-frequency profile) run first, before the anchors; null: a cold start.
        warm_start_top_k: earlier trials enqueued per dataset with warm_start (plus the anchors, at
            most num_samples).
    """

    space: str = "paper"
    num_samples: int = 8
    max_concurrent_trials: int = 2
    parallel_datasets: int = 4
    seed: int = 0
    n_startup_trials: int = 4
    reuse_actors: bool = True
    checkpoint_every: int = 1
    checkpoints_to_keep: int = 2
    max_failures: int = 1
    scheduler: SchedulerSection = field(default_factory=SchedulerSection)
    warm_start: str | None = None
    warm_start_top_k: int = 2


# ---------------------------------------------------------------------------------------------
# Sections derived from the code that checks them
# ---------------------------------------------------------------------------------------------


def _structured_type(annotation: Any) -> Any:
    """The OmegaConf type of a dataclass field's type: tuples become lists (OmegaConf has no
    tuples), ``X | None`` becomes ``X | None``."""
    origin = typing.get_origin(annotation)
    if _is_union(annotation):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1:
            raise TypeError(f"{annotation}: expected a type or an optional type")
        inner = _structured_type(members[0])
        return inner | None if type(None) in typing.get_args(annotation) else inner
    if origin in (tuple, list):
        args = [a for a in typing.get_args(annotation) if a is not Ellipsis]
        return list[_structured_type(args[0]) if args else Any]  # type: ignore[misc]
    if origin is dict:
        return dict[str, Any]
    return annotation


def _is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (Union, types.UnionType)


def derived_section(source: type, name: str, defaults: dict[str, Any] | None = None) -> type:
    """A structured config (dataclass) with the fields, types and defaults of the dataclass
    ``source`` (its own checks stay in ``source``); ``defaults`` gives fields without a default one."""
    defaults = defaults or {}
    hints = typing.get_type_hints(source)
    specs = []
    for spec in dataclasses.fields(source):
        if spec.name in defaults:
            value = defaults[spec.name]
        elif spec.default is not dataclasses.MISSING:
            value = spec.default
        else:
            raise TypeError(f"{source.__name__}.{spec.name} has no default: give one in defaults")
        if isinstance(value, tuple):
            value = list(value)
        default: Any = field(default=value)
        if isinstance(value, list):
            default = field(default_factory=functools.partial(list, value))
        specs.append((spec.name, _structured_type(hints[spec.name]), default))
    section = dataclasses.make_dataclass(name, specs)
    section.__doc__ = source.__doc__
    section.__module__ = __name__
    return section


def _train_section() -> type:
    from asymtune.train.config import TrainConfig

    return derived_section(TrainConfig, "TrainSection")


def _settings_section() -> type:
    from asymtune.method.settings import AsymmetrySettings

    baseline = {"margin": [0.0, 0.0], "gamma": [0.0, 0.0], "rare": [False, False]}
    return derived_section(AsymmetrySettings, "SettingsSection", baseline)


TrainSection = _train_section()


# ---------------------------------------------------------------------------------------------
# The primary configs
# ---------------------------------------------------------------------------------------------


@dataclass
class TuneConfig:
    """``asymtune tune`` (``conf/tune.yaml``): one Optuna study through Ray Tune per dataset,
    tracked in MLflow, then a report and one exported config per dataset.

    Attributes:
        output_dir: where the sweep writes everything; the same output_dir resumes an interrupted
            sweep.
        storage_path: Ray Tune's trial results and checkpoints; null: ``<output_dir>/ray_results``.
            On a cluster: a path every node sees, or a URI (``s3://bucket/prefix``, ``gs://...``).
        verbose: what the terminal shows: 0 no progress; 1 one progress line per dataset (trials
            done, running, stopped early, the best objective, elapsed and left), the libraries'
            INFO logs and each rung decision's off; 2 Ray Tune's trial table and all INFO logs;
            3 also a line per trial result.
        objective: the metric to optimise.
        ray: the Ray runtime.
        resources: per trial.
        mlflow: tracking.
        optuna: the studies' storage.
        selection: how the sweep's trials are ranked.
        confirm: retraining and the test after the sweeps.
        export: the exported setting of each dataset.
        report: the report.
        data: the datasets to tune, chosen by the group ``data`` (``conf/data/<option>.yaml``:
            builtin, synth_lesions, synth_organs, nnunet, decathlon): ``sets`` (by name: ``source``
            and ``params``) and ``common`` (params of every set), or ``root`` (dataset folders)
            with ``source`` and ``params``.
        model: the network, chosen by the group ``model`` (``conf/model/<option>.yaml``: unet,
            dynunet): ``name`` and the architecture's options.
        train: how each trial trains.
        search: the search: space, trials, TPE and ASHA.
    """

    output_dir: str = "outputs/tune"
    storage_path: str | None = None
    verbose: int = 1
    objective: ObjectiveSection = field(default_factory=ObjectiveSection)
    ray: RaySection = field(default_factory=RaySection)
    resources: ResourcesSection = field(default_factory=ResourcesSection)
    mlflow: MlflowSection = field(default_factory=MlflowSection)
    optuna: OptunaSection = field(default_factory=OptunaSection)
    selection: SelectionSection = field(default_factory=SelectionSection)
    confirm: ConfirmSection = field(default_factory=ConfirmSection)
    export: ExportSection = field(default_factory=ExportSection)
    report: ReportSection = field(default_factory=ReportSection)
    data: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainSection = field(default_factory=TrainSection)  # type: ignore[valid-type]
    search: SearchSection = field(default_factory=SearchSection)


def _train_command_config() -> type:
    settings_section = _settings_section()

    @dataclass
    class TrainCommandConfig:
        """``asymtune train`` (``conf/train.yaml``): train one setting from scratch and print its
        test metrics as one JSON line. An exported config (``configs/<dataset>.yaml`` of a sweep)
        has this shape; ``asymtune train --config FILE`` composes it over these defaults.

        Attributes:
            dataset_name: the dataset's name (in the printed metrics).
            data: the dataset: ``source`` (a registered dataset, or ``nnunet``/``decathlon``) and
                ``params``; for data on disk ``root``, a folder looked up in ``data_dir`` (null:
                ``$ASYMTUNE_DATA_DIR``), then the current folder; ``fingerprint`` (an exported
                config's): other data is refused, null trains on whatever is found.
            settings: the per-class setting (background first); this default is the baseline.
            save_model: a path to write the trained weights to (state_dict, ``.pt``); null: none.
            model: the network, chosen by the group ``model`` (``conf/model/<option>.yaml``: unet,
                dynunet): ``name`` and the architecture's options.
            train: how the model trains.
        """

        dataset_name: str = "synth_lesions"
        data: dict[str, Any] = field(
            default_factory=lambda: {"source": "synth_lesions", "params": {"seed": 0}}
        )
        settings: settings_section = field(default_factory=settings_section)  # type: ignore[valid-type]
        save_model: str | None = None
        model: dict[str, Any] = field(default_factory=dict)
        train: TrainSection = field(default_factory=TrainSection)  # type: ignore[valid-type]

    TrainCommandConfig.__module__ = __name__
    return TrainCommandConfig


_SCHEMAS: dict[str, type] = {"tune": TuneConfig}


def schema_for(config_name: str) -> type:
    """The schema dataclass of a primary config (``tune`` or ``train``)."""
    if config_name == "train" and "train" not in _SCHEMAS:
        _SCHEMAS["train"] = _train_command_config()  # imports the method (torch): only when needed
    if config_name not in _SCHEMAS:
        raise KeyError(f"no schema for config {config_name!r}: expected 'tune' or 'train'")
    return _SCHEMAS[config_name]


def schema_defaults(config_name: str) -> dict[str, Any]:
    """Every key of the schema of ``config_name`` at its default (open mappings empty, or the
    train command's default dataset), as plain values."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.structured(schema_for(config_name)))  # type: ignore[return-value]


def register_schema(config_name: str) -> type:
    """Store the schema of ``config_name`` in Hydra's ConfigStore as ``<config_name>_schema``."""
    from hydra.core.config_store import ConfigStore

    schema = schema_for(config_name)
    ConfigStore.instance().store(name=f"{config_name}_schema", node=schema)
    return schema


# ---------------------------------------------------------------------------------------------
# Reading the schema: field types, help, every key
# ---------------------------------------------------------------------------------------------

OPEN = object()
"""The node type of an open mapping (``data``, ``model``): any key."""


def node_type(section: Any, name: str) -> Any:
    """The type of field ``name`` of ``section``: a dataclass (a section), :data:`OPEN` (an open
    mapping), or the leaf's type."""
    annotation = typing.get_type_hints(section)[name]
    if dataclasses.is_dataclass(annotation):
        return annotation
    stripped = [a for a in typing.get_args(annotation) if a is not type(None)]
    if annotation is Any or typing.get_origin(annotation) is dict:
        return OPEN
    if _is_union(annotation) and len(stripped) == 1 and typing.get_origin(stripped[0]) is dict:
        return OPEN
    return annotation


def keys_of(section: Any, prefix: str = "") -> list[str]:
    """Every dotted key of the schema, sections included, in order."""
    names = []
    for spec in dataclasses.fields(section):
        name = f"{prefix}{spec.name}"
        names.append(name)
        child = node_type(section, spec.name)
        if dataclasses.is_dataclass(child):
            names.extend(keys_of(child, name + "."))
    return names


_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr):`~?([^`]+)`")


def field_help(section: Any) -> dict[str, str]:
    """Each field's meaning, from the ``Attributes:`` section of the section's docstring
    (Google style; ``a, b: text`` documents both)."""
    doc = inspect.cleandoc(section.__doc__ or "")
    helps: dict[str, str] = {}
    current: list[str] = []
    inside = False
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):
            break
        match = re.match(r"^ {4}([\w, ]+):\s*(.*)$", line)
        if match and not line.startswith(" " * 5):
            current = [name.strip() for name in match.group(1).split(",")]
            for name in current:
                helps[name] = match.group(2).strip()
        elif line.strip() and current:
            for name in current:
                helps[name] += " " + line.strip()
    return {name: _plain(text) for name, text in helps.items()}


def _plain(text: str) -> str:
    """Docstring markup as plain text: ``x`` and :func:`x` become `x`."""
    return _ROLE.sub(r"`\1`", text).replace("``", "`")


def describe_type(annotation: Any) -> str:
    """A type as a user reads it: ``an integer``, ``a list of integers or null``..."""
    args = typing.get_args(annotation)
    if _is_union(annotation) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        return f"{describe_type(inner)} or null"
    if typing.get_origin(annotation) is list:
        item = describe_type(args[0]) if args else "value"
        plural = {"an integer": "integers", "a number": "numbers", "true or false": "booleans", "a string": "strings"}
        return f"a list of {plural.get(item, 'values')}"
    names = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}
    if dataclasses.is_dataclass(annotation):
        return "a mapping"
    return names.get(annotation, str(annotation))
