"""An ensemble card loads as one model (`seg.ensemble`, `seg.checkpoint.load_model`): each member's
probabilities after its own card's logit adjustment, averaged with the card's weights, over its
test-time views; the evaluation command scores it like any model, and the app's catalogue offers it."""

import json

import pytest
import torch

from conftest import run_module
from seg.checkpoint import load_model, save_model
from seg.data.synthetic import CLASSES as SYNTHETIC_CLASSES
from seg.ensemble import Ensemble
from seg.models import build_model, count_parameters
from seg.prior import CARD_KEY, prior_offsets

CLASSES = list(SYNTHETIC_CLASSES)
DATA = {"dataset": "synthetic", "train_split": "train", "synthetic_images": 16, "image_size": [64, 64],
        "object_size": 0.2}


def member(folder, name, *, seed, prior=None):
    """A random model of `name` saved with its card (a logit adjustment of `prior` = (weights, tau))."""
    torch.manual_seed(seed)
    model = build_model(name, num_classes=len(CLASSES), width_mult=0.25).eval()
    card = {"architecture": {"name": name, "arguments": {"width_mult": 0.25}}, "classes": CLASSES,
            "palette": [[0, 0, 0]] * len(CLASSES), "input_size": [64, 64], "data": DATA,
            "parameters": count_parameters(model)}
    if prior:
        card[CARD_KEY] = {"tau": prior[1], "class_weights": prior[0], "chosen_on": "a test"}
    save_model(model, folder / f"{name}.safetensors", card=card)
    return model


def ensemble_card(folder, members, **extra):
    card = {"architecture": {"name": "ensemble"}, "members": [{"weights": f, "weight": w} for f, w in members],
            "classes": CLASSES, "palette": [[0, 0, 0]] * len(CLASSES), "input_size": [64, 64], "data": DATA,
            **extra}
    path = folder / "ensemble.json"
    path.write_text(json.dumps(card))
    return path


def protocol_run(runs, run, kind, classes, *, seed, weight_step, start=None):
    """A random CamVid protocol model of `kind` in runs/<run>, its card as the recipes write it: median
    class weights (1, 1 + weight_step, ...), 0006R0 held out, and fine-tuned from runs/<start> if given."""
    torch.manual_seed(seed)
    model = build_model(kind, num_classes=11, width_mult=0.25)
    card = {"architecture": {"name": kind, "arguments": {"width_mult": 0.25}}, "classes": classes,
            "palette": [[0, 0, 0]] * 11, "input_size": [45, 60], "parameters": count_parameters(model),
            "data": {"dataset": "camvid", "train_split": "train", "holdout_sequence": "0006R0"},
            "training": {"class_weights": "median", "class_weight_values": [1.0 + i * weight_step for i in range(11)],
                         "init_from": start and f"runs/{start}/model.safetensors"}}
    save_model(model, runs / run / "model.safetensors", card=card)


def test_the_card_loads_as_the_weighted_average_of_its_members_after_their_priors(tmp_path):
    weights = [1.0, 4.0, 0.5, 2.0][:len(CLASSES)]
    a = member(tmp_path, "fcn8s", seed=0, prior=(weights, 0.5))
    b = member(tmp_path, "fcn32s", seed=1)
    path = ensemble_card(tmp_path, [("fcn8s.safetensors", 3), ("fcn32s.safetensors", 1)])
    ensemble, card = load_model(path)
    assert isinstance(ensemble, Ensemble) and not ensemble.training and card["members"][0]["weight"] == 3
    x = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        offsets = prior_offsets(weights, 0.5).view(1, -1, 1, 1)
        expected = 0.75 * (a(x) - offsets).softmax(1) + 0.25 * b(x).softmax(1)
        assert torch.allclose(ensemble(x).exp(), expected, atol=1e-5)


def test_test_time_views_and_refusals(tmp_path):
    net = member(tmp_path, "fcn8s", seed=0)
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        flipped = Ensemble([net], weights=[1], flip=True)(x).exp()
        plain = net(x).softmax(1)
        assert torch.allclose(flipped, (plain + net(x.flip(-1)).softmax(1).flip(-1)) / 2, atol=1e-5)
        scaled = Ensemble([net], weights=[1], scales=(0.5, 1.0))(x)
        assert scaled.shape == (1, len(CLASSES), 64, 64) and torch.isfinite(scaled).all()
    with pytest.raises(ValueError, match="one above 0"):
        Ensemble([net], weights=[0])
    with pytest.raises(ValueError, match="one weight each"):
        Ensemble([net, net], weights=[1])
    other = {"architecture": {"name": "fcn8s", "arguments": {"width_mult": 0.25}}, "classes": ["a", "b"],
             "palette": [[0, 0, 0]] * 2, "input_size": [64, 64]}
    save_model(build_model("fcn8s", num_classes=2, width_mult=0.25), tmp_path / "other.safetensors", card=other)
    with pytest.raises(ValueError, match="other classes"):
        load_model(ensemble_card(tmp_path, [("fcn8s.safetensors", 1), ("other.safetensors", 1)]))
    with pytest.raises(FileNotFoundError):
        load_model(ensemble_card(tmp_path, [("fcn8s.safetensors", 1), ("gone.safetensors", 1)]))


