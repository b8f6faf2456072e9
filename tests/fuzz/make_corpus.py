"""Writes the fuzzer's seed corpus and the C++ ONNX test's fixtures
(tests/fuzz/corpus/): a micro Swin-Unet (16x16 image, embed 8, two stages,
window 2, 3 classes, random weights) exported four ways, and the same
weights as a swinrt .safetensors. Small files (tens of kB), committed; rerun
after changing the exporter:

    python tests/fuzz/make_corpus.py tests/fuzz/corpus
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "python"))

import torch  # noqa: E402

from swinrt.config import ModelConfig  # noqa: E402
from swinrt.export import export  # noqa: E402
from swinrt.model import SwinUnet, randomize_  # noqa: E402
from swinrt.weights import save_safetensors  # noqa: E402

MICRO = ModelConfig(img_size=16, patch_size=4, embed_dim=8, depths=[2, 2], num_heads=[1, 2], window_size=2,
                    num_classes=3)
VARIANTS = {  # file: (opset, dynamo, simplifier)
    "micro_legacy13.onnx": (13, False, None),
    "micro_legacy17_onnxsim.onnx": (17, False, "onnxsim"),
    "micro_dynamo18.onnx": (18, True, None),
    "micro_dynamo18_onnxslim.onnx": (18, True, "onnxslim"),
}


def strip(path):
    """Drops doc strings and metadata (the dynamo exporter's per-node stack
    traces): smaller seeds, so the fuzzer's mutations land on the graph."""
    import onnx
    m = onnx.load(path)
    m.doc_string = ""
    del m.metadata_props[:]
    for n in m.graph.node:
        n.doc_string = ""
        del n.metadata_props[:]
    for v in list(m.graph.value_info):
        m.graph.value_info.remove(v)
    onnx.save(m, path)


def main():
    out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "tests" / "fuzz" / "corpus")
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = randomize_(SwinUnet(MICRO), seed=7).eval()
    save_safetensors(model, MICRO, str(out / "micro.safetensors"))
    for name, (opset, dynamo, simp) in VARIANTS.items():
        info = export(model, MICRO, str(out / name), opset, dynamo, simp)
        strip(str(out / name))
        print(name, info, (out / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
