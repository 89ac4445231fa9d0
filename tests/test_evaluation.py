"""The evaluation protocol: feature stores, the probes, selection, low-shot, the command and its errors."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from jepa_torch.io.checkpoint import save_official
from jepa_torch.io.export import load_encoder
from jepa_torch.cli import main
from jepa_torch.evaluation import AttentiveProbe, EvalConfig, EvaluationError, HeadGrid, evaluate, knn_predict
from jepa_torch.evaluation.probes import LinearHead, StoreBatches, train_heads
from jepa_torch.evaluation.protocol import ProbeScore, _draw, _fit, _low_shot, _selection
from jepa_torch.evaluation.store import FeatureStore, StoreWriter
from jepa_torch.models import make_target_encoder
from jepa_torch.models.predictor import Predictor
from jepa_torch.models.vit import VisionTransformer

COLOURS = {"blue": (20, 40, 220), "green": (30, 200, 40), "red": (220, 30, 30)}


def _store(folder: Path, x: np.ndarray, y: np.ndarray, batch: int = 7) -> FeatureStore:
    writer = StoreWriter(folder, {"what": "test"})
    for i in range(0, len(y), batch):
        writer.append("pooled", x[i:i + batch])
        writer.append("labels", y[i:i + batch])
    return writer.close()


def test_a_store_reads_back_what_was_written_in_any_chunking(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(53, 5)).astype(np.float32), rng.integers(0, 3, 53)
    assert not FeatureStore.complete(tmp_path / "s")
    store = _store(tmp_path / "s", x, y)
    assert FeatureStore.complete(tmp_path / "s") and store.rows == 53 and store.row_shape("pooled") == (5,)
    assert np.array_equal(np.concatenate([c for _, c in store.chunks("pooled", 10)]), x)
    order = np.array([4, 0, 5, 1, 3, 2])  # chunk numbers, shuffled
    starts = [s for s, _ in store.chunks("pooled", 10, order)]
    assert starts == [40, 0, 50, 10, 30, 20]
    rows = np.array([52, 3, 4, 5, 17, 0, 4])
    assert np.array_equal(store.take("pooled", rows), x[rows]) and np.array_equal(store.take("labels", rows), y[rows])
    assert np.array_equal(store.read("pooled", 50, 99), x[50:])
    (tmp_path / "s" / "meta.json").unlink()  # as a killed run leaves it: written again
    assert _store(tmp_path / "s", x[:5], y[:5]).rows == 5
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("not features")
    with pytest.raises(FileExistsError, match="notes.txt"):  # never deleted
        _store(tmp_path / "mine", x, y)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "not features"


def test_store_batches_visit_every_training_row_once_per_epoch(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = np.arange(103, dtype=np.float32)[:, None] * np.ones((1, 4), np.float32)
    store = _store(tmp_path / "s", x, rng.integers(0, 2, 103))
    rows = rng.random(103) < 0.8
    batches = StoreBatches(store, "pooled", rows, batch_size=16, seed=3)
    batches.chunk = 9  # many chunks: rows carry over between them
    seen = []
    for epoch in range(2):
        got = [b for b, _ in batches.epoch(epoch)]
        assert all(len(b) == 16 for b in got[:-1]) and len(got) == len(batches)
        ids = np.concatenate(got)[:, 0].astype(int)
        assert sorted(ids) == list(np.flatnonzero(rows))
        seen.append(ids)
    assert not np.array_equal(seen[0], seen[1])


def test_knn_equals_scikit_learn_cosine_distance_weighted(tmp_path: Path) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(2)
    train_x, train_y = rng.normal(size=(300, 12)), rng.integers(0, 4, 300)
    test_x = rng.normal(size=(90, 12))
    test_x[:3] = train_x[:3] * 2.0  # exact matches in angle: they take the vote alone
    store = _store(tmp_path / "s", train_x.astype(np.float32), train_y)
    for k in (1, 5, 20):
        ref = KNeighborsClassifier(n_neighbors=k, metric="cosine", weights="distance", algorithm="brute")
        expected = ref.fit(train_x.astype(np.float32), train_y).predict(test_x)
        assert np.array_equal(knn_predict(store, train_y, test_x, 4, k, chunk=37), expected)
        assert np.array_equal(knn_predict(train_x.astype(np.float32), train_y, test_x, 4, k), expected)


def test_heads_trained_together_equal_each_trained_alone(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(200, 6)).astype(np.float32), rng.integers(0, 3, 200)
    store = _store(tmp_path / "s", x, y)
    batches = StoreBatches(store, "pooled", np.ones(200, bool), 32, seed=0)
    cpu = torch.device("cpu")
    together = train_heads(lambda: LinearHead(6, 3), batches, HeadGrid(3, 32, (1e-2,), (0.0, 0.5)), 0, cpu)
    alone = train_heads(lambda: LinearHead(6, 3), batches, HeadGrid(3, 32, (1e-2,), (0.0,)), 0, cpu)
    assert torch.equal(together[0].linear.weight, alone[0].linear.weight)
    assert not torch.equal(together[0].linear.weight, together[1].linear.weight)


def _marked(n: int, marker: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = torch.randn(n, 9, 16) * 0.3, torch.randint(0, 2, (n,))
    x[y == 1, 0] += marker
    x[y == 1, 1] -= marker
    return x, y


def test_the_attentive_probe_pools_a_set_and_learns_what_mean_pooling_cannot() -> None:
    torch.manual_seed(0)
    probe = AttentiveProbe(16, 2, num_heads=4, queries=2)
    tokens = torch.randn(5, 9, 16)
    assert torch.allclose(probe(tokens), probe(tokens[:, torch.randperm(9)]), atol=1e-6)  # order does not matter
    # class 1: the set holds a marker token and its negation, which average out: the mean is class 0's
    n, marker = 512, 2 * torch.randn(16)
    x, y = _marked(n, marker)
    grid = HeadGrid(40, 64, (3e-3,), (0.0,))
    from jepa_torch.evaluation.probes import ArrayBatches

    cpu = torch.device("cpu")
    xs, ys = x.numpy(), y.numpy()
    attentive = train_heads(lambda: AttentiveProbe(16, 2, 4), ArrayBatches(xs, ys, 64, 0), grid, 0, cpu)[0]
    linear = train_heads(lambda: LinearHead(16, 2), ArrayBatches(xs.mean(1), ys, 64, 0), grid, 0, cpu)[0]
    with torch.no_grad():
        test, ty = _marked(256, marker)
        acc_att = (attentive(test).argmax(1) == ty).float().mean().item()
        acc_lin = (linear(test.mean(1)).argmax(1) == ty).float().mean().item()
    assert acc_att > 0.9 and acc_lin < 0.7, (acc_att, acc_lin)


def test_attentive_blocks_run_self_attention_over_the_tokens_before_pooling() -> None:
    torch.manual_seed(0)
    one, four = AttentiveProbe(16, 2, 4), AttentiveProbe(16, 2, 4, blocks=4)
    assert not any(k.startswith("blocks.") for k in one.state_dict()) and len(four.blocks) == 3
    # deeper blocks start with smaller residual branches (1 / sqrt(2 i)), as V-JEPA 2's probe does
    stds = [float(block.mlp.fc2.weight.detach().std()) for block in four.blocks]
    assert stds[0] > stds[1] > stds[2] and abs(stds[0] / stds[2] - 3 ** 0.5) < 0.15, stds
    with torch.no_grad():  # weights of a trained probe's size, so that the tokens visibly mix
        for param in four.blocks.parameters():
            param.normal_(0.0, 0.3)
    # the cross-attention pooler of ``four`` applied to what its blocks make of the tokens is ``four``
    one.load_state_dict({k: v for k, v in four.state_dict().items() if not k.startswith("blocks.")})
    tokens = torch.randn(5, 9, 16)
    with torch.no_grad():
        mixed = tokens
        for block in four.blocks:
            mixed = block(mixed)
        assert torch.allclose(four(tokens), one(mixed), atol=1e-6)
        moved = tokens.clone()
        moved[:, 5] += torch.randn(16)  # (a constant shift would vanish in the blocks' LayerNorm)
        for block in four.blocks:
            moved = block(moved)
        assert (moved[:, 0] - mixed[:, 0]).abs().max() > 1e-2  # token 0 now depends on token 5: they interact
        assert torch.allclose(four(tokens), four(tokens[:, torch.randperm(9)]), atol=1e-5)  # blind to order
    with pytest.raises(ValueError, match="blocks=0"):
        AttentiveProbe(16, 2, 4, blocks=0)
    with pytest.raises(EvaluationError, match="--attentive-blocks"):
        EvalConfig(attentive_blocks=0)


def test_the_head_is_chosen_without_the_val_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(3, 8)) * 2
    y = rng.integers(0, 3, 240)
    x = (centres[y] + rng.normal(size=(240, 8))).astype(np.float32)
    train = _store(tmp_path / "train", x[:180], y[:180])
    val = _store(tmp_path / "val", x[180:], y[180:])
    garbled = _store(tmp_path / "garbled", x[180:], rng.permutation(y[180:]))
    cfg = EvalConfig(linear=HeadGrid(5, 32, (1e-3, 1e-1), (0.0, 1.0)), progress=False)
    select = _selection(180, 0.1, 0)
    assert select.sum() == 18
    good, _ = _fit("linear", train, val, 3, cfg, 1, select)
    bad, _ = _fit("linear", train, garbled, 3, cfg, 1, select)
    assert good.hyper == bad.hyper and good.selection_accuracy == bad.selection_accuracy
    assert good.accuracy > 0.8 > bad.accuracy


def test_low_shot_draws_per_class_and_fractions() -> None:
    labels = np.repeat(np.arange(4), [50, 30, 10, 3])
    one = _draw(labels, "1", 0)
    assert sorted(labels[one]) == [0, 1, 2, 3]
    ten = _draw(labels, "10", 0)
    assert np.bincount(labels[ten]).tolist() == [10, 10, 10, 3]  # a class with fewer images gives them all
    pct = _draw(labels, "10%", 0)
    assert np.bincount(labels[pct]).tolist() == [5, 3, 1, 1]  # at least one per class
    assert not np.array_equal(_draw(labels, "10", 0), _draw(labels, "10", 1))
    with pytest.raises(EvaluationError, match="--low-shot 0"):
        EvalConfig(low_shot=("0",))
    with pytest.raises(EvaluationError, match="--probes"):
        EvalConfig(probes=("linear", "svm"))


def test_the_low_shot_attentive_probe_learns_from_the_drawn_rows_alone(tmp_path: Path) -> None:
    torch.manual_seed(0)
    marker = 2 * torch.randn(16)
    x, y = _marked(400, marker)
    test, ty = _marked(200, marker)
    cfg = EvalConfig(probes=("linear", "attentive"), low_shot=("20",), draws=2, progress=False,
                     attentive=HeadGrid(40, 64, (3e-3,), (0.0,), min_steps=150, min_batch=16),
                     linear=HeadGrid(40, 64, (1e-2,), (0.0,), min_steps=150))
    drawn = np.zeros(len(y), dtype=bool)
    for draw in range(cfg.draws):
        drawn[_draw(y.numpy(), "20", draw)] = True
    other = torch.from_numpy(~drawn)  # the other rows carry the marker in class 0: a probe that read them fails
    x[other] = torch.randn(int(other.sum()), 9, 16) * 0.3
    x[other & (y == 0), 0] += marker
    x[other & (y == 0), 1] -= marker

    def tokens(folder: Path, t: torch.Tensor, labels: torch.Tensor) -> FeatureStore:
        writer = StoreWriter(folder, {"what": "test"})
        writer.append("tokens", t.numpy().astype(np.float16))
        writer.append("pooled", t.mean(1).numpy())
        writer.append("labels", labels.numpy())
        return writer.close()

    train, val = tokens(tmp_path / "train", x, y), tokens(tmp_path / "val", test, ty)
    chosen = {p: ProbeScore(0.0, None, {"lr": 1e-2, "weight_decay": 0.0}, 16) for p in ("linear", "attentive")}
    scores = {s.probe: s for s in _low_shot("marked", train, val, 2, cfg, chosen, num_heads=4)}
    assert scores["attentive"].images == 40 and len(scores["attentive"].accuracies) == 2
    assert min(scores["attentive"].accuracies) > 0.8, scores["attentive"]  # it learned from the 40 drawn rows
    assert scores["linear"].mean < 0.7, scores["linear"]  # the mean of the tokens hides the marker


def test_layer_outputs_end_with_the_forward_output() -> None:
    torch.manual_seed(0)
    vit = VisionTransformer(16, 4, 3, embed_dim=32, depth=3, num_heads=4).eval()
    x = torch.randn(2, 3, 16, 16)
    layers = vit.layer_outputs(x, 3)
    assert len(layers) == 3 and torch.allclose(layers[-1], vit(x), atol=1e-6)
    assert torch.allclose(vit.layer_outputs(x, 1)[0], layers[-1])
    with torch.no_grad():
        h = vit.patch_embed(x) + vit.pos_embed
        assert torch.allclose(layers[0], vit.norm(vit.blocks[0](h)), atol=1e-6)
    with pytest.raises(ValueError, match="last=4"):
        vit.layer_outputs(x, 4)


# ----------------------------------------------------------------------------- end to end


def _folder(root: Path, per_class: int, seed: int, classes: tuple[str, ...] = tuple(COLOURS)) -> Path:
    rng = np.random.default_rng(seed)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(np.array(COLOURS[name]) + rng.normal(0, 25, (20, 20, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def _checkpoint(path: Path, seed: int = 0, in_chans: int = 3) -> Path:
    """What the official trainer writes: DDP's ``module.`` prefixes, optimiser, scaler, epoch."""
    torch.manual_seed(seed)
    enc = VisionTransformer(16, 8, in_chans, embed_dim=192, depth=2, num_heads=3)
    pred = Predictor(grid=enc.grid, embed_dim=192, predictor_embed_dim=96, depth=1, num_heads=3)
    target = make_target_encoder(enc)
    with torch.no_grad():
        for p in target.parameters():  # the EMA has moved away from the context encoder
            p.add_(0.01 * torch.randn_like(p))

    def ddp(m: torch.nn.Module) -> dict[str, torch.Tensor]:
        return {f"module.{k}": v for k, v in m.state_dict().items()}

    torch.save({"encoder": ddp(enc), "predictor": ddp(pred), "target_encoder": ddp(target),
                "opt": {"state": {}, "param_groups": []}, "scaler": None, "epoch": 5, "loss": 0.1,
                "batch_size": 8, "world_size": 1, "lr": 1e-3}, path)
    return path


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("eval")
    return (_folder(root / "train", 24, 0), _folder(root / "val", 6, 1),
            _checkpoint(root / "official.pth.tar"))


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


