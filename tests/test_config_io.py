"""Config loading: YAML files, ``--set`` overrides, strict type checks, the official I-JEPA layout, saving."""

from __future__ import annotations

import logging
from dataclasses import fields
from pathlib import Path
from typing import Any, get_type_hints

import pytest
import yaml

from jepa_core.mask_schedules import TargetScaleSchedule
from jepa_core.masks import OFFICIAL_FLAGS, MaskConfig
from jepa_torch.config import ConfigError, MaskSection, TrainConfig
from jepa_torch.config.yaml_io import config_from_dict, config_to_dict, load_config, save_config

CONFIGS = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))

# The official repository's configs/in1k_vith14_ep300.yaml: its structure and values.
OFFICIAL_VITH14 = """\
data:
  batch_size: 128
  color_jitter_strength: 0.0
  crop_scale:
  - 0.3
  - 1.0
  crop_size: 224
  image_folder: imagenet_full_size/061417/
  num_workers: 10
  pin_mem: true
  root_path: $replace_this_with_absolute_path_to_your_datasets_directory
  use_color_distortion: false
  use_gaussian_blur: false
  use_horizontal_flip: false
logging:
  folder: $replace_this_with_path_for_experiment_logs/vith14.224-bs.2048-ep.300/
  write_tag: jepa
mask:
  allow_overlap: false
  aspect_ratio:
  - 0.75
  - 1.5
  enc_mask_scale:
  - 0.85
  - 1.0
  min_keep: 10
  num_enc_masks: 1
  num_pred_masks: 4
  patch_size: 14
  pred_mask_scale:
  - 0.15
  - 0.2
meta:
  copy_data: false
  load_checkpoint: false
  model_name: vit_huge
  pred_depth: 12
  pred_emb_dim: 384
  read_checkpoint: null
  use_bfloat16: true
optimization:
  ema:
  - 0.996
  - 1.0
  epochs: 300
  final_lr: 1.0e-06
  final_weight_decay: 0.4
  ipe_scale: 1.0
  lr: 0.001
  start_lr: 0.0002
  warmup: 40
  weight_decay: 0.04
"""


