"""swinrt-convert: every checkpoint form the original code produces, YAML and
flag configs, dtypes; every bad input refused with the key and both shapes,
exit code 1, and no output file left behind."""
import contextlib
import io
import os
import stat
import subprocess
import sys

import pytest
import torch
from safetensors import safe_open

from helpers import config, random_model
from swinrt.config import ModelConfig
from swinrt.convert import main as convert_main
from swinrt.weights import WeightsError, load_safetensors, save_safetensors

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


@pytest.mark.parametrize("form", ["plain", "prefixed", "model", "state_dict", "no_buffers", "data_parallel"])
def test_checkpoint_forms_round_trip(tmp_path, tiny, form):
    sd = tiny.state_dict()
    if form == "plain":
        ckpt = {k[len("swin_unet."):]: v for k, v in sd.items()}
    elif form == "data_parallel":  # nn.DataParallel(model).state_dict(), as train.py saves with several GPUs
        ckpt = {"module." + k: v for k, v in sd.items()}
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
    cfg, back = load_safetensors(str(out))
    assert cfg == back.config == config("tiny")
    for k, v in tiny.state_dict().items():
        torch.testing.assert_close(back.state_dict()[k], v, rtol=0, atol=0, msg=k)
    with safe_open(str(out), "pt") as f:  # parameters only, without the wrapper's prefix
        assert set(f.keys()) == {k[len("swin_unet."):] for k, _ in tiny.named_parameters()}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask


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
            assert {f.get_tensor(k).dtype for k in f.keys()} == {torch_dtype}
            assert ModelConfig.from_json(f.metadata()["config"]) == cfg
            assert f.metadata()["swinrt_format"] == "1"
            assert f.metadata()["source"] == str(tmp_path / "t.pth")
        got = load_safetensors(str(out))[1].state_dict()["swin_unet.layers.2.blocks.0.attn.qkv.weight"]
        want = model.state_dict()["swin_unet.layers.2.blocks.0.attn.qkv.weight"]
        torch.testing.assert_close(got, want.to(torch_dtype).float(), rtol=0, atol=0)


def test_flags_override_the_yaml(tmp_path, tiny):
    torch.save(tiny.state_dict(), tmp_path / "t.pth")
    (tmp_path / "m.yaml").write_text("DATA:\n  IMG_SIZE: 224\nMODEL:\n  SWIN:\n    EMBED_DIM: 24\n"
                                      "    DEPTHS: [2, 2, 2, 2]\n    NUM_HEADS: [1, 2, 4, 8]\n    WINDOW_SIZE: 7\n")
    out = tmp_path / "t.safetensors"
    r = convert(tmp_path / "t.pth", "--config", tmp_path / "m.yaml", "-o", out)  # 224/7 does not fit these tensors
    assert r.returncode == 1 and "t.pth" in r.stderr and "[169, 1]" in r.stderr and not out.exists()
    r = convert(tmp_path / "t.pth", "--config", tmp_path / "m.yaml", "--img-size", "64", "--window-size", "4",
                "--num-classes", "5", "-o", out)
    assert r.returncode == 0, r.stderr
    assert load_safetensors(str(out))[0] == config("tiny")
    # Booleans both ways: --no-qkv-bias drops the qkv biases the checkpoint has.
    r = convert(tmp_path / "t.pth", *TINY_FLAGS, "--no-qkv-bias", "-o", tmp_path / "nb.safetensors")
    assert r.returncode == 1 and "unexpected" in r.stderr and "qkv.bias" in r.stderr


