"""Model weights as safetensors with a JSON card beside them: `name.safetensors` + `name.json`.

The card says everything needed to rebuild and trust the model: the architecture and its
arguments, the classes and palette, the input size, the data, the exact training command and
the validation metrics. Weights load only from safetensors (no pickle), into a model the
registry builds from the card.
"""

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from .models import build_model


def card_path(weights: str | os.PathLike) -> Path:
    """The card of a .safetensors file (the .json beside it) or of a SegFormer folder (its model.json)."""
    weights = Path(weights)
    return weights / "model.json" if weights.is_dir() else weights.with_suffix(".json")


def save_model(model: nn.Module, path: str | os.PathLike, *, card: dict, half: bool = False) -> Path:
    """Write the weights to `path` (.safetensors) and `card` beside it; `half` stores floats as fp16.

    `card` must hold "architecture" ({"name", "arguments"}) and "classes".
    """
    missing = {"architecture", "classes"} - card.keys()
    if missing:
        raise ValueError(f"a model card needs {sorted(missing)}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        state[name] = tensor.half() if half and tensor.is_floating_point() else tensor
    save_file(state, path, metadata={"format": "pt"})
    card = {**card, "weights": path.name, "weights_dtype": "float16" if half else "float32"}
    card_path(path).write_text(json.dumps(card, indent=2) + "\n")
    return path


def read_card(weights: str | os.PathLike) -> dict:
    path = card_path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"{weights} has no model card {path.name} beside it: the card says which "
                                "architecture to build; keep the two files together")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None


def saw_frames(card: dict, split: str, sequence: str | None = None) -> bool:
    """Whether the model trained on the frames of `split` (only `sequence`'s, if given), as its card
    says: its score there measures memory, not how it does on photos it never saw."""
    data = card.get("data", {})
    trained = data.get("train_split", "train").split("+")
    held_out = data.get("holdout_sequence")
    return split in trained and not (held_out and sequence == held_out)


def load_model(path: str | os.PathLike, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Build the card's architecture, load the weights, return `(model in eval mode on device, card)`.

    path: a .safetensors file with its card beside it, a SegFormer `save_pretrained` folder holding its
    card as model.json (see `seg.models.segformer`), or an ensemble's card (`seg.ensemble`).
    """
    path = Path(path)
    if path.suffix == ".json" and path.is_file():
        return load_ensemble(path, device=device)
    if path.is_dir():
        from .models.segformer import load_pretrained_folder

        card = read_card(path)
        return load_pretrained_folder(path).to(device).eval(), card
    if not path.is_file():
        raise FileNotFoundError(f"no weights at {path}")
    card = read_card(path)
    try:
        arch = card["architecture"]
        model = build_model(arch["name"], num_classes=len(card["classes"]), **arch.get("arguments", {}))
    except KeyError as error:
        raise ValueError(f"{card_path(path)} lacks {error}: a card needs architecture.name and classes") from None
    try:
        state = load_file(path)
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{path} is not a readable safetensors file ({error}): download or train it again") from None
    expected = model.state_dict()
    try:
        model.load_state_dict({k: v.to(expected[k].dtype) if k in expected else v for k, v in state.items()})
    except RuntimeError as error:
        raise ValueError(f"{path} does not fit the card's architecture {arch}: {error}") from None
    return model.to(device).eval(), card


def load_ensemble(path: Path, *, device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """The ensemble an ensemble card describes (`seg.ensemble`): each member loaded with its own card's
    logit adjustment, all of them with the card's classes; `(model in eval mode on device, card)`."""
    from .ensemble import ARCHITECTURE, Ensemble, member_paths
    from .prior import card_offsets

    card = read_card(path)
    if card.get("architecture", {}).get("name") != ARCHITECTURE:
        raise ValueError(f"{path} is not an ensemble card: a model's weights are a .safetensors file or a folder")
    members, offsets, weights = [], [], []
    for member, weight in member_paths(card, path.parent):
        model, member_card = load_model(member, device=device)
        if member_card["classes"] != card["classes"]:
            raise ValueError(f"{member} was trained on other classes than the ensemble's {path.name} lists")
        members.append(model)
        offsets.append(card_offsets(member_card))
        weights.append(weight)
    test_time = card.get("test_time") or {}
    ensemble = Ensemble(members, weights=weights, offsets=offsets, scales=test_time.get("scales", (1.0,)),
                        flip=bool(test_time.get("flip", False)))
    return ensemble.to(device).eval(), card
