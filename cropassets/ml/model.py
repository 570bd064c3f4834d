"""A small 2-D CNN over scalograms (feature channels × scale × time).

Input dims (N, F, S, T): F features as channels, S scales, T time steps. Each block is
``conv 3x3 (same padding) → BatchNorm → ReLU``; blocks after the first are preceded by a
2x max-pool over the *scale* axis only (time resolution is kept, so a season as short as
T = 3 steps passes). An adaptive average pool then brings any (S', T) map to a fixed
``pool_scales × pool_steps`` grid, so the head sees coarse timing ("early / mid / late in
the prefix") instead of a single global average, and the same architecture serves any
sequence length T >= 3 and any S >= 1.

Series branch (``series_widths``, when the input's last row is the standardised smoothed
series, see :mod:`cropassets.ml.prepare`): that row goes through its own temporal
convolutions (``conv1d k=5 → BatchNorm → ReLU`` per width) and an adaptive average pool to
``pool_steps`` bins; the scalogram rows go through the 2-D blocks; the two are joined
before the head. Measured on real series (``bench/bench_real_series.py``, 3 folds, half
season): France 0.62 → 0.73 and East Africa 0.65 → 0.71 overall accuracy against the
scalogram branch alone with the series as one more image row; the 2-D convolutions and
the scale pooling otherwise blur the series' levels, which carry much of the class.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import torch
from torch import nn

__all__ = ["CNN2D", "CNN2DEnsemble", "ModelConfig", "SeededDropout", "build_model",
           "flops_per_sample", "set_dropout_generator"]


class SeededDropout(nn.Dropout):
    """``nn.Dropout`` that may draw its masks from a generator of its own.

    With ``generator`` None (the default, and on every device but the CPU) it is
    ``nn.Dropout``. With a CPU generator it computes what ``F.dropout`` computes on the CPU,
    ``x * bernoulli(1 - p) / (1 - p)``, from that generator instead of torch's global one,
    so two networks can train in two threads without sharing (and racing for) one random
    stream; given the generator state the global one would have had, the masks are
    bit-identical. The generator is not part of the state dict.
    """

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Dropout of ``x`` (any shape) in training mode, identity in eval mode."""
        g = self.generator
        if g is None or not self.training or self.p == 0.0:
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        noise = torch.empty_like(x).bernoulli_(1.0 - self.p, generator=g)
        return x * noise.div_(1.0 - self.p)


