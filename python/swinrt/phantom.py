"""swinrt-phantom: deterministic abdomen-like CT volumes in the Synapse format.

    swinrt-phantom --out DIR [--seed N] [--volumes K] [--depth D] [--train-slices M]

writes K test volumes DIR/caseNNNN.npy.h5 (seeds N .. N+K-1, NNNN the seed),
M training slices DIR/train_npz/caseNNNN_sliceZZZ.npz from the volumes of the
next seeds (N+K, N+K+1, ..., every slice of each until M are written) and the
lists DIR/lists_Synapse/test_vol.txt and train.txt, as the original Synapse
data (TransUNet's preprocessing) is laid out. Every file is written to a
temporary name and renamed.

A volume is D axial slices of SIZE x SIZE pixels (512 by default), `image`
float32 in [0, 1] (HU clipped to [-125, 275], then (HU + 125) / 400, as the
Synapse preprocessing does) and `label` uint8 with the 8 Synapse organs:
1 aorta, 2 gallbladder, 3 left kidney, 4 right kidney, 5 liver, 6 pancreas,
7 spleen, 8 stomach (0 everything else).

Anatomy, in the radiological convention (row 0 anterior, column 0 the
patient's right, slice 0 the most superior): a body ellipse with
subcutaneous fat and an abdominal wall, spine, ribs, paraspinal and psoas
muscles; the liver (two lobes, portal vessels) on the image left with the
gallbladder under it; spleen and stomach (fluid, food, air) on the image
right; kidneys beside the spine with cortex, medulla and hilum; the pancreas
as a tube from the duodenum past the aorta to the splenic hilum; aorta, IVC,
mesenteric vessels and bowel loops (unlabelled, as in Synapse). Each organ is
a smooth, randomly deformed ellipsoid (or tube) at a seed-dependent position,
size and rotation, with portal-venous intensities, smooth texture, a
partial-volume blur and correlated noise. The seed fixes everything:
the same seed gives the same bytes on the same numpy/scipy.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .files import write_atomic

ORGANS = {1: "aorta", 2: "gallbladder", 3: "left kidney", 4: "right kidney", 5: "liver", 6: "pancreas",
          7: "spleen", 8: "stomach"}
HU_MIN, HU_MAX = -125.0, 275.0


def normalise(hu: np.ndarray) -> np.ndarray:
    """The Synapse preprocessing: clip to [-125, 275] HU, scale to [0, 1]."""
    return ((np.clip(hu, HU_MIN, HU_MAX) - HU_MIN) / (HU_MAX - HU_MIN)).astype(np.float32)


@dataclass
class Volume:
    name: str
    image: np.ndarray   # float32 [D, H, W] in [0, 1]
    label: np.ndarray   # uint8 [D, H, W], 0..8


class _Canvas:
    """The volume being drawn. Anatomical coordinates: a (patient right ->
    left, i.e. image left -> right) and b (anterior -> posterior), both about
    [-1, 1] over the field of view, and t in [0, 1] (superior -> inferior).
    A per-seed similarity transform (patient size, position, a small tilt)
    and z coverage map them to pixels and slices."""

    def __init__(self, rng: np.random.Generator, depth: int, size: int):
        self.scale = rng.uniform(0.9, 1.06)
        self.rot = math.radians(rng.uniform(-4, 4))
        self.shift = rng.uniform(-0.03, 0.03, 2)
        # slice z covers anatomical t in [t0, t0 + tspan]
        self.tspan = rng.uniform(0.92, 1.06)
        self.t0 = rng.uniform(-0.03, 0.03)
        self.hu = np.full((depth, size, size), -1000.0, np.float32)
        self.label = np.zeros((depth, size, size), np.uint8)
        self.texture = np.zeros((depth, size, size), np.float32)   # per-voxel texture amplitude (HU)
        pix = (np.arange(size, dtype=np.float32) + 0.5) / size * 2 - 1
        self.pix = pix
        self.t_of_slice = (self.t0 + self.tspan * np.arange(depth, dtype=np.float32) / max(depth - 1, 1)).astype(
            np.float32)

    # --- coordinates ---
    def to_image(self, a, b):
        c, s = math.cos(self.rot), math.sin(self.rot)
        return (self.scale * (c * a - s * b) + self.shift[0], self.scale * (s * a + c * b) + self.shift[1])

    def box(self, a0, a1, b0, b1, t0, t1):
        """Slices of the volume covering the anatomical box, or None if empty."""
        corners = [self.to_image(a, b) for a in (a0, a1) for b in (b0, b1)]
        us, vs = [c[0] for c in corners], [c[1] for c in corners]
        m = 0.02
        x0, x1 = np.searchsorted(self.pix, min(us) - m), np.searchsorted(self.pix, max(us) + m)
        y0, y1 = np.searchsorted(self.pix, min(vs) - m), np.searchsorted(self.pix, max(vs) + m)
        z = np.nonzero((self.t_of_slice >= t0) & (self.t_of_slice <= t1))[0]
        if len(z) == 0 or x1 <= x0 or y1 <= y0:
            return None
        return slice(int(z[0]), int(z[-1]) + 1), slice(int(y0), int(y1)), slice(int(x0), int(x1))

    def grid(self, box):
        """Anatomical A, B [1, h, w] and T [d, 1, 1] over a box."""
        zs, ys, xs = box
        u = self.pix[xs][None, None, :] - self.shift[0]
        v = self.pix[ys][None, :, None] - self.shift[1]
        c, s = math.cos(self.rot), math.sin(self.rot)
        A = (c * u + s * v) / self.scale
        B = (-s * u + c * v) / self.scale
        T = self.t_of_slice[zs][:, None, None]
        return A.astype(np.float32), B.astype(np.float32), T

    # --- painting ---
    def paint(self, box, mask, hu, label=None, texture=0.0):
        """Sets hu (a number or an array over the box), label (None: unchanged)
        and texture amplitude where mask (over the box) holds."""
        if box is None or not mask.any():
            return
        view = self.hu[box]
        if np.ndim(hu) == 0:
            view[mask] = hu
        else:
            view[mask] = np.broadcast_to(hu, mask.shape)[mask]
        if label is not None:
            self.label[box][mask] = label
        self.texture[box][mask] = texture


def _modes(rng, n=3, amp=0.12):
    """Random smooth shape modes: (frequencies [n, 3], phases [n], amplitudes [n])."""
    direction = rng.normal(size=(n, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    freq = direction * rng.uniform(1.0, 2.6, (n, 1))
    phase, amp = rng.uniform(0, 2 * np.pi, n), rng.uniform(0.3, 1.0, n) * amp
    return freq.astype(np.float32), phase.astype(np.float32), amp.astype(np.float32)


@dataclass
class Blob:
    """A deformed ellipsoid: centre (ca, cb) at t = tc drifting by (da, db)
    per unit t, semi-axes (sa, sb) in-plane rotated by theta (degrees), and
    tc +- th along t."""
    ca: float
    cb: float
    sa: float
    sb: float
    theta: float
    tc: float
    th: float
    da: float = 0.0
    db: float = 0.0
    modes: tuple = None

    def bounds(self):
        """(a0, a1, b0, b1, t0, t1) holding the whole blob: the modes shrink
        the quadratic form by at most the sum of their amplitudes."""
        margin = 1.02 / math.sqrt(1 - min(float(self.modes[2].sum()), 0.8)) if self.modes is not None else 1.02
        r = max(self.sa, self.sb) * margin
        drift = max(abs(self.da), abs(self.db)) * self.th * margin
        return (self.ca - r - drift, self.ca + r + drift, self.cb - r - drift, self.cb + r + drift,
                self.tc - self.th * margin, self.tc + self.th * margin)

    def local(self, A, B, T):
        """Normalised local coordinates (pa, pb, pt) over the grid."""
        dt = T - self.tc
        da = A - (self.ca + self.da * dt)
        db = B - (self.cb + self.db * dt)
        c, s = math.cos(math.radians(self.theta)), math.sin(math.radians(self.theta))
        return (c * da + s * db) / self.sa, (-s * da + c * db) / self.sb, dt / self.th

    def field(self, A, B, T):
        """< 1 inside: the ellipsoid's quadratic form, times 1 + smooth modes."""
        pa, pb, pt = self.local(A, B, T)
        f = pa * pa + pb * pb + pt * pt
        if self.modes is not None:
            freq, phase, amp = self.modes
            warp = 1.0
            for k in range(len(phase)):
                warp = warp + amp[k] * np.sin(freq[k, 0] * pa + freq[k, 1] * pb + freq[k, 2] * pt + phase[k])
            f = f * warp
        return f.astype(np.float32, copy=False)


