"""Splits by field: disjoint, stratified, deterministic, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from cropassets.ml.splits import split_fields


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


def test_field_with_two_classes_is_refused():
    with pytest.raises(ValueError, match="more than one class"):
        split_fields(np.array([1, 2, 1, 2]), np.array([5, 5, 6, 7]))
