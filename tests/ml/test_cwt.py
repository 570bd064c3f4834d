"""CWT scalograms as a matrix multiply: values against pywt, shapes, scales, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import pywt
import torch

from cropassets.ml import cwt as C
from cropassets.ml import cwt_precision
from cropassets.ml.cwt import DEFAULT_WAVELET, cwt_matrix, default_scales, log_scales
from cropassets.ml.cwt_precision import cpu_prefers_bf16
from cropassets.ml.scalogram_stats import ScalogramStats, normalise_scalograms
from cropassets.ml.scalograms import cwt_magnitude


def _pywt_magnitude(x: np.ndarray, scales: np.ndarray, wavelet: str) -> np.ndarray:
    """np.abs(pywt.cwt) of (N, F, T) float64 series, moved to (N, F, S, T)."""
    coef, _ = pywt.cwt(x, scales, wavelet, sampling_period=1.0, method="conv", axis=-1)
    return np.moveaxis(np.abs(coef), 0, -2)


def _series(kind: str, n: int, f: int, t: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.normal(size=(n, f, t))
    steps = np.arange(t)
    period = rng.uniform(2.5, max(3.0, t), size=(n, f, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(n, f, 1))
    return 0.4 + 0.3 * np.sin(2 * np.pi * steps / period + phase)  # NDVI-like


SCALE_SETS = {
    "default": lambda t: default_scales(t),
    "log8": lambda t: log_scales(8, 1.0, t / 2),
    "linear5": lambda t: np.linspace(2.0, t, 5),
}


@pytest.mark.parametrize("t", [10, 23, 28, 52])
@pytest.mark.parametrize("scale_set", sorted(SCALE_SETS))
@pytest.mark.parametrize("kind", ["random", "sinusoid"])
def test_magnitude_matches_pywt(t: int, scale_set: str, kind: str) -> None:
    x = _series(kind, 6, 3, t, seed=t)
    scales = SCALE_SETS[scale_set](t)
    ref = _pywt_magnitude(x, scales, DEFAULT_WAVELET)
    got = cwt_magnitude(x, scales)
    assert isinstance(got, np.ndarray)
    assert got.shape == (6, 3, len(scales), t)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() <= 1e-4 * ref.max()


@pytest.mark.parametrize("wavelet", ["mexh", "morl", "cmor1.0-0.5"])
def test_other_wavelets_match_pywt(wavelet: str) -> None:
    x = _series("random", 4, 2, 28)
    scales = default_scales(28, 12, wavelet)
    ref = _pywt_magnitude(x, scales, wavelet)
    got = cwt_magnitude(x, scales, wavelet)
    assert np.abs(got - ref).max() <= 1e-4 * ref.max()


def test_matrix_reproduces_complex_coefficients_exactly() -> None:
    t, scales = 23, default_scales(23)
    x = _series("random", 5, 1, t)[:, 0]
    coef, _ = pywt.cwt(x, scales, DEFAULT_WAVELET, method="conv", axis=-1)  # (S, N, T)
    m = cwt_matrix(t, scales)
    assert m.shape == (t, len(scales) * t) and m.dtype == np.complex128
    got = (x @ m).reshape(5, len(scales), t)
    np.testing.assert_allclose(got, coef.transpose(1, 0, 2), rtol=0, atol=1e-12)


def test_matrix_is_cached_and_read_only() -> None:
    scales = default_scales(28)
    m1 = cwt_matrix(28, scales)
    assert cwt_matrix(28, list(scales)) is m1
    assert not m1.flags.writeable


def test_torch_in_torch_out_and_shapes() -> None:
    x = torch.from_numpy(_series("sinusoid", 3, 4, 28)).float()
    scales = default_scales(28)
    out = cwt_magnitude(x, scales)
    assert isinstance(out, torch.Tensor)
    assert out.shape == (3, 4, 16, 28) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), cwt_magnitude(x.numpy(), scales), rtol=1e-6)
    # scales=None means default_scales(T)
    np.testing.assert_array_equal(cwt_magnitude(x).numpy(), out.numpy())


def test_many_series_span_several_chunks() -> None:
    n = C._CPU_CHUNK_ROWS // 2 + 7  # x 3 features -> rows across 2 chunks with a tail
    x = _series("random", n, 3, 10)
    scales = default_scales(10, 6)
    ref = _pywt_magnitude(x, scales, DEFAULT_WAVELET)
    assert np.abs(cwt_magnitude(x, scales) - ref).max() <= 1e-4 * ref.max()


def test_bf16_forced_stays_close() -> None:
    x = _series("random", 8, 2, 28)
    scales = default_scales(28)
    ref = _pywt_magnitude(x, scales, DEFAULT_WAVELET)
    got = cwt_magnitude(x, scales, dtype=torch.bfloat16)
    assert got.dtype == np.float32
    assert np.abs(got - ref).max() <= 2e-2 * ref.max()


def test_auto_dtype_follows_cpu_preference(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _series("random", 4, 2, 28)
    scales = default_scales(28)
    ref = _pywt_magnitude(x, scales, DEFAULT_WAVELET)
    monkeypatch.setattr(cwt_precision, "cpu_prefers_bf16", lambda: False)
    assert np.abs(cwt_magnitude(x, scales, dtype="auto") - ref).max() <= 1e-4 * ref.max()
    monkeypatch.setattr(cwt_precision, "cpu_prefers_bf16", lambda: True)
    bf16 = cwt_magnitude(x, scales, dtype="auto")
    np.testing.assert_array_equal(bf16, cwt_magnitude(x, scales, dtype=torch.bfloat16))


def test_cpu_prefers_bf16_false_without_avx512(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu_prefers_bf16.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    try:
        assert cpu_prefers_bf16() is False
    finally:
        cpu_prefers_bf16.cache_clear()


def test_cpu_prefers_bf16_is_cached_bool() -> None:
    first = cpu_prefers_bf16()
    assert isinstance(first, bool)
    assert cpu_prefers_bf16() is first


@pytest.mark.parametrize("wavelet", [DEFAULT_WAVELET, "morl", "mexh"])
@pytest.mark.parametrize("t", [3, 10, 28, 52])
def test_default_scales_nyquist_and_length(wavelet: str, t: int) -> None:
    scales = default_scales(t, 16, wavelet)
    assert scales.shape == (16,)
    assert np.all(np.diff(scales) > 0)
    freqs = np.atleast_1d(pywt.scale2frequency(wavelet, scales))  # cycles per step
    assert freqs[0] <= 0.5
    assert freqs[0] == pytest.approx(0.5, rel=1e-9)
    assert np.all(np.diff(freqs) < 0)
    assert 1 / freqs[-1] == pytest.approx(t, rel=1e-9)  # longest period = series length


def test_default_scales_cmor_values() -> None:
    scales = default_scales(28)
    assert scales[0] == pytest.approx(2.0) and scales[-1] == pytest.approx(28.0)


def test_log_scales() -> None:
    s = log_scales(5, 1.0, 16.0)
    np.testing.assert_allclose(s, [1, 2, 4, 8, 16])
    np.testing.assert_array_equal(log_scales(1, 3.0, 9.0), [3.0])


def _scalograms(seed: int = 0) -> np.ndarray:
    x = _series("random", 30, 3, 23, seed) * np.array([1.0, 5.0, 0.1])[None, :, None]
    return cwt_magnitude(x, default_scales(23))


def test_normalisation_fit_then_apply_is_reproducible() -> None:
    s = _scalograms()
    z, stats = normalise_scalograms(s)
    assert z.shape == s.shape and z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=(0, 2, 3)), 1, atol=1e-5)
    # stats survive JSON and give the same result when applied to the same data
    restored = ScalogramStats.from_json(json.dumps(json.loads(stats.to_json())))
    assert restored == stats
    z2, stats2 = normalise_scalograms(s, restored)
    assert stats2 == stats
    np.testing.assert_array_equal(z2, z)
    z3, _ = normalise_scalograms(torch.from_numpy(s), stats.to_dict())
    assert isinstance(z3, torch.Tensor)
    np.testing.assert_allclose(z3.numpy(), z, atol=1e-6)


def test_normalisation_applies_training_stats_unchanged() -> None:
    _, stats = normalise_scalograms(_scalograms(0))
    other = _scalograms(1)
    z, used = normalise_scalograms(other, stats)
    assert used == stats
    expected = (np.log1p(other) - np.array(stats.mean)[None, :, None, None]) / np.array(stats.std)[
        None, :, None, None
    ]
    np.testing.assert_allclose(z, expected, atol=1e-5)


def test_normalisation_constant_feature_does_not_divide_by_zero() -> None:
    s = np.ones((4, 2, 3, 5), dtype=np.float32)
    z, stats = normalise_scalograms(s)
    assert np.all(np.isfinite(z)) and np.all(z == 0)
    assert stats.std == (ScalogramStats.MIN_STD,) * 2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: cwt_magnitude(np.zeros((4, 28)), default_scales(28)), "x must be 3-D"),
        (lambda: cwt_magnitude(torch.zeros(2, 1, 4, 28)), "x must be 3-D"),
        (
            lambda: cwt_magnitude(np.where(np.eye(28)[None] > 0, np.nan, 0.0)),
            "x must be finite.*28 NaN",
        ),
        (
            lambda: cwt_magnitude(np.zeros((2, 1, 28)), [2.0, 0.0]),
            "scales must be finite and positive",
        ),
        (lambda: cwt_magnitude(np.zeros((2, 1, 28)), [-1.0]), "scales must be finite and positive"),
        (lambda: cwt_magnitude(np.zeros((2, 1, 28)), np.ones((2, 2))), "scales must be .*1-D"),
        (lambda: cwt_magnitude(np.zeros((2, 1, 28)), wavelet="db4"), "wavelet must be"),
        (lambda: cwt_magnitude(np.zeros((2, 1, 28)), dtype=torch.float16), "dtype must be"),
        (lambda: cwt_matrix(0, [2.0]), "n_steps must be a positive integer"),
        (lambda: default_scales(2), "n_steps=2 is too short"),
        (lambda: log_scales(4, 0.0, 3.0), "min_scale must be"),
        (lambda: log_scales(4, 5.0, 3.0), "max_scale must be"),
        (lambda: normalise_scalograms(np.zeros((2, 3, 4))), "s must be 4-D"),
        (lambda: normalise_scalograms(-np.ones((1, 1, 2, 2))), "s must be non-negative"),
        (
            lambda: normalise_scalograms(np.ones((1, 2, 2, 2)), {"mean": [0.0], "std": [1.0]}),
            "stats are for 1 features but s has 2",
        ),
        (lambda: normalise_scalograms(np.ones((1, 1, 2, 2)), {"mean": [0.0]}), "'mean' and 'std'"),
    ],
)
def test_invalid_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_pywt() -> None:
    x = _series("random", 64, 4, 28)
    scales = default_scales(28)
    ref = _pywt_magnitude(x, scales, DEFAULT_WAVELET)
    xt = torch.from_numpy(x).float().cuda()
    got = cwt_magnitude(xt, scales)
    assert got.device == xt.device and got.shape == (64, 4, 16, 28)
    assert np.abs(got.cpu().numpy() - ref).max() <= 1e-4 * ref.max()
    got16 = cwt_magnitude(xt, scales, dtype=torch.bfloat16).cpu().numpy()
    assert np.abs(got16 - ref).max() <= 2e-2 * ref.max()