def _jit(rng, x, d):
    return x + rng.uniform(-d, d)


def _blob(rng, ca, cb, sa, sb, theta, tc, th, da=0.0, db=0.0, pos=0.035, size=0.12, amp=0.12):
    """A Blob with seed-dependent position, size, rotation, z range and shape."""
    k = rng.uniform(1 - size, 1 + size)
    return Blob(_jit(rng, ca, pos), _jit(rng, cb, pos), sa * k * rng.uniform(0.93, 1.07),
                sb * k * rng.uniform(0.93, 1.07), _jit(rng, theta, 8), _jit(rng, tc, 0.04),
                th * rng.uniform(0.88, 1.12), da, db, _modes(rng, 3, amp))


def _draw_blob(cv: _Canvas, blob: Blob, hu, label=None, texture=0.0, extra=None):
    box = cv.box(*blob.bounds())
    if box is None:
        return None, None, None
    A, B, T = cv.grid(box)
    f = blob.field(A, B, T)
    mask = f < 1
    if extra is not None:
        mask &= extra(A, B, T)
    cv.paint(box, mask, hu, label, texture)
    return box, f, (A, B, T)


def _tube(cv: _Canvas, points, radii, tz, hu, label=None, texture=0.0, samples=48, within=None):
    """A tube along a quadratic Bezier curve through 3 control points (a, b, t);
    radius interpolated along the curve in (a, b) units, tz its half-extent
    in t. Distance to the curve by dense sampling. `within`: paint only over
    that label."""
    p = np.asarray(points, np.float64)
    s = np.linspace(0, 1, samples)[:, None]
    curve = (1 - s) ** 2 * p[0] + 2 * (1 - s) * s * p[1] + s ** 2 * p[2]
    r = np.interp(s[:, 0], np.linspace(0, 1, len(radii)), radii)
    rmax = float(max(radii))
    box = cv.box(curve[:, 0].min() - rmax, curve[:, 0].max() + rmax, curve[:, 1].min() - rmax,
                 curve[:, 1].max() + rmax, curve[:, 2].min() - tz, curve[:, 2].max() + tz)
    if box is None:
        return
    A, B, T = cv.grid(box)
    best = np.full(np.broadcast_shapes(A.shape, B.shape, T.shape), np.inf, np.float32)
    for (ca, cb, ct), rk in zip(curve, r):
        d = ((A - ca) / rk) ** 2 + ((B - cb) / rk) ** 2 + ((T - ct) / tz) ** 2
        np.minimum(best, d, out=best)
    mask = best < 1
    if within is not None:
        mask &= cv.label[box] == within
    cv.paint(box, mask, hu, label, texture)


