"""Trains a compact Swin-Unet on phantom CT slices (the bundled demo model).

    python -m swinrt.train --out DIR [--minutes 4] [--steps N] [--device auto] ...

The recipe is the original Swin-Unet's (train.py / trainer.py of
HuCaoFighting/Swin-Unet) at a smaller scale and from scratch: slices resized
to img_size as its RandomGenerator does (scipy zoom, order 3 image, order 0
label), its augmentation (half the slices a random rot90 + flip, a quarter a
random rotation in [-20, 20] degrees, nearest-neighbour for both) or only the
rotations (--augment rotate, the default: mirroring swaps the sides that tell
the left kidney from the right), the loss 0.4 * cross-entropy + 0.6 * soft
dice over all classes, Swin weight init (trunc_normal 0.02), and AdamW (or the
original SGD) with linear warm-up and the original poly decay. Mixed
precision (bf16) on CUDA.

Data: phantom volumes from swinrt.phantom (train seeds --train-seed ...,
held-out seeds --val-seed ...), generated in worker processes before
training, every slice used; or --data DIR, a Synapse-layout directory
(DIR/train_npz/*.npz listed in DIR/lists_Synapse/train.txt).

--steps 0 (default) times the first steps and then fixes the step count so
that training takes --minutes; the count is printed and recorded, and
--steps N with that N repeats the schedule.

At the end: DIR/demo_swin_unet.safetensors (fp16, swinrt's format), then the
held-out volumes are evaluated with the original test protocol (each 512x512
slice zoomed to img_size with order 3, argmax, labels zoomed back with order
0, per class dice and hd95 as medpy computes them, on the fp16 weights as
shipped), printed in the original log lines and written to DIR/metrics.json.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import sys
import time

import numpy as np
from scipy import ndimage

from . import phantom
from .files import write_atomic
from .demo import DEMO_CONFIG, DEPTH, TRAIN_SEED, VAL_SEED

# ---------------------------------------------------------------- data


def resize_slices(image: np.ndarray, label: np.ndarray, size: int):
    """Slices [D, x, y] -> [D, size, size] as the original RandomGenerator
    (zoom(image, (size/x, size/y), order=3); labels order=0)."""
    D, x, y = image.shape
    if (x, y) == (size, size):
        return image.astype(np.float32), label.astype(np.uint8)
    f = (size / x, size / y)
    img = np.stack([ndimage.zoom(s, f, order=3) for s in image]).astype(np.float32)
    lab = np.stack([ndimage.zoom(s, f, order=0) for s in label]).astype(np.uint8)
    return img, lab


def _train_volume(job):
    seed, depth, size, img_size = job
    v = phantom.generate(seed, depth, size)
    return resize_slices(v.image, v.label, img_size)


def _val_volume(job):
    """A held-out volume: (name, inputs resized as the test protocol does,
    the full-resolution label, the label resized for quick checks)."""
    seed, depth, size, img_size = job
    v = phantom.generate(seed, depth, size)
    x, small = resize_slices(v.image, v.label, img_size)
    return v.name, x, v.label, small


def load_synapse_train(directory: str, img_size: int, list_file: str = None):
    list_file = list_file or os.path.join(directory, "lists_Synapse", "train.txt")
    with open(list_file) as f:
        names = [n.strip() for n in f if n.strip()]
    imgs, labs = [], []
    for n in names:
        d = np.load(os.path.join(directory, "train_npz", n + ".npz"))
        i, lab = resize_slices(d["image"][None], d["label"][None], img_size)
        imgs.append(i)
        labs.append(lab)
    return np.concatenate(imgs), np.concatenate(labs)


# ---------------------------------------------------------------- metrics (the original's, numpy/scipy)


def _surface_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """medpy.metric.binary.__surface_distances(a, b), unit spacing: distances
    from each surface voxel of a to the nearest surface voxel of b."""
    fp = ndimage.generate_binary_structure(a.ndim, 1)
    a_border = a ^ ndimage.binary_erosion(a, structure=fp, iterations=1)
    b_border = b ^ ndimage.binary_erosion(b, structure=fp, iterations=1)
    return ndimage.distance_transform_edt(~b_border)[a_border]


def metric_percase(pred: np.ndarray, gt: np.ndarray):
    """The original calculate_metric_percase: (dice, hd95) with medpy's
    definitions, computed on the bounding box of both masks grown by one
    voxel (which changes no surface and no distance)."""
    ps, gs = int(pred.sum()), int(gt.sum())
    if ps > 0 and gs > 0:
        both = pred | gt
        box = []
        for axis in range(both.ndim):
            nz = np.nonzero(both.any(axis=tuple(i for i in range(both.ndim) if i != axis)))[0]
            box.append(slice(max(int(nz[0]) - 1, 0), int(nz[-1]) + 2))
        p, g = pred[tuple(box)], gt[tuple(box)]
        dice = 2.0 * int((p & g).sum()) / (ps + gs)
        d = np.hstack((_surface_distances(p, g), _surface_distances(g, p)))
        return dice, float(np.percentile(d, 95))
    if ps > 0:
        return 1.0, 0.0
    return 0.0, 0.0


def _case_metrics(job):
    pred, label, num_classes = job
    return [metric_percase(pred == c, label == c) for c in range(1, num_classes)]


def zoom_back(labels: np.ndarray, shape) -> np.ndarray:
    """[D, S, S] labels -> [D, x, y] with zoom(order=0), as the original."""
    D, S, _ = labels.shape
    if tuple(shape[1:]) == (S, S):
        return labels
    f = (shape[1] / S, shape[2] / S)
    return np.stack([ndimage.zoom(s, f, order=0) for s in labels])


# ---------------------------------------------------------------- model, loss, augmentation


def swin_init_(model):
    """The original's _init_weights: Linear trunc_normal(0.02) and zero bias,
    LayerNorm (1, 0), relative position bias tables trunc_normal(0.02)."""
    import torch.nn as nn

    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if hasattr(m, "relative_position_bias_table"):
            nn.init.trunc_normal_(m.relative_position_bias_table, std=0.02)
    return model


def dice_loss(logits, target, num_classes):
    """The original DiceLoss(softmax=True): 1 - soft dice per class (all
    classes, background included), averaged; sums over the whole batch."""
    import torch

    score = torch.softmax(logits.float(), dim=1)
    onehot = torch.nn.functional.one_hot(target, num_classes).permute(0, 3, 1, 2).float()
    smooth = 1e-5
    inter = (score * onehot).sum(dim=(0, 2, 3))
    z = (score * score).sum(dim=(0, 2, 3))
    y = (onehot * onehot).sum(dim=(0, 2, 3))
    return (1 - (2 * inter + smooth) / (z + y + smooth)).mean()


def augment(x, y, mode: str, gen):
    """x [B, 1, S, S] float, y [B, S, S] long, on one device. 'original':
    each slice with p 1/2 a random rot90 (k in 0..3) then a flip along a
    random axis, else with p 1/2 a rotation by U(-20, 20) degrees;
    'rotate': with p 1/2 the rotation only; 'none'. Nearest-neighbour for
    image and label, zeros outside, as the original (scipy order 0)."""
    import torch
    import torch.nn.functional as F

    if mode == "none":
        return x, y
    B, dev = x.shape[0], x.device
    r = torch.rand(B, 2, generator=gen, device=dev)
    angle = (torch.rand(B, generator=gen, device=dev) * 40 - 20) * math.pi / 180
    if mode == "original":
        rotflip = r[:, 0] > 0.5
        rotate = (~rotflip) & (r[:, 1] > 0.5)
    else:
        rotflip = torch.zeros(B, dtype=torch.bool, device=dev)
        rotate = r[:, 0] > 0.5
    angle = torch.where(rotate, angle, torch.zeros_like(angle))
    k = torch.randint(0, 4, (B,), generator=gen, device=dev)
    angle = torch.where(rotflip, k.float() * (math.pi / 2), angle)
    c, s = torch.cos(angle), torch.sin(angle)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    flip_axis = torch.randint(0, 2, (B,), generator=gen, device=dev)
    flip = torch.eye(2, device=dev).repeat(B, 1, 1)
    fl = rotflip & (flip_axis == 0)
    fr = rotflip & (flip_axis == 1)
    flip[fl, 0, 0] = -1
    flip[fr, 1, 1] = -1
    affine = torch.cat([rot @ flip, torch.zeros(B, 2, 1, device=dev)], 2)
    grid = F.affine_grid(affine, list(x.shape), align_corners=False)
    both = torch.cat([x.float(), y.unsqueeze(1).float()], 1)
    out = F.grid_sample(both, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    return out[:, :1].to(x.dtype), out[:, 1].round().long()


# ---------------------------------------------------------------- evaluation


def predict(model, slices: np.ndarray, device, batch: int = 32) -> np.ndarray:
    """argmax(softmax(model(slices))) of [D, S, S] inputs, fp32."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(slices), batch):
            x = torch.from_numpy(slices[i:i + batch]).to(device).unsqueeze(1)
            out.append(torch.argmax(torch.softmax(model(x), dim=1), dim=1).to(torch.uint8).cpu().numpy())
    return np.concatenate(out)


