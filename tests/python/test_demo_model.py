"""The bundled demo model (models/demo_swin_unet.safetensors) still reaches
its documented dice, through the C++ engine: fresh phantom volumes (seeds
no training run used) under `swinrt eval`, on the CPU, and on CUDA where
torch sees a GPU. The documented figure is the held-out mean dice of the
training run, models/demo_swin_unet.json (docs/MODEL_CARD.md); the volumes
here are others, so the bar is a little below it. Skipped while the model
file is absent."""
import json
import os
import subprocess

import pytest

from swinrt.demo import DEMO_CONFIG, DEPTH, METRICS_PATH, MODEL_PATH, TEST_SEED, report
from swinrt.phantom import write_dataset

TARGET = 0.85     # the bar, used where the training metrics are absent
MARGIN = 0.03     # other volumes than the documented ones: allowed shortfall

pytestmark = pytest.mark.skipif(not os.path.exists(MODEL_PATH),
                                reason=f"{MODEL_PATH} absent (train it: scripts/train-demo-model.sh)")


def documented_dice():
    if os.path.exists(METRICS_PATH):
        with open(METRICS_PATH) as f:
            return float(json.load(f)["mean_dice"])
    return TARGET


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    d = tmp_path_factory.mktemp("phantom")
    write_dataset(str(d), seed=TEST_SEED, volumes=2, depth=DEPTH, log=lambda s: None)
    return d


def test_bundled_model_config():
    from swinrt.weights import load_safetensors

    cfg, _ = load_safetensors(MODEL_PATH)
    assert cfg == DEMO_CONFIG
    assert os.path.getsize(MODEL_PATH) <= 8 * 2 ** 20


def cuda_available():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.parametrize("device,precision", [
    ("cpu", "fp32"),
    pytest.param("cuda", "fp32", marks=pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU")),
    pytest.param("cuda", "fp16", marks=pytest.mark.skipif(not cuda_available(), reason="no CUDA GPU")),
])
def test_demo_model_reaches_documented_dice(swinrt_bin, volumes, tmp_path, device, precision):
    out = tmp_path / "eval.json"
    r = subprocess.run([swinrt_bin, "eval", "--weights", MODEL_PATH, "--volume-path", volumes, "--device", device,
                        "--precision", precision, "--json", out], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    speed = " | ".join(line for line in r.stderr.splitlines() if "slices" in line)
    print(f"\n{device} {precision}: {speed}\n{report(doc)}")
    bar = documented_dice() - MARGIN
    assert doc["mean_dice"] >= bar, f"mean dice {doc['mean_dice']:.4f} < {bar:.4f} (documented {documented_dice():.4f})"
    worst = min(doc["classes"].items(), key=lambda kv: kv[1]["dice"])
    assert worst[1]["dice"] >= 0.6, f"class {worst[0]} dice {worst[1]['dice']:.4f}"
