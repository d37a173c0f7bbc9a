"""The training loop: outputs, exact accumulation, kill-and-resume, two-process DDP."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from citrusv.cli import main as cli
from citrusv.train.config import load_stage_config
from citrusv.train.trainer import cosine_with_warmup, train
from conftest import write_training_data

# Learning rates large enough that a few steps move weights far beyond float rounding.
FAST_RATES = {"learning_rates.llm": 1e-3, "learning_rates.vit": 1e-3, "learning_rates.aligner": 1e-3,
              "learning_rates.seg": 1e-3}
SMALL = {"max_length": 512, "warmup_steps": 1, "logging_steps": 1, "image_min_pixels": 1024, "image_max_pixels": 4096,
         "gradient_checkpointing": False}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_training_data(tmp_path_factory.mktemp("data"), count=16)


def _weights(folder):
    return load_file(Path(folder) / "final" / "model.safetensors")


def _max_diff(a, b):
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _relative_difference(a, b, start):
    """‖a − b‖ / ‖a − start‖ over all weights: how far two runs part, relative to how far they moved.
    (A per-weight maximum would be dominated by AdamW's first steps on gradients near its epsilon,
    where float rounding of the gradient flips the update.)"""
    difference = sum(((a[k] - b[k]).double() ** 2).sum() for k in a).sqrt()
    moved = sum(((a[k] - start[k]).double() ** 2).sum() for k in a).sqrt()
    return (difference / moved).item()


def test_a_stage_3_run_leaves_everything_a_user_needs(native_checkpoint, data, tmp_path):
    config = load_stage_config(3, overrides={**SMALL, "per_device_batch_size": 2, "gradient_accumulation_steps": 2,
                                             "epochs": 2, "save_steps": 1, "save_total_limit": 2,
                                             "learning_rates.llm": 1e-3, "learning_rates.seg": 1e-3})
    result = train(config, native_checkpoint, [data], tmp_path, progress=False)
    records = [json.loads(line) for line in result.log_file.read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, result.global_step + 1))
    assert records[-1]["lm_loss"] < records[0]["lm_loss"]
    assert all(r["masks"] > 0 and r["tokens_per_s"] > 0 and "lr/seg" in r for r in records)
    checkpoints = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert checkpoints == [f"step-{s:06d}" for s in (result.global_step - 1, result.global_step)]  # rotation
    assert (tmp_path / "checkpoints" / checkpoints[-1] / "train_config.yaml").is_file()
    assert (tmp_path / "loss_curves.png").stat().st_size > 10_000
    assert list((tmp_path / "logs" / "tensorboard").glob("events.*"))
    report = json.loads((tmp_path / "data_report.json").read_text())
    assert report["index"]["read"] == 18 and report["index"]["kept"] == 16
    assert sum(report["index"]["dropped"].values()) == 2
    from citrusv.model import CitrusVForConditionalGeneration

    trained = CitrusVForConditionalGeneration.from_pretrained(result.final_dir)
    assert trained.config.image_max_pixels == 4096  # the resolution it was trained at is recorded


def test_accumulation_is_exactly_token_weighted(native_checkpoint, data, tmp_path):
    """Two micro-batches of one row give the same update as one micro-batch of two rows."""
    common = {**SMALL, "packing": False, "max_steps": 2, "save_steps": 10, "tensorboard": False, "plot": False,
              **FAST_RATES}
    one = load_stage_config(3, overrides={**common, "per_device_batch_size": 2, "gradient_accumulation_steps": 1})
    two = load_stage_config(3, overrides={**common, "per_device_batch_size": 1, "gradient_accumulation_steps": 2})
    train(one, native_checkpoint, [data], tmp_path / "one", progress=False)
    train(two, native_checkpoint, [data], tmp_path / "two", progress=False)
    start = load_file(native_checkpoint / "model.safetensors")
    a, b = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert _relative_difference(a, b, start) < 1e-3


def _cli_args(overrides):
    args = []
    for key, value in overrides.items():
        flag = "--lr-" + key.split(".")[1] if key.startswith("learning_rates.") else "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else f"--no-{key.replace('_', '-')}")
        else:
            args += [flag, str(value)]
    return args


def test_killed_run_resumes_to_the_same_weights(native_checkpoint, data, tmp_path):
    overrides = {**SMALL, "per_device_batch_size": 1, "gradient_accumulation_steps": 2, "max_steps": 8,
                 "save_steps": 2, "tensorboard": False, "plot": False}
    train(load_stage_config(3, overrides=overrides), native_checkpoint, [data], tmp_path / "straight", progress=False)
    run = tmp_path / "killed"
    command = [sys.executable, "-m", "citrusv", "train", "--stage", "3", "--model", str(native_checkpoint),
               "--data", str(data), "--out", str(run), *_cli_args(overrides)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    marker = run / "checkpoints" / "step-000002" / "trainer_state.json"
    deadline = time.time() + 120
    while not marker.exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.time() < deadline
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run / "final").exists()  # it really died mid-run
    assert code_resume(native_checkpoint, data, run, overrides) == 0
    assert _max_diff(_weights(tmp_path / "straight"), _weights(run)) == 0.0
    steps = [json.loads(line)["step"] for line in (run / "logs" / "train_log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


def code_resume(checkpoint, data, run, overrides):
    return cli(["train", "--stage", "3", "--model", str(checkpoint), "--data", str(data), "--out", str(run),
                "--resume", "auto", *_cli_args(overrides)])


def test_two_process_ddp_matches_one_process(native_checkpoint, data, tmp_path):
    common = {**SMALL, "packing": False, "max_steps": 3, "save_steps": 10, "tensorboard": False, "plot": False,
              **FAST_RATES}
    single = {**common, "per_device_batch_size": 2, "gradient_accumulation_steps": 2}
    ddp = {**common, "per_device_batch_size": 2, "gradient_accumulation_steps": 1}
    base = ["--stage", "3", "--model", str(native_checkpoint), "--data", str(data)]
    assert cli(["train", *base, "--out", str(tmp_path / "single"), *_cli_args(single)]) == 0
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(29500 + os.getpid() % 1000),
               "-m", "citrusv", "train", *base, "--out", str(tmp_path / "ddp"), *_cli_args(ddp)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    start = load_file(native_checkpoint / "model.safetensors")
    single_w, ddp_w = _weights(tmp_path / "single"), _weights(tmp_path / "ddp")
    assert _relative_difference(single_w, ddp_w, start) < 1e-3
    single_log = [json.loads(x) for x in (tmp_path / "single" / "logs" / "train_log.jsonl").read_text().splitlines()]
    ddp_log = [json.loads(x) for x in (tmp_path / "ddp" / "logs" / "train_log.jsonl").read_text().splitlines()]
    for a, b in zip(single_log, ddp_log):
        assert a["lm_loss"] == pytest.approx(b["lm_loss"], rel=1e-5)
        assert a["mask_dice_loss"] == pytest.approx(b["mask_dice_loss"], rel=1e-5)


def test_cli_dry_run_prints_the_table(native_checkpoint, capsys):
    assert cli(["train", "--stage", "4", "--model", str(native_checkpoint), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "stage 4 (segmentation_finetuning)" in out and "seg/no_decay" in out
    assert cli(["train", "--stage", "2", "--model", str(native_checkpoint), "--dry-run", "--lr-seg", "1e-4"]) == 0
    assert "seg" in capsys.readouterr().out
    assert cli(["train", "--stage", "3", "--model", str(native_checkpoint)]) == 2  # no data, no out
    assert "--data and --out are required" in capsys.readouterr().err


def test_cosine_schedule():
    assert cosine_with_warmup(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert cosine_with_warmup(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert cosine_with_warmup(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert cosine_with_warmup(100, 100, 10, 0.2) == pytest.approx(0.2)
