"""Comparisons for results that two different code paths compute (docs/testing.md).

Byte-identity is only promised for the same computation repeated: same input layout and
chunking, same machine, BLAS build and thread settings (idempotent re-runs, a killed run
relaunched, concurrent writers). Two code paths that compute the same mathematics (dask vs
numpy, chunked vs whole, strided vs contiguous, batches of different sizes) run different
BLAS / oneDNN kernels, whose summation order depends on the CPU, the matrix shape, the
layout and the thread count; their float32 results may differ by a few ulp, so they are
compared with the helpers below, never with ``assert_array_equal``.
"""

from __future__ import annotations

import numpy as np

F32_RTOL = 1e-6
"""Relative tolerance for float32 results of different code paths: about 8 ulp (2**-23 =
1.19e-7 is one ulp at 1.0). Observed differences between kernels are 1-4 ulp."""

F32_ATOL = 1e-6
"""Absolute tolerance per unit of the data's scale (values that cancel to near zero carry
the rounding error of the terms they were summed from, not of their own magnitude)."""


def assert_float32_close(actual, desired, scale: float = 1.0, err_msg: str = "") -> None:
    """``actual`` equals ``desired`` up to float32 rounding of data of magnitude ``scale``.

    NaN must be at the same places in both (``equal_nan``).
    """
    np.testing.assert_allclose(np.asarray(actual), np.asarray(desired), rtol=F32_RTOL,
                               atol=F32_ATOL * float(scale), equal_nan=True, err_msg=err_msg)


def assert_same_classes_up_to_ties(cls_a, conf_a, cls_b, conf_b, nodata: int = 255) -> None:
    """Two class maps (argmax of softmax) from different batchings agree up to near-ties.

    Logits of two code paths differ by float32 rounding only, so:

    * nodata (no observation: decided from the input alone, no arithmetic) is identical;
    * the confidence (softmax maximum x 100, rounded) differs by at most 1 (the rounding
      of p x 100 may fall on either side of .5);
    * a class may differ only where the top two probabilities are tied to rounding, and
      then the top probability is at most 1/2 in both maps, i.e. confidence <= 50.

    Any other difference (a shifted, dropped or reordered pixel) fails.
    """
    cls_a, cls_b = np.asarray(cls_a), np.asarray(cls_b)
    conf_a = np.asarray(conf_a).astype(np.int64)
    conf_b = np.asarray(conf_b).astype(np.int64)
    assert cls_a.shape == cls_b.shape == conf_a.shape == conf_b.shape
    nodata_a, nodata_b = cls_a == nodata, cls_b == nodata
    np.testing.assert_array_equal(nodata_a, nodata_b, err_msg="nodata pixels differ")
    np.testing.assert_array_equal(conf_a[nodata_a], conf_b[nodata_b])
    valid = ~nodata_a
    assert np.abs(conf_a[valid] - conf_b[valid]).max(initial=0) <= 1, "confidence differs by >1"
    flipped = valid & (cls_a != cls_b)
    not_tied = flipped & ((conf_a > 50) | (conf_b > 50))
    assert not not_tied.any(), (
        f"{int(not_tied.sum())} pixels change class although their top probability is above "
        f"1/2 (not a near-tie): {np.argwhere(not_tied)[:5].tolist()}")
