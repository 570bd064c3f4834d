"""Torch device resource: CUDA when present, else CPU with a thread count."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

if TYPE_CHECKING:
    import torch


class TorchDevice(ConfigurableResource):
    """Where training and prediction run.

    Assets using it also run in the ``gpu`` concurrency pool (see ``deploy/dagster.yaml``),
    so one op at a time holds the accelerator.
    """

    prefer: str = Field(default="auto", description="auto | cpu | cuda | cuda:N")
    cpu_threads: int = Field(default=2, ge=1, description="torch threads when on the CPU")
    seed: int = Field(default=0, description="seed for training (deterministic on CPU)")
    train_max_steps: int | None = Field(
        default=None, description="optimiser-step budget of training (None: the library's "
        "default); CROPASSETS_TRAIN_MAX_STEPS")
    _device: Any = PrivateAttr(default=None)  # torch.device once resolved

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Resolve the device once per run (torch is imported here, not with the module)."""
        from cropassets.ml.device import select_device

        self._device = select_device(self.prefer, threads=self.cpu_threads)

    @property
    def device(self) -> torch.device:
        """The resolved ``torch.device``."""
        if self._device is None:
            from cropassets.ml.device import select_device

            self._device = select_device(self.prefer, threads=self.cpu_threads)
        return self._device
