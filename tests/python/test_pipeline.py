"""The evaluation pipeline against its real references.

- zoom: swinrt_pipeline_probe vs scipy.ndimage.zoom (order 3 within 1e-5
  relative, order 0 identical), including the shapes where scipy's last
  output sample falls past the input and takes cval 0.
- metrics: `swinrt metrics` vs medpy.metric.binary.dc/hd95 and the original
  calculate_metric_percase rules, random and organ-shaped masks, with and
  without voxel spacing, .npy and .nii.gz inputs, within 1e-6.
- eval: the original test protocol written out in Python (scipy zoom, the
  torch reference model, medpy) vs `swinrt eval --device cpu` on synthetic
  Synapse volumes: identical per-class dice and hd95 and log lines; argmax
  flips between torch and swinrt, if any, are reported with their margins.
"""

import csv
import json
import math
import os
import re
import shutil
import subprocess

import h5py
import numpy as np
import pytest
import scipy.ndimage as ndi
from medpy.metric import binary

# ---------------------------------------------------------------- zoom


def run_probe(probe, *args):
    r = subprocess.run([probe, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r.stdout


# (input shape, output shape): the protocol's 512x512 -> 224 and back, odd
# sizes, upsampling, one axis unchanged, tiny axes, and scipy's
# past-the-end quirk (32 -> 224, 78 -> 64 and 64 -> 78, 93).
ZOOM_SHAPES = [
    ((512, 512), (224, 224)),
    ((512, 400), (224, 224)),
    ((224, 224), (512, 512)),
    ((100, 37), (224, 224)),
    ((224, 300), (224, 224)),
    ((32, 40), (224, 224)),
    ((78, 93), (64, 64)),
    ((64, 64), (78, 93)),
    ((1, 5), (3, 7)),
    ((7, 1), (16, 16)),
]


@pytest.mark.parametrize("shape_in,shape_out", ZOOM_SHAPES)
def test_zoom_order3_matches_scipy(swinrt_probe, tmp_path, shape_in, shape_out):
    rng = np.random.default_rng(sum(shape_in) + sum(shape_out))
    (h, w), (oh, ow) = shape_in, shape_out
    # CT-like slices: normalised intensities plus a few outliers.
    x = rng.random((3, h, w)).astype(np.float32)
    x[0] = (x[0] * 400 - 125).astype(np.float32)
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, x)
    run_probe(swinrt_probe, "zoom", src, dst, "--order", 3, "--shape", f"{oh},{ow}")
    got = np.load(dst)
    ref = np.stack([ndi.zoom(s, (oh / h, ow / w), order=3) for s in x])
    assert ref.shape == got.shape == (3, oh, ow)
    assert got.dtype == ref.dtype == np.float32
    err = np.abs(got.astype(np.float64) - ref) / np.maximum(1.0, np.abs(ref))
    assert err.max() <= 1e-5, f"max relative error {err.max():.3g}"
    # scipy's arithmetic is reproduced operation by operation: on the default
    # x86-64 target (no FMA contraction) every sample is the same float.
    print(f"zoom {shape_in} -> {shape_out}: {np.count_nonzero(got != ref)} of {got.size} samples not bit-identical")


@pytest.mark.parametrize("shape_in,shape_out", [((224, 224), (512, 512)), ((224, 224), (512, 400)),
                                                ((64, 64), (78, 93)), ((64, 64), (24, 24)), ((224, 224), (96, 96)),
                                                ((5, 3), (1, 2))])
def test_zoom_order0_identical_to_scipy(swinrt_probe, tmp_path, shape_in, shape_out):
    rng = np.random.default_rng(7)
    (h, w), (oh, ow) = shape_in, shape_out
    labels = rng.integers(0, 9, (2, h, w)).astype(np.int64)
    src, dst = tmp_path / "in.npy", tmp_path / "out.npy"
    np.save(src, labels)
    run_probe(swinrt_probe, "zoom", src, dst, "--order", 0, "--shape", f"{oh},{ow}")
    got = np.load(dst)
    ref = np.stack([ndi.zoom(s, (oh / h, ow / w), order=0) for s in labels])
    assert np.array_equal(got, ref)


# ---------------------------------------------------------------- metrics


def percase(pred, gt, spacing=None):
    """The original utils.calculate_metric_percase (with medpy's spacing)."""
    if pred.sum() > 0 and gt.sum() > 0:
        return binary.dc(pred, gt), binary.hd95(pred, gt, voxelspacing=spacing)
    if pred.sum() > 0 and gt.sum() == 0:
        return 1, 0
    return 0, 0


def organ_labels(shape, rng, jitter=0.0, classes=8):
    """Ellipsoid 'organs' 1..classes, later ones overwriting earlier ones."""
    d, h, w = shape
    zz, yy, xx = np.ogrid[:d, :h, :w]
    lab = np.zeros(shape, np.uint8)
    for c in range(1, classes + 1):
        cz, cy, cx = rng.uniform(0.25, 0.75, 3) + rng.normal(0, jitter, 3)
        rz, ry, rx = rng.uniform(0.08, 0.3, 3)
        m = ((zz / d - cz) / rz) ** 2 + ((yy / h - cy) / ry) ** 2 + ((xx / w - cx) / rx) ** 2 < 1
        lab[m] = c
    return lab


def swinrt_metrics(swinrt_bin, tmp_path, pred_path, gt_path, *extra):
    out = tmp_path / "m.json"
    r = subprocess.run([swinrt_bin, "metrics", "--pred", str(pred_path), "--gt", str(gt_path), "--json", str(out),
                        *map(str, extra)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return json.loads(out.read_text()), r.stdout


def check_against_medpy(doc, pred, gt, classes, spacing):
    means = []
    for c in classes:
        want = percase(pred == c, gt == c, spacing)
        got = doc["classes"][str(c)]
        assert got["dice"] == pytest.approx(float(want[0]), abs=1e-6), f"class {c} dice"
        assert got["hd95"] == pytest.approx(float(want[1]), abs=1e-6), f"class {c} hd95"
        means.append(want)
    assert doc["mean_dice"] == pytest.approx(np.mean([m[0] for m in means]), abs=1e-9)
    assert doc["mean_hd95"] == pytest.approx(np.mean([m[1] for m in means]), abs=1e-9)


@pytest.mark.parametrize("spacing", [None, (2.5, 0.7, 0.7), (1.0, 3.0, 0.5)])
def test_metrics_organs_match_medpy(swinrt_bin, tmp_path, spacing):
    rng = np.random.default_rng(11)
    gt = organ_labels((24, 80, 72), rng)
    pred = organ_labels((24, 80, 72), np.random.default_rng(11), jitter=0.03)
    pred[(rng.random(pred.shape) < 0.01)] = 3      # speckle
    pred[pred == 6] = 0                              # a missed organ: gt only
    pred[0, :4, :4] = 9                              # a class the gt lacks: pred only
    np.save(tmp_path / "pred.npy", pred)
    np.save(tmp_path / "gt.npy", gt.astype(np.float32))
    extra = ["--spacing", ",".join(map(str, spacing))] if spacing else []
    doc, _ = swinrt_metrics(swinrt_bin, tmp_path, tmp_path / "pred.npy", tmp_path / "gt.npy", "--classes", "1..10",
                            *extra)
    check_against_medpy(doc, pred, gt, range(1, 11), spacing)


def test_metrics_random_masks_match_medpy(swinrt_bin, tmp_path):
    rng = np.random.default_rng(5)
    for shape, p in [((9, 17, 13), 0.05), ((9, 17, 13), 0.5), ((1, 40, 33), 0.2), ((40, 33), 0.2)]:
        pred = (rng.random(shape) < p).astype(np.int32) * 2
        gt = (rng.random(shape) < p).astype(np.int64) * 2
        spacing = (0.8, 1.7, 1.1)[-len(shape):]
        np.save(tmp_path / "p.npy", pred)
        np.save(tmp_path / "g.npy", gt)
        doc, _ = swinrt_metrics(swinrt_bin, tmp_path, tmp_path / "p.npy", tmp_path / "g.npy", "--classes", "2",
                                "--spacing", ",".join(map(str, spacing)))
        check_against_medpy(doc, pred, gt, [2], spacing)


def test_metrics_nifti_spacing_from_header(swinrt_bin, tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    rng = np.random.default_rng(2)
    gt = organ_labels((16, 48, 40), rng, classes=4)
    pred = organ_labels((16, 48, 40), np.random.default_rng(2), jitter=0.05, classes=4)
    for name, arr in (("pred", pred), ("gt", gt)):
        img = sitk.GetImageFromArray(arr.astype(np.float32))
        img.SetSpacing((0.75, 0.75, 2.5))                 # x, y, z
        sitk.WriteImage(img, str(tmp_path / f"{name}.nii.gz"))
    doc, out = swinrt_metrics(swinrt_bin, tmp_path, tmp_path / "pred.nii.gz", tmp_path / "gt.nii.gz", "--classes", "1..4")
    # The array is [z, y, x]: medpy takes the spacing in that order.
    check_against_medpy(doc, pred, gt, range(1, 5), (2.5, 0.75, 0.75))
    assert "from" in out and "gt.nii.gz" in out
    # --spacing for NIfTI is X,Y,Z as in the header.
    doc2, _ = swinrt_metrics(swinrt_bin, tmp_path, tmp_path / "pred.nii.gz", tmp_path / "gt.nii.gz", "--classes",
                             "1..4", "--spacing", "0.75,0.75,2.5")
    assert doc2 == doc


def test_metrics_empty_mask_rules(swinrt_bin, tmp_path):
    gt = np.zeros((4, 10, 10), np.uint8)
    pred = np.zeros_like(gt)
    gt[1, 2:5, 2:5] = 1          # class 1: gt only          -> (0, 0)
    pred[2, 3:6, 3:6] = 2        # class 2: pred only        -> (1, 0)
    gt[0, 0, 0] = pred[0, 0, 0] = 3   # class 3: both, equal -> (1, 0)
    np.save(tmp_path / "p.npy", pred)
    np.save(tmp_path / "g.npy", gt)
    doc, _ = swinrt_metrics(swinrt_bin, tmp_path, tmp_path / "p.npy", tmp_path / "g.npy", "--classes", "1,2,3,4")
    assert doc["classes"] == {"1": {"dice": 0.0, "hd95": 0.0}, "2": {"dice": 1.0, "hd95": 0.0},
                              "3": {"dice": 1.0, "hd95": 0.0}, "4": {"dice": 0.0, "hd95": 0.0}}
    assert doc["mean_dice"] == 0.5


def test_metrics_errors(swinrt_bin, tmp_path):
    np.save(tmp_path / "a.npy", np.zeros((3, 4, 5), np.uint8))
    np.save(tmp_path / "b.npy", np.zeros((3, 5, 4), np.uint8))
    np.save(tmp_path / "f.npy", np.full((3, 4, 5), 0.5, np.float32))

    def run(*args):
        return subprocess.run([swinrt_bin, "metrics", *map(str, args)], capture_output=True, text=True)

    r = run("--pred", tmp_path / "a.npy", "--gt", tmp_path / "b.npy")
    assert r.returncode == 1 and "a.npy" in r.stderr and "same shape" in r.stderr
    r = run("--pred", tmp_path / "a.npy", "--gt", tmp_path / "missing.nii.gz")
    assert r.returncode == 1 and "missing.nii.gz" in r.stderr
    r = run("--pred", tmp_path / "f.npy", "--gt", tmp_path / "a.npy")
    assert r.returncode == 1 and "f.npy" in r.stderr and "integral" in r.stderr
    r = run("--pred", tmp_path / "a.npy", "--gt", tmp_path / "a.npy", "--spacing", "1,2")
    assert r.returncode == 1 and "3 axes" in r.stderr
    r = run("--pred", tmp_path / "a.npy", "--gt", tmp_path / "a.npy", "--classes", "3..1")
    assert r.returncode == 1 and "--classes" in r.stderr
    r = run("--pred", tmp_path / "a.npy")
    assert r.returncode == 2
    out = tmp_path / "no" / "m.json"
    r = run("--pred", tmp_path / "a.npy", "--gt", tmp_path / "a.npy", "--json", out)
    assert r.returncode == 1 and not out.exists()


# ---------------------------------------------------------------- eval

IMG_SIZE = 64
NUM_CLASSES = 9
# The device of `swinrt eval` (and of `swinrt run` for the argmax check):
# cpu by default; scripts/gpu-eval-check.sh sets cuda (GPU zoom and metrics).
EVAL_DEVICE = os.environ.get("SWINRT_EVAL_DEVICE", "cpu")
# (case, shape): resized both ways (96 -> 64 -> 96), resized into scipy's
# past-the-end quirk (78x93: the last prediction row and column are 0), and
# already at the network size (no resize).
CASES = [("case0001", (6, 96, 96)), ("case0002", (4, 78, 93)), ("case0003", (3, 64, 64))]


def write_synapse_case(path, shape, rng):
    image = rng.random(shape).astype(np.float32)
    label = organ_labels(shape, rng).astype(np.float32)
    image += 0.3 * label / NUM_CLASSES       # organs slightly brighter
    with h5py.File(path, "w") as f:
        f["image"] = image
        f["label"] = label


def original_protocol(net, volume_dir, cases, torch):
    """test.py's inference() with utils.test_single_volume, on the CPU."""
    from scipy.ndimage import zoom
    S = IMG_SIZE
    results, logs, flips_input = {}, [], {}
    metric_sum = 0.0
    for i, case in enumerate(cases):
        with h5py.File(volume_dir / f"{case}.npy.h5", "r") as f:
            image, label = f["image"][:], f["label"][:]
        prediction = np.zeros_like(label)
        inputs, labels_s, logits_s = [], [], []
        for ind in range(image.shape[0]):
            slc = image[ind, :, :]
            x, y = slc.shape[0], slc.shape[1]
            if x != S or y != S:
                slc = zoom(slc, (S / x, S / y), order=3)
            inp = torch.from_numpy(slc).unsqueeze(0).unsqueeze(0).float()
            with torch.no_grad():
                outputs = net(inp)
                out = torch.argmax(torch.softmax(outputs, dim=1), dim=1).squeeze(0).numpy()
            pred = zoom(out, (x / S, y / S), order=0) if (x != S or y != S) else out
            prediction[ind] = pred
            inputs.append(slc)
            labels_s.append(out)
            logits_s.append(outputs[0].numpy())
        metric_i = [percase(prediction == c, label == c) for c in range(1, NUM_CLASSES)]
        metric_sum += np.array(metric_i)
        mean_i = np.mean(metric_i, axis=0)
        logs.append("idx %d case %s mean_dice %f mean_hd95 %f" % (i, case, mean_i[0], mean_i[1]))
        results[case] = dict(metrics=metric_i, prediction=prediction)
        flips_input[case] = (np.stack(inputs).astype(np.float32), np.stack(labels_s), np.stack(logits_s))
    metric_list = metric_sum / len(cases)
    for c in range(1, NUM_CLASSES):
        logs.append("Mean class %d mean_dice %f mean_hd95 %f" % (c, metric_list[c - 1][0], metric_list[c - 1][1]))
    logs.append("Testing performance in best val model: mean_dice : %f mean_hd95 : %f"
                % (np.mean(metric_list, axis=0)[0], np.mean(metric_list, axis=0)[1]))
    return results, logs, flips_input, metric_list


def sitk_module():
    try:
        import SimpleITK
        return SimpleITK
    except ImportError:
        return None


@pytest.fixture(scope="module")
def eval_run(swinrt_bin, tmp_path_factory):
    torch = pytest.importorskip("torch")
    model_mod = pytest.importorskip("swinrt.model", reason="python/swinrt/model.py (torch reference model) not present")
    weights_mod = pytest.importorskip("swinrt.weights", reason="python/swinrt/weights.py not present")
    torch.manual_seed(0)
    tmp = tmp_path_factory.mktemp("eval")
    vol = tmp / "vol"
    (vol / "lists_Synapse").mkdir(parents=True)
    rng = np.random.default_rng(2024)
    for case, shape in CASES:
        write_synapse_case(vol / f"{case}.npy.h5", shape, rng)
    (vol / "lists_Synapse" / "test_vol.txt").write_text("".join(c + "\n" for c, _ in CASES))

    net = make_small_model(model_mod, torch)
    weights = tmp / "model.safetensors"
    weights_mod.save_safetensors(net, net.config, str(weights))

    cases = [c for c, _ in CASES]
    ref, ref_logs, flips_input, metric_list = original_protocol(net, vol, cases, torch)

    # NIfTI outputs are read back with SimpleITK: written only where it is installed.
    nii = tmp / "nii" if sitk_module() is not None else None
    out_json, out_csv = tmp / "eval.json", tmp / "eval.csv"
    r = subprocess.run([swinrt_bin, "eval", "--weights", str(weights), "--volume-path", str(vol), "--device", EVAL_DEVICE,
                        "--json", str(out_json), "--csv", str(out_csv), "--batch", "4",
                        *(["--save-nifti", str(nii)] if nii else []), "--save-png", str(tmp / "png"),
                        "--img-size", str(IMG_SIZE), "--num-classes", str(NUM_CLASSES)],
                       capture_output=True, text=True)
    return dict(torch=torch, tmp=tmp, vol=vol, weights=weights, ref=ref, ref_logs=ref_logs, flips_input=flips_input,
                metric_list=metric_list, proc=r, json=out_json, csv=out_csv, nii=nii, cases=cases)


def make_small_model(model_mod, torch):
    """A random-weight Swin-Unet small enough for the CPU test budget."""
    from swinrt.config import ModelConfig
    cfg = ModelConfig(img_size=IMG_SIZE, num_classes=NUM_CLASSES, embed_dim=24, depths=[2, 2], num_heads=[2, 4],
                      window_size=4)
    net = model_mod.SwinUnet(cfg.validate())
    model_mod.randomize_(net, seed=0)
    return net.eval()


def argmax_flips(swinrt_bin, e):
    """Pixels of the network-size label maps where swinrt's argmax differs
    from torch's argmax(softmax), with the torch logit margin there."""
    report = []
    for case in e["cases"]:
        inputs, torch_labels, logits = e["flips_input"][case]
        np.save(e["tmp"] / "x.npy", inputs)
        r = subprocess.run([swinrt_bin, "run", "--weights", str(e["weights"]), "--input", str(e["tmp"] / "x.npy"),
                            "--output", str(e["tmp"] / "y.npy"), "--labels", "--device", EVAL_DEVICE],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        ours = np.load(e["tmp"] / "y.npy").astype(np.int64)
        for s, yy, xx in zip(*np.nonzero(ours != torch_labels)):
            l = logits[s, :, yy, xx]
            top = np.sort(l)[::-1]
            report.append((case, int(s), int(yy), int(xx), int(torch_labels[s, yy, xx]), int(ours[s, yy, xx]),
                           float(top[0] - top[1])))
    return report


def test_eval_matches_original_protocol(swinrt_bin, eval_run):
    e = eval_run
    r = e["proc"]
    assert r.returncode == 0, r.stderr
    flips = argmax_flips(swinrt_bin, e)
    print(f"\nswinrt eval vs the original protocol: {len(flips)} argmax flip(s)")
    print("\n".join(r.stdout.splitlines()[1:4]))
    for f in flips:
        print("argmax flip: case %s slice %d pixel (%d, %d): torch %d, swinrt %d, torch logit margin %.3g" % f)
    # A flip is only acceptable as a near-tie of the two top logits.
    assert all(f[6] < 1e-3 for f in flips), flips
    doc = json.loads(e["json"].read_text())
    if not flips:
        for case in e["cases"]:
            for c in range(1, NUM_CLASSES):
                got = doc["cases"][case][str(c)]
                want = e["ref"][case]["metrics"][c - 1]
                assert (got["dice"], got["hd95"]) == (float(want[0]), float(want[1])), (case, c)
    # The predicted volumes themselves (written with --save-nifti, read back
    # with SimpleITK; the GPU machine has neither libnifti nor SimpleITK).
    if e["nii"] is None:
        if flips:
            pytest.skip("argmax flips: checking swinrt's metrics on its own prediction needs SimpleITK")
    for case in e["cases"] if e["nii"] is not None else []:
        ref = e["ref"][case]
        pred = sitk_module().GetArrayFromImage(sitk_module().ReadImage(str(e["nii"] / f"{case}_pred.nii.gz")))
        if not flips:
            assert np.array_equal(pred, ref["prediction"]), case
        else:
            # The metrics of swinrt's own prediction are still medpy's exactly.
            with h5py.File(e["vol"] / f"{case}.npy.h5", "r") as f:
                label = f["label"][:]
            for c in range(1, NUM_CLASSES):
                want = percase(pred == c, label == c)
                got = doc["cases"][case][str(c)]
                assert (got["dice"], got["hd95"]) == (float(want[0]), float(want[1])), (case, c)
    if not flips:
        assert r.stdout.splitlines() == [f"{len(e['cases'])} test iterations per epoch"] + e["ref_logs"]
        for c in range(1, NUM_CLASSES):
            assert doc["classes"][str(c)]["dice"] == pytest.approx(e["metric_list"][c - 1][0], abs=1e-12)
            assert doc["classes"][str(c)]["hd95"] == pytest.approx(e["metric_list"][c - 1][1], abs=1e-12)


def test_eval_outputs(eval_run):
    e = eval_run
    assert e["proc"].returncode == 0, e["proc"].stderr
    sitk = pytest.importorskip("SimpleITK")
    doc = json.loads(e["json"].read_text())
    assert list(doc) == ["cases", "classes", "mean_dice", "mean_hd95"]
    assert list(doc["cases"]) == e["cases"]
    assert list(doc["classes"]) == [str(c) for c in range(1, NUM_CLASSES)]
    rows = e["csv"].read_text().splitlines()
    assert rows[0] == "case,class,dice,hd95"
    assert len(rows) == 1 + len(e["cases"]) * (NUM_CLASSES - 1)
    case, c, dice, hd = rows[1].split(",")
    assert float(dice) == doc["cases"][case][c]["dice"] and float(hd) == doc["cases"][case][c]["hd95"]
    # NIfTI files as the original writes them: float32, spacing (1, 1, z_spacing=1).
    for case, shape in CASES:
        with h5py.File(e["vol"] / f"{case}.npy.h5", "r") as f:
            image, label = f["image"][:], f["label"][:]
        for kind, want in (("img", image), ("gt", label)):
            img = sitk.ReadImage(str(e["nii"] / f"{case}_{kind}.nii.gz"))
            assert img.GetSpacing() == (1.0, 1.0, 1.0)
            assert img.GetOrigin() == (0.0, 0.0, 0.0)
            assert img.GetDirection() == (1.0, 0, 0, 0, 1.0, 0, 0, 0, 1.0)
            arr = sitk.GetArrayFromImage(img)
            assert arr.dtype == np.float32 and np.array_equal(arr, want), (case, kind)
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(e["nii"] / f"{case}_pred.nii.gz")))
        assert pred.shape == shape


# The overlay palette of docs/EVALUATION.md (organs 1..8).
PALETTE = [(230, 25, 75), (60, 180, 75), (0, 130, 200), (255, 225, 25), (145, 30, 180), (70, 240, 240),
           (245, 130, 48), (240, 50, 230)]


def read_png_rgb(path):
    """Decodes the 8-bit RGB, unfiltered PNGs that --save-png writes."""
    import struct
    import zlib
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            assert (depth, colour) == (8, 2)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, 1 + 3 * width)
    assert (raw[:, 0] == 0).all()  # no row filters
    return raw[:, 1:].reshape(height, width, 3)


def test_eval_png_overlays(eval_run):
    e = eval_run
    assert e["proc"].returncode == 0, e["proc"].stderr
    sitk = pytest.importorskip("SimpleITK")
    for case, shape in CASES:
        pngs = sorted((e["tmp"] / "png").glob(f"{case}_slice*.png"))
        assert 1 <= len(pngs) <= 4, pngs
        with h5py.File(e["vol"] / f"{case}.npy.h5", "r") as f:
            image, label = f["image"][:], f["label"][:]
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(e["nii"] / f"{case}_pred.nii.gz"))).astype(int)
        D, H, W = shape
        for png in pngs:
            z = int(png.stem.split("_slice")[1])
            rgb = read_png_rgb(png).astype(int)
            assert rgb.shape == (H + 20, 2 * W + 4, 3)
            grey = np.rint(np.clip(image[z], 0, 1) * 255).astype(int)
            for panel, lab in ((0, label[z].astype(int)), (1, pred[z])):
                want = np.repeat(grey[:, :, None], 3, axis=2)
                for k in range(1, NUM_CLASSES):
                    m = lab == k
                    if k <= len(PALETTE):
                        want[m] = (grey[m][:, None] + np.array(PALETTE[k - 1]) + 1) // 2
                got = rgb[:H, panel * (W + 4):panel * (W + 4) + W]
                assert np.abs(got - want).max() <= 1, (case, z, panel)


