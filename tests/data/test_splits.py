"""Case-level splits: disjoint, seeded, k folds, nested training fractions."""

from __future__ import annotations

import pytest

from asymtune.data.splits import split_cases

IDS = [f"case_{i:03d}" for i in range(20)]


def test_splits_are_disjoint_and_cover_every_case() -> None:
    split = split_cases(IDS, seed=3)
    assert (len(split.test), len(split.val), len(split.train)) == (4, 4, 12)
    assert set(split.train) | set(split.val) | set(split.test) == set(IDS)
    assert not set(split.train) & set(split.val) and not set(split.train) & set(split.test)


def test_same_seed_same_split_other_seed_other_split() -> None:
    assert split_cases(IDS, seed=1) == split_cases(list(reversed(IDS)), seed=1)
    assert split_cases(IDS, seed=1) != split_cases(IDS, seed=2)


def test_training_fractions_are_nested() -> None:
    fractions = [0.05, 0.1, 0.5, 1.0]
    trains = [split_cases(IDS, seed=0, train_fraction=f).train for f in fractions]
    assert [len(t) for t in trains] == [1, 2, 6, 12]
    for smaller, larger in zip(trains, trains[1:]):
        assert set(smaller) < set(larger)
    assert all(split_cases(IDS, seed=0, train_fraction=f).val == split_cases(IDS, seed=0).val for f in fractions)


def test_folds_share_the_test_split_and_partition_the_rest() -> None:
    folds = [split_cases(IDS, seed=0, num_folds=4, fold=f) for f in range(4)]
    assert len({fold.test for fold in folds}) == 1
    vals = [set(fold.val) for fold in folds]
    assert set().union(*vals) == set(IDS) - set(folds[0].test)
    assert sum(len(v) for v in vals) == 16
    for fold in folds:
        assert not set(fold.train) & set(fold.val)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_fraction": 0.0}, r"data.params.train_fraction=0.0: expected a number in \(0, 1\]"),
        ({"val_fraction": 1.0}, r"data.params.val_fraction=1.0: expected a number in \[0, 1\)"),
        ({"num_folds": 3, "fold": 3}, r"num_folds=3, fold=3: expected num_folds >= 2 and 0 <= fold < num_folds"),
    ],
)
def test_bad_values_are_named(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        split_cases(IDS, **kwargs)


def test_too_few_cases() -> None:
    with pytest.raises(ValueError, match=r"2 cases: expected at least 3"):
        split_cases(["a", "b"])


def test_default_rare_classes_come_from_the_whole_training_split(tmp_path) -> None:
    """``small`` is 5% of the voxels of the cases train_fraction=0.25 keeps, but 1.6% of the whole
    training split: it is rare at every training-set size (and ``tiny``, 1% everywhere, too)."""
    import numpy as np

    from asymtune.data.cases import nnunet_dataset
    from asymtune.data.writers import write_nnunet

    ids = [f"case{index:02d}" for index in range(20)]
    kept = set(split_cases(ids, seed=0, train_fraction=0.25).train)
    cases = []
    for index, case_id in enumerate(ids):
        label = np.zeros(1000, dtype=np.uint8)
        label[:200] = 1  # big: 20%
        label[200:210] = 3  # tiny: 1%
        label[210:260 if case_id in kept else 215] = 2  # small: 5% in the kept cases, 0.5% elsewhere
        image = np.random.default_rng(index).normal(size=(1, 10, 10, 10)).astype(np.float32)
        cases.append((case_id, image, label.reshape(10, 10, 10)))
    root = write_nnunet(tmp_path / "Dataset001_Rare", cases, ("T1",), ("background", "big", "small", "tiny"))
    for fraction in (0.25, 1.0):
        dataset = nnunet_dataset(root=str(root), train_fraction=fraction, cache_dir=str(tmp_path / "cache"))
        assert [dataset.class_names[c] for c in dataset.rare_classes] == ["small", "tiny"], fraction
