"""python/swinrt/train.py: its metrics are medpy's and the original
calculate_metric_percase's, its augmentation moves image and label alike,
its loss is the original's, and a tiny run end to end writes a weights file
that swinrt reads, the original log lines and metrics.json."""
import json

import numpy as np
import pytest
import torch

from swinrt import train
from swinrt.phantom import write_dataset
from swinrt.weights import load_safetensors


def test_metric_percase_matches_medpy():
    binary = pytest.importorskip("medpy.metric.binary")
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[:12, :40, :36]
    for k in range(6):
        c = rng.uniform(0.3, 0.7, 3) * (12, 40, 36)
        r = rng.uniform(0.15, 0.35, 3) * (12, 40, 36)
        gt = ((zz - c[0]) / r[0]) ** 2 + ((yy - c[1]) / r[1]) ** 2 + ((xx - c[2]) / r[2]) ** 2 < 1
        pred = np.roll(gt, int(rng.integers(-3, 4)), axis=int(rng.integers(0, 3))) | (rng.random(gt.shape) < 0.002)
        if k == 0:
            gt[0, :5, :5] = True      # on the array border: surface there
        dice, hd95 = train.metric_percase(pred, gt)
        assert dice == pytest.approx(binary.dc(pred, gt), abs=1e-12)
        assert hd95 == pytest.approx(binary.hd95(pred, gt), abs=1e-9)
    empty = np.zeros((3, 4, 4), bool)
    some = empty.copy()
    some[1, 1, 1] = True
    assert train.metric_percase(some, empty) == (1.0, 0.0)
    assert train.metric_percase(empty, some) == (0.0, 0.0)
    assert train.metric_percase(empty, empty) == (0.0, 0.0)


@pytest.mark.parametrize("mode", ["original", "rotate", "none"])
def test_augment_moves_image_and_label_alike(mode):
    g = torch.Generator().manual_seed(1)
    S = 24
    y = torch.arange(S * S).reshape(1, S, S).repeat(32, 1, 1) % 9
    x = (y.float() + 1).unsqueeze(1) / 10      # image = (label + 1) / 10 everywhere inside
    xo, yo = train.augment(x, y, mode, g)
    inside = xo[:, 0] > 0                       # zeros: outside the rotated image
    assert torch.equal(yo[inside], (xo[:, 0][inside] * 10 - 1).round().long())
    assert torch.equal(yo[~inside], torch.zeros_like(yo[~inside]))
    changed = [not torch.equal(yo[i], y[i]) for i in range(32)]
    assert (sum(changed) == 0) == (mode == "none")
    if mode == "original":   # rot90 + flip keep the whole image
        full = [i for i in range(32) if inside[i].all()]
        assert len(full) >= 8


def test_dice_loss_is_the_originals():
    logits = torch.randn(2, 4, 8, 8)
    target = torch.randint(0, 4, (2, 8, 8))
    score = torch.softmax(logits, 1)
    ref = 0
    for c in range(4):   # the original DiceLoss._dice_loss per class, weight 1
        t = (target == c).float()
        inter = (score[:, c] * t).sum()
        ref += 1 - (2 * inter + 1e-5) / ((score[:, c] ** 2).sum() + (t * t).sum() + 1e-5)
    assert float(train.dice_loss(logits, target, 4)) == pytest.approx(float(ref / 4), rel=1e-6)
    perfect = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float() * 100
    assert float(train.dice_loss(perfect, target, 4)) < 1e-4


TINY = ["--img-size", "64", "--embed-dim", "16", "--num-heads", "1,2,4,8", "--window-size", "4", "--size", "128",
        "--depth", "4", "--val-volumes", "1", "--warmup", "2", "--batch", "4", "--workers", "2", "--device", "cpu"]


def test_trains_on_a_synapse_directory(tmp_path):
    """--data: the training slices of a Synapse-layout directory (train_npz + lists_Synapse/train.txt)."""
    write_dataset(str(tmp_path / "data"), seed=70, volumes=0, depth=4, train_slices=6, size=128, log=lambda s: None)
    assert train.main(["--out", str(tmp_path / "run"), "--data", str(tmp_path / "data"), "--steps", "2",
                       "--val-every", "0", *TINY]) == 0
    log = (tmp_path / "run" / "train_log.txt").read_text()
    assert "data: 6 training slices (Synapse-layout slices from" in log


def test_tiny_run_end_to_end(tmp_path):
    args = ["--out", str(tmp_path), "--img-size", "64", "--embed-dim", "16", "--num-heads", "1,2,4,8",
            "--window-size", "4", "--size", "128", "--depth", "4", "--train-volumes", "2", "--val-volumes", "1",
            "--steps", "6", "--warmup", "2", "--batch", "4", "--log-every", "3", "--val-every", "6",
            "--workers", "2", "--device", "cpu"]
    assert train.main(args) == 0
    cfg, model = load_safetensors(str(tmp_path / "demo_swin_unet.safetensors"))
    assert cfg.img_size == 64 and cfg.embed_dim == 16 and cfg.num_classes == 9
    assert next(iter(model.parameters())).dtype == torch.float32
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert list(doc["cases"]) == ["case2000"] and len(doc["classes"]) == 8 and doc["steps"] == 6
    assert 0 <= doc["mean_dice"] <= 1
    log = (tmp_path / "train_log.txt").read_text()
    assert "1 test iterations per epoch" in log and "Testing performance in best val model: mean_dice" in log
    assert "step 6/6 loss" in log
