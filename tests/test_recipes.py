"""The recipe helpers that carry CamVid to a GPU machine and ship what comes back, and how benchmarks
report."""

import json
import shutil
import subprocess
import sys
import tarfile

import numpy as np
from PIL import Image

from conftest import ROOT
from seg.data.camvid import CamVid
from seg.data.io import read_image


def run_recipe(script: str, *args) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "recipes" / script), *map(str, args)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_pack_and_unpack_camvid_keep_labels_exact_and_images_close(camvid_dir, tmp_path):
    small = tmp_path / "camvid"  # three images per split, to keep the test quick
    for split in ("train", "val"):
        for folder in (split, f"{split}annot"):
            (small / folder).mkdir(parents=True)
        for path in sorted((camvid_dir / split).glob("*.png"))[:3]:
            shutil.copyfile(path, small / split / path.name)
            shutil.copyfile(camvid_dir / f"{split}annot" / path.name, small / f"{split}annot" / path.name)
    archive = tmp_path / "pack.tar"
    assert "packed 6 images" in run_recipe("pack_camvid.py", "pack", small, archive)
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert sorted(n.split("/")[0] for n in names) == ["train"] * 3 + ["trainannot"] * 3 + ["val"] * 3 + ["valannot"] * 3
    assert all(n.endswith(".jpg") for n in names if n.split("/")[0] in ("train", "val"))

    out = tmp_path / "unpacked"
    assert "unpacked 6 images" in run_recipe("pack_camvid.py", "unpack", archive, out)
    original, restored = CamVid(small, "val"), CamVid(out, "val")
    assert [p.name for p in restored.images] == [p.name for p in original.images]
    for i in range(len(original)):
        (image, labels), (image2, labels2) = original.read(i), restored.read(i)
        np.testing.assert_array_equal(labels2, labels)  # labels are lossless
        assert image2.shape == image.shape
        assert np.abs(image2.astype(float) - image).mean() < 3  # JPEG quality 90: about 2/255 per channel


def test_unpack_reads_only_the_camvid_layout(tmp_path):
    archive = tmp_path / "evil.tar"
    image = tmp_path / "x.jpg"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(image)
    with tarfile.open(archive, "w") as tar:
        tar.add(image, arcname="../escaped.jpg")
        tar.add(image, arcname="/tmp/absolute.jpg")
        tar.add(image, arcname="train/deep/nested.jpg")
        tar.add(image, arcname="train/ok.jpg")
    out = tmp_path / "out"
    assert "unpacked 1 images" in run_recipe("pack_camvid.py", "unpack", archive, out)
    assert [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()] == ["train/ok.png"]
    assert not (tmp_path / "escaped.jpg").exists() and read_image(out / "train" / "ok.png").shape == (4, 4, 3)


def test_ship_records_the_epochs_that_ran_and_how_the_data_travelled(trained_checkpoint, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(trained_checkpoint.parent, runs / "fcn8s")  # any CNN run in the layout ship.py reads
    history = json.loads((runs / "fcn8s" / "history.json").read_text())
    card = json.loads((runs / "fcn8s" / "model.json").read_text())
    card["training"]["epochs"] = len(history) + 3  # as if a time limit stopped it three epochs early
    (runs / "fcn8s" / "model.json").write_text(json.dumps(card))
    run_recipe("ship.py", "--runs", runs, "--weights", tmp_path / "weights", "--data-note", "JPEG copies")
    shipped = json.loads((tmp_path / "weights" / "camvid" / "fcn8s.json").read_text())
    assert shipped["training"]["epochs_completed"] == len(history) == shipped["training"]["epochs"] - 3
    assert shipped["data"]["note"] == "JPEG copies"
    assert (tmp_path / "weights" / "camvid" / "fcn8s.safetensors").read_bytes() == \
        (runs / "fcn8s" / "model.safetensors").read_bytes()


def test_benchmark_report_replaces_a_section_of_the_same_title(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from report import publish

    results = tmp_path / "RESULTS.md"
    publish("Speed", "first run.", ["| a | 1 |"], results, new_file=True)
    publish("Memory", "once.", ["| m | 5 |"], results)
    publish("Speed", "second run.", ["| a | 2 |"], results)  # a rerun of one benchmark
    text = results.read_text()
    assert text.startswith("# Benchmark results")
    assert [line for line in text.splitlines() if line.startswith("## ")] == ["## Speed", "## Memory"]
    assert "second run." in text and "| a | 2 |" in text and "first run." not in text and "| m | 5 |" in text
    assert "second run." in capsys.readouterr().out  # printed as well
