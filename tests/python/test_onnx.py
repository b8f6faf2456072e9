"""ONNX import end to end: random-weight reference models exported to ONNX
(swinrt-export: legacy and dynamo exporters, opsets 13/17/18, with and without
onnxsim/onnxslim, with and without constant folding) are read by the C++
importer into exactly the weights of the same model's .safetensors:
`swinrt run --onnx` gives bit-identical logits to `swinrt run --weights`
(and PyTorch's within 1e-4), and `swinrt info` prints the same config.
Corrupt, truncated and empty files, and graphs of other models, are refused
with a message naming the file and, for graphs, the node that did not match.
Dynamo and simplifier variants skip themselves (with the reason) where
onnxscript, onnxsim or onnxslim are not installed."""
import importlib.util
import os
import pathlib
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn

from helpers import config, random_model, saved_model
from swinrt.config import ModelConfig
from swinrt.export import export

ROOT = pathlib.Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "fuzz" / "corpus"
MICRO = ModelConfig(img_size=16, patch_size=4, embed_dim=8, depths=[2, 2], num_heads=[1, 2], window_size=2,
                    num_classes=3)

# (config, opset, exporter, simplifier): every config with both exporters, both
# LayerNorm forms (decomposed at 13, LayerNormalization at 17+) and both simplifiers.
CASES = [
    ("tiny", 13, "legacy", None),
    ("tiny", 17, "legacy", "onnxsim"),
    ("tiny", 18, "dynamo", "onnxslim"),
    ("ape", 13, "legacy", "onnxslim"),
    ("ape", 17, "dynamo", None),
    ("w8", 17, "legacy", None),
    ("swin-t", 13, "legacy", None),
]


def run(swinrt_bin, *args):
    return subprocess.run([swinrt_bin, *map(str, args)], capture_output=True, text=True)


def swinrt_export(*args):
    """`swinrt-export ARGS` from this checkout's python/ (whatever the venv has installed)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "python"), os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "swinrt.export", *map(str, args)], capture_output=True, text=True,
                          env=env)


def needs(module, why):
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed ({why})")


def check_variant(exporter, simplifier):
    if exporter == "dynamo":
        needs("onnxscript", "the dynamo exporter needs it")
    if simplifier:
        needs(simplifier, "simplified variant")


def same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, onnx_path, batch=2):
    """swinrt run --onnx == swinrt run --weights bit for bit, both within 1e-4 of PyTorch;
    swinrt info prints the same config and parameter count for both files."""
    x = np.random.default_rng(11).random((batch, cfg.img_size, cfg.img_size), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run(swinrt_bin, "run", "--weights", weights, "--input", tmp_path / "x.npy", "--output", tmp_path / "ref.npy",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    r = run(swinrt_bin, "run", "--onnx", onnx_path, "--input", tmp_path / "x.npy", "--output", tmp_path / "got.npy",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    ref, got = np.load(tmp_path / "ref.npy"), np.load(tmp_path / "got.npy")
    assert got.shape == (batch, cfg.num_classes, cfg.img_size, cfg.img_size)
    assert np.array_equal(got, ref), f"max |onnx - safetensors| = {np.abs(got - ref).max()}"
    with torch.no_grad():
        torch_out = model(torch.from_numpy(x).unsqueeze(1)).numpy()
    assert np.abs(got - torch_out).max() <= 1e-4
    info_onnx, info_st = run(swinrt_bin, "info", onnx_path), run(swinrt_bin, "info", weights)
    assert info_onnx.returncode == 0, info_onnx.stderr
    assert "format      ONNX" in info_onnx.stdout
    body = lambda out: [ln for ln in out.splitlines() if not ln.startswith(("file", "format"))]  # noqa: E731
    assert body(info_onnx.stdout) == body(info_st.stdout)
    c = cfg
    assert f"embed_dim {c.embed_dim}  depths {c.depths}  num_heads {c.num_heads}  window_size {c.window_size}" \
        in info_onnx.stdout
    assert f"qk_scale {c.qk_scale if c.qk_scale else 'None'}  ape {str(c.ape).lower()}" in info_onnx.stdout


@pytest.mark.parametrize("name,opset,exporter,simplifier", CASES,
                         ids=[f"{n}-{e}{o}-{s or 'plain'}" for n, o, e, s in CASES])
def test_export_runs_like_safetensors(tmp_path, swinrt_bin, name, opset, exporter, simplifier):
    check_variant(exporter, simplifier)
    cfg = config(name)
    model, weights = saved_model(tmp_path, cfg, seed=3)
    onnx_path = tmp_path / "model.onnx"
    info = export(model, cfg, str(onnx_path), opset, exporter == "dynamo", simplifier)
    assert info["exporter"] == exporter and info["simplifier"] == simplifier
    if exporter == "legacy":
        assert info["opset"] == opset
    same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, onnx_path,
                        batch=1 if name in ("swin-t", "w8") else 2)


def test_unfolded_graphs(tmp_path, swinrt_bin):
    """Without constant folding the bias tables are still gathered in the graph
    (legacy) and the weights transposed by Transpose nodes (dynamo, optimize=False)."""
    cfg = config("tiny")
    model, weights = saved_model(tmp_path, cfg, seed=5)
    x = torch.rand(2, 1, cfg.img_size, cfg.img_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "legacy.onnx"), dynamo=False, opset_version=13,
                          do_constant_folding=False, input_names=["image"], dynamic_axes={"image": {0: "b"}})
    same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, tmp_path / "legacy.onnx")
    if importlib.util.find_spec("onnxscript") is None:
        pytest.skip("onnxscript is not installed (the dynamo exporter needs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp_path / "dynamo.onnx"), dynamo=True, optimize=False,
                          external_data=False, dynamic_shapes=({0: torch.export.Dim("batch")},))
    same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, tmp_path / "dynamo.onnx")


def test_swinrt_export_cli_from_a_checkpoint(tmp_path, swinrt_bin):
    """The console script's checkpoint path: an original state_dict + hyper-parameter flags."""
    cfg = config("ape")
    model, weights = saved_model(tmp_path, cfg, seed=8)
    torch.save({"model": model.state_dict()}, tmp_path / "best_model.pth")
    args = ["--img-size", cfg.img_size, "--embed-dim", cfg.embed_dim, "--depths", "2,1,2,2", "--num-heads", "1,2,4,8",
            "--window-size", cfg.window_size, "--num-classes", cfg.num_classes, "--ape", "--no-qkv-bias",
            "--qk-scale", cfg.qk_scale]
    r = swinrt_export(tmp_path / "best_model.pth", *args, "-o", tmp_path / "m.onnx", "--opset", "17")
    assert r.returncode == 0, r.stderr
    assert "legacy exporter, opset 17" in r.stdout and "dynamic batch axis" in r.stdout
    same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, tmp_path / "m.onnx", batch=3)
    # A config that does not fit the checkpoint: exit 1, one message, no output file.
    r = swinrt_export(tmp_path / "best_model.pth", "--embed-dim", "48", "-o", tmp_path / "bad.onnx")
    assert r.returncode == 1 and "swinrt-export: error:" in r.stderr and "best_model.pth" in r.stderr
    assert not (tmp_path / "bad.onnx").exists()
    r = swinrt_export("--weights", weights, "--config", "x.yaml", "-o", tmp_path / "bad.onnx")
    assert r.returncode == 2