def evaluate(model, val, device, num_classes, pool=None, log=print):
    """The original test protocol on the held-out volumes; returns the
    metrics document (eval_json's layout) and logs the original lines."""
    preds = [zoom_back(predict(model, x, device), label.shape) for _, x, label, _ in val]
    jobs = [(p, label, num_classes) for p, (_, _, label, _) in zip(preds, val)]
    per_case = pool.map(_case_metrics, jobs) if pool is not None else [_case_metrics(j) for j in jobs]
    log(f"{len(val)} test iterations per epoch")
    doc = {"cases": {}, "classes": {}}
    for i, ((name, *_), m) in enumerate(zip(val, per_case)):
        md, mh = float(np.mean([d for d, _ in m])), float(np.mean([h for _, h in m]))
        log(f"idx {i} case {name} mean_dice {md:.6f} mean_hd95 {mh:.6f}")
        doc["cases"][name] = {str(c + 1): {"dice": float(d), "hd95": float(h)} for c, (d, h) in enumerate(m)}
    arr = np.array(per_case, dtype=np.float64)  # cases x classes x 2
    for c in range(num_classes - 1):
        d, h = arr[:, c].mean(0)
        log(f"Mean class {c + 1} mean_dice {d:.6f} mean_hd95 {h:.6f}")
        doc["classes"][str(c + 1)] = {"dice": float(d), "hd95": float(h)}
    doc["mean_dice"] = float(np.mean([v["dice"] for v in doc["classes"].values()]))
    doc["mean_hd95"] = float(np.mean([v["hd95"] for v in doc["classes"].values()]))
    log(f"Testing performance in best val model: mean_dice : {doc['mean_dice']:.6f} "
        f"mean_hd95 : {doc['mean_hd95']:.6f}")
    return doc


