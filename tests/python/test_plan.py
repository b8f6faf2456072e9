"""Plan files (`swinrt build`, include/swinrt/plan_file.h): a plan runs to the
same logits as the weights it was built from, on the CPU (here) and on the GPU
(tuned; test_cuda.py's machine), and every damaged plan is refused with a
message that says what is wrong."""
import json
import os
import struct
import subprocess
import zlib

import numpy as np
import pytest
import torch

from helpers import config, saved_model

PREAMBLE = 32  # magic 8, u32 version, u32 crc32, u64 header bytes, u64 data bytes


def run(swinrt_bin, *args):
    return subprocess.run([swinrt_bin, *map(str, args)], capture_output=True, text=True)


def build(swinrt_bin, weights, plan, *args):
    r = run(swinrt_bin, "build", "--weights", weights, "-o", plan, *args)
    assert r.returncode == 0, r.stderr
    return r


def logits(swinrt_bin, tmp_path, x, *model_args, device="cpu", extra=()):
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    r = run(swinrt_bin, "run", *model_args, "--input", tmp_path / "x.npy", "--output", out, "--device", device, *extra)
    assert r.returncode == 0, r.stderr
    return np.load(out)


def parts(path):
    data = path.read_bytes()
    magic, version, crc, header_bytes, data_bytes = struct.unpack_from("<8sIIQQ", data)
    header = json.loads(data[PREAMBLE:PREAMBLE + header_bytes])
    return data, version, crc, header


def rewrite(path, data, fix_crc=True):
    data = bytearray(data)
    if fix_crc:
        struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[PREAMBLE:])))
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", ["tiny", "ape", "w8"])
def test_cpu_plan_runs_as_its_weights(tmp_path, swinrt_bin, name):
    cfg = config(name)
    model, weights = saved_model(tmp_path, cfg, seed=5)
    plan = tmp_path / "model.plan"
    r = build(swinrt_bin, weights, plan, "--device", "cpu", "--max-batch", "4")
    assert "wrote" in r.stdout and "ms" in r.stdout
    assert not list(tmp_path.glob("*.tmp*")), "the temporary file of the atomic write was left behind"
    x = np.random.default_rng(6).random((2, cfg.img_size, cfg.img_size), dtype=np.float32)
    from_weights = logits(swinrt_bin, tmp_path, x, "--weights", weights)
    from_plan = logits(swinrt_bin, tmp_path, x, "--plan", plan)
    # The same float32 weights: the same arithmetic, the same bits.
    np.testing.assert_array_equal(from_plan, from_weights)
    # A plan given as --weights is recognised by its magic; --loadEngine is trtexec's name.
    np.testing.assert_array_equal(logits(swinrt_bin, tmp_path, x, "--weights", plan), from_weights)
    np.testing.assert_array_equal(logits(swinrt_bin, tmp_path, x, "--loadEngine", plan), from_weights)
    with torch.no_grad():
        ref = model(torch.from_numpy(x).unsqueeze(1)).numpy()
    assert np.abs(from_plan - ref).max() <= 1e-4

    _, version, _, header = parts(plan)
    assert version == 1 and header["format"] == "swinrt-plan" and header["precision"] == "fp32"
    assert header["max_batch"] == 4 and header["config"]["embed_dim"] == cfg.embed_dim
    assert header["gpu"]["arch"] == "" and header["gemms"] == []
    r = run(swinrt_bin, "info", plan)
    assert r.returncode == 0, r.stderr
    assert f"embed_dim {cfg.embed_dim} " in r.stdout and "plan        format 1" in r.stdout