def test_external_data(tmp_path, swinrt_bin):
    """Weights in a .data file next to the model (torch's dynamo default, onnx.save's for large models)."""
    import onnx
    cfg = config("tiny")
    model, weights = saved_model(tmp_path, cfg, seed=2)
    export(model, cfg, str(tmp_path / "inline.onnx"))
    m = onnx.load(str(tmp_path / "inline.onnx"))
    onnx.save(m, str(tmp_path / "ext.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
              location="ext.onnx.data", size_threshold=0)
    same_as_safetensors(tmp_path, swinrt_bin, model, cfg, weights, tmp_path / "ext.onnx")
    (tmp_path / "ext.onnx.data").unlink()
    r = run(swinrt_bin, "info", tmp_path / "ext.onnx")
    assert r.returncode == 1 and "ext.onnx" in r.stderr and "external data file" in r.stderr, r.stderr


def expect_error(swinrt_bin, path, *fragments):
    r = run(swinrt_bin, "info", path)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert r.stderr.startswith(f"swinrt: error: {path}: "), r.stderr
    for f in fragments:
        assert f in r.stderr, (f, r.stderr)
    assert r.stderr.count("\n") == 1, r.stderr  # one message
    return r.stderr


def test_corrupt_truncated_and_empty_files(tmp_path, swinrt_bin):
    good = (CORPUS / "micro_legacy13.onnx").read_bytes()
    (tmp_path / "noise.onnx").write_bytes(np.random.default_rng(1).integers(0, 256, 20000, dtype=np.uint8).tobytes())
    err = expect_error(swinrt_bin, tmp_path / "noise.onnx")
    assert "not a valid ONNX file" in err or "not an ONNX model" in err, err
    (tmp_path / "half.onnx").write_bytes(good[: len(good) // 2])
    expect_error(swinrt_bin, tmp_path / "half.onnx", "not a valid ONNX file", "truncated")
    (tmp_path / "empty.onnx").write_bytes(b"")
    expect_error(swinrt_bin, tmp_path / "empty.onnx", "empty file")
    expect_error(swinrt_bin, tmp_path / "missing.onnx", "cannot open")
    # run: the same message, and no output file left behind.
    np.save(tmp_path / "x.npy", np.zeros((16, 16), np.float32))
    r = run(swinrt_bin, "run", "--onnx", tmp_path / "half.onnx", "--input", tmp_path / "x.npy", "--output",
            tmp_path / "y.npy")
    assert r.returncode == 1 and "half.onnx: not a valid ONNX file" in r.stderr
    assert not (tmp_path / "y.npy").exists()
    # --weights and --onnx together, or neither: usage errors.
    r = run(swinrt_bin, "run", "--onnx", CORPUS / "micro_legacy13.onnx", "--weights", CORPUS / "micro.safetensors",
            "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert r.returncode == 2
    r = run(swinrt_bin, "run", "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert r.returncode == 2
    # A .onnx given to --weights is read as ONNX.
    r = run(swinrt_bin, "run", "--weights", CORPUS / "micro_legacy13.onnx", "--input", tmp_path / "x.npy",
            "--output", tmp_path / "y.npy", "--device", "cpu")
    assert r.returncode == 0, r.stderr


def _legacy(model, x, path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model.eval(), (x,), str(path), dynamo=False, opset_version=kw.pop("opset", 13), **kw)


def test_other_models_are_refused_naming_the_node(tmp_path, swinrt_bin):
    # A plain CNN: the patch-embedding-like Conv is followed by a ReLU, not by a Swin block.
    cnn = nn.Sequential(nn.Conv2d(1, 8, 4, stride=4), nn.ReLU(), nn.Conv2d(8, 3, 1))
    _legacy(cnn, torch.rand(1, 1, 32, 32), tmp_path / "cnn.onnx")
    err = expect_error(swinrt_bin, tmp_path / "cnn.onnx", "not a Swin-Unet graph", "expected a Swin block", "Relu")
    print(err)
    # A CNN whose first Conv is not a patch embedding.
    cnn3 = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU())
    _legacy(cnn3, torch.rand(1, 1, 32, 32), tmp_path / "cnn3.onnx")
    expect_error(swinrt_bin, tmp_path / "cnn3.onnx", "patch_embed", "convolution with stride")
    # A Swin-Unet with the tanh approximation of GELU computes something else.
    model = random_model(MICRO, 1)
    for m in model.modules():
        if isinstance(m, nn.GELU):
            m.approximate = "tanh"
    _legacy(model, torch.rand(1, 1, 16, 16), tmp_path / "tanh.onnx")
    expect_error(swinrt_bin, tmp_path / "tanh.onnx", "layers.0.blocks.0.mlp", "tanh")
    # PatchMerging with its 2x2 quadrants in another order is another model.
    model = random_model(MICRO, 1)
    merge = model.swin_unet.layers[0].downsample

    def swapped(x, self=merge):
        H, W = self.input_resolution
        B, L, C = x.shape
        x = x.view(B, H, W, C)
        x = torch.cat([x[:, 0::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 0::2], x[:, 1::2, 1::2]], -1)
        return self.reduction(self.norm(x.view(B, -1, 4 * C)))
    merge.forward = swapped
    _legacy(model, torch.rand(1, 1, 16, 16), tmp_path / "merge.onnx")
    expect_error(swinrt_bin, tmp_path / "merge.onnx", "layers.0.downsample", "is not x[:, 1::2, 0::2]")
    # Dynamic spatial axes: the image size must be fixed.
    model = random_model(MICRO, 1)
    _legacy(model, torch.rand(1, 1, 16, 16), tmp_path / "dyn.onnx",
            dynamic_axes={"x": {0: "b", 2: "h", 3: "w"}}, input_names=["x"])
    expect_error(swinrt_bin, tmp_path / "dyn.onnx", "static square spatial size")


@pytest.mark.parametrize("flags", [("--onnx",), ("--weights",)], ids=["--onnx", "--weights-model.onnx"])
def test_build_plan_from_onnx(tmp_path, swinrt_bin, flags):
    """The trtexec flow: export -> `swinrt build --onnx` -> a plan that runs to
    the same logits as the same weights from safetensors."""
    cfg = config("ape")
    model, weights = saved_model(tmp_path, cfg, seed=4)
    onnx_path = tmp_path / "model.onnx"
    export(model, cfg, str(onnx_path), 17)
    plan = tmp_path / "model.plan"
    r = run(swinrt_bin, "build", *flags, onnx_path, "--saveEngine", plan, "--device", "cpu", "--maxBatch", "4")
    assert r.returncode == 0, r.stderr
    assert "(ONNX," in r.stdout
    x = np.random.default_rng(5).random((2, cfg.img_size, cfg.img_size), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    for src, out in ((("--weights", weights), "ref.npy"), (("--plan", plan), "got.npy")):
        r = run(swinrt_bin, "run", *src, "--input", tmp_path / "x.npy", "--output", tmp_path / out, "--device", "cpu")
        assert r.returncode == 0, r.stderr
    assert np.array_equal(np.load(tmp_path / "got.npy"), np.load(tmp_path / "ref.npy"))
    r = run(swinrt_bin, "info", plan)
    assert r.returncode == 0 and f"built from  {onnx_path}" in r.stdout, r.stdout
    # Not a Swin-Unet: refused by build as by run, naming the file.
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07" + bytes(range(256)) * 4)
    r = run(swinrt_bin, "build", "--onnx", bad, "-o", tmp_path / "bad.plan", "--device", "cpu")
    assert r.returncode == 1 and str(bad) in r.stderr and not (tmp_path / "bad.plan").exists(), r.stderr
