"""End to end: random-weight reference models -> swinrt-convert's format ->
the C++ engine (`swinrt run`) -> logits compared with PyTorch's, FP32,
max abs error <= 1e-4, on three configs; plus the CLI's contract on bad input."""
import json
import subprocess

import numpy as np
import pytest
import torch

from helpers import config, saved_model

CASES = [("swin-t", 2), ("w8", 1), ("ape", 3)]


def run(swinrt_bin, *args):
    return subprocess.run([swinrt_bin, *map(str, args)], capture_output=True, text=True)


@pytest.mark.parametrize("name,batch", CASES)
def test_cpu_engine_matches_pytorch(tmp_path, swinrt_bin, name, batch):
    cfg = config(name)
    model, weights = saved_model(tmp_path, cfg, seed=1)
    x = np.random.default_rng(2).random((batch, cfg.img_size, cfg.img_size), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run(swinrt_bin, "run", "--weights", weights, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "y.npy")
    with torch.no_grad():
        ref = model(torch.from_numpy(x).unsqueeze(1)).numpy()
    assert got.shape == ref.shape == (batch, cfg.num_classes, cfg.img_size, cfg.img_size)
    err = np.abs(got - ref).max()
    print(f"{name}: max |swinrt - torch| = {err:.3g} (max |logit| {np.abs(ref).max():.3g})")
    assert err <= 1e-4
    # Labels: argmax of the same logits.
    r = run(swinrt_bin, "run", "--weights", weights, "--input", tmp_path / "x.npy", "--output", tmp_path / "l.npy",
            "--device", "cpu", "--labels")
    assert r.returncode == 0, r.stderr
    labels = np.load(tmp_path / "l.npy")
    assert labels.shape == (batch, cfg.img_size, cfg.img_size)
    np.testing.assert_array_equal(labels, got.argmax(1))
    agree = (labels == ref.argmax(1)).mean()
    assert agree >= 0.9999, agree


def test_half_precision_files_and_single_slice_inputs(tmp_path, swinrt_bin):
    cfg = config("tiny")
    model, weights = saved_model(tmp_path, cfg, seed=4, dtype="fp16")
    x = np.random.default_rng(0).random((cfg.img_size, cfg.img_size), dtype=np.float32)  # HxW
    np.save(tmp_path / "x.npy", x)
    r = run(swinrt_bin, "run", "--weights", weights, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
            "--device", "cpu")
    assert r.returncode == 0, r.stderr
    # The reference with the same fp16-rounded weights, in fp32.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
        ref = model(torch.from_numpy(x)[None, None]).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - ref).max() <= 1e-4
    r = run(swinrt_bin, "info", weights)
    assert r.returncode == 0 and "F16" in r.stdout
    n = sum(p.numel() for p in model.parameters())
    assert str(n) in r.stdout


def test_bad_inputs_are_clear_errors(tmp_path, swinrt_bin):
    cfg = config("tiny")
    _, weights = saved_model(tmp_path, cfg)
    out = tmp_path / "y.npy"

    def expect(rc, *frags, args):
        r = run(swinrt_bin, *args)
        assert r.returncode == rc, (r.returncode, r.stderr)
        for f in frags:
            assert f in r.stderr, (f, r.stderr)
        assert not out.exists()

    np.save(tmp_path / "wrong.npy", np.zeros((2, 32, 32), np.float32))
    expect(1, "wrong.npy", "64x64", args=["run", "--weights", weights, "--input", tmp_path / "wrong.npy",
                                          "--output", out, "--device", "cpu"])
    nan = np.zeros((64, 64), np.float32)
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    expect(1, "nan.npy", "finite", args=["run", "--weights", weights, "--input", tmp_path / "nan.npy",
                                         "--output", out, "--device", "cpu"])
    (tmp_path / "trunc.npy").write_bytes((tmp_path / "nan.npy").read_bytes()[:200])
    expect(1, "trunc.npy", "truncated", args=["run", "--weights", weights, "--input", tmp_path / "trunc.npy",
                                              "--output", out, "--device", "cpu"])
    (tmp_path / "cut.safetensors").write_bytes(weights.read_bytes()[:5000])
    expect(1, "cut.safetensors", args=["run", "--weights", tmp_path / "cut.safetensors", "--input",
                                       tmp_path / "nan.npy", "--output", out])
    expect(1, "absent.safetensors", args=["info", tmp_path / "absent.safetensors"])
    expect(2, args=["run", "--weights", weights])  # missing --input/--output
    expect(2, args=["run", "--weights", weights, "--input", "x", "--output", out, "--precision", "fp8"])
    # fp16 on the CPU backend is refused, not silently run in fp32.
    np.save(tmp_path / "ok.npy", np.zeros((64, 64), np.float32))
    expect(1, "fp16", args=["run", "--weights", weights, "--input", tmp_path / "ok.npy", "--output", out,
                            "--device", "cpu", "--precision", "fp16"])


