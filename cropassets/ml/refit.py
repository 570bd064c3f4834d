"""The refit of ``TrainConfig.refit``: a fresh network on training + validation pixels.

The refit runs ``refit_steps(best_step, ...)`` optimiser steps, and ``best_step`` is only
known once the selection run has stopped. Its learning-rate schedule is a function of the
step alone (``TrainConfig.lr_at``), not of how many steps it will run, so the refit can
start at the same time as the selection run, in a second thread (on the CPU, where the
selection loop holds one core and the other is free part of the time): :class:`RefitRun`
advances while the selection run reports its best step so far, keeps the weights at every
step the final best step could still ask for, and is told the target when the selection run
stops. Alone (:meth:`RefitRun.run_to`) it is the same loop run to a known target.

Either way the network is bit-identical: it is built from the same seed, draws its batches
from its own seeded generator and, on the CPU, its dropout masks from a generator that
starts where torch's global one would have stood after building it
(:class:`~cropassets.ml.model.SeededDropout`); no draw depends on thread timing.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from cropassets.ml.model import CNN2D, ModelConfig, set_dropout_generator

__all__ = ["RefitRun", "class_weights", "deterministic", "optimiser_step", "refit_steps",
           "shuffled_batches"]


@contextlib.contextmanager
def deterministic(seed: int, device: torch.device) -> Iterator[None]:
    """Seeded, deterministic torch inside; caller's RNG and flags restored after."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        # CUDA kernels without a deterministic variant warn instead of failing
        torch.use_deterministic_algorithms(True, warn_only=device.type == "cuda")
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def optimiser_step(model: nn.Module, opt: torch.optim.Optimizer, loss_fn: nn.Module,
                   xb: torch.Tensor, yb: torch.Tensor, lr: float, dev: torch.device,
                   bf16: bool) -> torch.Tensor:
    """One AdamW step at learning rate ``lr``; returns the (detached) batch loss."""
    for group in opt.param_groups:
        group["lr"] = lr
    model.train()
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model(xb)
    loss = loss_fn(logits.float(), yb)
    loss.backward()
    opt.step()
    return loss.detach()