def write(tmp_path: Path, text: str, name: str = "run.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(match: str, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(ConfigError, match=match) as info:
        load_config(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_example_config_loads_and_round_trips(path: Path, tmp_path: Path) -> None:
    cfg = load_config(path)
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_examples_include_the_promised_configs() -> None:
    names = {p.name for p in CONFIGS}
    assert {"digits_tiny_cpu.yaml", "in1k_vith14_paper.yaml", "official_in1k_vith14_ep300.yaml",
            "sequence_example.yaml"} <= names
    tiny = load_config(Path(CONFIGS[0]).parent / "digits_tiny_cpu.yaml")
    assert (tiny.data.dataset, tiny.data.img_size, tiny.model.patch_size, tiny.grid()) == ("digits", 32, 4, (8, 8))


def test_overrides_are_parsed_as_yaml() -> None:
    cfg = load_config(None, ["optimization.lr=5e-4", "mask.target_scale=[0.1,0.2]", "run.max_steps=null",
                             "optimization.grad_clip=1", "data.horizontal_flip=true", "run.out_dir=runs/x"])
    assert cfg.optimization.lr == 5e-4 and type(cfg.optimization.lr) is float
    assert cfg.mask.target_scale == (0.1, 0.2)
    assert cfg.run.max_steps is None
    assert cfg.optimization.grad_clip == 1.0 and type(cfg.optimization.grad_clip) is float
    assert cfg.data.horizontal_flip is True and cfg.run.out_dir == "runs/x"


def test_overrides_win_over_the_file_and_leave_the_rest(tmp_path: Path) -> None:
    path = write(tmp_path, "optimization:\n  lr: 1.0e-3\n  epochs: 5\nrun:\n")
    cfg = load_config(path, ["optimization.lr=2e-3", "run.seed=7"])
    assert (cfg.optimization.lr, cfg.optimization.epochs, cfg.run.seed) == (2e-3, 5, 7)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("modle:\n  preset: vit_tiny\n", r"^modle: unknown section; did you mean model\? valid sections: method, model, data"),
        ("model:\n  pred_dept: 4\n", r"^model\.pred_dept: unknown key; did you mean pred_depth\? valid keys: preset"),
        ("optimization:\n  epochs: ten\n", r"^optimization\.epochs='ten': expected an integer, got a string"),
        ("optimization:\n  epochs: 10.0\n", r"^optimization\.epochs=10\.0: expected an integer, got a number"),
        ("data:\n  batch_size: true\n", r"^data\.batch_size=True: expected an integer, got a boolean"),
        ("data:\n  horizontal_flip: 1\n", r"^data\.horizontal_flip=1: expected true or false, got an integer"),
        ("data:\n  crop_scale: [0.3]\n", r"^data\.crop_scale=\[0\.3\]: expected a list of 2 \(a number, a number\)"),
        ("data:\n  crop_scale: 0.3\n", r"^data\.crop_scale=0\.3: expected a list of 2"),
        ("optimization:\n  ema: [true, 1.0]\n", r"^optimization\.ema=\[True, 1\.0\]: item 0 must be a number, got a boolean"),
        ("optimization:\n  lr: null\n", r"^optimization\.lr=None: expected a number, got null"),
        ("optimization:\n  lr: '1e-3'\n", r"^optimization\.lr='1e-3': expected a number, got a string"),
        ("run:\n  max_steps: 1.5\n", r"^run\.max_steps=1\.5: expected an integer or null, got a number"),
        ("run:\n  device: tpu\n", r"^run\.device='tpu': use one of auto, cpu, cuda"),
        ("data:\n  path: 3\n", r"^data\.path=3: expected a string or null, got an integer"),
        ("optimization:\n  lr: -1\n", r"^optimization\.lr=-1\.0: must be"),
        ("model: [1, 2]\n", r"^model: expected a mapping of key: value, got a list"),
        ("data:\n  img_size: 30\n", r"^model\.patch_size=4: must divide data\.img_size=30"),
        ("mask:\n  final_target_scale: [0.3, 0.2]\n",
         r"^mask\.final_target_scale=\(0\.3, 0\.2\): must be \[low, high\] with 0 < low <= high <= 1, or null"),
        ("mask:\n  final_target_scale: [0.9, 1.0]\n",
         r"^mask\.final_target_scale=\(0\.9, 1\.0\): the masks at the end of the schedule are impossible on the 8x8"),
        ("mask:\n  final_target_scale: [0.2, 0.3]\n  target_scale_warmup_epochs: 10\n",
         r"^mask\.target_scale_warmup_epochs=10\.0: must be shorter than the run"),
        ("mask:\n  target_scale_warmup_epochs: -1\n", r"^mask\.target_scale_warmup_epochs=-1\.0: must be a finite"),
    ],
)
def test_bad_values_are_one_line_naming_the_key(tmp_path: Path, text: str, match: str) -> None:
    one_line_error(match, write(tmp_path, text))


@pytest.mark.parametrize("section", [f.name for f in fields(TrainConfig)])
def test_every_field_is_type_checked(section: str) -> None:
    """Derived from the dataclasses: a value no field accepts is refused for every key, naming it."""
    cls = get_type_hints(TrainConfig)[section]
    for f in fields(cls):
        with pytest.raises(ConfigError, match=rf"^{section}\.{f.name}=\{{\}}: (expected|use one of) "):
            config_from_dict({section: {f.name: {}}})


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["optimization.lr"], r"^--set 'optimization\.lr': use section\.key=value"),
        (["lr=5"], r"^--set 'lr=5': use section\.key=value"),
        (["optimization.lr=[1, 2"], r"^--set 'optimization\.lr=\[1, 2': cannot parse the value"),
        (["optimization.lrr=1"], r"^optimization\.lrr: unknown key; did you mean lr\?"),
        (["optimisation.lr=1"], r"^optimisation: unknown section; did you mean optimization\?"),
        (["run.seed="], r"^run\.seed=None: expected an integer, got null"),
        (["data.batch_size=64.5"], r"^data\.batch_size=64\.5: expected an integer"),
    ],
)
def test_bad_overrides(overrides: list[str], match: str) -> None:
    one_line_error(match, None, overrides)


