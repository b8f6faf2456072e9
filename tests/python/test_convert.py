"""swinrt-convert: every checkpoint form the original code produces, YAML and
flag configs, dtypes; every bad input refused with the key and both shapes,
exit code 1, and no output file left behind."""
import contextlib
import io
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from helpers import config, random_model
from swinrt.config import ModelConfig
from swinrt.convert import main as convert_main
from swinrt.weights import load_safetensors

TINY_FLAGS = ["--img-size", "64", "--embed-dim", "24", "--depths", "2,2,2,2", "--num-heads", "1,2,4,8",
              "--window-size", "4", "--num-classes", "5"]


def convert(*args):
    """Runs swinrt-convert in this process (a subprocess per case would
    re-import torch each time); returns what subprocess.run would."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = convert_main([str(a) for a in args])
        except SystemExit as e:  # argparse usage errors
            rc = e.code
    return subprocess.CompletedProcess(args, rc, out.getvalue(), err.getvalue())


def test_console_entry_point(tmp_path):
    r = subprocess.run([sys.executable, "-m", "swinrt.convert", tmp_path / "absent.pth", "-o", tmp_path / "o"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "absent.pth" in r.stderr


@pytest.fixture(scope="module")
def tiny():
    return random_model(config("tiny"), 5)


@pytest.mark.parametrize("form", ["plain", "prefixed", "model", "state_dict", "no_buffers"])
def test_checkpoint_forms_round_trip(tmp_path, tiny, form):
    sd = tiny.state_dict()
    if form == "plain":
        ckpt = {k[len("swin_unet."):]: v for k, v in sd.items()}
    elif form == "no_buffers":
        ckpt = {k: v for k, v in sd.items() if "relative_position_index" not in k and "attn_mask" not in k}
    else:
        ckpt = sd
    if form in ("model", "state_dict"):
        ckpt = {form: ckpt, "epoch": torch.tensor(3)} if form == "model" else {form: ckpt}
    torch.save(ckpt, tmp_path / "ckpt.pth")
    out = tmp_path / "m.safetensors"
    r = convert(tmp_path / "ckpt.pth", *TINY_FLAGS, "-o", out)
    assert r.returncode == 0, r.stderr
    back = load_safetensors(str(out))
    assert back.config == config("tiny")
    for k, v in tiny.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0, msg=k)


def test_yaml_config_and_dtypes(tmp_path):
    cfg = ModelConfig(num_classes=9)  # Swin-Unet-T as the lite YAML describes it
    model = random_model(cfg, 1)
    torch.save(model.state_dict(), tmp_path / "t.pth")
    (tmp_path / "lite.yaml").write_text(
        "MODEL:\n  TYPE: swin\n  NAME: swin_tiny_patch4_window7_224\n  DROP_PATH_RATE: 0.2\n  SWIN:\n"
        "    FINAL_UPSAMPLE: \"expand_first\"\n    EMBED_DIM: 96\n    DEPTHS: [ 2, 2, 2, 2 ]\n"
        "    DECODER_DEPTHS: [ 2, 2, 2, 1]\n    NUM_HEADS: [ 3, 6, 12, 24 ]\n    WINDOW_SIZE: 7\n")
    for dtype, torch_dtype in (("fp32", torch.float32), ("fp16", torch.float16), ("bf16", torch.bfloat16)):
        out = tmp_path / f"t_{dtype}.safetensors"
        r = convert(tmp_path / "t.pth", "--config", tmp_path / "lite.yaml", "--dtype", dtype, "-o", out)
        assert r.returncode == 0, r.stderr
        assert "27168900 parameters" in r.stdout
        with safe_open(str(out), "pt") as f:
            assert f.get_tensor("output.weight").dtype == torch_dtype
            assert ModelConfig.from_json(f.metadata()["config"]) == cfg
            assert f.metadata()["swinrt_format"] == "1"


def expect_error(tmp_path, ckpt, *fragments, flags=TINY_FLAGS):
    torch.save(ckpt, tmp_path / "bad.pth")
    out = tmp_path / "bad.safetensors"
    r = convert(tmp_path / "bad.pth", *flags, "-o", out)
    assert r.returncode == 1, r.stderr
    for frag in fragments:
        assert frag in r.stderr, (frag, r.stderr)
    assert not out.exists()
    assert not list(tmp_path.glob(".swinrt-*"))  # no temporary left behind


def test_missing_unexpected_misshaped(tmp_path, tiny):
    sd = dict(tiny.state_dict())
    del sd["swin_unet.layers.1.blocks.0.attn.qkv.weight"]
    expect_error(tmp_path, sd, "missing", "layers.1.blocks.0.attn.qkv.weight", "[144, 48]")
    sd = dict(tiny.state_dict())
    sd["swin_unet.extra.weight"] = torch.zeros(3)
    expect_error(tmp_path, sd, "unexpected", "extra.weight")
    sd = dict(tiny.state_dict())
    sd["swin_unet.layers.0.blocks.0.mlp.fc1.weight"] = torch.zeros(48, 24)
    expect_error(tmp_path, sd, "layers.0.blocks.0.mlp.fc1.weight", "[48, 24]", "[96, 24]")
    sd = dict(tiny.state_dict())
    sd["swin_unet.norm_up.bias"] = torch.full((24,), float("nan"))
    expect_error(tmp_path, sd, "norm_up.bias", "NaN")


def test_buffers_that_contradict_the_config(tmp_path, tiny):
    # A checkpoint trained with window 4 read with window 2: shapes of the
    # bias tables differ first; keep them and change only the mask buffer.
    sd = dict(tiny.state_dict())
    sd["swin_unet.layers.0.blocks.1.attn_mask"] = torch.zeros_like(sd["swin_unet.layers.0.blocks.1.attn_mask"])
    expect_error(tmp_path, sd, "layers.0.blocks.1.attn_mask", "differs")


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint at all")
    r = convert(tmp_path / "junk.pth", *TINY_FLAGS, "-o", tmp_path / "o.safetensors")
    assert r.returncode == 1 and "junk.pth" in r.stderr
    r = convert(tmp_path / "absent.pth", *TINY_FLAGS, "-o", tmp_path / "o.safetensors")
    assert r.returncode == 1 and "absent.pth" in r.stderr
    torch.save([1, 2, 3], tmp_path / "list.pth")
    r = convert(tmp_path / "list.pth", *TINY_FLAGS, "-o", tmp_path / "o.safetensors")
    assert r.returncode == 1 and "state_dict" in r.stderr
    assert not (tmp_path / "o.safetensors").exists()


def test_usage_errors_exit_2(tmp_path):
    assert convert("x.pth").returncode == 2  # no -o
    assert convert("x.pth", "-o", "y", "--depths", "a,b").returncode == 2
    r = convert("x.pth", "-o", tmp_path / "y", "--window-size", "5")  # 56 is not divisible by 5
    assert r.returncode == 1 and "window" in r.stderr