def class_weights(y: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``n / (C * count)`` (float32, on ``y``'s device)."""
    counts = np.bincount(y.cpu().numpy(), minlength=n_classes).astype(np.float64)
    weights = len(y) / (n_classes * np.maximum(counts, 1.0))
    return torch.tensor(weights, dtype=torch.float32, device=y.device)


def shuffled_batches(n: int, batch: int, seed: int,
                     device: torch.device) -> Iterator[torch.Tensor]:
    """Endless batches of ``batch`` pixel indices, pass after pass.

    Each pass is a fresh permutation of ``n`` from a generator seeded with ``seed``; its
    incomplete tail is dropped.
    """
    gen = torch.Generator().manual_seed(seed)
    while True:
        order = torch.randperm(n, generator=gen).to(device)
        for pos in range(0, n - batch + 1, batch):
            yield order[pos : pos + batch]


def refit_steps(best_step: int, n_all: int, n_train: int, max_steps: int) -> int:
    """Optimiser steps of the refit.

    As many passes over all ``n_all`` pixels as the selected weights ran over the
    ``n_train`` training pixels, at most ``max_steps``.
    """
    return max(1, min(max_steps, round(best_step * n_all / n_train)))


class RefitRun:
    """The refit network, trained step by step up to a target that may come later.

    Args:
        mcfg: Architecture.
        cfg: A ``TrainConfig`` (``lr``, ``weight_decay``, ``batch_size``, ``max_steps``,
            ``eval_every``, ``label_smoothing``, ``lr_at``).
        x: (N, F, S, T) prepared inputs of training + validation pixels, on ``dev``.
        y: (N,) class indices.
        n_train: Pixels of the selection run's training set (the step rule's denominator).
        n_classes: Classes.
        seed: Seed of the network, its batches and its dropout.
        dev: Torch device.
        bf16: bf16 autocast in the forward pass.
    """

    def __init__(self, mcfg: ModelConfig, cfg: Any, x: torch.Tensor, y: torch.Tensor,
                 n_train: int, n_classes: int, seed: int, dev: torch.device,
                 bf16: bool) -> None:
        self._cfg, self._x, self._y, self._dev, self._bf16 = cfg, x, y, dev, bf16
        self.n_all, self.n_train = len(y), int(n_train)
        self._loss_fn = nn.CrossEntropyLoss(weight=class_weights(y, n_classes),
                                            label_smoothing=cfg.label_smoothing)
        self._batches = shuffled_batches(self.n_all, max(2, min(cfg.batch_size, self.n_all)),
                                         seed, dev)
        with deterministic(seed, dev):
            self.model = CNN2D(mcfg).to(dev)
            if dev.type == "cpu":  # masks from where the global generator stands now
                gen = torch.Generator()
                gen.set_state(torch.get_rng_state())
                set_dropout_generator(self.model, gen)
        self._opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr,
                                      weight_decay=cfg.weight_decay)
        self.step = 0
        # every target a selection best step can map to (validation steps, max_steps)
        evals = list(range(cfg.eval_every, cfg.max_steps + 1, cfg.eval_every))
        self._targets = {self.steps_for(b) for b in [*evals, cfg.max_steps]}
        self._cond = threading.Condition()
        self._limit = 0
        self._keep_from = 1
        self._final: int | None = None
        self._snapshots: dict[int, dict[str, torch.Tensor]] = {}
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._threads = 1
        self._target_done = 0

    def steps_for(self, best_step: int) -> int:
        """The refit's step count for a selection best step."""
        return refit_steps(best_step, self.n_all, self.n_train, self._cfg.max_steps)

    # -- alone -------------------------------------------------------------------------
    def run_to(self, best_step: int) -> nn.Module:
        """Train in the calling thread for ``steps_for(best_step)`` steps; the network."""
        target = self.steps_for(best_step)
        while self.step < target:
            self._one_step()
        return self._finish_model(None)

    # -- beside the selection run ------------------------------------------------------
    def start(self) -> None:
        """Start training in a second thread.

        It runs up to the target of three validation intervals (the final best step is at
        least the first validation step); :meth:`advance` lets it go further.
        """
        first = min(3 * self._cfg.eval_every, self._cfg.max_steps)
        self._limit = self.steps_for(first)
        self._threads = torch.get_num_threads()
        self._thread = threading.Thread(target=self._loop, name="refit", daemon=True)
        self._thread.start()

    def advance(self, best_step: int, selection_step: int) -> None:
        """The selection run is at ``selection_step`` with its best so far at ``best_step``.

        The refit may run to the target of ``best_step`` plus two validation intervals (a
        later best is likely close); weights of earlier targets are no longer needed.
        """
        ahead = min(selection_step, best_step + 2 * self._cfg.eval_every)
        with self._cond:
            self._keep_from = self.steps_for(best_step)
            self._limit = max(self._limit, self.steps_for(ahead))
            for s in [s for s in self._snapshots if s < self._keep_from]:
                del self._snapshots[s]
            self._cond.notify_all()

    def finish(self, best_step: int) -> nn.Module:
        """The selection run stopped with ``best_step``: the refit network at its target."""
        target = self.steps_for(best_step)
        with self._cond:
            self._final = target
            self._keep_from = min(self._keep_from, target)
            self._cond.notify_all()
        self._join()
        return self._finish_model(target)

    def cancel(self) -> None:
        """Stop the thread (the selection run failed); safe to call more than once."""
        with self._cond:
            self._final = 0
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def info(self) -> dict[str, Any]:
        """What ``metrics["refit"]`` records."""
        return {"steps": int(self._target_done), "n_pixels": int(self.n_all),
                "note": "validation metrics are the selection run's"}

    # -- internals ---------------------------------------------------------------------
    def _one_step(self) -> None:
        idx = next(self._batches)
        optimiser_step(self.model, self._opt, self._loss_fn, self._x[idx], self._y[idx],
                       self._cfg.lr_at(self.step), self._dev, self._bf16)
        self.step += 1

    def _loop(self) -> None:
        try:
            # OpenMP thread counts are per thread: this one follows the caller's setting
            torch.set_num_threads(self._threads)
            while True:
                with self._cond:
                    while self._final is None and self.step >= self._limit:
                        self._cond.wait()
                    if self._final is not None and self.step >= self._final:
                        return
                self._one_step()
                if self.step in self._targets:
                    with self._cond:
                        if self.step >= self._keep_from:
                            self._snapshots[self.step] = copy.deepcopy(self.model.state_dict())
        except BaseException as exc:  # re-raised in the caller's thread by finish()
            self._error = exc

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            raise RuntimeError("the refit thread failed") from self._error

    def _finish_model(self, target: int | None) -> nn.Module:
        if target is not None and self.step != target:
            self.model.load_state_dict(self._snapshots[target])
        self._target_done = self.step if target is None else target
        self._snapshots.clear()
        set_dropout_generator(self.model, None)
        self.model.eval()
        return self.model