def test_file_errors(tmp_path: Path) -> None:
    one_line_error(r"nope\.yaml: config file not found", tmp_path / "nope.yaml")
    one_line_error(r": is a directory; give a YAML config file", tmp_path)
    one_line_error(r"bad\.yaml:3:2: invalid YAML", write(tmp_path, "model:\n  preset: vit_tiny\n pred_depth: 4\n", "bad.yaml"))
    one_line_error(r"dup\.yaml:3:\d+: invalid YAML \(duplicate key 'lr'\)",
                   write(tmp_path, "optimization:\n  lr: 1.0\n  lr: 2.0\n", "dup.yaml"))
    one_line_error(r"the top level must be a mapping of sections \(method, model, data, mask, optimization, run\), got a list",
                   write(tmp_path, "- 1\n- 2\n", "list.yaml"))
    one_line_error(r"got an empty file", write(tmp_path, "# nothing\n", "empty.yaml"))
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00model")
    one_line_error(r"bin\.yaml: not a UTF-8 text file", tmp_path / "bin.yaml")


def test_a_deprecated_key_is_read_with_one_warning_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jepa_torch"):
        cfg = load_config(None, ["model.predictor_embed_dim=48"])
    assert cfg.model.pred_emb_dim == 48
    assert [r.getMessage() for r in caplog.records] == [
        "model.predictor_embed_dim is deprecated; read as model.pred_emb_dim: rename it"]
    with pytest.raises(ConfigError, match=r"^model.predictor_embed_dim: the former name of model.pred_emb_dim, which is "
                                          r"given too; keep model.pred_emb_dim only$"):
        load_config(None, ["model.predictor_embed_dim=48", "model.pred_emb_dim=96"])


def test_defaults_without_a_file() -> None:
    assert load_config(None) == TrainConfig()


def test_mask_section_is_the_sampler_law_key_for_key() -> None:
    """Every MaskConfig field but the official flags is a ``mask.*`` key with its default; they pass on unchanged."""
    section = {f.name: f.default for f in fields(MaskSection)}
    law = {f.name: f.default for f in fields(MaskConfig) if f.name not in OFFICIAL_FLAGS}
    assert law.items() <= section.items()
    assert MaskSection().to_mask_config() == MaskConfig()
    cfg = load_config(None, ["mask.official_compatible=true", "mask.min_keep=7", "mask.num_targets=2"])
    sampler = cfg.mask.to_mask_config()
    assert all(getattr(sampler, flag) is True for flag in OFFICIAL_FLAGS)
    assert (sampler.min_keep, sampler.num_targets) == (7, 2)  # min_keep is the sampler's bound in both modes


def test_mask_schedule_keys_map_onto_the_target_scale_schedule() -> None:
    cfg = load_config(None, ["mask.final_target_scale=[0.2, 0.3]", "mask.target_scale_warmup_epochs=0.5"])
    assert cfg.mask.target_scale_schedule(10, 40) == TargetScaleSchedule((0.15, 0.2), (0.2, 0.3), 40, 5)
    fixed = TrainConfig().mask.target_scale_schedule(10, 40)
    assert fixed(0) == fixed(40) == (0.15, 0.2)  # null: the official fixed scale, exactly


