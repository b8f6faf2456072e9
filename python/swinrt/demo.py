"""The README's main job (./swinrt.sh demo) and the bundled demo model.

    python -m swinrt.demo standin PATH      a random-weight model of the demo config
    python -m swinrt.demo report EVAL.json  the organ table of a `swinrt eval --json` file

The bundled model, models/demo_swin_unet.safetensors, is a compact Swin-Unet
trained on phantom CT (python -m swinrt.train, docs/MODEL_CARD.md). The seeds
below keep the phantoms of training, validation, the demo and the test apart.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .config import ModelConfig
from .phantom import ORGANS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL_PATH = os.path.join(ROOT, "models", "demo_swin_unet.safetensors")
# The metrics of the training run (its metrics.json), shipped beside the model.
METRICS_PATH = os.path.join(ROOT, "models", "demo_swin_unet.json")

DEMO_CONFIG = ModelConfig(img_size=224, embed_dim=32, depths=[2, 2, 2, 2], num_heads=[1, 2, 4, 8], window_size=7,
                          num_classes=9)
TRAIN_SEED = 1000   # training phantoms: seeds 1000, 1001, ...
VAL_SEED = 2000     # held-out phantoms evaluated at the end of training
TEST_SEED = 3000    # tests/python/test_demo_model.py
DEMO_SEED = 7       # ./swinrt.sh demo
DEPTH = 48          # slices per phantom volume


def write_standin(path: str, seed: int = 0) -> None:
    """A random-weight model of the demo config, for timing the demo before
    the trained one exists."""
    from .model import SwinUnet, randomize_
    from .weights import save_safetensors

    save_safetensors(randomize_(SwinUnet(DEMO_CONFIG), seed), DEMO_CONFIG, path, "fp16",
                     source="random stand-in (swinrt.demo standin)")


def report(doc: dict) -> str:
    """The per-organ table (class means over the cases) of an eval JSON."""
    lines = [f"{'':2} {'organ':13} {'dice':>7} {'hd95':>8}"]
    for c, m in doc["classes"].items():
        lines.append(f"{c:>2} {ORGANS.get(int(c), '?'):13} {m['dice']:7.4f} {m['hd95']:8.2f}")
    lines.append(f"{'':2} {'mean':13} {doc['mean_dice']:7.4f} {doc['mean_hd95']:8.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m swinrt.demo", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("standin", help="write a random-weight model of the demo config")
    s.add_argument("path")
    r = sub.add_parser("report", help="print the organ table of a swinrt eval --json file")
    r.add_argument("json")
    a = ap.parse_args(argv)
    if a.cmd == "standin":
        write_standin(a.path)
        return 0
    try:
        with open(a.json) as f:
            print(report(json.load(f)))
    except (OSError, ValueError, KeyError) as e:
        print(f"swinrt.demo: error: {a.json}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
