"""swinrt-phantom (python/swinrt/phantom.py): deterministic by seed, the
Synapse format and value ranges, the 8 organs where anatomy puts them, with
plausible intensities, different between seeds, and readable by `swinrt eval`."""
import json
import os
import pathlib
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from swinrt.phantom import ORGANS, generate, main as phantom_main, write_dataset

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIVER, GALLBLADDER, LEFT_KIDNEY, RIGHT_KIDNEY, AORTA, PANCREAS, SPLEEN, STOMACH = 5, 2, 3, 4, 1, 6, 7, 8


@pytest.fixture(scope="module")
def full():
    """One volume at the Synapse size and the default depth, timed."""
    t = time.perf_counter()
    v = generate(11)
    print(f"generate(11): {v.image.shape} in {time.perf_counter() - t:.2f} s")
    return v


def test_format_and_ranges(full):
    assert full.name == "case0011"
    assert full.image.shape == full.label.shape == (48, 512, 512)
    assert full.image.dtype == np.float32 and full.label.dtype == np.uint8
    assert full.image.min() >= 0.0 and full.image.max() <= 1.0
    # air is clipped to exactly 0 (-125 HU), bone to exactly 1 (275 HU)
    assert (full.image == 0).mean() > 0.1 and (full.image == 1).any()
    assert set(np.unique(full.label)) == set(range(9))


def test_deterministic():
    a, b = generate(3, depth=12, size=128), generate(3, depth=12, size=128)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.label, b.label)


def centroid(label, c):
    z, y, x = np.nonzero(label == c)
    return z.mean() / label.shape[0], y.mean() / label.shape[1], x.mean() / label.shape[2]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_anatomy(seed):
    """Radiological convention: row 0 anterior, column 0 the patient's right,
    slice 0 superior."""
    v = generate(seed, depth=32, size=256)
    lab, img = v.label, v.image
    assert set(np.unique(lab)) == set(range(9)), f"seed {seed}: an organ is missing"
    c = {k: centroid(lab, k) for k in ORGANS}
    assert c[LIVER][2] < 0.45 and c[SPLEEN][2] > 0.6 and c[STOMACH][2] > 0.5     # sides
    assert c[RIGHT_KIDNEY][2] < 0.45 < 0.55 < c[LEFT_KIDNEY][2]
    assert 0.45 < c[AORTA][2] < 0.6 and c[AORTA][1] > 0.5                            # by the spine
    assert c[GALLBLADDER][2] < 0.5 and c[PANCREAS][1] < c[AORTA][1]                 # pancreas in front
    assert c[LIVER][0] < c[RIGHT_KIDNEY][0] and c[SPLEEN][0] < c[LEFT_KIDNEY][0]    # kidneys lower
    sizes = np.bincount(lab.ravel(), minlength=9)
    assert sizes[LIVER] == sizes[1:].max()
    # intensities (normalised (HU + 125) / 400): aorta brightest, gallbladder
    # fluid darker than the liver, fat dark
    mean = {k: float(img[lab == k].mean()) for k in ORGANS}
    assert mean[AORTA] > mean[LIVER] > mean[GALLBLADDER]
    assert mean[LEFT_KIDNEY] > mean[LIVER] and mean[SPLEEN] > mean[PANCREAS]
    body = (lab == 0) & (img > 0) & (img < 0.15)
    assert body.mean() > 0.05                                                       # fat
    # texture and noise: organs are not flat
    assert all(img[lab == k].std() > 0.02 for k in ORGANS)


def test_seeds_differ():
    vols = [generate(s, depth=24, size=128) for s in (20, 21, 22)]
    for a, b in ((0, 1), (1, 2), (0, 2)):
        la, lb = vols[a].label, vols[b].label
        for k in ORGANS:
            ma, mb = la == k, lb == k
            dice = 2 * (ma & mb).sum() / max(ma.sum() + mb.sum(), 1)
            assert dice < 0.97, f"organ {k} nearly identical between seeds"
        assert not np.array_equal(vols[a].image, vols[b].image)


def test_write_dataset_layout(tmp_path):
    names = write_dataset(str(tmp_path), seed=40, volumes=2, depth=6, train_slices=8, size=128, log=lambda s: None)
    assert names["test"] == ["case0040", "case0041"]
    # training slices from the next seeds, every slice of each in order
    assert names["train"] == [f"case0042_slice{z:03d}" for z in range(6)] + ["case0043_slice000", "case0043_slice001"]
    assert (tmp_path / "lists_Synapse" / "test_vol.txt").read_text() == "case0040\ncase0041\n"
    assert (tmp_path / "lists_Synapse" / "train.txt").read_text().split() == names["train"]
    with h5py.File(tmp_path / "case0041.npy.h5") as f:
        v = generate(41, 6, 128)
        assert np.array_equal(f["image"][:], v.image) and np.array_equal(f["label"][:], v.label)
    d = np.load(tmp_path / "train_npz" / "case0042_slice003.npz")
    v = generate(42, 6, 128)
    assert d["image"].shape == (128, 128) and np.array_equal(d["image"], v.image[3])
    assert np.array_equal(d["label"], v.label[3])
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "python"), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-m", "swinrt.phantom", "--out", tmp_path / "d", "--seed", "5", "--depth", "4",
                        "--size", "64"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "case0005.npy.h5").exists()
    with pytest.raises(SystemExit) as e:
        phantom_main(["--out", str(tmp_path), "--depth", "0"])
    assert e.value.code == 2


def test_readable_by_swinrt_eval(swinrt_bin, tmp_path):
    """A phantom directory is what `swinrt eval` takes: the case list beside
    the volumes, 128x128 slices zoomed to a 64x64 random-weight model and back."""
    from helpers import config, saved_model

    write_dataset(str(tmp_path / "data"), seed=60, volumes=2, depth=5, size=128, log=lambda s: None)
    _, weights = saved_model(tmp_path, config("tiny", num_classes=9))
    r = subprocess.run([swinrt_bin, "eval", "--weights", weights, "--volume-path", tmp_path / "data", "--device", "cpu",
                        "--json", tmp_path / "m.json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "2 test iterations per epoch"
    assert "case0061: 5 slices" in r.stderr
    doc = json.loads((tmp_path / "m.json").read_text())
    assert list(doc["cases"]) == ["case0060", "case0061"] and len(doc["classes"]) == 8
