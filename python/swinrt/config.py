"""Model hyper-parameters: the arguments of the original SwinTransformerSys.

The JSON form is stored in every swinrt weights file (docs/FORMATS.md, the
C++ side reads it with src/model/config.cpp and applies the same rules); the
YAML form is the original Swin-Unet config (configs/*.yaml of the public code).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from typing import List, Optional


class ConfigError(ValueError):
    pass


# The C++ loader's bounds (src/model/config.cpp): scalars <= 2^20, list entries <= 4096.
_MAX_INT, _MAX_LIST_ENTRY = 1 << 20, 4096


@dataclass
class ModelConfig:
    # Defaults: the original SwinTransformerSys's, except num_classes (9, Synapse).
    img_size: int = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 9
    embed_dim: int = 96
    depths: List[int] = field(default_factory=lambda: [2, 2, 2, 2])
    num_heads: List[int] = field(default_factory=lambda: [3, 6, 12, 24])
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: Optional[float] = None
    ape: bool = False
    patch_norm: bool = True
    final_upsample: str = "expand_first"

    def __post_init__(self):
        # Tuples (as the original's defaults are written) compare and serialise as lists.
        if isinstance(self.depths, tuple):
            self.depths = list(self.depths)
        if isinstance(self.num_heads, tuple):
            self.num_heads = list(self.num_heads)

    # --- derived shapes, as the original computes them ---
    @property
    def num_layers(self) -> int:
        return len(self.depths)

    @property
    def patches_resolution(self) -> int:
        return self.img_size // self.patch_size

    def resolution(self, stage: int) -> int:
        """Side of the token grid of encoder stage `stage` (and of decoder layers_up.{L-1-stage})."""
        return self.patches_resolution // (2 ** stage)

    def dim(self, stage: int) -> int:
        return int(self.embed_dim * 2 ** stage)

    def window(self, stage: int) -> int:
        """The window after the original's clamp: a grid no larger than the window is one window."""
        r = self.resolution(stage)
        return r if r <= self.window_size else self.window_size

    def shift(self, stage: int, block: int) -> int:
        if self.resolution(stage) <= self.window_size:
            return 0
        return 0 if block % 2 == 0 else self.window_size // 2

    def validate(self, where: str = "config") -> "ModelConfig":
        """Checks every rule the model needs; raises ConfigError naming `where`."""
        def bad(msg):
            raise ConfigError(f"{where}: {msg}")

        def is_int(v):
            return isinstance(v, int) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

        for name in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "window_size"):
            v = getattr(self, name)
            if not is_int(v) or not 0 < v <= _MAX_INT:
                bad(f"{name} must be a positive integer, got {v!r}")
        for name in ("depths", "num_heads"):
            v = getattr(self, name)
            if not isinstance(v, list) or not all(is_int(e) and 0 < e <= _MAX_LIST_ENTRY for e in v):
                bad(f"{name} must be a list of positive integers, got {v!r}")
        for name in ("qkv_bias", "ape", "patch_norm"):
            if not isinstance(getattr(self, name), bool):
                bad(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not is_num(self.mlp_ratio) or not 0 < self.mlp_ratio <= 64:
            bad(f"mlp_ratio must be a number in (0, 64], got {self.mlp_ratio!r}")
        if self.qk_scale is not None and not is_num(self.qk_scale):
            bad(f"qk_scale must be a finite number or null, got {self.qk_scale!r}")
        if self.final_upsample != "expand_first":
            bad(f"final_upsample {self.final_upsample!r} is not supported (only 'expand_first', the original's)")
        if self.img_size % self.patch_size:
            bad(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        # One stage has no skip connection for the decoder to use; the C++ side stops at 6.
        if not 2 <= self.num_layers <= 6:
            bad(f"depths must list 2 to 6 stages, got {self.depths}")
        if len(self.num_heads) != self.num_layers:
            bad(f"num_heads has {len(self.num_heads)} entries, depths {self.num_layers}")
        L = self.num_layers
        if self.patches_resolution % (2 ** (L - 1)):
            bad(f"patch grid {self.patches_resolution} (img_size {self.img_size} / patch_size {self.patch_size}) "
                f"is not divisible by 2^{L - 1} for {L} stages")
        for s in range(L):
            if self.dim(s) % self.num_heads[s]:
                bad(f"stage {s}: dim {self.dim(s)} (embed_dim {self.embed_dim} x 2^{s}) is not divisible by "
                    f"{self.num_heads[s]} heads")
            if self.resolution(s) % self.window(s):
                bad(f"stage {s}: grid {self.resolution(s)} is not divisible by window {self.window(s)}")
            if int(self.dim(s) * self.mlp_ratio) <= 0:
                bad(f"stage {s}: MLP hidden size int({self.dim(s)} * {self.mlp_ratio}) is zero")
        return self

    # --- serialisation ---
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str, where: str = "config") -> "ModelConfig":
        """Parses and validates the `config` metadata of a weights file; keys
        absent take the defaults above, unknown keys are refused."""
        try:
            d = json.loads(text)
        except (json.JSONDecodeError, TypeError) as e:
            raise ConfigError(f"{where}: config is not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: config must be a JSON object, got {type(d).__name__}")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"{where}: unknown config keys {sorted(unknown)}")
        return cls(**d).validate(where)

    @classmethod
    def from_yaml(cls, path: str, num_classes: int = 9, check: bool = True) -> "ModelConfig":
        """Reads an original Swin-Unet YAML config. Keys absent there take the
        defaults of the original config.py (DEPTHS [2, 2, 6, 2] there);
        `BASE: [file, ...]` includes are merged first, as the original does.
        num_classes comes from the caller (the original's --num_classes).
        MODEL.SWIN.DECODER_DEPTHS is read but unused, as in the original: the
        decoder mirrors DEPTHS. check=False skips validate(), for a caller
        that changes fields first."""
        data, swin = {}, {}
        _merge_yaml(path, data, swin, seen=())

        def get(section, key, default, convert):
            v = section.get(key, default)
            try:
                return convert(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{path}: {key} has the invalid value {v!r}") from None

        def as_int(v):
            if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
                raise ValueError
            return int(v)

        def as_bool(v):
            if not isinstance(v, bool):
                raise ValueError
            return v

        def as_int_list(v):
            if not isinstance(v, (list, tuple)):
                raise ValueError
            return [as_int(e) for e in v]

        def as_scale(v):
            return None if v is None else float(v)

        cfg = cls(
            img_size=get(data, "IMG_SIZE", 224, as_int),
            patch_size=get(swin, "PATCH_SIZE", 4, as_int),
            in_chans=get(swin, "IN_CHANS", 3, as_int),
            num_classes=num_classes,
            embed_dim=get(swin, "EMBED_DIM", 96, as_int),
            depths=get(swin, "DEPTHS", [2, 2, 6, 2], as_int_list),
            num_heads=get(swin, "NUM_HEADS", [3, 6, 12, 24], as_int_list),
            window_size=get(swin, "WINDOW_SIZE", 7, as_int),
            mlp_ratio=get(swin, "MLP_RATIO", 4.0, float),
            qkv_bias=get(swin, "QKV_BIAS", True, as_bool),
            qk_scale=get(swin, "QK_SCALE", None, as_scale),
            ape=get(swin, "APE", False, as_bool),
            patch_norm=get(swin, "PATCH_NORM", True, as_bool),
            final_upsample=get(swin, "FINAL_UPSAMPLE", "expand_first", str),
        )
        return cfg.validate(path) if check else cfg


def _merge_yaml(path: str, data: dict, swin: dict, seen: tuple) -> None:
    """Merges DATA and MODEL.SWIN of `path` into `data` and `swin`, its BASE
    files (relative to it) first, as the original's _update_config_from_file."""
    import yaml

    if os.path.abspath(path) in seen:
        raise ConfigError(f"{path}: BASE includes form a cycle")
    try:
        with open(path) as f:
            y = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot read the YAML config ({e})") from None
    y = {} if y is None else y
    if not isinstance(y, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level")
    for base in y.get("BASE") or []:
        if base:
            _merge_yaml(os.path.join(os.path.dirname(path), base), data, swin, seen + (os.path.abspath(path),))
    model = y.get("MODEL") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"{path}: MODEL must be a mapping")
    for name, section, out in (("DATA", y.get("DATA"), data), ("MODEL.SWIN", model.get("SWIN"), swin)):
        if section is None:
            continue
        if not isinstance(section, dict):
            raise ConfigError(f"{path}: {name} must be a mapping")
        out.update(section)
