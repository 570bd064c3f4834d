"""Splits by group: disjoint, stratified, deterministic, multi-season groups, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cropassets.ml.splits import field_classes, groups_per_class, split_fields


def test_no_field_in_two_sets_and_every_class_everywhere(weekly):
    s = split_fields(weekly.labels, weekly.field_ids, val_fraction=0.25, test_fraction=0.2,
                     seed=1)
    sets = [set(s.train), set(s.val), set(s.test)]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert set().union(*sets) == set(np.unique(weekly.field_ids))
    for ids in (s.train, s.val, s.test):
        classes = np.unique(weekly.labels[np.isin(weekly.field_ids, ids)])
        assert len(classes) == len(weekly.class_codes)
    tr, va, te = s.masks(weekly.field_ids)
    assert not (tr & va).any() and not (tr & te).any() and (tr | va | te).all()


def test_deterministic_for_seed(weekly):
    a = split_fields(weekly.labels, weekly.field_ids, seed=5)
    b = split_fields(weekly.labels, weekly.field_ids, seed=5)
    c = split_fields(weekly.labels, weekly.field_ids, seed=6)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict() != c.to_dict()


def test_too_few_fields_names_the_class():
    labels = np.array([1] * 6 + [2] * 6 + [3] * 2)
    fields = np.array([10, 10, 11, 11, 12, 12, 20, 20, 21, 21, 22, 22, 30, 30])
    with pytest.raises(ValueError, match=r"'maize' \(label 3\): 1 field"):
        split_fields(labels, fields, class_names={1: "rice", 2: "cassava", 3: "maize"})
    with pytest.raises(ValueError, match=r"'cassava'.*: 2 field"):
        split_fields(labels[:10], fields[:10], test_fraction=0.3,
                     class_names=["rice", "cassava"])


def test_groups_may_carry_several_classes_over_seasons():
    """One parcel in two seasons (maize, then wheat) is one group, never split."""
    rng = np.random.default_rng(0)
    n_groups = 40
    season1 = rng.integers(1, 4, n_groups)
    season2 = np.where(rng.random(n_groups) < 0.5, season1, rng.integers(1, 4, n_groups))
    groups = np.repeat(np.arange(100, 100 + n_groups), 5)
    labels = np.concatenate([np.repeat(season1, 5), np.repeat(season2, 5)])
    pooled_groups = np.concatenate([groups, groups])
    assert any(len(np.unique(labels[pooled_groups == g])) > 1 for g in groups)
    s = split_fields(labels, pooled_groups, val_fraction=0.25, seed=3)
    tr, va, te = s.masks(pooled_groups)
    assert not (tr & va).any() and (tr | va).all() and not te.any()
    assert set(s.train).isdisjoint(s.val)
    for cls in (1, 2, 3):
        assert (labels[tr] == cls).any() and (labels[va] == cls).any()


def test_group_majority_class_and_class_carried_only_as_minority():
    labels = np.array([1, 1, 2, 1, 1, 2, 3, 3, 3, 3])
    groups = np.array([7, 7, 7, 8, 8, 8, 9, 9, 10, 10])
    fields, classes = field_classes(labels, groups)
    assert fields.tolist() == [7, 8, 9, 10] and classes.tolist() == [1, 1, 3, 3]
    assert groups_per_class(labels, groups) == {1: 2, 2: 2, 3: 2}
    s = split_fields(labels, groups, seed=0)
    assert set(s.train) | set(s.val) == {7, 8, 9, 10}
    assert 2 in labels[s.masks(groups)[0]]  # class 2 is trained on


def test_single_class_is_refused():
    with pytest.raises(ValueError, match="single class"):
        split_fields(np.ones(6, int), np.array([1, 1, 2, 2, 3, 3]))