@pytest.mark.slow
def test_the_evaluation_command_scores_the_card_like_any_model(tmp_path):
    member(tmp_path, "fcn8s", seed=0)
    member(tmp_path, "fcn32s", seed=1)
    path = ensemble_card(tmp_path, [("fcn8s.safetensors", 1), ("fcn32s.safetensors", 1)],
                         test_time={"scales": [0.75, 1.0], "flip": True})
    result = run_module("seg.cli.evaluate", "--checkpoint", str(path), "--limit", "4", "--json",
                        str(tmp_path / "scores.json"))
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["images"] == 4 and 0 <= scores["miou"] <= 1 and "mIoU" in result.stdout


def test_the_catalogue_offers_the_ensemble_named_after_its_members(tmp_path):
    from seg.explorer.zoo import Zoo

    camvid = tmp_path / "camvid"
    camvid.mkdir()
    member(camvid, "fcn8s", seed=0)
    member(camvid, "unet", seed=1)
    ensemble_card(camvid, [("unet.safetensors", 2), ("fcn8s.safetensors", 1)])
    zoo = Zoo(tmp_path, pretrained=())
    assert zoo.semantic_names()["ensemble"] == "Ensemble of U-Net and FCN-8s (from scratch)"
    labels = zoo.semantic("ensemble").probabilities(torch.randint(0, 255, (48, 40, 3), dtype=torch.uint8).numpy())
    assert labels.shape == (len(CLASSES), 48, 40) and torch.allclose(labels.sum(0), torch.ones(48, 40), atol=1e-4)
    (camvid / "unet.safetensors").unlink()
    broken = Zoo(tmp_path, pretrained=())
    assert "ensemble" not in broken.semantic_names()
    assert any("not there (unet.safetensors)" in how for _, how in broken.missing())


def test_the_protocol_teacher_is_the_shipped_choice_over_the_protocol_models(tmp_path):
    """recipes/ensemble_choice.py --protocol-card: the shipped card's member weights and views over the
    protocol runs (e-<kind>/), refused while a member's card carries no logit adjustment."""
    runs = tmp_path / "runs"
    for kind, seed in (("fcn8s", 0), ("unet", 1)):
        (runs / f"e-{kind}").mkdir(parents=True)
        member(runs / f"e-{kind}", kind, seed=seed)
        (runs / f"e-{kind}" / f"{kind}.safetensors").rename(runs / f"e-{kind}" / "model.safetensors")
        (runs / f"e-{kind}" / f"{kind}.json").rename(runs / f"e-{kind}" / "model.json")
    choice = {"weights": {"fcn32s": 0, "fcn8s": 1, "unet": 2}, "views": {"scales": [1.0, 1.25], "flip": True},
              "sequence": "0006R0"}
    shipped = tmp_path / "weights"
    shipped.mkdir()
    (shipped / "ensemble.json").write_text(json.dumps({"chosen_on": choice}))
    command = ["--protocol-card", "--runs", str(runs), "--weights", str(shipped)]
    refused = run_module("recipes.ensemble_choice", *command, check=False)
    assert refused.returncode == 1 and "run python -m seg.cli.tau set first" in refused.stderr
    for kind in ("fcn8s", "unet"):
        card_file = runs / f"e-{kind}" / "model.json"
        card = json.loads(card_file.read_text())
        card[CARD_KEY] = {"tau": 0.5, "class_weights": [1.0, 2.0, 0.5, 4.0][:len(CLASSES)], "chosen_on": "a test"}
        card_file.write_text(json.dumps(card))
    run_module("recipes.ensemble_choice", *command)
    teacher, card = load_model(runs / "e-ensemble.json")
    assert card["members"] == [{"weights": "e-fcn8s/model.safetensors", "weight": 1},
                               {"weights": "e-unet/model.safetensors", "weight": 2}]
    assert (teacher.scales, teacher.flip) == ((1.0, 1.25), True) and card["data"]["holdout_sequence"] == "0006R0"
    assert all(getattr(teacher, f"offset_{i}") is not None for i in range(2)) and not teacher.training


