"""swinrt-export: a Swin-Unet -> ONNX, with a dynamic batch axis.

    swinrt-export CKPT.pth --config MODEL.yaml [--num-classes 9] -o MODEL.onnx
    swinrt-export --weights MODEL.safetensors -o MODEL.onnx [--opset 17] [--dynamo] [--simplify]

The model is the reference SwinUnet (python/swinrt/model.py, the original
wrapper: a 1-channel slice [B, 1, H, W] in, logits [B, classes, H, W] out),
loaded from an original checkpoint (the same rules and hyper-parameter flags
as swinrt-convert) or from a swinrt .safetensors. The graph input is named
"image" and the output "logits"; the batch axis is dynamic, the image size is
fixed by the config. --dynamo uses torch.onnx.export's dynamo exporter (needs
onnxscript; it targets opset 18 at least and converts down where it can);
the default is the legacy TorchScript exporter. --simplify runs onnxslim
(or onnxsim, when named or when onnxslim is missing). Weights are stored
inside the .onnx file (no external data); the file is written atomically.
`swinrt build --onnx`, `swinrt run --onnx` and `swinrt info` read the result.
Exit codes: 0 ok, 1 bad input or failed export (one message on stderr), 2 usage.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import logging
import sys
import warnings

import torch

from .config import ConfigError
from .files import write_atomic
from .convert import ConvertError, add_config_args, config_from_args, load_checkpoint
from .weights import WeightsError, load_safetensors, model_from_state_dict


class ExportError(Exception):
    pass


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="swinrt-export", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("checkpoint", nargs="?", help="original checkpoint (.pth), with --config or the flags")
    src.add_argument("--weights", help="a swinrt .safetensors (from swinrt-convert)")
    ap.add_argument("-o", "--output", required=True, help="output .onnx")
    ap.add_argument("--opset", type=int, default=13, help="ONNX opset (default 13; the dynamo exporter needs 18+ "
                    "and converts down where the ops allow)")
    ap.add_argument("--dynamo", action="store_true", help="use the dynamo exporter (torch.onnx.export(dynamo=True))")
    ap.add_argument("--simplify", nargs="?", const="auto", choices=["auto", "onnxslim", "onnxsim"],
                    help="simplify the graph with onnxslim or onnxsim (auto: whichever is installed, onnxslim first)")
    ap.add_argument("--batch", type=int, default=2, help="batch size of the example input used for tracing (2)")
    add_config_args(ap)
    a = ap.parse_args(argv)
    if a.weights and any(getattr(a, k) is not None for k in ("config", "img_size", "embed_dim", "depths", "num_heads",
                                                               "window_size", "num_classes")):
        ap.error("--weights files carry their config; --config and the hyper-parameter flags go with a checkpoint")
    if a.opset < 11:
        ap.error("--opset must be 11 or more")
    if a.batch < 1:
        ap.error("--batch must be positive")
    return a


def load_model(a):
    """The reference model (eval, FP32) and its config, from --weights or a checkpoint."""
    if a.weights:
        cfg, model = load_safetensors(a.weights)
        return cfg, model
    cfg = config_from_args(a)
    return cfg, model_from_state_dict(load_checkpoint(a.checkpoint), cfg, a.checkpoint)


def _export_legacy(model, x, path, opset):
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=opset, input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
                      do_constant_folding=True)


def _export_dynamo(model, x, path, opset):
    try:
        import onnxscript  # noqa: F401
    except ImportError:
        raise ExportError("--dynamo needs onnxscript (pip install onnxscript)") from None
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    torch.onnx.export(model, (x,), path, dynamo=True, opset_version=opset, input_names=["image"],
                      output_names=["logits"], dynamic_shapes=({0: batch},), external_data=False)


def simplify(path, which):
    """Simplifies the model at `path` in place; returns the tool used."""
    import onnx
    order = ["onnxslim", "onnxsim"] if which == "auto" else [which]
    for tool in order:
        try:
            mod = __import__(tool)
        except ImportError:
            continue
        model = onnx.load(path)
        if tool == "onnxslim":
            model = mod.slim(model)
        else:
            model, ok = mod.simplify(model)
            if not ok:
                raise ExportError("onnxsim could not validate the simplified model")
        onnx.save(model, path)
        return tool
    raise ExportError(f"--simplify: {' or '.join(order)} is not installed (pip install {order[0]})")


def export(model, cfg, path, opset=13, dynamo=False, simplify_with=None, batch=2, quiet=True):
    """Writes `model` (a reference SwinUnet) to `path` as ONNX, atomically.
    Returns a dict with the opset actually written, the exporter and the simplifier."""
    import onnx
    model = model.eval()
    x = torch.rand(batch, 1, cfg.img_size, cfg.img_size, generator=torch.Generator().manual_seed(0))

    def write(tmp):
        sink = io.StringIO()
        loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnxscript", "onnx_ir")] if quiet else []
        levels = [lg.level for lg in loggers]
        try:
            for lg in loggers:
                lg.setLevel(logging.CRITICAL)
            with warnings.catch_warnings(), torch.no_grad(), contextlib.redirect_stdout(sink if quiet else sys.stdout):
                warnings.simplefilter("ignore")
                (_export_dynamo if dynamo else _export_legacy)(model, x, tmp, opset)
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)
        used = simplify(tmp, simplify_with) if simplify_with else None
        m = onnx.load(tmp)
        onnx.checker.check_model(m)
        written = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
        return written, used

    written, used = write_atomic(path, write, suffix=".onnx")
    return {"opset": written, "exporter": "dynamo" if dynamo else "legacy", "simplifier": used}


def main(argv=None) -> int:
    a = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        cfg, model = load_model(a)
        info = export(model, cfg, a.output, a.opset, a.dynamo, a.simplify, a.batch)
    except (ConvertError, ConfigError, WeightsError, ExportError, OSError) as e:
        print(f"swinrt-export: error: {e}", file=sys.stderr)
        return 1
    except Exception as e:  # the exporters' own errors
        print(f"swinrt-export: error: the {'dynamo' if a.dynamo else 'legacy'} exporter failed "
              f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})", file=sys.stderr)
        return 1
    note = f", simplified by {info['simplifier']}" if info["simplifier"] else ""
    if info["opset"] != a.opset:
        note += f" (opset {a.opset} was asked; the exporter wrote {info['opset']})"
    print(f"wrote {a.output}: {info['exporter']} exporter, opset {info['opset']}{note}, dynamic batch axis, "
          f"input 'image' [batch, 1, {cfg.img_size}, {cfg.img_size}], config {cfg.to_json()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