def quick_dice(model, val, device, num_classes):
    """Mean per-class dice over the held-out volumes at img_size (labels
    zoomed down): a cheap progress figure, not the protocol's."""
    ds = []
    for _, x, _, g in val:
        p = predict(model, x, device)
        for c in range(1, num_classes):
            a, b = p == c, g == c
            ds.append(2 * (a & b).sum() / max(a.sum() + b.sum(), 1) if b.any() else float(not a.any()))
    return float(np.mean(ds))


# ---------------------------------------------------------------- main


def _ints(text):
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="python -m swinrt.train", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--name", default="demo_swin_unet", help="weights file name (without .safetensors)")
    g = ap.add_argument_group("model (the bundled demo model's defaults)")
    c = DEMO_CONFIG
    g.add_argument("--img-size", type=int, default=c.img_size)
    g.add_argument("--embed-dim", type=int, default=c.embed_dim)
    g.add_argument("--depths", type=_ints, default=c.depths)
    g.add_argument("--num-heads", type=_ints, default=c.num_heads)
    g.add_argument("--window-size", type=int, default=c.window_size)
    g.add_argument("--num-classes", type=int, default=c.num_classes)
    g = ap.add_argument_group("data")
    g.add_argument("--data", help="a Synapse-layout directory to train on instead of generated phantoms")
    g.add_argument("--train-seed", type=int, default=TRAIN_SEED, help=f"first phantom seed for training ({TRAIN_SEED})")
    g.add_argument("--train-volumes", type=int, default=60)
    g.add_argument("--val-seed", type=int, default=VAL_SEED, help=f"first held-out phantom seed ({VAL_SEED})")
    g.add_argument("--val-volumes", type=int, default=4)
    g.add_argument("--depth", type=int, default=DEPTH, help=f"slices per phantom volume ({DEPTH})")
    g.add_argument("--size", type=int, default=512, help="phantom slice size (512, as Synapse)")
    g.add_argument("--workers", type=int, default=0, help="data processes (0: one per CPU core)")
    g = ap.add_argument_group("training")
    g.add_argument("--steps", type=int, default=0, help="0: as many as fit in --minutes (timed on the first steps)")
    g.add_argument("--minutes", type=float, default=4.0, help="training time when --steps is 0")
    g.add_argument("--batch", type=int, default=32)
    g.add_argument("--optimizer", choices=["adamw", "sgd"], default="adamw")
    g.add_argument("--lr", type=float, default=0, help="0: 2e-3 for AdamW, 0.05 for SGD (the original's)")
    g.add_argument("--weight-decay", type=float, default=-1, help="-1: 0.05 for AdamW, 1e-4 for SGD")
    g.add_argument("--warmup", type=int, default=150, help="linear warm-up steps")
    g.add_argument("--augment", choices=["rotate", "original", "none"], default="rotate")
    g.add_argument("--seed", type=int, default=0, help="torch seed (init, batches, augmentation)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    g.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: default)")
    g.add_argument("--log-every", type=int, default=50)
    g.add_argument("--val-every", type=int, default=500, help="steps between quick held-out dice checks (0: never)")
    return ap.parse_args(argv)