@pytest.mark.slow
def test_a_fast_ensemble_is_chosen_within_its_time_budget_and_offered_as_such(camvid_dir, tmp_path):
    """recipes/ensemble_choice.py with --budget: every candidate (weighting and views) is timed against
    LR-ASPP MobileNetV3-Large through the same prediction path, only those that fit are scored, and the
    chosen one fits; a budget nothing fits is refused with a message. The catalogue offers the card as
    the fast ensemble."""
    from seg.explorer.zoo import Zoo

    camvid_classes = json.loads((camvid_dir / "classes.json").read_text())["names"][:11]
    runs = tmp_path / "runs"
    for seed, kind in enumerate(("fcn32s", "fcn8s", "deeplabv3")):
        protocol_run(runs, f"e-{kind}", kind, camvid_classes, seed=seed, weight_step=1 / 4)
    choose = ["recipes.ensemble_choice", "--runs", str(runs), "--data-dir", str(camvid_dir), "--kinds", "fcn32s",
              "fcn8s", "deeplabv3", "--views", "1", "1 + flip"]
    run_module(*choose, "--budget", "1.5", "--json", str(tmp_path / "fast.json"))
    choice = json.loads((tmp_path / "fast.json").read_text())
    assert choice["budget"]["measured"] <= 1.5 and choice["candidates"]
    scored = [c for c in choice["candidates"] if c["miou"] is not None]
    assert all(c["times_lr_aspp"] <= 1.5 for c in scored)
    assert all(c["miou"] is None for c in choice["candidates"] if c["times_lr_aspp"] > 1.5)
    refused = run_module(*choose, "--budget", "0.01", "--json", str(tmp_path / "none.json"), check=False)
    assert refused.returncode == 1 and "no weighting and views fit the budget of 0.01" in refused.stderr

    camvid = tmp_path / "weights" / "camvid"
    camvid.mkdir(parents=True)
    member(camvid, "fcn8s", seed=0)
    member(camvid, "unet", seed=1)
    ensemble_card(camvid, [("fcn8s.safetensors", 1)]).rename(camvid / "fast.json")
    assert Zoo(tmp_path / "weights", pretrained=()).semantic_names()["fast"] == "Fast ensemble of FCN-8s (from scratch)"


@pytest.mark.slow
def test_a_choice_over_fine_tuned_protocol_runs_scores_them_as_the_shipped_ones_run(camvid_dir, tmp_path):
    """recipes/ensemble_choice.py --protocol KIND=RUN: the named run stands for its kind; one fine-tuned
    (its card names its start) is scored as it is, as the shipped fine-tuned models run, one from scratch
    with the logit adjustment at tau 0.5; the choice records which runs made it, and the teacher written
    from it has those runs as members. A malformed or missing run is refused with a message."""
    camvid_classes = json.loads((camvid_dir / "classes.json").read_text())["names"][:11]
    runs = tmp_path / "runs"
    for seed, (run, kind, start) in enumerate((("e-fcn32s", "fcn32s", None), ("c-fcn8s-long", "fcn8s", "e-fcn8s"))):
        protocol_run(runs, run, kind, camvid_classes, seed=seed, weight_step=1 / 2, start=start)
    choose = ["recipes.ensemble_choice", "--runs", str(runs), "--data-dir", str(camvid_dir), "--kinds", "fcn32s",
              "fcn8s", "--views", "1", "--json", str(tmp_path / "choice.json")]
    run_module(*choose, "--protocol", "fcn8s=c-fcn8s-long")
    choice = json.loads((tmp_path / "choice.json").read_text())
    assert choice["protocol"] == {"fcn32s": "e-fcn32s", "fcn8s": "c-fcn8s-long"} and choice["tuned"] == ["fcn8s"]
    bare = {}
    for run in ("e-fcn32s", "c-fcn8s-long"):  # the evaluation command scores a card without an adjustment bare
        run_module("seg.cli.evaluate", "--checkpoint", str(runs / run / "model.safetensors"), "--data-dir",
                   str(camvid_dir), "--split", "train", "--sequence", "0006R0", "--json", str(tmp_path / f"{run}.json"))
        bare[run] = json.loads((tmp_path / f"{run}.json").read_text())["miou"]
    assert choice["alone"]["fcn8s"] == pytest.approx(bare["c-fcn8s-long"], abs=1e-4)
    assert abs(choice["alone"]["fcn32s"] - bare["e-fcn32s"]) > 1e-3  # scored with the adjustment

    shipped = tmp_path / "weights"
    shipped.mkdir()
    (shipped / "ensemble.json").write_text(json.dumps({"chosen_on": {**choice, "weights": {"fcn32s": 0, "fcn8s": 1}}}))
    run_module("recipes.ensemble_choice", "--protocol-card", "--runs", str(runs), "--weights", str(shipped))
    teacher, card = load_model(runs / "e-ensemble.json")
    assert card["members"] == [{"weights": "c-fcn8s-long/model.safetensors", "weight": 1}]
    assert teacher.offset_0 is None and not teacher.training

    for wrong, message in ((["--protocol", "fcn8s"], "expected KIND=RUN"),
                           (["--protocol", "vgg=c-fcn8s-long"], "expected KIND=RUN"),
                           (["--protocol", "fcn8s=c-none"], "no protocol model at")):
        refused = run_module(*choose, *wrong, check=False)
        assert refused.returncode == 1 and message in refused.stderr, refused.stderr


