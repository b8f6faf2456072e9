"""ModelConfig: the JSON of docs/FORMATS.md, the original YAML configs (with
the original config.py's defaults and BASE includes) and validation."""
import json

import pytest

from swinrt.config import ConfigError, ModelConfig

# configs/swin_tiny_patch4_window7_224_lite.yaml of the public Swin-Unet code.
LITE_YAML = """MODEL:
  TYPE: swin
  NAME: swin_tiny_patch4_window7_224
  DROP_PATH_RATE: 0.2
  PRETRAIN_CKPT: "./pretrained_ckpt/swin_tiny_patch4_window7_224.pth"
  SWIN:
    FINAL_UPSAMPLE: "expand_first"
    EMBED_DIM: 96
    DEPTHS: [ 2, 2, 2, 2 ]
    DECODER_DEPTHS: [ 2, 2, 2, 1]
    NUM_HEADS: [ 3, 6, 12, 24 ]
    WINDOW_SIZE: 7
"""


def test_defaults_and_json_round_trip():
    cfg = ModelConfig()
    assert json.loads(cfg.to_json()) == {
        "img_size": 224, "patch_size": 4, "in_chans": 3, "num_classes": 9, "embed_dim": 96, "depths": [2, 2, 2, 2],
        "num_heads": [3, 6, 12, 24], "window_size": 7, "mlp_ratio": 4.0, "qkv_bias": True, "qk_scale": None,
        "ape": False, "patch_norm": True, "final_upsample": "expand_first"}  # docs/FORMATS.md's example
    other = ModelConfig(img_size=64, embed_dim=24, num_heads=(1, 2, 4, 8), window_size=4, qk_scale=0.5, ape=True)
    assert ModelConfig.from_json(other.to_json()) == other
    assert ModelConfig.from_json('{"num_classes": 4}') == ModelConfig(num_classes=4)  # absent keys: defaults


@pytest.mark.parametrize("text,fragment", [
    ("[1, 2]", "JSON object"),
    ("{nope", "not valid JSON"),
    ('{"colour": 1}', "unknown config keys ['colour']"),
    ('{"img_size": 225}', "img_size 225 is not a multiple of patch_size 4"),
    ('{"img_size": 200}', "patch grid 50"),
    ('{"embed_dim": 100}', "stage 0: dim 100 (embed_dim 100 x 2^0) is not divisible by 3 heads"),
    ('{"num_heads": [3, 6, 12]}', "num_heads has 3 entries, depths 4"),
    ('{"depths": [2]}', "2 to 6 stages"),
    ('{"window_size": 5}', "stage 0: grid 56 is not divisible by window 5"),
    ('{"img_size": 8.0}', "img_size must be a positive integer"),
    ('{"depths": [2, 2, true, 2]}', "depths must be a list of positive integers"),
    ('{"qkv_bias": 1}', "qkv_bias must be true or false"),
    ('{"mlp_ratio": 0}', "mlp_ratio"),
    ('{"mlp_ratio": 0.001}', "MLP hidden size"),
    ('{"qk_scale": "x"}', "qk_scale"),
    ('{"final_upsample": "deconv"}', "final_upsample"),
])
def test_invalid_configs_are_refused_naming_the_rule(text, fragment):
    with pytest.raises(ConfigError) as e:
        ModelConfig.from_json(text, where="w.safetensors")
    assert str(e.value).startswith("w.safetensors: ") and fragment in str(e.value), str(e.value)


def test_window_clamp_and_shifts():
    cfg = ModelConfig()  # grids 56, 28, 14, 7 with window 7
    assert [cfg.window(s) for s in range(4)] == [7, 7, 7, 7]
    assert [cfg.shift(s, 1) for s in range(4)] == [3, 3, 3, 0] and cfg.shift(0, 0) == 0
    small = ModelConfig(img_size=64, embed_dim=24, num_heads=[1, 2, 4, 8], window_size=4)  # grids 16, 8, 4, 2
    assert [small.window(s) for s in range(4)] == [4, 4, 4, 2]
    assert [small.shift(s, 1) for s in range(4)] == [2, 2, 0, 0]
    # Window 14 at 224: grids 56 and 28 are tiled; the 14x14 grid is one window, the 7x7 grid is clamped.
    wide = ModelConfig(window_size=14).validate()
    assert [wide.window(s) for s in range(4)] == [14, 14, 14, 7]
    assert [wide.shift(s, 1) for s in range(4)] == [7, 7, 0, 0]