FAST = ["--epochs", "2", "--attentive-epochs", "2", "--min-steps", "0", "--no-progress", "--batch-size", "16"]


def test_the_command_probes_an_official_checkpoint_on_image_folders(folders: tuple[Path, Path, Path],
                                                                      tmp_path: Path) -> None:
    train, val, ckpt = folders
    code, out, err = _run(["eval", "--checkpoint", str(ckpt), "--train", str(train), "--val", str(val),
                           "--low-shot", "1", "25%", "--draws", "2", "--json", str(tmp_path / "r.json"),
                           "--confusion", str(tmp_path / "c.png"), "--pca", str(tmp_path / "p.png"),
                           "--cache", str(tmp_path / "cache"), *FAST])
    assert code == 0, err
    assert "target encoder" in out and "same ViT, random init" in out and "raw pixels" in out
    assert "last-2 lin." in out and "attentive" in out and "low-shot (2 draws" in out and "peak memory" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["train_size"] == 72 and report["val_size"] == 18 and report["classes"] == list(sorted(COLOURS))
    assert set(report["rows"]["target encoder"]) == {"linear", "lastk", "attentive", "knn"}
    assert set(report["rows"]["raw pixels"]) == {"linear", "knn"}  # pixels have no layers or tokens
    assert report["rows"]["raw pixels"]["linear"]["accuracy"] == 1.0  # three flat colours
    assert report["rows"]["target encoder"]["knn"]["accuracy"] == 1.0
    assert report["rows"]["target encoder"]["lastk"]["dim"] == 2 * 192
    assert {(s["probe"], s["shots"], s["images"]) for s in report["low_shot"]} >= {("linear", "1", 3),
                                                                                   ("attentive", "1", 3),
                                                                                   ("knn", "25%", 18)}
    assert np.array(report["confusion"]["counts"]).sum() == 18
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "p.png").stat().st_size > 1000
    cached = sorted(p.relative_to(tmp_path) for p in (tmp_path / "cache").rglob("meta.json"))
    assert len(cached) == 6  # three feature sets, two splits
    stamps = [p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.bin")]
    code, again, _ = _run(["eval", "--checkpoint", str(ckpt), "--train", str(train), "--val", str(val),
                           "--cache", str(tmp_path / "cache"), *FAST])
    assert code == 0 and [p.stat().st_mtime_ns for p in (tmp_path / "cache").rglob("*.bin")] == stamps  # reused
    other = _checkpoint(tmp_path / "other.pth.tar", seed=1)
    code, _, err = _run(["eval", "--checkpoint", str(other), "--train", str(train), "--val", str(val),
                         "--cache", str(tmp_path / "cache"), *FAST])
    assert code == 2 and err.count("\n") == 1 and "holds features of another checkpoint" in err


def test_the_command_takes_v_jepa_2s_deeper_attentive_probe(folders: tuple[Path, Path, Path], tmp_path: Path) -> None:
    train, val, ckpt = folders
    code, out, err = _run(["eval", "--checkpoint", str(ckpt), "--train", str(train), "--val", str(val),
                           "--probes", "attentive", "--attentive-blocks", "2", "--no-baselines",
                           "--json", str(tmp_path / "r.json"), *FAST])
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["settings"]["attentive_blocks"] == 2 and set(report["rows"]["target encoder"]) == {"attentive"}
    code, _, err = _run(["eval", "--checkpoint", str(ckpt), "--train", str(train), "--val", str(val),
                         "--attentive-blocks", "0", *FAST])
    assert code == 2 and err.count("\n") == 1 and "--attentive-blocks" in err


def test_the_context_encoder_is_a_choice(folders: tuple[Path, Path, Path], tmp_path: Path) -> None:
    train, val, ckpt = folders
    report = evaluate(ckpt, train=str(train), val=str(val), encoders=("context", "target"), baselines=False,
                      config=EvalConfig(probes=("knn",), progress=False, cache=str(tmp_path)))
    assert list(report.rows) == ["context encoder", "target encoder"] and report.step == 5
    # each row's features are its own encoder's: the stored pooled features are that encoder's output
    from jepa_torch.evaluation.store import FeatureStore

    for which, slug in (("context", "context_encoder"), ("target", "target_encoder")):
        store = FeatureStore(tmp_path / slug / "val")
        first = Image.open(sorted((val / "blue").iterdir())[0]).convert("RGB")
        from jepa_torch.data.transforms import official_transforms

        x = official_transforms(16, augment=False)(first)[None]
        with torch.no_grad():
            expected = load_encoder(ckpt, which=which)(x).mean(dim=1)[0]  # type: ignore[arg-type]
        assert torch.allclose(torch.from_numpy(store.read("pooled", 0, 1)[0]), expected, atol=1e-5)
    assert not np.allclose(FeatureStore(tmp_path / "context_encoder" / "val").read("pooled", 0, 1),
                           FeatureStore(tmp_path / "target_encoder" / "val").read("pooled", 0, 1))


@pytest.mark.parametrize("case, fragment", [
    ("no-val", "give both --train PATH and --val PATH"),
    ("missing-val", "does not exist"),
    ("foreign-class", "are not classes of --train"),
    ("empty-val", "has no class subfolders"),
    ("sequence-checkpoint", "holds a sequence encoder"),
    ("grey-checkpoint", "1-channel images"),
    ("not-a-jepa", "has neither 'target_encoder' nor 'encoder'"),
    ("no-config", "has no run config"),
    ("bad-probe", "--probes"),
    ("missing-checkpoint", "checkpoint file not found"),
])
def test_bad_input_is_one_line_naming_it(folders: tuple[Path, Path, Path], tmp_path: Path, case: str,
                                         fragment: str) -> None:
    from jepa_torch.models import build_sequence_jepa

    train, val, ckpt = folders
    args = ["--checkpoint", str(ckpt), "--train", str(train), "--val", str(val), *FAST]
    if case == "no-val":
        args = ["--checkpoint", str(ckpt), "--train", str(train)]
    elif case == "missing-val":
        args[5] = str(tmp_path / "nowhere")
    elif case == "foreign-class":
        args[5] = str(_folder(tmp_path / "v", 2, 0, ("blue", "green")))
        (tmp_path / "v" / "violet").mkdir()
        Image.new("RGB", (8, 8)).save(tmp_path / "v" / "violet" / "a.png")
    elif case == "empty-val":
        (tmp_path / "empty").mkdir()
        args[5] = str(tmp_path / "empty")
    elif case == "sequence-checkpoint":
        enc, pred = build_sequence_jepa(input_dim=4, seq_len=8, preset="vit_tiny", depth=1, pred_depth=1,
                                        pred_emb_dim=48)
        save_official(tmp_path / "seq.pth.tar", enc, pred, make_target_encoder(enc))
        args[1] = str(tmp_path / "seq.pth.tar")
    elif case == "grey-checkpoint":
        args[1] = str(_checkpoint(tmp_path / "grey.pth.tar", in_chans=1))
    elif case == "not-a-jepa":
        torch.save({"state_dict": {"conv1.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "resnet.pth")
        args[1] = str(tmp_path / "resnet.pth")
    elif case == "no-config":
        args = ["--checkpoint", str(ckpt)]
    elif case == "bad-probe":
        args += ["--probes", "linear", "svm"]
    elif case == "missing-checkpoint":
        args[1] = str(tmp_path / "absent.pth.tar")
    code, out, err = _run(["eval", *args])
    assert code == 2 and err.count("\n") == 1 and err.startswith("jepa-torch: error: "), err
    assert fragment in err, err


def test_a_run_is_probed_on_its_held_out_split(tmp_path: Path) -> None:
    from tests.test_train import tiny_config
    from jepa_torch.training.loop import train

    summary = train(tiny_config(tmp_path / "run", max_steps=4), progress=False)
    assert summary.last_checkpoint is not None
    report = evaluate(summary.last_checkpoint, encoders=("target", "context"),
                      config=EvalConfig(linear=HeadGrid(2, 64, (1e-3,), (0.0,)),
                                        attentive=HeadGrid(1, 64, (1e-3,), (0.0,)), progress=False))
    assert list(report.rows) == ["I-JEPA target encoder", "I-JEPA context encoder", "same ViT, random init",
                                 "raw pixels"]
    assert report.train_size + report.val_size == 1797 and abs(report.val_size - 1797 / 2) < 5  # fraction 0.5
    assert report.step == 4 and report.classes == [str(c) for c in range(10)]
    assert all(0.0 <= s.accuracy <= 1.0 for r in report.rows.values() for s in r.values())
    assert report.rows["raw pixels"]["knn"].accuracy > 0.9  # the digits' pixels are a strong kNN baseline


def test_tokens_encoded_again_train_the_probe_that_stored_tokens_train(folders: tuple[Path, Path, Path],
                                                                       tmp_path: Path) -> None:
    from jepa_torch.evaluation.features import EncoderBatches, EncoderFeatures, extract, folder_splits

    train, val, ckpt = folders
    cpu = torch.device("cpu")
    split, _, _ = folder_splits(str(train), str(val), 16)
    source = EncoderFeatures("target", load_encoder(ckpt), 1, True, cpu)
    store = extract(source, split, tmp_path / "s", {}, shuffled=True, batch_size=16, progress=False)
    rows = ~_selection(store.rows, 0.2, 0)
    stored = StoreBatches(store, "tokens", rows, 8, seed=1)
    stored.chunk = 10  # several chunks, rows carried between them
    again = EncoderBatches(source, split, rows, 8, seed=1, chunk=10)
    pairs = list(zip(stored.epoch(2), again.epoch(2), strict=True))
    assert all(np.array_equal(ya, yb) for (_, ya), (_, yb) in pairs)
    assert all(np.allclose(xa, xb.numpy(), atol=2e-3) for (xa, _), (xb, _) in pairs)
    grid = HeadGrid(2, 8, (1e-3,), (0.0,))
    a = train_heads(lambda: AttentiveProbe(192, 3, 3), stored, grid, 0, cpu)[0]
    b = train_heads(lambda: AttentiveProbe(192, 3, 3), again, grid, 0, cpu)[0]
    for (name, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-4), name
    # the whole command takes that way when the tokens would not fit the disk budget
    report = evaluate(ckpt, train=str(train), val=str(val), baselines=False,
                      config=EvalConfig(probes=("attentive",), token_disk_gib=0.0, progress=False,
                                        cache=str(tmp_path / "cache"), attentive=HeadGrid(1, 16, (1e-3,), (0.0,))))
    assert "attentive" in report.rows["target encoder"]
    assert not list((tmp_path / "cache").rglob("tokens.bin"))


def test_the_demo_trains_probes_and_draws(tmp_path: Path) -> None:
    from jepa_torch.demo import CONFIGS, run_demo

    fast = EvalConfig(linear=HeadGrid(1, 256, (1e-2,), (1e-4,)), attentive=HeadGrid(1, 256, (1e-3,), (0.01,)))
    report = run_demo(CONFIGS["ijepa"], tmp_path, seed=0, progress=False, evaluation=fast,
                      overrides=("run.max_steps=2", "run.monitor_every=0", "run.tensorboard=false"))
    assert list(report.rows)[:2] == ["I-JEPA target encoder", "I-JEPA context encoder"]
    assert set(report.rows["I-JEPA target encoder"]) == {"linear", "lastk", "attentive", "knn"}
    for picture in ("curves.png", "masks.png", "pca.png", "confusion.png"):
        assert (tmp_path / picture).stat().st_size > 1000, picture
    assert json.loads((tmp_path / "eval.json").read_text())["val_size"] == report.val_size


def test_probe_steps_scale_with_the_data() -> None:
    """Epochs over the training split; a small split reaches the heads' minimum of updates with smaller batches,
    so the work of 200 images is a small fraction of that of 20,000, not a fixed cost."""
    linear, attentive = EvalConfig().linear, EvalConfig().attentive
    assert (linear.batch_for(20_000), linear.steps(20_000)) == (256, 100 * 79)  # epochs decide
    assert (linear.batch_for(1_000), linear.steps(1_000)) == (50, 2_000)  # 20 batches a pass
    assert (linear.batch_for(200), linear.steps(200)) == (16, 2_000)  # never below 16 rows: more passes
    assert (attentive.batch_for(20_000), attentive.steps(20_000)) == (128, 20 * 157)
    assert (attentive.batch_for(200), attentive.steps(200)) == (64, 500)
    for grid in (linear, attentive):
        work = {n: grid.steps(n) * grid.batch_for(n) for n in (200, 2_000, 20_000)}
        assert work[200] < work[2_000] < work[20_000] and work[200] < work[20_000] / 10, work
    assert HeadGrid(3, 32, (1e-2,), (0.0,)).batch_for(5) == 32  # min_steps=0: the batch as given


def test_probe_training_shows_progress_with_an_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    from jepa_torch.evaluation.probes import ArrayBatches

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 6)).astype(np.float32), rng.integers(0, 3, 64)
    grid = HeadGrid(5, 16, (1e-2,), (0.0,))
    train_heads(lambda: LinearHead(6, 3), ArrayBatches(x, y, 16, 0), grid, 0, torch.device("cpu"),
                progress="pixels: linear probe, 1 heads")
    err = capsys.readouterr().err
    assert "pixels: linear probe, 1 heads:" in err and "/20 [00:00<" in err  # done/total [elapsed<time left]
    floor = HeadGrid(5, 16, (1e-2,), (0.0,), min_steps=30)  # 5 passes of 4 batches are 20 steps: 30 it is
    train_heads(lambda: LinearHead(6, 3), ArrayBatches(x, y, 16, 0), floor, 0, torch.device("cpu"), progress="x")
    assert "/30 [" in capsys.readouterr().err and floor.steps(64) == 30
    train_heads(lambda: LinearHead(6, 3), ArrayBatches(x, y, 16, 0), grid, 0, torch.device("cpu"))
    assert capsys.readouterr().err == ""


def test_the_device_defaults_to_auto_as_in_training(capsys: pytest.CaptureFixture[str]) -> None:
    assert EvalConfig().device == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(EvaluationError, match="--device cuda: no CUDA device is visible; use --device auto or cpu"):
            EvalConfig(device="cuda")
    with pytest.raises(EvaluationError, match="--device tpu: use auto, cpu, cuda or cuda:N"):
        EvalConfig(device="tpu")
