"""The CUDA backend against the PyTorch reference on the same GPU (skipped
where torch sees no GPU, e.g. in CI). Per config and precision: max abs
logit error and argmax agreement against PyTorch FP32 (TF32 off), next to
what PyTorch itself reaches in that precision on the same weights and input
(model.half() / .bfloat16(), or TF32 matmuls), so the numbers say how much
of the deviation is the precision's and how much is swinrt's."""
import subprocess

import numpy as np
import pytest
import torch

from helpers import config, saved_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def torch_logits(model, x, precision):
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    torch.backends.cudnn.allow_tf32 = precision == "tf32"
    m = model.cuda()
    xt = torch.from_numpy(x).unsqueeze(1).cuda()
    with torch.no_grad():
        if precision in DTYPES:
            out = m.to(DTYPES[precision])(xt.to(DTYPES[precision])).float()
            m.float()
        else:
            out = m(xt)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return out.cpu().numpy()


def expect_matches_pytorch(tmp_path, swinrt_bin, model, weights, x, label, precisions, max_batch):
    """swinrt's CUDA logits of slices x in each precision (engines of
    max_batch) against PyTorch FP32, beside PyTorch's own run in that
    precision."""
    np.save(tmp_path / "x.npy", x)
    ref = torch_logits(model, x, "fp32")
    ref_labels = ref.argmax(1)
    for precision in precisions:
        r = subprocess.run([swinrt_bin, "run", "--weights", weights, "--input", tmp_path / "x.npy", "--output",
                            tmp_path / "y.npy", "--device", "cuda", "--precision", precision, "--max-batch",
                            str(max_batch)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        got = np.load(tmp_path / "y.npy")
        err = float(np.abs(got - ref).max())
        agree = float((got.argmax(1) == ref_labels).mean())
        peer = torch_logits(model, x, precision)
        peer_err = float(np.abs(peer - ref).max())
        peer_agree = float((peer.argmax(1) == ref_labels).mean())
        print(f"{label} {precision}: swinrt max|err| {err:.3g}, argmax agreement {agree:.5f}; "
              f"PyTorch {precision}: max|err| {peer_err:.3g}, agreement {peer_agree:.5f}")
        if precision == "fp32":
            assert err <= 1e-4
        elif precision == "tf32":
            assert err <= 5e-3 or err <= 1.5 * peer_err
        else:
            # The 99.9%, or no worse than PyTorch's own run in this precision.
            assert agree >= min(0.999, peer_agree - 0.001)


@pytest.mark.parametrize("name", ["swin-t", "w8", "ape"])
def test_cuda_matches_pytorch(tmp_path, swinrt_bin, name):
    cfg = config(name)
    model, weights = saved_model(tmp_path, cfg, seed=1)
    x = np.random.default_rng(3).random((3, cfg.img_size, cfg.img_size), dtype=np.float32)
    expect_matches_pytorch(tmp_path, swinrt_bin, model, weights, x, name, ("fp32", "tf32", "fp16", "bf16"), 2)


def test_cuda_large_batch_matches_pytorch(tmp_path, swinrt_bin):
    """Swin-T at batch 48 as one batch: the kernels the engine takes only at
    large batches (the one-warpgroup 96-channel block, where the windows are
    more than the SMs; the fused PatchExpand, where its 64-token tiles fill
    them; the fused MLP of the 192-channel blocks, at two 128-row tiles an SM
    of an H100) against PyTorch FP32, as in test_cuda_matches_pytorch."""
    cfg = config("swin-t")
    model, weights = saved_model(tmp_path, cfg, seed=5)
    x = np.random.default_rng(7).random((48, cfg.img_size, cfg.img_size), dtype=np.float32)
    expect_matches_pytorch(tmp_path, swinrt_bin, model, weights, x, "swin-t batch 48", ("fp32", "fp16", "bf16"), 48)
