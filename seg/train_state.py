"""What a training run must keep to go on where it stopped: the weights, the optimiser, the mixed
precision scaler and the running weight average, with the counters and the history. One record per
epoch, `last.pt`; a later run resumes from it (`python -m seg.cli.train --resume`).

    state = TrainState("unet", {"width_mult": 0.5})
    state.save(path, model=net, optimizer=optimizer)
    state = TrainState.load(path, model=net, optimizer=optimizer, name="unet", arguments={...})
"""

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from torch import nn


@dataclass
class TrainState:
    model_name: str
    model_arguments: dict
    epoch: int = 0  # epochs done
    step: int = 0  # optimiser steps done (the learning-rate schedule's position)
    best_miou: float = -1.0
    elapsed_s: float = 0.0  # training and evaluation time, summed over the runs
    history: list[dict] = field(default_factory=list)  # {"epoch", "train_loss", "val_miou"} per epoch

    def save(self, path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, scaler=None,
             averaged: nn.Module | None = None) -> None:
        """Write the state with the parts' own state dicts (written whole, then moved into place: a run
        stopped while writing leaves the previous epoch's record)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".part")
        torch.save({**asdict(self), "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scaler": scaler.state_dict() if scaler is not None else None,
                    "averaged": averaged.state_dict() if averaged is not None else None}, partial)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path, *, model: nn.Module, optimizer: torch.optim.Optimizer, name: str, arguments: dict,
             scaler=None, averaged: nn.Module | None = None, device: torch.device | str = "cpu") -> "TrainState":
        """The state at `path`, its parts loaded into `model`, `optimizer`, `scaler` and `averaged`; refused
        when it holds another architecture than `name` with `arguments`."""
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no {path} to resume from (check --out)")
        saved = torch.load(path, map_location=device, weights_only=True)
        if saved["model_name"] != name or saved["model_arguments"] != arguments:
            raise ValueError(f"--resume: {path} holds {saved['model_name']} {saved['model_arguments']}, "
                             f"not {name} {arguments}")
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scaler is not None and saved.get("scaler"):
            scaler.load_state_dict(saved["scaler"])
        if averaged is not None and saved.get("averaged"):
            averaged.load_state_dict(saved["averaged"])
        return cls(**{f.name: saved[f.name] for f in fields(cls)})
