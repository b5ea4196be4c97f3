"""The sample datasets: real formats, deterministic, learnable, and through the real pipeline."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from sacremoses import MosesDetokenizer

from object_detection import verify_dataset as od_verify
from object_detection.layout import CocoLayout
from object_detection.sample import SHAPE_CLASSES, build_split
from translation import verify_dataset as tr_verify
from translation.clean import REFERENCE_RULES
from translation.layout import LANGS, Wmt16Layout
from translation.sample import build_sample as build_wmt_sample

pytestmark = pytest.mark.timeout(600)  # its slow tests


def build_coco(data_dir: Path, seed: int) -> CocoLayout:
    layout = CocoLayout(data_dir)
    build_split(layout, "train", 12, random.Random(f"{seed}-train"))
    build_split(layout, "val", 6, random.Random(f"{seed}-val"))
    return layout


def test_coco_sample_loads_with_pycocotools_and_masks_match_pixels(tmp_path):
    layout = build_coco(tmp_path, seed=3)
    colours = {c.coco_id: np.array(c.colour) for c in SHAPE_CLASSES}
    for split in ("train", "val"):
        coco = COCO(str(layout.annotations(split)))
        assert sorted(coco.getCatIds()) == sorted(c.coco_id for c in SHAPE_CLASSES)
        assert coco.loadCats(37)[0]["name"] == "sports ball"
        assert coco.getAnnIds()
        for image_id in coco.getImgIds():
            info = coco.loadImgs(image_id)[0]
            pixels = np.asarray(Image.open(layout.images_dir(split) / info["file_name"]).convert("RGB"))
            assert pixels.shape == (info["height"], info["width"], 3)
            for ann in coco.loadAnns(coco.getAnnIds(imgIds=image_id)):
                mask = coco.annToMask(ann).astype(bool)
                assert abs(mask.sum() - ann["area"]) < 0.15 * ann["area"] + 20
                x, y, w, h = ann["bbox"]
                assert min(x, y) >= 0 and x + w <= info["width"] and y + h <= info["height"]
                # The class is visible: the masked pixels carry the class colour (JPEG noise aside).
                mean = pixels[mask].mean(axis=0)
                assert np.abs(mean - colours[ann["category_id"]]).max() < 25


def test_coco_sample_is_deterministic_per_seed(tmp_path):
    a, b, c = build_coco(tmp_path / "a", 1), build_coco(tmp_path / "b", 1), build_coco(tmp_path / "c", 2)
    for split in ("train", "val"):
        assert a.annotations(split).read_bytes() == b.annotations(split).read_bytes()
        assert a.annotations(split).read_bytes() != c.annotations(split).read_bytes()
        first = json.loads(a.annotations(split).read_text())["images"][0]["file_name"]
        assert (a.images_dir(split) / first).read_bytes() == (b.images_dir(split) / first).read_bytes()


def test_verify_names_a_missing_sample_image(tmp_path, capsys):
    layout = build_coco(tmp_path, seed=0)
    layout.weights.parent.mkdir(parents=True)
    layout.weights.write_bytes(b"stand-in")
    assert od_verify.main(["--data-dir", str(tmp_path), "--sample"]) == 0
    victim = sorted(layout.images_dir("val").iterdir())[0]
    victim.unlink()
    assert od_verify.main(["--data-dir", str(tmp_path), "--sample"]) == 1
    err = capsys.readouterr().err
    assert f"FAILED {layout.images_dir('val')}: expected 6 images, found 5" in err
    assert f"missing in {layout.images_dir('val')}, e.g. {victim.name}" in err


@pytest.mark.slow
@pytest.mark.training
def test_sample_weights_have_torchvision_resnet50_keys_and_shapes(tmp_path):
    import torch  # noqa: PLC0415 - only this test needs torch
    from torchvision.models import resnet50  # noqa: PLC0415

    from object_detection.sample import build_weights  # noqa: PLC0415

    path = tmp_path / "w.pth"
    build_weights(path, seed=0)
    state = torch.load(path, weights_only=True)
    reference = resnet50(weights=None).state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == {k: tuple(v.shape) for k, v in reference.items()}
    model = resnet50(weights=None)
    model.load_state_dict(state)
    assert torch.equal(model.conv1.weight, state["conv1.weight"])


@pytest.fixture(scope="module")
def wmt_sample(tmp_path_factory) -> Wmt16Layout:
    data_dir = tmp_path_factory.mktemp("wmt")
    build_wmt_sample(data_dir, seed=0, train_pairs=1500, test_pairs=60, workers=2)
    return Wmt16Layout(data_dir)


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.slow
def test_wmt_sample_has_the_trainer_files_and_passes_verify(wmt_sample, capsys):
    assert all(p.is_file() for p in wmt_sample.required())
    assert tr_verify.main(["--data-dir", str(wmt_sample.data_dir), "--sample"]) == 0
    assert "OK" in capsys.readouterr().out


@pytest.mark.slow
def test_wmt_bpe_and_tokenisation_round_trip_to_the_raw_text(wmt_sample):
    root = wmt_sample.root
    for lang in LANGS:
        debpe = [line.replace("@@ ", "") for line in lines(wmt_sample.test_bpe(lang))]
        assert debpe == lines(root / f"newstest2014.tok.{lang}")
        detok = MosesDetokenizer(lang=lang)
        assert [detok.detokenize(line.split()) for line in debpe] == lines(wmt_sample.test_raw(lang))
    assert any("@@" in line for line in lines(wmt_sample.train("de")))  # BPE actually splits words
    assert any("&apos;" in line or "&quot;" in line for line in lines(wmt_sample.train("en")))


@pytest.mark.slow
def test_wmt_cleaning_drops_the_noise_and_keeps_pairs_aligned(wmt_sample):
    raw = len(lines(wmt_sample.root / "train.en"))
    en, de = lines(wmt_sample.train("en")), lines(wmt_sample.train("de"))
    assert len(en) == len(de) < raw
    for a, b in zip(en, de, strict=True):
        ta, tb = a.replace("@@ ", "").split(), b.replace("@@ ", "").split()
        assert 1 <= len(ta) <= REFERENCE_RULES.max_words and 1 <= len(tb) <= REFERENCE_RULES.max_words
        assert max(len(ta) / len(tb), len(tb) / len(ta)) <= REFERENCE_RULES.ratio
        assert max(map(len, ta + tb)) <= REFERENCE_RULES.max_word_length
        (a + b).encode("latin-1")
    vocab = set(lines(wmt_sample.vocab))
    assert {tok for line in en + de for tok in line.split()} == vocab


@pytest.mark.slow
def test_wmt_rerun_skips_complete_steps_and_redoes_from_a_changed_one(wmt_sample):
    steps = build_wmt_sample(wmt_sample.data_dir, seed=0, train_pairs=1500, test_pairs=60, workers=2)
    assert [s.ran for s in steps] == [False] * len(steps)
    vocab_before = wmt_sample.vocab.read_bytes()
    wmt_sample.bpe_codes.write_text("#version: 0.2\n")
    steps = build_wmt_sample(wmt_sample.data_dir, seed=0, train_pairs=1500, test_pairs=60, workers=2)
    assert [(s.name, s.ran) for s in steps] == [
        ("assemble", False), ("tokenise", False), ("clean", False),
        ("bpe-learn", True), ("bpe-apply", True), ("vocab", True), ("token-cache", True)]
    assert wmt_sample.vocab.read_bytes() == vocab_before