def test_original_lite_yaml(tmp_path):
    (tmp_path / "lite.yaml").write_text(LITE_YAML)
    assert ModelConfig.from_yaml(str(tmp_path / "lite.yaml")) == ModelConfig()
    assert ModelConfig.from_yaml(str(tmp_path / "lite.yaml"), num_classes=4).num_classes == 4


def test_yaml_defaults_are_the_original_config_py(tmp_path):
    (tmp_path / "empty.yaml").write_text("")
    cfg = ModelConfig.from_yaml(str(tmp_path / "empty.yaml"))
    assert cfg == ModelConfig(depths=[2, 2, 6, 2])  # the original config.py's DEPTHS
    (tmp_path / "all.yaml").write_text(
        "DATA:\n  IMG_SIZE: 64\nMODEL:\n  SWIN:\n    PATCH_SIZE: 2\n    IN_CHANS: 1\n    EMBED_DIM: 24\n"
        "    DEPTHS: [1, 2, 2]\n    NUM_HEADS: [1, 2, 4]\n    WINDOW_SIZE: 8\n    MLP_RATIO: 2.0\n"
        "    QKV_BIAS: False\n    QK_SCALE: 0.125\n    APE: True\n    PATCH_NORM: False\n")
    assert ModelConfig.from_yaml(str(tmp_path / "all.yaml"), num_classes=3) == ModelConfig(
        img_size=64, patch_size=2, in_chans=1, num_classes=3, embed_dim=24, depths=[1, 2, 2], num_heads=[1, 2, 4],
        window_size=8, mlp_ratio=2.0, qkv_bias=False, qk_scale=0.125, ape=True, patch_norm=False)


def test_yaml_base_includes(tmp_path):
    (tmp_path / "base.yaml").write_text("DATA:\n  IMG_SIZE: 64\nMODEL:\n  SWIN:\n    EMBED_DIM: 24\n"
                                        "    NUM_HEADS: [1, 2, 4, 8]\n    WINDOW_SIZE: 7\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text("BASE: ['../base.yaml']\nMODEL:\n  SWIN:\n    WINDOW_SIZE: 4\n"
                                                 "    DEPTHS: [2, 2, 2, 2]\n")
    assert ModelConfig.from_yaml(str(tmp_path / "sub" / "child.yaml")) == ModelConfig(
        img_size=64, embed_dim=24, num_heads=[1, 2, 4, 8], window_size=4)
    (tmp_path / "loop.yaml").write_text("BASE: ['loop.yaml']\n")
    with pytest.raises(ConfigError, match="cycle"):
        ModelConfig.from_yaml(str(tmp_path / "loop.yaml"))


@pytest.mark.parametrize("text,fragment", [
    ("MODEL:\n  SWIN:\n    EMBED_DIM: ninety\n", "EMBED_DIM has the invalid value 'ninety'"),
    ("MODEL:\n  SWIN:\n    DEPTHS: 2\n", "DEPTHS has the invalid value 2"),
    ("MODEL:\n  SWIN:\n    APE: 'yes please'\n", "APE"),
    ("MODEL:\n  SWIN:\n    WINDOW_SIZE: 5\n", "grid 56 is not divisible by window 5"),
    ("MODEL: [1, 2]\n", "MODEL must be a mapping"),
    ("- a\n- b\n", "mapping at the top level"),
    ("MODEL: {SWIN: [unclosed\n", "cannot read the YAML config"),
])
def test_bad_yaml_is_refused_naming_the_file(tmp_path, text, fragment):
    (tmp_path / "bad.yaml").write_text(text)
    with pytest.raises(ConfigError) as e:
        ModelConfig.from_yaml(str(tmp_path / "bad.yaml"))
    assert "bad.yaml" in str(e.value) and fragment in str(e.value), str(e.value)
    with pytest.raises(ConfigError, match="absent.yaml"):
        ModelConfig.from_yaml(str(tmp_path / "absent.yaml"))