def test_official_layout_maps_field_by_field(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jepa_torch.config.yaml_io"):
        cfg = load_config(write(tmp_path, OFFICIAL_VITH14))
    warned = [r.getMessage() for r in caplog.records]
    assert warned == ["official config: ignoring keys this trainer does not use: data.pin_mem, logging.write_tag, "
                      "meta.copy_data"]
    m, d, k, o, r = cfg.model, cfg.data, cfg.mask, cfg.optimization, cfg.run
    assert (m.preset, m.patch_size, m.pred_depth, m.pred_emb_dim) == ("vit_huge", 14, 12, 384)
    assert (d.dataset, d.img_size, d.crop_scale, d.batch_size, d.num_workers) == ("image_folder", 224, (0.3, 1.0), 128, 10)
    assert d.path == "$replace_this_with_absolute_path_to_your_datasets_directory/imagenet_full_size/061417/train"
    assert (d.horizontal_flip, d.color_jitter, d.gaussian_blur, d.holdout_fraction) == (False, 0.0, False, 0.0)
    assert (k.num_targets, k.target_scale, k.target_aspect) == (4, (0.15, 0.2), (0.75, 1.5))
    assert (k.num_context, k.context_scale, k.context_aspect) == (1, (0.85, 1.0), (1.0, 1.0))
    assert (k.min_keep, k.allow_overlap, k.official_compatible) == (10, False, True)
    assert (o.epochs, o.ipe_scale, o.warmup_epochs) == (300, 1.0, 40.0)
    assert (o.start_lr, o.lr, o.final_lr) == (2e-4, 1e-3, 1e-6)
    assert (o.weight_decay, o.final_weight_decay, o.ema) == (0.04, 0.4, (0.996, 1.0))
    assert (o.grad_clip, o.loss) == (None, "smooth_l1")
    assert r.out_dir == "$replace_this_with_path_for_experiment_logs/vith14.224-bs.2048-ep.300/"
    assert (r.precision, r.resume) == ("auto", "never")


def official(**changes: Any) -> str:
    raw = yaml.safe_load(OFFICIAL_VITH14)
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if value is KeyError:
            del raw[section][key]
        else:
            raw[section][key] = value
    return yaml.safe_dump(raw)


def test_official_choices(tmp_path: Path) -> None:
    text = official(meta__use_bfloat16=False, meta__load_checkpoint=True, meta__read_checkpoint="jepa-ep10.pth.tar",
                    logging__folder="runs/o", data__use_color_distortion=True, data__color_jitter_strength=0.5,
                    data__root_path="/data", data__image_folder="in1k", data__use_horizontal_flip=True)
    cfg = load_config(write(tmp_path, text), ["data.num_workers=0"])
    assert (cfg.run.precision, cfg.run.resume) == ("fp32", "runs/o/jepa-ep10.pth.tar")
    assert (cfg.data.color_jitter, cfg.data.horizontal_flip, cfg.data.path) == (0.5, True, "/data/in1k/train")
    assert cfg.data.num_workers == 0
    latest = load_config(write(tmp_path, official(meta__load_checkpoint=True)))
    assert latest.run.resume == "auto"


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(meta__model_nam="vit_huge"), r"^meta\.model_nam: unknown key; did you mean model_name\?"),
        (dict(loging__folder="x"), r"^loging: unknown section; did you mean logging\?"),
        (dict(mask__patch_size=KeyError), r"^mask\.patch_size: missing from the official-layout config"),
        (dict(meta__model_name="vit_hug"), r"^model\.preset='vit_hug': use one of .* \(from the official key "
                                           r"meta\.model_name\)$"),
        (dict(optimization__warmup=400), r"^optimization\.warmup_epochs=400\.0: .*\(from the official key "
                                         r"optimization\.warmup\)$"),
        (dict(mask__num_pred_masks=2.0), r"^mask\.num_pred_masks=2\.0: expected an integer, got a number"),
        (dict(meta__use_bfloat16="yes"), r"^meta\.use_bfloat16='yes': expected true or false"),
    ],
)
def test_official_errors_name_the_official_key(tmp_path: Path, changes: dict[str, Any], match: str) -> None:
    data: dict[str, Any] = {}
    for dotted, value in changes.items():
        section, key = dotted.split("__")
        if section not in yaml.safe_load(OFFICIAL_VITH14):
            data = yaml.safe_load(OFFICIAL_VITH14)
            data[section] = {key: value}
            text = yaml.safe_dump(data)
            break
    else:
        text = official(**changes)
    one_line_error(match, write(tmp_path, text))


def test_save_config_is_atomic_and_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "config.yaml"
    target.write_text("old", encoding="utf-8")
    cfg = load_config(None, ["optimization.ema=[0.99, 1.0]", "run.seed=3"])
    save_config(cfg, target)
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]
    saved = yaml.safe_load(target.read_text(encoding="utf-8"))
    assert saved["optimization"]["ema"] == [0.99, 1.0] and saved["run"]["seed"] == 3
    assert config_from_dict(saved) == cfg
