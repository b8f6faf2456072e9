"""swinrt-convert: an original Swin-Unet checkpoint -> a swinrt .safetensors.

    swinrt-convert CKPT.pth --config MODEL.yaml [--num-classes 9] -o MODEL.safetensors
    swinrt-convert CKPT.pth --img-size 224 --embed-dim 96 --depths 2,2,2,2 \\
        --num-heads 3,6,12,24 --window-size 7 --num-classes 9 -o MODEL.safetensors

The checkpoint is a state_dict as the original train.py saves it (keys with
or without the wrapper's 'swin_unet.' prefix; a DataParallel 'module.' prefix
is dropped), or a dict holding one under 'model' or 'state_dict'. Flags given
with --config override it; without --config the flags start from the
Swin-Unet-T defaults. Every tensor is checked against the config: missing,
unexpected or mis-shaped tensors are refused naming the key and both shapes,
and the checkpoint's relative_position_index / attn_mask buffers must equal
the ones the config implies. The output is written atomically.
Exit codes: 0 ok, 1 bad input (one message on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import torch

from .config import ConfigError, ModelConfig
from .weights import DTYPES, PREFIX, WeightsError, model_from_state_dict, save_safetensors


class ConvertError(Exception):
    pass


def _int_list(text: str):
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def extract_state_dict(obj, path: str) -> dict:
    """The state_dict inside a loaded checkpoint, keys with the 'swin_unet.' prefix."""
    if isinstance(obj, dict):
        for key in ("model", "state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
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
    except IsADirectoryError:
        raise ConvertError(f"{path}: is a directory, expected a checkpoint file") from None
    except Exception as e:  # pickle, zip and torch errors alike
        raise ConvertError(f"{path}: cannot read as a PyTorch checkpoint ({type(e).__name__}: {e})") from None
    return extract_state_dict(obj, path)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="swinrt-convert", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", help="original checkpoint (.pth)")
    ap.add_argument("-o", "--output", required=True, help="output .safetensors")
    ap.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="dtype of the stored tensors (fp32)")
    add_config_args(ap)
    return ap.parse_args(argv)


def add_config_args(ap):
    """--config and the hyper-parameter flags that override it (also used by swinrt-export)."""
    ap.add_argument("--config", help="original Swin-Unet YAML config (the flags below override it)")
    ap.add_argument("--img-size", type=int)
    ap.add_argument("--patch-size", type=int)
    ap.add_argument("--in-chans", type=int)
    ap.add_argument("--num-classes", type=int, help="not in the YAML configs; default 9 (Synapse)")
    ap.add_argument("--embed-dim", type=int)
    ap.add_argument("--depths", type=_int_list, help="e.g. 2,2,2,2")
    ap.add_argument("--num-heads", type=_int_list, help="e.g. 3,6,12,24")
    ap.add_argument("--window-size", type=int)
    ap.add_argument("--mlp-ratio", type=float)
    ap.add_argument("--qkv-bias", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--qk-scale", type=float)
    ap.add_argument("--ape", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--patch-norm", action=argparse.BooleanOptionalAction, default=None)


def config_from_args(a) -> ModelConfig:
    """The YAML config (or the defaults), then the flags given; validated once, at the end."""
    cfg = ModelConfig.from_yaml(a.config, check=False) if a.config else ModelConfig()
    overrides = {f.name: getattr(a, f.name) for f in dataclasses.fields(ModelConfig)
                 if getattr(a, f.name, None) is not None}
    where = a.config or "config from the command line"
    if a.config and overrides:
        where += " with --" + ", --".join(k.replace("_", "-") for k in overrides)
    return dataclasses.replace(cfg, **overrides).validate(where)


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg = config_from_args(a)
        model = model_from_state_dict(load_checkpoint(a.checkpoint), cfg, a.checkpoint)
        save_safetensors(model, cfg, a.output, a.dtype, source=a.checkpoint)
    except (ConvertError, ConfigError, WeightsError, OSError) as e:
        print(f"swinrt-convert: error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in model.parameters())
    print(f"wrote {a.output}: {n} parameters ({n / 1e6:.2f} M), {a.dtype}, config {cfg.to_json()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