def _upsample(x: np.ndarray, n: int, axis: int) -> np.ndarray:
    """Linear interpolation of `x` to n samples along `axis`, pixel centres
    aligned, edges clamped."""
    m = x.shape[axis]
    pos = np.clip((np.arange(n) + 0.5) * m / n - 0.5, 0, m - 1)
    i0 = np.floor(pos).astype(np.intp)
    i1 = np.minimum(i0 + 1, m - 1)
    shape = [1] * x.ndim
    shape[axis] = n
    w = (pos - i0).astype(np.float32).reshape(shape)
    lo = np.take(x, i0, axis=axis)
    lo *= 1 - w
    lo += np.take(x, i1, axis=axis) * w
    return lo


def _smooth_noise(rng, shape, sigma, down):
    """Unit-std smooth noise: white noise on a grid `down` times coarser
    in-plane, Gaussian-filtered (sigma in coarse pixels), interpolated up."""
    D, H, W = shape
    h, w = -(-H // down), -(-W // down)
    small = rng.standard_normal((D, h, w), dtype=np.float32)
    small = ndimage.gaussian_filter(small, sigma, mode="wrap")
    small /= max(float(small.std()), 1e-6)
    return _upsample(_upsample(small, W, 2), H, 1)


def _gaussian_gain(sigma: float, truncate: float) -> float:
    """std of white noise after scipy's 1D Gaussian filter (sigma, truncate)."""
    r = int(truncate * sigma + 0.5)
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    return float(np.sqrt((k * k).sum()))


def generate(seed: int, depth: int = 48, size: int = 512) -> Volume:
    """One phantom volume (see the module doc); deterministic in `seed`."""
    if depth < 1 or size < 32:
        raise ValueError(f"depth {depth} and size {size}: need depth >= 1 and size >= 32")
    rng = np.random.default_rng([seed, 0x5EED])
    cv = _Canvas(rng, depth, size)
    enh = rng.uniform(0.85, 1.15)                   # contrast enhancement of this scan
    def organ_hu(base, enhanced, jitter=8.0):      # noqa: E306
        return base + enh * (enhanced - base) + rng.uniform(-jitter, jitter)

    # ---- couch and body (the same outline on every slice): subcutaneous fat,
    # abdominal wall muscle, visceral fat
    ba, bb = rng.uniform(0.78, 0.88), rng.uniform(0.6, 0.68)
    bc = rng.uniform(0.04, 0.08)
    fat, wall = rng.uniform(0.04, 0.09), rng.uniform(0.025, 0.04)
    A, B, _ = cv.grid(cv.box(-2, 2, -2, 2, -9, 9))
    A, B = A[0], B[0]
    bn = B - bc

    def outline(sa, sb):  # < 1 inside; the back flatter than the front
        return (A / sa) ** 2 + np.where(bn > 0, np.abs(bn / sb) ** 2.6, (bn / sb) ** 2)

    base = np.full(A.shape, -1000.0, np.float32)
    tex = np.zeros(A.shape, np.float32)
    base[(np.abs(B - 0.86 - 0.06 * A * A) < 0.02) & (np.abs(A) < 0.95)] = 60.0
    for f, hu, amp in ((outline(ba, bb), -105.0 + rng.uniform(-10, 10), 12.0),
                       (outline(ba - fat, bb - fat), 45.0 + rng.uniform(-8, 8), 8.0),
                       (outline(ba - fat - wall, bb - fat - wall), -90.0 + rng.uniform(-10, 10), 14.0)):
        base[f < 1] = hu
        tex[f < 1] = amp
    cv.hu[:] = base
    cv.texture[:] = tex
    del A, B, bn, base, tex

    # ---- muscles behind and beside the spine
    for side in (-1, 1):
        _draw_blob(cv, _blob(rng, side * 0.15, 0.57, 0.1, 0.075, side * 10, 0.5, 1.2, pos=0.01), 50.0, texture=6.0)
        # psoas: appears in the lower half and grows inferiorly
        psoas = _blob(rng, side * 0.17, 0.36, 0.07, 0.06, 0, 1.0, 0.45, da=side * 0.05, pos=0.015)
        _draw_blob(cv, psoas, 50.0, texture=6.0)

    # ---- bowel loops and colon (unlabelled), overwritten by the organs
    n_loops = int(rng.integers(22, 34))
    for _ in range(n_loops):
        ca, cb = rng.uniform(-0.6, 0.6), rng.uniform(-0.45, 0.15)
        tc = rng.uniform(0.35, 1.1)
        r = rng.uniform(0.04, 0.1)
        loop = Blob(ca, cb, r, r * rng.uniform(0.7, 1.3), rng.uniform(0, 180), tc, rng.uniform(0.06, 0.18),
                    modes=_modes(rng, 2, 0.1))
        content = rng.choice([15.0, 35.0, -700.0]) + rng.uniform(-10, 10)
        box, f, _ = _draw_blob(cv, loop, 95.0 + rng.uniform(-15, 15), texture=8.0)
        if box is not None:
            cv.paint(box, f < 0.55, content, texture=15.0)
    for side in (-1, 1):   # hepatic and splenic flexures: air-filled colon
        colon = _blob(rng, side * 0.55, -0.12, 0.09, 0.08, 0, 0.8, 0.25, pos=0.04)
        box, f, _ = _draw_blob(cv, colon, 80.0, texture=8.0)
        if box is not None:
            cv.paint(box, f < 0.6, -600.0 + rng.uniform(-200, 100), texture=20.0)

    # ---- mesenteric vessels (unlabelled)
    _draw_blob(cv, _blob(rng, 0.07, 0.1, 0.022, 0.022, 0, 0.75, 0.35, db=-0.1, pos=0.01, amp=0.03),
               organ_hu(60, 190), texture=4.0)
    _draw_blob(cv, _blob(rng, -0.03, 0.1, 0.028, 0.028, 0, 0.75, 0.35, db=-0.1, pos=0.01, amp=0.03),
               organ_hu(50, 150), texture=4.0)

    # ---- liver (5): right lobe + left lobe, portal vessels inside
    right = _blob(rng, -0.44, 0.0, 0.29, 0.38, -10, 0.22, 0.48, da=-0.1, db=0.2)
    left = _blob(rng, -0.06, -0.27, 0.25, 0.13, -15, 0.14, 0.26, pos=0.03)
    liver_hu = organ_hu(60, 110)
    a0, a1, b0, b1, t0, t1 = right.bounds()
    l0, l1, m0, m1, s0, s1 = left.bounds()
    box = cv.box(min(a0, l0), max(a1, l1), min(b0, m0), max(b1, m1), min(t0, s0), max(t1, s1))
    if box is not None:
        A, B, T = cv.grid(box)
        liver = (right.field(A, B, T) < 1) | (left.field(A, B, T) < 1)
        cv.paint(box, liver, liver_hu, 5, texture=7.0)
        del A, B, T, liver
    # portal and hepatic vessels: tubes through the liver, the liver label kept
    vessel_hu = organ_hu(50, 160)
    for _ in range(7):
        p0 = np.array([rng.uniform(-0.2, -0.05), rng.uniform(0.0, 0.12), rng.uniform(0.2, 0.45)])
        p2 = np.array([rng.uniform(-0.75, -0.15), rng.uniform(-0.35, 0.3), rng.uniform(0.0, 0.5)])
        p1 = (p0 + p2) / 2 + rng.uniform(-0.05, 0.05, 3)
        rad = rng.uniform(0.012, 0.025)
        _tube(cv, [p0, p1, p2], [rad * 1.3, rad], 0.05, vessel_hu, 5, texture=4.0, within=5, samples=24)

    # ---- gallbladder (2): fluid under the liver, thin enhancing wall
    gb = _blob(rng, -0.3, -0.17, 0.07, 0.105, 30, 0.5, 0.13, pos=0.03, size=0.15)
    box, f, _ = _draw_blob(cv, gb, organ_hu(40, 70), 2, texture=4.0)
    if box is not None:
        cv.paint(box, f < 0.75, 12.0 + rng.uniform(-8, 12), 2, texture=3.0)

    # ---- spleen (7): a crescent behind the stomach
    sp = _blob(rng, 0.58, 0.24, 0.15, 0.27, -35, 0.24, 0.27, da=0.05, db=-0.1)
    notch = Blob(sp.ca - 0.14, sp.cb - 0.05, sp.sa * 0.9, sp.sb * 0.8, sp.theta, sp.tc, sp.th * 1.4, sp.da, sp.db)
    _draw_blob(cv, sp, organ_hu(55, 120), 7, texture=6.0, extra=lambda A, B, T: notch.field(A, B, T) > 1)

    # ---- kidneys: 3 left (image right), 4 right (image left, a little lower)
    medulla = rng.uniform(0.6, 1.0)   # corticomedullary contrast (1: strong)
    for lab, side, tc in ((3, 1, 0.6), (4, -1, 0.68)):
        kid = _blob(rng, side * 0.34, 0.36, 0.12, 0.17, -side * 25, tc, 0.22, da=side * 0.04, amp=0.08)
        hil = Blob(kid.ca - side * 0.1, kid.cb - 0.02, 0.06, 0.05, 0, kid.tc, kid.th * 0.45)
        cortex = organ_hu(35, 190)
        box, f, grid = _draw_blob(cv, kid, cortex, lab, texture=6.0,
                                  extra=lambda A, B, T, h=hil: h.field(A, B, T) > 1)
        if box is not None:
            A, B, T = grid
            core = (f < 0.42) & (hil.field(A, B, T) > 1)
            cv.paint(box, core, cortex - medulla * 60.0, lab, texture=8.0)
            sinus = (hil.field(A, B, T) < 1) & (f < 1.4)
            cv.paint(box, sinus, -60.0, 0, texture=20.0)

    # ---- stomach (8): J-shaped, fundus up by the spleen; wall, contents, air
    st = _blob(rng, 0.36, -0.08, 0.22, 0.18, 20, 0.25, 0.3, da=-0.35, db=-0.55, amp=0.15)
    box, f, grid = _draw_blob(cv, st, organ_hu(45, 115), 8, texture=6.0)
    if box is not None:
        A, B, T = grid
        content = organ_hu(15, 30, 15) if rng.random() < 0.6 else 45.0 + rng.uniform(-15, 15)
        inside = f < rng.uniform(0.65, 0.8)
        cv.paint(box, inside, content, 8, texture=rng.uniform(8, 25))
        # air rises anteriorly (patient supine): above a level in b
        pa, pb, pt = st.local(A, B, T)
        level = rng.uniform(-0.9, 0.1)
        cv.paint(box, inside & (np.cos(math.radians(st.theta)) * pb < level), -800.0, 8, texture=20.0)

    # ---- duodenum beside the pancreas head (unlabelled)
    duo = _blob(rng, -0.25, 0.05, 0.05, 0.055, 0, 0.6, 0.14, pos=0.015)
    box, f, _ = _draw_blob(cv, duo, 90.0, texture=8.0)
    if box is not None:
        cv.paint(box, f < 0.5, rng.choice([20.0, -600.0]), texture=15.0)

    # ---- pancreas (6): head by the duodenum, body over the aorta, tail at the splenic hilum
    j = lambda x, d=0.025: x + rng.uniform(-d, d)  # noqa: E731
    head = (j(-0.13), j(0.03), j(0.56, 0.04))
    body = (j(0.1), j(-0.01), j(0.47, 0.04))
    tail = (j(0.42), j(0.16), j(0.39, 0.04))
    k = rng.uniform(0.85, 1.15)
    _tube(cv, [head, body, tail], [0.072 * k, 0.055 * k, 0.048 * k], rng.uniform(0.06, 0.08), organ_hu(40, 100),
          6, texture=16.0)

    # ---- IVC (unlabelled; cuts through the liver above) and aorta (1)
    _draw_blob(cv, _blob(rng, -0.12, 0.2, 0.07, 0.05, 0, 0.5, 0.8, pos=0.012, size=0.1, amp=0.05),
               organ_hu(50, 140), 0, texture=4.0)
    _draw_blob(cv, _blob(rng, 0.06, 0.23, 0.06, 0.06, 0, 0.5, 0.8, da=-0.02, pos=0.012, size=0.1, amp=0.03),
               organ_hu(50, 185, 12), 1, texture=4.0)

    # ---- bone last: vertebra (disc spaces along t), canal, posterior arch, ribs
    vb = _blob(rng, 0.0, 0.42, 0.11, 0.095, 0, 0.5, 1.2, pos=0.01, size=0.05, amp=0.04)
    box = cv.box(*vb.bounds())
    A, B, T = cv.grid(box)
    f = vb.field(A, B, T)
    period, phase = rng.uniform(0.2, 0.26), rng.uniform(0, 1)
    disc = (((T - phase) / period) % 1.0) < 0.14
    cv.paint(box, f < 1, 650.0, 0, texture=30.0)
    cv.paint(box, f < 0.7, 240.0 + rng.uniform(-40, 40), 0, texture=35.0)
    cv.paint(box, (f < 1) & np.broadcast_to(disc, f.shape), 90.0, 0, texture=8.0)
    canal = Blob(vb.ca, vb.cb + 0.14, 0.045, 0.04, 0, 0.5, 1.2)
    arch = Blob(vb.ca, vb.cb + 0.15, 0.08, 0.075, 0, 0.5, 1.2)
    spinous = Blob(vb.ca, vb.cb + 0.24, 0.022, 0.06, 0, 0.5, 1.2)
    for part, hu in ((arch, 500.0), (spinous, 500.0), (canal, 15.0)):
        _draw_blob(cv, part, hu, 0, texture=10.0)
    n_ribs = 7
    for side in (-1, 1):
        for i in range(n_ribs):
            ang = math.radians(-70 + 150 * i / (n_ribs - 1) + rng.uniform(-6, 6))
            # along the abdominal wall, low on the front ribs inferiorly
            ra, rb = (ba - fat - wall * 0.5), (bb - fat - wall * 0.5)
            ca, cb = side * ra * math.cos(ang) * 1.0, bc + rb * math.sin(ang)
            t_end = 0.55 + 0.35 * (i / (n_ribs - 1)) + rng.uniform(-0.05, 0.05)
            rib = Blob(ca, cb, 0.028, 0.018, math.degrees(ang) * side, t_end / 2 - 0.05, t_end / 2 + 0.05)
            box, f, _ = _draw_blob(cv, rib, 550.0, 0, texture=20.0)
            if box is not None:
                cv.paint(box, f < 0.35, 200.0, 0, texture=20.0)

    # ---- texture; then one in-plane Gaussian for both the partial-volume
    # blur and the correlation of the CT noise added before it
    hu = cv.hu
    hu += cv.texture * _smooth_noise(rng, hu.shape, (0.6, 1.5, 1.5), max(1, size // 128))
    blur = 0.8 * size / 512
    sigma = rng.uniform(8.0, 18.0) / _gaussian_gain(blur, 3.0) ** 2
    noise = rng.standard_normal(hu.shape, dtype=np.float32)
    noise *= sigma
    hu += noise
    del noise
    hu = ndimage.gaussian_filter(hu, (0, blur, blur), truncate=3.0)
    return Volume(f"case{seed:04d}", normalise(hu), cv.label)


# ---------------------------------------------------------------- writing


def write_h5(path: str, vol: Volume) -> None:
    """A Synapse test volume: datasets image (float32) and label, [D, H, W]."""
    import h5py

    def write(tmp):
        with h5py.File(tmp, "w") as f:
            f.create_dataset("image", data=vol.image)
            f.create_dataset("label", data=vol.label)
    write_atomic(path, write)


def write_npz(path: str, image: np.ndarray, label: np.ndarray) -> None:
    """A Synapse training slice: arrays image (float32 H x W) and label."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, image=image, label=label)
    write_atomic(path, write)


def write_list(path: str, names) -> None:
    def write(tmp):
        with open(tmp, "w") as f:
            f.write("".join(n + "\n" for n in names))
    write_atomic(path, write)


def write_dataset(out: str, seed: int = 0, volumes: int = 1, depth: int = 48, train_slices: int = 0,
                  size: int = 512, log=print) -> dict:
    """The Synapse layout under `out` (see the module doc); returns the case
    and slice names written."""
    os.makedirs(os.path.join(out, "lists_Synapse"), exist_ok=True)
    test_cases = []
    for k in range(volumes):
        vol = generate(seed + k, depth, size)
        write_h5(os.path.join(out, vol.name + ".npy.h5"), vol)
        test_cases.append(vol.name)
        organs = [int(c) for c in np.unique(vol.label) if c]
        log(f"{os.path.join(out, vol.name + '.npy.h5')}: {depth} slices of {size}x{size}, organs {organs}")
    slices = []
    if train_slices > 0:
        os.makedirs(os.path.join(out, "train_npz"), exist_ok=True)
        s = seed + volumes
        while len(slices) < train_slices:
            vol = generate(s, depth, size)
            for z in range(depth):
                if len(slices) == train_slices:
                    break
                name = f"{vol.name}_slice{z:03d}"
                write_npz(os.path.join(out, "train_npz", name + ".npz"), vol.image[z], vol.label[z])
                slices.append(name)
            log(f"{os.path.join(out, 'train_npz', vol.name)}_slice*.npz ({len(slices)} of {train_slices} slices)")
            s += 1
        write_list(os.path.join(out, "lists_Synapse", "train.txt"), slices)
    if volumes > 0:
        write_list(os.path.join(out, "lists_Synapse", "test_vol.txt"), test_cases)
    return {"test": test_cases, "train": slices}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="swinrt-phantom", description=__doc__.split("\n\n")[0],
                                 epilog=__doc__.split("\n\n", 2)[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the first volume (default 0); case name caseNNNN")
    ap.add_argument("--volumes", type=int, default=1, help="test volumes (default 1)")
    ap.add_argument("--depth", type=int, default=48, help="slices per volume (default 48)")
    ap.add_argument("--train-slices", type=int, default=0, help="training slices (default 0)")
    ap.add_argument("--size", type=int, default=512, help="pixels per side (default 512, as Synapse)")
    a = ap.parse_args(argv)
    for name, v, lo in (("--seed", a.seed, 0), ("--volumes", a.volumes, 0), ("--depth", a.depth, 1),
                        ("--train-slices", a.train_slices, 0), ("--size", a.size, 32)):
        if v < lo:
            ap.error(f"{name} must be >= {lo}, got {v}")
    try:
        write_dataset(a.out, a.seed, a.volumes, a.depth, a.train_slices, a.size)
    except OSError as e:
        print(f"swinrt-phantom: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
