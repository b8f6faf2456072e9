"""Model hyper-parameters: the arguments of the original SwinTransformerSys.

The JSON form is stored in every swinrt weights file (docs/FORMATS.md); the
YAML form is the original Swin-Unet config (configs/*.yaml).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import List, Optional


class ConfigError(ValueError):
    pass


@dataclass
class ModelConfig:
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

    # --- derived shapes (as the original computes them) ---
    @property
    def num_layers(self) -> int:
        return len(self.depths)

    @property
    def patches_resolution(self) -> int:
        return self.img_size // self.patch_size

    def resolution(self, stage: int) -> int:
        return self.patches_resolution // (2 ** stage)

    def dim(self, stage: int) -> int:
        return int(self.embed_dim * 2 ** stage)

    def window(self, stage: int) -> int:
        r = self.resolution(stage)
        return r if r <= self.window_size else self.window_size

    def validate(self, where: str = "config") -> "ModelConfig":
        def bad(msg):
            raise ConfigError(f"{where}: {msg}")

        for name in ("img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "window_size"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                bad(f"{name} must be a positive integer, got {v!r}")
        if self.img_size % self.patch_size:
            bad(f"img_size {self.img_size} is not a multiple of patch_size {self.patch_size}")
        if not 2 <= len(self.depths) <= 6:
            bad(f"depths must list 2 to 6 stages, got {self.depths}")
        if len(self.num_heads) != len(self.depths):
            bad(f"num_heads has {len(self.num_heads)} entries, depths {len(self.depths)}")
        if any((not isinstance(d, int)) or d <= 0 for d in list(self.depths) + list(self.num_heads)):
            bad("depths and num_heads must hold positive integers")
        if not 0 < self.mlp_ratio <= 64:
            bad(f"mlp_ratio {self.mlp_ratio} is out of range")
        if self.final_upsample != "expand_first":
            bad(f"final_upsample {self.final_upsample!r} is not supported (only 'expand_first')")
        if self.patches_resolution % (2 ** (self.num_layers - 1)):
            bad(f"patch grid {self.patches_resolution} is not divisible by 2^{self.num_layers - 1}")
        for s in range(self.num_layers):
            if self.dim(s) % self.num_heads[s]:
                bad(f"stage {s}: dim {self.dim(s)} is not divisible by {self.num_heads[s]} heads")
            if self.resolution(s) % self.window(s):
                bad(f"stage {s}: grid {self.resolution(s)} is not divisible by window {self.window(s)}")
        return self

    # --- serialisation ---
    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str, where: str = "config") -> "ModelConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e})") from None
        if not isinstance(d, dict):
            raise ConfigError(f"{where}: expected a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ConfigError(f"{where}: unknown config keys {sorted(unknown)}")
        return cls(**d).validate(where)

    @classmethod
    def from_yaml(cls, path: str, num_classes: int = 9) -> "ModelConfig":
        """Reads an original Swin-Unet YAML config (keys absent there take the
        defaults of the original config.py; num_classes comes from the caller,
        as the original takes it from --num_classes)."""
        import yaml

        try:
            with open(path) as f:
                y = yaml.safe_load(f) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read the YAML config ({e})") from None
        data = y.get("DATA", {}) or {}
        swin = (y.get("MODEL", {}) or {}).get("SWIN", {}) or {}
        # The original config.py's defaults (DEPTHS [2, 2, 6, 2] there).
        return cls(
            img_size=int(data.get("IMG_SIZE", 224)),
            patch_size=int(swin.get("PATCH_SIZE", 4)),
            in_chans=int(swin.get("IN_CHANS", 3)),
            num_classes=num_classes,
            embed_dim=int(swin.get("EMBED_DIM", 96)),
            depths=[int(v) for v in swin.get("DEPTHS", [2, 2, 6, 2])],
            num_heads=[int(v) for v in swin.get("NUM_HEADS", [3, 6, 12, 24])],
            window_size=int(swin.get("WINDOW_SIZE", 7)),
            mlp_ratio=float(swin.get("MLP_RATIO", 4.0)),
            qkv_bias=bool(swin.get("QKV_BIAS", True)),
            qk_scale=swin.get("QK_SCALE", None),
            ape=bool(swin.get("APE", False)),
            patch_norm=bool(swin.get("PATCH_NORM", True)),
            final_upsample=str(swin.get("FINAL_UPSAMPLE", "expand_first")),
        ).validate(path)