def test_eval_bad_cases_are_reported(swinrt_bin, eval_run):
    e = eval_run
    vol = e["vol"]
    with h5py.File(vol / "broken.npy.h5", "w") as f:
        f["image"] = np.full((2, 64, 64), np.nan, np.float32)
        f["label"] = np.zeros((2, 64, 64), np.float32)
    whole = (vol / "case0002.npy.h5").read_bytes()
    (vol / "truncated.npy.h5").write_bytes(whole[:len(whole) // 2])
    lst = e["tmp"] / "list.txt"
    lst.write_text("case0003\nmissing\nbroken\ntruncated\ncase0001\n")
    out_json = e["tmp"] / "bad.json"
    r = subprocess.run([swinrt_bin, "eval", "--weights", str(e["weights"]), "--volume-path", str(vol), "--list",
                        str(lst), "--device", "cpu", "--json", str(out_json)], capture_output=True, text=True)
    assert r.returncode == 1
    assert "case missing" in r.stderr and "no such file" in r.stderr
    assert "case broken" in r.stderr and "finite" in r.stderr
    assert "case truncated" in r.stderr and "not a readable HDF5 file" in r.stderr
    # HDF5 1.10 leaves its library unable to close after a failed open; it must not say so at exit.
    assert "HDF5" not in r.stderr.replace("HDF5 file", ""), r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].startswith("idx 0 case case0003 ") and lines[2].startswith("idx 4 case case0001 ")
    doc = json.loads(out_json.read_text())
    assert list(doc["cases"]) == ["case0003", "case0001"]
    assert set(doc["failed"]) == {"missing", "broken", "truncated"}
    # The means are over the evaluated cases.
    full = json.loads(e["json"].read_text())
    for c in ("1", "5"):
        want = (full["cases"]["case0003"][c]["dice"] + full["cases"]["case0001"][c]["dice"]) / 2
        assert doc["classes"][c]["dice"] == pytest.approx(want, abs=1e-12)



def test_eval_case_names_of_any_bytes(swinrt_bin, eval_run):
    """A list line need not be UTF-8: the case is read by its bytes, and the log
    lines, the messages, the JSON and the CSV name it as Python's decoder with
    errors="backslashreplace" would (a comma quoted in the CSV), never a crash."""
    e = eval_run
    vol, tmp = e["vol"], e["tmp"]
    odd, gone = b"odd\xff,name", b"gone\xfe"
    odd_file = os.path.join(os.fsencode(vol), odd + b".npy.h5")
    shutil.copyfile(vol / "case0001.npy.h5", odd_file)
    lst = tmp / "odd_list.txt"
    lst.write_bytes(odd + b"\n" + gone + b"\n")
    out_json, out_csv = tmp / "odd.json", tmp / "odd.csv"
    try:
        r = subprocess.run([swinrt_bin, "eval", "--weights", str(e["weights"]), "--volume-path", str(vol), "--list",
                            str(lst), "--device", "cpu", "--json", str(out_json), "--csv", str(out_csv)],
                           capture_output=True)
    finally:
        os.remove(odd_file)
    shown_odd, shown_gone = odd.decode("utf-8", "backslashreplace"), gone.decode("utf-8", "backslashreplace")
    stdout, stderr = r.stdout.decode("utf-8"), r.stderr.decode("utf-8")  # strict
    assert r.returncode == 1, stderr
    assert f"case {shown_gone}" in stderr and "no such file" in stderr
    assert stdout.splitlines()[1].startswith(f"idx 0 case {shown_odd} ")
    doc = json.loads(out_json.read_text(encoding="utf-8"))
    assert list(doc["cases"]) == [shown_odd] and list(doc["failed"]) == [shown_gone]
    full = json.loads(e["json"].read_text())
    assert doc["cases"][shown_odd] == full["cases"]["case0001"]
    rows = list(csv.DictReader(out_csv.read_text(encoding="utf-8").splitlines()))
    assert {row["case"] for row in rows} == {shown_odd}
    assert [float(row["dice"]) for row in rows] == [full["cases"]["case0001"][row["class"]]["dice"] for row in rows]


def test_eval_progress(swinrt_bin, eval_run):
    """Not a terminal: one plain line per case on stderr; --no-progress: none;
    stdout (the original log lines) the same either way."""
    e = eval_run
    r = e["proc"]
    assert r.returncode == 0, r.stderr
    for case, shape in CASES:
        assert re.search(rf"^{case}: {shape[0]} slices, \d+\.\d\d s$", r.stderr, re.M), r.stderr
    q = subprocess.run([swinrt_bin, "eval", "--weights", str(e["weights"]), "--volume-path", str(e["vol"]),
                        "--device", EVAL_DEVICE, "--batch", "4", "--no-progress"], capture_output=True, text=True)
    assert q.returncode == 0, q.stderr
    assert q.stdout == r.stdout
    assert not re.search(r"^case\d+: ", q.stderr, re.M), q.stderr


def test_eval_checks_the_model(swinrt_bin, eval_run):
    e = eval_run
    base = [swinrt_bin, "eval", "--weights", str(e["weights"]), "--volume-path", str(e["vol"]), "--device", "cpu"]
    r = subprocess.run(base + ["--img-size", "224"], capture_output=True, text=True)
    assert r.returncode == 1 and "--img-size 224" in r.stderr and "model.safetensors" in r.stderr
    r = subprocess.run(base + ["--num-classes", "14"], capture_output=True, text=True)
    assert r.returncode == 1 and "--num-classes 14" in r.stderr
    r = subprocess.run(base + ["--list", "a", "--list-dir", "b"], capture_output=True, text=True)
    assert r.returncode == 2


def test_eval_nifti_inputs(swinrt_bin, eval_run, tmp_path):
    """`swinrt eval --image/--label`: the NIfTI files `--save-nifti` wrote read
    back as inputs give the very metrics of the .npy.h5 run; raw HU through
    --intensity synapse; without labels, only the prediction is written."""
    e = eval_run
    if e["nii"] is None:
        pytest.skip("needs SimpleITK and a swinrt with NIfTI (to write the inputs)")
    sitk = sitk_module()
    doc = json.loads(e["json"].read_text())
    case = e["cases"][0]
    img, gt = e["nii"] / f"{case}_img.nii.gz", e["nii"] / f"{case}_gt.nii.gz"
    base = [swinrt_bin, "eval", "--weights", str(e["weights"]), "--device", EVAL_DEVICE, "--batch", "4", "--no-progress"]
    r = subprocess.run(base + ["--image", str(img), "--label", str(gt), "--intensity", "none",
                               "--json", str(tmp_path / "n.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    got = json.loads((tmp_path / "n.json").read_text())
    assert got["cases"][f"{case}_img"] == doc["cases"][case]
    assert f"idx 0 case {case}_img mean_dice" in r.stdout

    # Raw CT in HU: the Synapse window maps it back to [0, 1] (float rounding only).
    image = sitk.ReadImage(str(img))
    hu = sitk.GetImageFromArray(sitk.GetArrayFromImage(image).astype(np.float32) * 400.0 - 125.0)
    hu.CopyInformation(image)
    sitk.WriteImage(hu, str(tmp_path / "ct_hu.nii.gz"))
    r = subprocess.run(base + ["--image", str(tmp_path / "ct_hu.nii.gz"), "--label", str(gt),
                               "--json", str(tmp_path / "hu.json")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    hu_doc = json.loads((tmp_path / "hu.json").read_text())["cases"]["ct_hu"]
    for c, m in doc["cases"][case].items():
        assert abs(hu_doc[c]["dice"] - m["dice"]) <= 0.02, (c, hu_doc[c], m)

    # No labels: predicted and written, not scored; the prediction is the labelled run's.
    out = tmp_path / "pred"
    r = subprocess.run(base + ["--image", str(img), "--intensity", "none", "--save-nifti", str(out),
                               "--save-png", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "without labels" in r.stderr and "Testing performance" not in r.stdout
    pred = sitk.GetArrayFromImage(sitk.ReadImage(str(out / f"{case}_img_pred.nii.gz")))
    ref = sitk.GetArrayFromImage(sitk.ReadImage(str(e["nii"] / f"{case}_pred.nii.gz")))
    np.testing.assert_array_equal(pred, ref)
    assert not (out / f"{case}_img_gt.nii.gz").exists()
    # Overlays without ground truth: the left panel is the grey CT alone, the right the prediction.
    pngs = sorted(out.glob(f"{case}_img_slice*.png"))
    assert pngs
    D, H, W = pred.shape
    for png in pngs:
        z = int(png.stem.rsplit("slice", 1)[1])
        rgb = read_png_rgb(png).astype(int)
        left = rgb[:H, :W]
        assert (left[..., 0] == left[..., 1]).all() and (left[..., 1] == left[..., 2]).all(), png
        right = rgb[:H, W + 4:2 * W + 4]
        organ = pred[z] > 0
        assert (right[organ][:, 0] != right[organ][:, 1]).any() or not organ.any()

    # Bad input: clear errors, non-zero exits.
    r = subprocess.run(base + ["--image", str(img)], capture_output=True, text=True)
    assert r.returncode == 2 and "--save-nifti" in r.stderr
    r = subprocess.run(base + ["--image", str(img), "--label", str(gt), "--label", str(gt)], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "one label per image" in r.stderr
    other = e["nii"] / f"{e['cases'][1]}_gt.nii.gz"
    r = subprocess.run(base + ["--image", str(img), "--label", str(other), "--intensity", "none"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and str(other) in r.stderr and "equal shapes" in r.stderr, r.stderr
    r = subprocess.run(base + ["--image", str(e["vol"] / f"{case}.npy.h5"), "--save-png", str(tmp_path / "png")],
                       capture_output=True, text=True)
    assert r.returncode == 1 and ".nii" in r.stderr