def test_plan_from_a_file_name_of_any_bytes(tmp_path, swinrt_bin):
    """A weights file whose name is not UTF-8 (a Latin-1 name, say) builds a
    plan: its header, JSON, names the source as Python's decoder with
    errors="backslashreplace" would, and the plan runs as the weights do."""
    cfg = config("tiny")
    _, weights = saved_model(tmp_path, cfg, seed=5)
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.safetensors")
    os.rename(weights, odd)
    plan = tmp_path / "odd.plan"
    r = subprocess.run([swinrt_bin, "build", "--weights", odd, "-o", plan, "--device", "cpu"], capture_output=True)
    assert r.returncode == 0, r.stderr
    _, _, _, header = parts(plan)
    assert header["built_from"] == odd.decode("utf-8", "backslashreplace")
    x = np.random.default_rng(6).random((1, cfg.img_size, cfg.img_size), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    outs = []
    for args in (["--weights", odd], ["--plan", plan]):
        out = tmp_path / f"y{len(outs)}.npy"
        r = subprocess.run([swinrt_bin, "run", *args, "--input", tmp_path / "x.npy", "--output", out], capture_output=True)
        assert r.returncode == 0, r.stderr
        outs.append(np.load(out))
    np.testing.assert_array_equal(outs[1], outs[0])

def test_half_precision_plan_holds_half_weights(tmp_path, swinrt_bin):
    cfg = config("tiny")
    model, weights = saved_model(tmp_path, cfg, seed=7)
    plan = tmp_path / "fp16.plan"
    build(swinrt_bin, weights, plan, "--fp16", "--device", "cpu")
    data, _, _, header = parts(plan)
    assert header["precision"] == "fp16"
    qkv = next(t for n, t in header["tensors"].items() if n.endswith("attn.qkv.weight"))
    assert qkv["dtype"] == "F16"
    fp32_plan = tmp_path / "fp32.plan"
    build(swinrt_bin, weights, fp32_plan, "--device", "cpu")
    assert plan.stat().st_size < fp32_plan.stat().st_size
    # The CPU runs the plan's fp16-rounded weights in fp32: the reference with the same rounding.
    x = np.random.default_rng(8).random((1, cfg.img_size, cfg.img_size), dtype=np.float32)
    got = logits(swinrt_bin, tmp_path, x, "--plan", plan)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                mod.weight.copy_(mod.weight.half().float())
                if mod.bias is not None and (mod.in_features * 3 == mod.out_features or mod.out_features == 4 * mod.in_features):
                    mod.bias.copy_(mod.bias.half().float())
        ref = model(torch.from_numpy(x).unsqueeze(1)).numpy()
    assert (got.argmax(1) == ref.argmax(1)).mean() >= 0.999
    # Asking a fp16 plan for another precision is an error, not a silent choice.
    np.save(tmp_path / "x.npy", x)
    r = run(swinrt_bin, "run", "--plan", plan, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
            "--precision", "fp32")
    assert r.returncode == 1 and "built for fp16" in r.stderr


def test_damaged_plans_are_refused(tmp_path, swinrt_bin):
    cfg = config("tiny")
    _, weights = saved_model(tmp_path, cfg, seed=9)
    plan = tmp_path / "model.plan"
    build(swinrt_bin, weights, plan, "--device", "cpu")
    data, _, _, header = parts(plan)
    x = np.zeros((1, cfg.img_size, cfg.img_size), np.float32)
    np.save(tmp_path / "x.npy", x)

    def refused(path, *words):
        r = run(swinrt_bin, "run", "--plan", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                "--device", "cpu")
        assert r.returncode == 1, (r.stdout, r.stderr)
        assert str(path) in r.stderr
        for w in words:
            assert w in r.stderr, r.stderr
        assert "Traceback" not in r.stderr and "terminate" not in r.stderr
        assert not (tmp_path / "y.npy").exists()

    bad = tmp_path / "bad.plan"
    rewrite(bad, data[: len(data) // 2], fix_crc=False)
    refused(bad, "truncated")
    rewrite(bad, data[:20], fix_crc=False)
    refused(bad, "too short")
    flipped = bytearray(data)
    flipped[-5] ^= 0x40
    rewrite(bad, flipped, fix_crc=False)
    refused(bad, "checksum")
    v2 = bytearray(data)
    struct.pack_into("<I", v2, 8, 2)
    rewrite(bad, v2)
    refused(bad, "format version 2", "rebuild")
    rewrite(bad, b"\x89HDF\r\n\x1a\n" + bytes(200), fix_crc=False)
    refused(bad, "not a swinrt plan")
    # Headers that check out (checksum recomputed) but do not describe a valid plan.
    rewrite(bad, _with_header(data, lambda h: h.update(max_batch=0)))
    refused(bad, "max_batch")
    rewrite(bad, _with_header(data, lambda h: h["tensors"].pop(next(iter(h["tensors"])))))
    refused(bad, "tensor")
    rewrite(bad, _with_header(data, lambda h: h["config"].update(embed_dim=48)))
    refused(bad)


def _with_header(data, change):
    """The plan with its JSON header edited (sizes and padding kept consistent)."""
    _, version, _, header_bytes, data_bytes = struct.unpack_from("<8sIIQQ", data)
    header = json.loads(data[PREAMBLE:PREAMBLE + header_bytes])
    change(header)
    payload = data[len(data) - data_bytes:]
    text = json.dumps(header, separators=(",", ":")).encode()
    head = PREAMBLE + len(text)
    pad = (-head) % 256
    out = bytearray(data[:8]) + struct.pack("<IIQQ", version, 0, len(text), data_bytes) + text + bytes(pad) + payload
    return bytes(out)


def test_usage_errors(tmp_path, swinrt_bin):
    cfg = config("tiny")
    _, weights = saved_model(tmp_path, cfg, seed=9)
    plan = tmp_path / "model.plan"
    build(swinrt_bin, weights, plan, "--device", "cpu")
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, cfg.img_size, cfg.img_size), np.float32))
    r = run(swinrt_bin, "run", "--weights", weights, "--plan", plan, "--input", x, "--output", tmp_path / "y.npy")
    assert r.returncode == 2
    r = run(swinrt_bin, "run", "--input", x, "--output", tmp_path / "y.npy")
    assert r.returncode == 2 and "--weights,--onnx,--plan" in r.stderr
    r = run(swinrt_bin, "build", "--weights", plan, "-o", tmp_path / "again.plan", "--device", "cpu")
    assert r.returncode == 1 and "already a plan" in r.stderr
    r = run(swinrt_bin, "build", "--weights", weights, "-o", tmp_path / "no" / "dir.plan", "--device", "cpu")
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = run(swinrt_bin, "build", "--weights", weights, "-o", tmp_path / "p.plan", "--fp16", "--bf16")
    assert r.returncode == 2
    r = run(swinrt_bin, "build", "--weights", weights, "-o", tmp_path / "p.plan", "--no-tune", "--tune-wide")
    assert r.returncode == 2 and "excludes" in r.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