def test_the_shipped_choice_is_kept_unless_beaten_by_more_than_the_noise(tmp_path):
    """recipes/ensemble_choice.py: a new choice replaces the shipped card only when it beats the shipped
    choice, scored over the same protocol models, by more than NOISE (and the shipped one still fits a
    budget); a kept card is left byte for byte (its test figures are recorded by digest), and a choice of
    one shipped model at one view writes no card that would only repeat it."""
    from recipes.ensemble_choice import NOISE, keep_shipped, write_card

    kinds = ("fcn8s", "unet")
    shipped = {"weights": {"fcn8s": 1, "unet": 2}, "views": {"name": "1, 1.25 + flip", "scales": [1.0, 1.25],
                                                            "flip": True}}
    seen = []

    def score(g, view):
        seen.append((g, view))
        return 0.40 - NOISE / 2

    kept = keep_shipped(shipped, kinds, 0.40, score, None, None)
    assert seen == [((1, 2), ((1.0, 1.25), True))] and kept["miou"] == pytest.approx(0.40 - NOISE / 2)
    assert keep_shipped(shipped, kinds, 0.40 + NOISE, score, None, None) is None
    assert keep_shipped(shipped, ("fcn8s",), 0.40, score, None, None) is None  # a member not chosen from now
    assert keep_shipped(shipped, kinds, 0.40, score, lambda weighting, view: 1.6, 1.5) is None  # over the budget
    assert keep_shipped(shipped, kinds, 0.40, score, lambda weighting, view: 1.2, 1.5)["times_lr_aspp"] == 1.2

    card = tmp_path / "ensemble.json"
    card.write_bytes(b'{"a card": "as shipped"}\n')
    write_card({"weights": {"fcn8s": 1, "unet": 2}, "views": {"scales": [1.0], "flip": False}, "kept": kept},
               tmp_path)
    assert card.read_bytes() == b'{"a card": "as shipped"}\n'
    with pytest.raises(SystemExit, match="the shipped unet alone at one view"):
        write_card({"weights": {"fcn8s": 0, "unet": 1}, "views": {"scales": [1.0], "flip": False}}, tmp_path)
    assert card.read_bytes() == b'{"a card": "as shipped"}\n'


def test_a_new_choice_is_written_as_a_card_that_names_the_commands_that_made_it(tmp_path):
    """recipes/ensemble_choice.py --card: a choice not kept becomes a card of the shipped members that
    loads as one model; its training command is the recipe's stages over the 12-epoch protocol models
    unless --command names others (the longer twins' stages, recipes/camvid_ensemble.sh card)."""
    from recipes.ensemble_choice import STAGES, write_card

    camvid = tmp_path / "weights" / "camvid"
    camvid.mkdir(parents=True)
    member(camvid, "fcn8s", seed=0)
    member(camvid, "unet", seed=1)
    choice = {"sequence": "0006R0", "weights": {"fcn8s": 1, "unet": 2, "fcn32s": 0},
              "views": {"name": "1 + flip", "scales": [1.0], "flip": True}}
    longer = "BASE_EPOCHS=48 recipes/camvid_ensemble.sh choose"
    for command, expected in ((None, STAGES["ensemble"]), (longer, longer)):
        ensemble, card = load_model(write_card(choice, camvid, command=command))
        assert card["training"]["command"] == expected and card["chosen_on"]["sequence"] == "0006R0"
        assert card["members"] == [{"weights": "fcn8s.safetensors", "weight": 1},
                                   {"weights": "unet.safetensors", "weight": 2}]
        assert isinstance(ensemble, Ensemble) and ensemble.flip and not ensemble.training