def main(argv=None) -> int:
    a = parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    log_path = os.path.join(a.out, "train_log.txt")
    log_file = open(log_path, "a")

    def log(msg):
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    t_start = time.time()
    log(f"# python -m swinrt.train {' '.join(sys.argv[1:] if argv is None else argv)}")
    # Data first, in worker processes forked before CUDA is touched.
    workers = a.workers or os.cpu_count() or 1
    ctx = mp.get_context("fork")
    pool = ctx.Pool(workers)
    val_jobs = [(a.val_seed + i, a.depth, a.size, a.img_size) for i in range(a.val_volumes)]
    val_async = pool.map_async(_val_volume, val_jobs)
    if a.data:
        train_x, train_y = load_synapse_train(a.data, a.img_size)
        source = f"Synapse-layout slices from {a.data}"
    else:
        jobs = [(a.train_seed + i, a.depth, a.size, a.img_size) for i in range(a.train_volumes)]
        vols = pool.map(_train_volume, jobs, chunksize=1)
        train_x = np.concatenate([v[0] for v in vols])
        train_y = np.concatenate([v[1] for v in vols])
        del vols
        source = (f"phantom seeds {a.train_seed}..{a.train_seed + a.train_volumes - 1} "
                  f"({a.train_volumes} x {a.depth} slices of {a.size}x{a.size})")
    val = val_async.get()
    t_data = time.time() - t_start
    log(f"data: {len(train_x)} training slices ({source}), {len(val)} held-out volumes "
        f"(seeds {a.val_seed}..{a.val_seed + a.val_volumes - 1}), {t_data:.1f} s on {workers} processes")
    counts = np.bincount(train_y.ravel(), minlength=a.num_classes) / train_y.size
    log("class fractions: " + " ".join(f"{c}:{f:.4f}" for c, f in enumerate(counts)))

    import torch

    from .config import ModelConfig
    from .model import SwinUnet
    from .weights import load_safetensors, save_safetensors

    if a.threads:
        torch.set_num_threads(a.threads)
    device = torch.device("cuda" if a.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if a.device == "auto" else a.device))
    torch.manual_seed(a.seed)
    gen = torch.Generator(device=device).manual_seed(a.seed)
    cfg = ModelConfig(img_size=a.img_size, embed_dim=a.embed_dim, depths=a.depths, num_heads=a.num_heads,
                      window_size=a.window_size, num_classes=a.num_classes).validate("flags")
    model = swin_init_(SwinUnet(cfg)).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    log(f"model: {cfg.to_json()}")
    log(f"{n_params} parameters ({n_params * 2 / 2 ** 20:.2f} MiB in fp16); device {device} ({dev_name}); "
        f"torch {torch.__version__}")

    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    X = torch.from_numpy(train_x).to(device)
    Y = torch.from_numpy(train_y).to(device)
    del train_x, train_y
    lr = a.lr or (2e-3 if a.optimizer == "adamw" else 0.05)
    wd = a.weight_decay if a.weight_decay >= 0 else (0.05 if a.optimizer == "adamw" else 1e-4)
    if a.optimizer == "adamw":
        decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "relative_position_bias_table" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "relative_position_bias_table"
                                                                     not in n)]
        opt = torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": no_decay, "weight_decay": 0}],
                                lr=lr, betas=(0.9, 0.999))
    else:
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
    ce = torch.nn.CrossEntropyLoss()
    amp = device.type == "cuda"

    steps = a.steps
    calib_from, calib_to = 20, 120
    t_train = time.time()
    t_calib = None
    step, losses, t_log = 0, [], time.time()
    history = []
    while steps == 0 or step < steps:
        # the learning rate: linear warm-up, then the original's poly decay
        if step < a.warmup:
            f = (step + 1) / a.warmup
        elif steps:
            f = (1 - (step - a.warmup) / max(steps - a.warmup, 1)) ** 0.9
        else:
            f = 1.0
        for gp in opt.param_groups:
            gp["lr"] = lr * f
        model.train()
        idx = torch.randint(0, len(X), (a.batch,), generator=gen, device=device)
        x, y = augment(X[idx].unsqueeze(1), Y[idx].long(), a.augment, gen)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        loss = 0.4 * ce(logits.float(), y) + 0.6 * dice_loss(logits, y, a.num_classes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
        step += 1
        if steps == 0 and step == calib_from:
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_calib = time.time()
        if steps == 0 and step == calib_to:
            if device.type == "cuda":
                torch.cuda.synchronize()
            # 10% for the held-out checks and the drift of the step time
            per_step = (time.time() - t_calib) / (calib_to - calib_from) * 1.1
            steps = max(calib_to + 1, int(a.minutes * 60 / per_step))
            log(f"timing: {per_step * 1000 / 1.1:.1f} ms per step of {a.batch} -> {steps} steps in about "
                f"{a.minutes} min (repeat with --steps {steps})")
        if step % a.log_every == 0 or step == steps:
            mean_loss = float(torch.stack(losses).mean())
            losses = []
            dt = (time.time() - t_log) / a.log_every
            line = f"step {step}/{steps or '?'} loss {mean_loss:.4f} lr {lr * f:.2e} {dt * 1000:.0f} ms/step"
            if a.val_every and (step % a.val_every == 0 or step == steps):
                qd = quick_dice(model, val, device, a.num_classes)
                line += f" held-out dice@{a.img_size} {qd:.4f}"
                history.append({"step": step, "loss": mean_loss, "quick_dice": qd})
            else:
                history.append({"step": step, "loss": mean_loss})
            log(line)
            t_log = time.time()
    t_train = time.time() - t_train
    log(f"trained {step} steps in {t_train:.1f} s")

    # Ship fp16, then evaluate what was shipped.
    weights = os.path.join(a.out, a.name + ".safetensors")
    save_safetensors(model.float().cpu(), cfg, weights, "fp16",
                     source=f"swinrt.train: {source}, {step} steps of {a.batch}, seed {a.seed}")
    log(f"wrote {weights} ({os.path.getsize(weights) / 2 ** 20:.2f} MiB)")
    _, shipped = load_safetensors(weights)
    shipped = shipped.to(device)
    t_eval = time.time()
    doc = evaluate(shipped, val, device, a.num_classes, pool, log)
    t_eval = time.time() - t_eval
    pool.close()
    doc.update({
        "weights": os.path.basename(weights), "config": json.loads(cfg.to_json()), "parameters": n_params,
        "args": vars(a), "steps": step, "train_slices": int(len(X)), "val_seeds": [j[0] for j in val_jobs],
        "device": dev_name, "torch": torch.__version__, "numpy": np.__version__,
        "seconds": {"data": t_data, "train": t_train, "eval": t_eval, "total": time.time() - t_start},
        "history": history,
    })
    path = os.path.join(a.out, "metrics.json")
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(doc, f, indent=1)
    write_atomic(path, write)
    verdict = "reached" if doc["mean_dice"] >= 0.85 else "NOT reached"
    log(f"held-out mean dice {doc['mean_dice']:.4f} (the demo model's target 0.85: {verdict}); wrote {path}; "
        f"total {time.time() - t_start:.0f} s")
    log_file.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