@pytest.mark.parametrize("precision,wide", [("fp32", False), ("fp16", False), ("fp16", True)])
def test_tuned_gpu_plan_runs_as_its_weights(tmp_path, swinrt_bin, precision, wide):
    cfg = config("swin-t")
    _, weights = saved_model(tmp_path, cfg, seed=11)
    plan = tmp_path / "model.plan"
    tune = ("--tune-wide",) if wide else ()
    r = build(swinrt_bin, weights, plan, "--precision", precision, "--max-batch", "8", "--device", "cuda", *tune)
    print(r.stdout)
    assert "autotune" in r.stdout and ("(wide)" in r.stdout) == wide
    _, _, _, header = parts(plan)
    assert header["gpu"]["arch"].startswith("sm_") and header["gemms"], header["gpu"]
    x = np.random.default_rng(12).random((3, cfg.img_size, cfg.img_size), dtype=np.float32)
    extra = ("--precision", precision)
    from_weights = logits(swinrt_bin, tmp_path, x, "--weights", weights, device="cuda", extra=extra)
    from_plan = logits(swinrt_bin, tmp_path, x, "--plan", plan, device="cuda", extra=extra)
    err = np.abs(from_plan - from_weights).max()
    agree = (from_plan.argmax(1) == from_weights.argmax(1)).mean()
    print(f"{precision}: tuned plan vs weights engine: max abs {err:.3g}, argmax agreement {agree:.6f}")
    # Another GEMM algorithm may sum in another order: rounding-level differences only.
    assert err <= (1e-4 if precision == "fp32" else 2e-2)
    assert agree >= 0.999

    # The plan refuses a GPU of another architecture.
    data = plan.read_bytes()
    arch = header["gpu"]["arch"].encode()
    other = b"sm_10" if arch != b"sm_10" else b"sm_20"
    other = other.ljust(len(arch), b"0")[: len(arch)]
    bad = tmp_path / "other-arch.plan"
    rewrite(bad, data.replace(b'"arch":"' + arch, b'"arch":"' + other, 1))
    np.save(tmp_path / "x.npy", x)
    r = run(swinrt_bin, "run", "--plan", bad, "--input", tmp_path / "x.npy", "--output", tmp_path / "z.npy",
            "--device", "cuda")
    assert r.returncode == 1 and other.decode() in r.stderr and str(bad) in r.stderr, r.stderr