def set_dropout_generator(model: nn.Module, generator: torch.Generator | None) -> None:
    """Make every :class:`SeededDropout` of ``model`` draw from ``generator`` (None: global)."""
    for module in model.modules():
        if isinstance(module, SeededDropout):
            module.generator = generator


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of :class:`CNN2D`.

    Attributes:
        in_features: Input channels F (one per series feature).
        n_classes: Output classes C.
        widths: Output channels of each conv block (at least one block).
        pool_scales: Scale bins of the adaptive pool before the head.
        pool_steps: Time bins of the adaptive pool before the head.
        dropout: Dropout probability before the linear head.
        series_widths: Channels of the series branch's temporal convolutions; ``()`` (the
            default, and what checkpoints without the field load as) = no branch: the
            whole input, series row included, is one image.
    """

    in_features: int
    n_classes: int
    widths: tuple[int, ...] = (4, 8)
    pool_scales: int = 2
    pool_steps: int = 8
    dropout: float = 0.2
    series_widths: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.in_features < 1 or self.n_classes < 2:
            raise ValueError(
                f"need in_features >= 1 and n_classes >= 2, got {self.in_features}, "
                f"{self.n_classes}"
            )
        if not self.widths or any(int(w) < 1 for w in self.widths):
            raise ValueError(f"widths must be positive channel counts, got {self.widths}")
        if any(int(w) < 1 for w in self.series_widths):
            raise ValueError(f"series_widths must be positive, got {self.series_widths}")
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "series_widths", tuple(int(w) for w in self.series_widths))

    def to_dict(self) -> dict[str, Any]:
        """Plain-type form (for checkpoints and JSON)."""
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["series_widths"] = list(self.series_widths)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["widths"] = tuple(d["widths"])
        d["series_widths"] = tuple(d.get("series_widths", ()))
        return cls(**d)


class CNN2D(nn.Module):
    """Scalogram classifier; see the module docstring for the layout."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in = config.in_features
        for i, width in enumerate(config.widths):
            if i > 0:
                layers.append(nn.MaxPool2d(kernel_size=(2, 1), ceil_mode=True))
            layers += [
                nn.Conv2d(c_in, width, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
            ]
            c_in = width
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d((config.pool_scales, config.pool_steps))
        n_joined = c_in * config.pool_scales * config.pool_steps
        self.series: nn.Sequential | None = None
        if config.series_widths:
            branch: list[nn.Module] = []
            c = config.in_features
            for width in config.series_widths:
                branch += [
                    nn.Conv1d(c, width, kernel_size=5, padding=2, bias=False),
                    nn.BatchNorm1d(width),
                    nn.ReLU(inplace=True),
                ]
                c = width
            branch.append(nn.AdaptiveAvgPool1d(config.pool_steps))
            self.series = nn.Sequential(*branch)
            n_joined += c * config.pool_steps
        self.head = nn.Sequential(
            nn.Flatten(),
            SeededDropout(config.dropout),
            nn.Linear(n_joined, config.n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F, S, T) normalised scalograms (last row: the series, with a branch) → logits.

        Returns:
            (N, C) logits.
        """
        if self.series is None:
            return self.head(self.pool(self.features(x)))
        image = self.pool(self.features(x[:, :, :-1])).flatten(1)
        series = self.series(x[:, :, -1]).flatten(1)
        return self.head(torch.cat([image, series], dim=1))


class CNN2DEnsemble(nn.Module):
    """Several :class:`CNN2D` of one architecture whose softmax outputs are averaged.

    ``forward`` returns ``log(mean_i softmax(member_i(x)))``: its softmax is the members'
    mean probability and its argmax the ensemble's class, so code written for one
    network's logits (softmax, argmax, cross-entropy) works unchanged.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
        self.members = nn.ModuleList(members)

    @property
    def config(self) -> ModelConfig:
        """The members' architecture."""
        # torch types a submodule's attributes as Tensor | Module; members are CNN2D
        return cast(ModelConfig, self.members[0].config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, F, S, T) input → (N, C) log mean probability of the members."""
        logp = torch.stack([torch.log_softmax(m(x).float(), dim=1) for m in self.members])
        return torch.logsumexp(logp, dim=0) - math.log(len(self.members))


def build_model(config: ModelConfig) -> CNN2D:
    """A fresh :class:`CNN2D` (weights from the current torch RNG state)."""
    return CNN2D(config)


def flops_per_sample(model: nn.Module, n_features: int, n_scales: int, n_steps: int) -> int:
    """Forward FLOPs for one sample, counted by ``torch.utils.flop_counter.FlopCounterMode``.

    Counts convolutions and matrix multiplies (2 FLOPs per multiply-add); pooling, norms
    and activations are not counted.

    Args:
        model: The network (evaluated in eval mode, no grad; its mode is restored).
        n_features: Channels F.
        n_scales: Scales S.
        n_steps: Steps T.

    Returns:
        FLOPs per sample (int).
    """
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    p = next(model.parameters())
    x = torch.zeros(1, n_features, n_scales, n_steps, dtype=p.dtype, device=p.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(x)
    model.train(was_training)
    return int(counter.get_total_flops())


def inference_model(model: nn.Module, device: torch.device | str | None = None) -> nn.Module:
    """An eval-only copy of ``model`` made fast for prediction (same outputs to ~1e-5).

    Each ``Conv2d -> BatchNorm2d`` pair is folded into one convolution (the BatchNorm's
    running statistics become the conv's weight and bias), and on CPU the weights are
    stored channels-last, which oneDNN runs fastest for these narrow convolutions
    (``bench/bench_predict.py``: ~3-4x the eager fp32 model at batch 2048 on 2 cores).
    A :class:`CNN2DEnsemble` has each member folded. Feed it inputs converted with
    ``.contiguous(memory_format=torch.channels_last)``.
    """
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    if isinstance(model, CNN2DEnsemble):
        m: nn.Module = CNN2DEnsemble([_folded(member) for member in model.members])
    else:
        m = _folded(model)
    m = m.to(dev)
    if dev.type == "cpu":
        # Module.to takes memory_format (documented), torch's stub overloads lack it
        m = m.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return m


def _folded(model: nn.Module) -> nn.Module:
    """An eval copy of one :class:`CNN2D` with every conv → BatchNorm pair folded."""
    if not isinstance(model, CNN2D):
        raise TypeError(f"can only fold a CNN2D, got {type(model).__name__}")
    m = copy.deepcopy(model).eval()
    m.features = _fold_pairs(m.features, nn.Conv2d, nn.BatchNorm2d)
    if m.series is not None:
        m.series = _fold_pairs(m.series, nn.Conv1d, nn.BatchNorm1d)
    return m


def _fold_pairs(seq: nn.Sequential, conv_type: type[nn.Conv1d] | type[nn.Conv2d],
                bn_type: type[nn.BatchNorm1d] | type[nn.BatchNorm2d]) -> nn.Sequential:
    """``seq`` with each ``conv_type -> bn_type`` pair folded into the conv (+ Identity)."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    layers = list(seq)
    for i in range(len(layers) - 1):
        conv, bn = layers[i], layers[i + 1]
        if isinstance(conv, conv_type) and isinstance(bn, bn_type):
            layers[i] = fuse_conv_bn_eval(conv, bn)
            layers[i + 1] = nn.Identity()
    return nn.Sequential(*layers)