def test_save_and_load_helpers(tmp_path, tiny):
    cfg = config("tiny")
    prefixed = tiny.state_dict()
    plain = {k[len("swin_unet."):]: v for k, v in prefixed.items()}
    for i, state in enumerate((tiny, prefixed, plain)):
        save_safetensors(state, cfg, str(tmp_path / f"{i}.safetensors"), "bf16")
        back_cfg, back = load_safetensors(str(tmp_path / f"{i}.safetensors"))
        assert back_cfg == cfg
        x = torch.randn(1, 1, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(back(x), tiny(x), rtol=0.1, atol=0.1)  # bf16 weights
    with pytest.raises(WeightsError, match=r"layers.0.blocks.0.attn.relative_position_bias_table.*\[49, 1\].*\[9, 1\]"):
        save_safetensors(plain, config("tiny", window_size=2), str(tmp_path / "x.safetensors"))
    with pytest.raises(ValueError, match="built for"):
        save_safetensors(tiny, config("tiny", num_classes=4), str(tmp_path / "x.safetensors"))
    big = {k: (v * 1e6 if k.endswith("output.weight") else v) for k, v in plain.items()}
    with pytest.raises(WeightsError, match="output.weight.*fp16"):
        save_safetensors(big, cfg, str(tmp_path / "x.safetensors"), "fp16")
    assert not (tmp_path / "x.safetensors").exists() and not list(tmp_path.glob(".swinrt-*"))


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
    encoder_only = {k: v for k, v in tiny.state_dict().items() if "layers_up" not in k}
    expect_error(tmp_path, encoder_only, "missing", "layers_up", "encoder-only")
    sd = dict(tiny.state_dict())
    sd["swin_unet.extra.weight"] = torch.zeros(3)
    expect_error(tmp_path, sd, "unexpected", "extra.weight")
    sd = dict(tiny.state_dict())
    sd["swin_unet.layers.0.blocks.0.mlp.fc1.weight"] = torch.zeros(48, 24)
    expect_error(tmp_path, sd, "layers.0.blocks.0.mlp.fc1.weight", "[48, 24]", "[96, 24]")
    sd = dict(tiny.state_dict())
    sd["swin_unet.norm_up.bias"] = torch.full((24,), float("nan"))
    expect_error(tmp_path, sd, "norm_up.bias", "NaN")
    sd = dict(tiny.state_dict())
    sd["swin_unet.norm_up.bias"] = torch.zeros(24, dtype=torch.int64)
    expect_error(tmp_path, sd, "norm_up.bias", "floating")


def test_buffers_that_contradict_the_config(tmp_path, tiny):
    # A checkpoint trained with window 4 read with window 2: shapes of the
    # bias tables differ first; keep them and change only the mask buffer.
    sd = dict(tiny.state_dict())
    sd["swin_unet.layers.0.blocks.1.attn_mask"] = torch.zeros_like(sd["swin_unet.layers.0.blocks.1.attn_mask"])
    expect_error(tmp_path, sd, "layers.0.blocks.1.attn_mask", "differs")
    sd = dict(tiny.state_dict())
    sd["swin_unet.layers.1.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.int64)
    expect_error(tmp_path, sd, "layers.1.blocks.0.attn.relative_position_index", "differs")


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
    assert not list(tmp_path.glob(".swinrt-*"))


def test_output_errors_leave_no_file(tmp_path, tiny):
    torch.save(tiny.state_dict(), tmp_path / "t.pth")
    r = convert(tmp_path / "t.pth", *TINY_FLAGS, "-o", tmp_path / "no_dir" / "o.safetensors")
    assert r.returncode == 1 and "no_dir" in r.stderr and r.stderr.count("\n") == 1
    # A failed run leaves an existing output as it was.
    (tmp_path / "old.safetensors").write_bytes(b"previous")
    r = convert(tmp_path / "t.pth", *TINY_FLAGS, "--window-size", "2", "-o", tmp_path / "old.safetensors")
    assert r.returncode == 1
    assert (tmp_path / "old.safetensors").read_bytes() == b"previous"
    r = convert(tmp_path / "t.pth", *TINY_FLAGS, "--dtype", "fp16", "-o", tmp_path / "old.safetensors")
    assert r.returncode == 0 and load_safetensors(str(tmp_path / "old.safetensors"))[0] == config("tiny")
    assert not list(tmp_path.glob(".swinrt-*"))


def test_load_refuses_files_outside_the_format(tmp_path, tiny):
    from safetensors.torch import save_file
    params = {k[len("swin_unet."):]: v.contiguous() for k, v in tiny.named_parameters()}
    meta = {"swinrt_format": "1", "config": config("tiny").to_json()}
    cases = {
        "no_format": ({**params}, {"config": meta["config"]}, "swinrt_format"),
        "bad_config": ({**params}, {**meta, "config": '{"window_size": 5}'}, "window"),
        "mixed": ({**params, "output.weight": params["output.weight"].half()}, meta, "F32, F16 or BF16 alike"),
        "buffer": ({**params, "layers.0.blocks.0.attn.relative_position_index":
                    tiny.state_dict()["swin_unet.layers.0.blocks.0.attn.relative_position_index"]}, meta,
                   "relative_position_index"),
        "missing": ({k: v for k, v in params.items() if k != "norm.weight"}, meta, "'swin_unet.norm.weight'"),
    }
    for name, (tensors, m, fragment) in cases.items():
        path = tmp_path / f"{name}.safetensors"
        save_file(tensors, str(path), metadata=m)
        with pytest.raises(ValueError, match=fragment):
            load_safetensors(str(path))
    (tmp_path / "junk.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00junk!")
    with pytest.raises(WeightsError, match="junk.safetensors"):
        load_safetensors(str(tmp_path / "junk.safetensors"))


def test_usage_errors_exit_2(tmp_path):
    assert convert("x.pth").returncode == 2  # no -o
    assert convert("x.pth", "-o", "y", "--depths", "a,b").returncode == 2
    assert convert("x.pth", "-o", "y", "--dtype", "fp8").returncode == 2
    r = convert("x.pth", "-o", tmp_path / "y", "--window-size", "5")  # 56 is not divisible by 5
    assert r.returncode == 1 and "window" in r.stderr