def test_error_messages_are_printable_utf8(tmp_path, swinrt_bin):
    """Messages quote fields of damaged files: whatever bytes those hold, stderr
    is UTF-8, as Python's decoder with errors="backslashreplace" renders the
    bytes (control characters other than newline and tab escaped as well)."""
    cfg = config("tiny")
    _, weights = saved_model(tmp_path, cfg)
    rng = np.random.default_rng(7)
    pool = [b for b in range(256) if b != ord("'")]
    payloads = [b"x\xff\xfe", b"x\xe2\x82", b"x\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", b"x\x01\x1b[31m\x7f",
                "x organ é € 𝄞".encode()]
    payloads += [b"x" + bytes(rng.choice(pool, size=24).tolist()) for _ in range(20)]
    for i, payload in enumerate(payloads):
        header = b"{'descr': '<f" + payload + b"', 'fortran_order': False, 'shape': (2, 2), }"
        header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
        path = tmp_path / f"dtype{i}.npy"
        path.write_bytes(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + bytes(16))
        r = subprocess.run([swinrt_bin, "run", "--weights", weights, "--input", path, "--output", tmp_path / "y.npy"],
                           capture_output=True)
        assert r.returncode == 1, r.stderr
        stderr = r.stderr.decode("utf-8")  # strict: raises on any invalid byte
        shown = ("<f" + payload.decode("utf-8", "backslashreplace"))
        shown = "".join(f"\\x{ord(c):02x}" if (ord(c) < 0x20 and c not in "\n\t") or ord(c) == 0x7F else c
                        for c in shown)
        assert f"dtype '{shown}' is not supported" in stderr, (payload, stderr)
        assert not (tmp_path / "y.npy").exists()


def test_bench_reports_what_it_ran(tmp_path, swinrt_bin):
    """`swinrt bench` labels each row with the precision the engine ran (on the
    CPU backend fp32, where the default fp16 was asked), in its table and its
    JSON; unknown --compare-modes are a usage error."""
    out = tmp_path / "bench.json"
    r = run(swinrt_bin, "bench", "--random", "tiny", "--batch", "1,2", "--warmup", "0", "--iterations", "2",
            "--json", out)
    assert r.returncode == 0, r.stderr
    doc = json.loads(out.read_text())
    rows = [line.split()[:2] for line in r.stdout.splitlines() if line[:4] in ("fp32", "tf32", "fp16", "bf16")]
    assert rows == [[doc["fp16"][b]["precision"], b] for b in ("1", "2")], r.stdout
    for row in doc["fp16"].values():
        assert row["precision"] == ("fp32" if row["device"].startswith("cpu") else "fp16"), row
        assert row["median_ms"] > 0
    r = run(swinrt_bin, "bench", "--random", "tiny", "--compare", "--compare-modes", "eager,egaer")
    assert r.returncode == 2 and "egaer" in r.stderr, r.stderr
