"""swinrt weights files (.safetensors with the config in the metadata; see
docs/FORMATS.md): writing from a reference model, reading back."""
from __future__ import annotations

import os
import tempfile

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .config import ModelConfig
from .model import SwinUnet

FORMAT_VERSION = "1"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PREFIX = "swin_unet."


def parameters_of(model: SwinUnet) -> dict:
    """The model's parameters under their file names (no 'swin_unet.' prefix)."""
    return {name[len(PREFIX):]: p.detach() for name, p in model.named_parameters()}


def save_safetensors(model: SwinUnet, path: str, dtype: str = "fp32", source: str = "") -> None:
    """Writes the model's parameters and config atomically (temp file + rename)."""
    tensors = {k: v.to(DTYPES[dtype]).contiguous().cpu() for k, v in parameters_of(model).items()}
    meta = {"swinrt_format": FORMAT_VERSION, "config": model.config.to_json(), "source": source}
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".swinrt-", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_safetensors(path: str) -> SwinUnet:
    """Reads a swinrt weights file into a reference model (FP32)."""
    with safe_open(path, framework="pt") as f:
        meta = f.metadata() or {}
        if "config" not in meta:
            raise ValueError(f"{path}: no 'config' in the metadata")
        cfg = ModelConfig.from_json(meta["config"], where=path)
        state = {PREFIX + k: f.get_tensor(k).float() for k in f.keys()}
    model = SwinUnet(cfg)
    buffers = {k: v for k, v in model.state_dict().items() if k not in dict(model.named_parameters())}
    model.load_state_dict({**state, **buffers}, strict=True)
    return model.eval()
