"""swinrt weights files (docs/FORMATS.md): a .safetensors of the model's
parameters under the original names without the 'swin_unet.' prefix, with the
config in the metadata. Writing from a reference model or a state_dict,
reading back into a reference model, and the key-by-key check of a state_dict
against a config that both directions (and swinrt-convert) use."""
from __future__ import annotations

from typing import Mapping, Tuple, Union

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .config import ConfigError, ModelConfig
from .files import write_atomic
from .model import SwinUnet

FORMAT_VERSION = "1"
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
PREFIX = "swin_unet."


class WeightsError(ValueError):
    pass


def model_from_state_dict(state: Mapping[str, torch.Tensor], cfg: ModelConfig, where: str) -> SwinUnet:
    """A reference model (eval mode, FP32) holding `state`, checked key by key
    against what `cfg` implies. Keys may carry the 'swin_unet.' prefix or not.
    The buffers relative_position_index and attn_mask may be absent (they
    follow from the config); when present they must equal the recomputed ones.
    Raises WeightsError naming `where`, the key and the shapes."""
    state = {k if k.startswith(PREFIX) else PREFIX + k: v for k, v in state.items()}
    model = SwinUnet(cfg)
    expected = model.state_dict()
    params = {k for k, _ in model.named_parameters()}
    missing = [k for k in expected if k in params and k not in state]
    if missing:
        k = missing[0]
        hint = ""
        if not any(s.startswith(PREFIX + "layers_up.") for s in state):
            hint = " (no layers_up.* at all: an encoder-only Swin Transformer checkpoint, not a trained Swin-Unet?)"
        raise WeightsError(f"{where}: missing tensor '{k}' (expected shape {list(expected[k].shape)} for this "
                           f"config; {len(missing)} missing in all){hint}")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        k = unexpected[0]
        raise WeightsError(f"{where}: unexpected tensor '{k}' of shape {list(state[k].shape)}, not part of a model "
                           f"of this config ({len(unexpected)} unexpected in all)")
    for k, v in state.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{where}: '{k}' is a {type(v).__name__}, not a tensor")
        if tuple(v.shape) != tuple(expected[k].shape):
            raise WeightsError(f"{where}: tensor '{k}' has shape {list(v.shape)}, this config expects "
                               f"{list(expected[k].shape)}")
        if k in params:
            if not v.is_floating_point():
                raise WeightsError(f"{where}: tensor '{k}' has dtype {v.dtype}, expected a floating-point one")
            if not torch.isfinite(v).all():
                raise WeightsError(f"{where}: tensor '{k}' holds NaN or Inf values")
        elif not torch.equal(v.to(expected[k].dtype), expected[k]):
            raise WeightsError(f"{where}: buffer '{k}' differs from the one this config implies (the config's "
                               f"window size or image size does not match the checkpoint's)")
    full = dict(expected)
    full.update({k: v.to(expected[k].dtype) for k, v in state.items()})
    model.load_state_dict(full, strict=True)
    return model.eval()


def parameters_of(model: SwinUnet) -> dict:
    """The model's parameters under their file names (no 'swin_unet.' prefix)."""
    return {name[len(PREFIX):]: p.detach() for name, p in model.named_parameters()}


def save_safetensors(model_or_state: Union[SwinUnet, Mapping[str, torch.Tensor]], cfg: ModelConfig, path: str,
                     dtype: str = "fp32", source: str = "") -> None:
    """Writes a swinrt weights file: the parameters of a reference model, or
    of a state_dict checked against `cfg` (model_from_state_dict's rules), in
    `dtype` (fp32, fp16 or bf16), with `cfg` and `source` in the metadata.
    Atomic: a temporary file in the same directory, renamed at the end; on
    any failure nothing is left behind."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype {dtype!r}: expected one of {sorted(DTYPES)}")
    cfg.validate()
    if isinstance(model_or_state, SwinUnet):
        if model_or_state.config != cfg:
            raise ValueError(f"{path}: the model was built for {model_or_state.config}, not for {cfg}")
        model = model_or_state
    else:
        model = model_from_state_dict(model_or_state, cfg, "state_dict")
    tensors = {}
    for k, v in parameters_of(model).items():
        t = v.to(DTYPES[dtype]).contiguous().cpu()
        if not torch.isfinite(t).all():  # e.g. |w| > 65504 in fp16
            raise WeightsError(f"{path}: tensor '{k}' does not fit in {dtype} (NaN or Inf after the cast)")
        tensors[k] = t
    meta = {"swinrt_format": FORMAT_VERSION, "config": cfg.to_json(), "source": str(source)}
    write_atomic(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_safetensors(path: str) -> Tuple[ModelConfig, SwinUnet]:
    """Reads a swinrt weights file: its config and a reference model holding
    its tensors (FP32, eval mode). Raises WeightsError or ConfigError naming
    the file (and the tensor) on anything docs/FORMATS.md does not allow."""
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("swinrt_format") != FORMAT_VERSION:
                raise WeightsError(f"{path}: metadata swinrt_format is {meta.get('swinrt_format')!r}, "
                                   f"expected {FORMAT_VERSION!r}")
            if "config" not in meta:
                raise WeightsError(f"{path}: no 'config' in the metadata")
            cfg = ModelConfig.from_json(meta["config"], where=path)
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise WeightsError(f"{path}: not a readable safetensors file ({e})") from None
    buffers = [k for k in state if k.endswith(("relative_position_index", "attn_mask"))]
    if buffers:
        raise WeightsError(f"{path}: buffer '{buffers[0]}' is stored; the format holds parameters only")
    dtypes = {v.dtype for v in state.values()}
    if len(dtypes) > 1 or not dtypes <= set(DTYPES.values()):
        raise WeightsError(f"{path}: tensors must all be F32, F16 or BF16 alike, found {sorted(map(str, dtypes))}")
    return cfg, model_from_state_dict(state, cfg, path)


__all__ = ["ConfigError", "WeightsError", "DTYPES", "PREFIX", "load_safetensors", "model_from_state_dict",
           "parameters_of", "save_safetensors"]
