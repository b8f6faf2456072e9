"""swinrt-convert: an original Swin-Unet checkpoint -> a swinrt .safetensors.

    swinrt-convert CKPT.pth --config MODEL.yaml -o MODEL.safetensors
    swinrt-convert CKPT.pth --embed-dim 96 --depths 2,2,2,2 --num-heads 3,6,12,24 \
        --window-size 7 --num-classes 9 -o MODEL.safetensors

The checkpoint is a state_dict (keys with or without the wrapper's
'swin_unet.' prefix) or a dict holding one under 'model' or 'state_dict'.
Every tensor is checked against the config: missing, unexpected or
mis-shaped tensors are refused naming the key and both shapes, and the
checkpoint's relative_position_index / attn_mask buffers must equal the ones
the config implies. Exit codes: 0 ok, 1 bad input, 2 usage.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from .config import ConfigError, ModelConfig
from .model import SwinUnet
from .weights import PREFIX, save_safetensors


class ConvertError(Exception):
    pass


def _int_list(text: str):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def extract_state_dict(obj, path: str) -> dict:
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ConvertError(f"{path}: expected a state_dict (a dict of tensors), directly or under 'model' or "
                           f"'state_dict'")
    out = {}
    for k, v in obj.items():
        k = k[len("module."):] if k.startswith("module.") else k
        out[k if k.startswith(PREFIX) else PREFIX + k] = v
    return out


def load_checkpoint(path: str) -> dict:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConvertError(f"{path}: no such file") from None
    except Exception as e:  # pickle, zip and torch errors alike
        raise ConvertError(f"{path}: cannot read as a PyTorch checkpoint ({type(e).__name__}: {e})") from None
    return extract_state_dict(obj, path)


def build_model(state: dict, cfg: ModelConfig, path: str) -> SwinUnet:
    """The reference model with the checkpoint's tensors, checked key by key."""
    model = SwinUnet(cfg)
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    # Buffers are derived from the config; a checkpoint without them is fine.
    params = dict(model.named_parameters())
    missing = [k for k in missing if k in params]
    if missing:
        k = missing[0]
        raise ConvertError(f"{path}: missing tensor '{k}' (expected shape {list(expected[k].shape)} for this config; "
                           f"{len(missing)} missing in all)")
    unexpected = [k for k in state if k not in expected]
    if unexpected:
        raise ConvertError(f"{path}: unexpected tensor '{unexpected[0]}' of shape {list(state[unexpected[0]].shape)} "
                           f"for this config ({len(unexpected)} unexpected in all)")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise ConvertError(f"{path}: tensor '{k}' has shape {list(v.shape)}, the config expects "
                               f"{list(expected[k].shape)}")
        if k not in params and not torch.equal(v.to(expected[k].dtype), expected[k]):
            raise ConvertError(f"{path}: buffer '{k}' differs from the one this config implies "
                               f"(window size or resolution do not match the checkpoint)")
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ConvertError(f"{path}: tensor '{k}' holds NaN or Inf values")
    full = dict(expected)
    full.update({k: v for k, v in state.items()})
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in full.items()}, strict=True)
    return model.eval()


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="swinrt-convert", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="original checkpoint (.pth)")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors")
    ap.add_argument("--config", help="original Swin-Unet YAML config (flags below override it)")
    ap.add_argument("--dtype", choices=["fp32", "fp16", "bf16"], default="fp32")
    ap.add_argument("--img-size", type=int)
    ap.add_argument("--patch-size", type=int)
    ap.add_argument("--in-chans", type=int)
    ap.add_argument("--num-classes", type=int)
    ap.add_argument("--embed-dim", type=int)
    ap.add_argument("--depths", type=_int_list)
    ap.add_argument("--num-heads", type=_int_list)
    ap.add_argument("--window-size", type=int)
    ap.add_argument("--mlp-ratio", type=float)
    ap.add_argument("--qkv-bias", dest="qkv_bias", action="store_true", default=None)
    ap.add_argument("--no-qkv-bias", dest="qkv_bias", action="store_false")
    ap.add_argument("--qk-scale", type=float)
    ap.add_argument("--ape", action="store_true", default=None)
    ap.add_argument("--no-patch-norm", dest="patch_norm", action="store_false", default=None)
    return ap.parse_args(argv)


def config_from_args(a) -> ModelConfig:
    cfg = ModelConfig.from_yaml(a.config, a.num_classes or 9) if a.config else ModelConfig()
    overrides = {f.name: getattr(a, f.name) for f in dataclasses.fields(ModelConfig)
                 if getattr(a, f.name, None) is not None}
    return dataclasses.replace(cfg, **overrides).validate("command-line config")


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(a)
        model = build_model(load_checkpoint(a.checkpoint), cfg, a.checkpoint)
        save_safetensors(model, a.output, a.dtype, source=a.checkpoint)
    except (ConvertError, ConfigError, OSError) as e:
        print(f"swinrt-convert: error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.output}: {n} parameters ({n / 1e6:.2f} M), {a.dtype}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
