"""The training loop, on Hugging Face Accelerate (one process, DDP, FSDP or DeepSpeed ZeRO-2).

One optimizer step = ``gradient_accumulation_steps`` micro-batches on every process. Before a
step, the label tokens and masks of all its micro-batches on all processes are counted, and each
micro-batch's losses are sums divided by those global counts, so the step's loss is the exact
token-weighted LM loss plus per-mask mask losses of the whole global batch, however it was split
across micro-batches and devices (DDP averages gradients over processes, hence the factor
``num_processes`` on the backward loss).

Data order is a pure function of (seed, epoch): rows of the packing plan are shuffled per epoch,
padded by wrap-around to a whole number of global micro-batches, and process r takes its slice.
A checkpoint stores model, optimizer, scheduler and RNG states (Accelerate's ``save_state``) plus
the step counter; the data position follows from the step, so a killed run resumed from its last
checkpoint ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.collate import collate_packed
from .config import TrainConfig
from .dataset import SampleIndex, TrainingRows
from .hooks import SegmentationGradientScale
from .params import apply_freezing, dry_run_table, optimizer_groups

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "cosine_with_warmup", "train"]

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"


@dataclass
class TrainResult:
    """Where a run left its outputs."""

    out_dir: Path
    final_dir: Path | None
    global_step: int
    log_file: Path
    dry_run_table: str | None = None


def cosine_with_warmup(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to ``min_ratio``."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _mixed_precision(setting: str) -> str:
    if setting != "auto":
        return setting
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _latest_checkpoint(out_dir: Path) -> Path | None:
    folder = out_dir / CHECKPOINTS
    done = sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file()) if folder.is_dir() else []
    return done[-1] if done else None


class _Schedule:
    """Which rows each process reads at each micro-step (a pure function of seed and epoch)."""

    def __init__(self, num_rows: int, per_device: int, num_processes: int, rank: int, seed: int):
        self.num_rows, self.per_device, self.num_processes, self.rank, self.seed = num_rows, per_device, num_processes, rank, seed
        self.global_batch = per_device * num_processes
        self.micro_per_epoch = math.ceil(num_rows / self.global_batch)
        self._epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def rows(self, micro_step: int) -> list[int]:
        epoch, within = divmod(micro_step, self.micro_per_epoch)
        if epoch != self._epoch:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_rows)
            pad = self.micro_per_epoch * self.global_batch - self.num_rows
            self._order = np.concatenate([order, order[:pad]]) if pad else order
            self._epoch = epoch
        start = within * self.global_batch + self.rank * self.per_device
        return self._order[start:start + self.per_device].tolist()


def train(
    config: TrainConfig,
    model_path: str | Path,
    data_paths: list[str | Path],
    out_dir: str | Path,
    *,
    resume: bool | str | Path = "auto",
    dry_run: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Run one training stage.

    Args:
        config: the stage's settings.
        model_path: checkpoint to start from (native or released layout).
        data_paths: JSONL files in the sample schema.
        out_dir: run folder: ``checkpoints/step-*``, ``final/``, ``logs/``, plots.
        resume: ``"auto"`` continues from the latest checkpoint in ``out_dir`` if any; ``True``
            requires one; a path names one; ``False`` starts over.
        dry_run: print the trainable / frozen table and return without training.
        progress: show a progress bar (main process only).
    """
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    from ..model import CitrusVForConditionalGeneration
    from ..processing import CitrusVProcessor

    out_dir = Path(out_dir)
    # Some trainable SAM2 parts get no gradient from the release's losses (IoU and object-score
    # heads, the mask-prompt encoder), so DDP must tolerate unused parameters, as the release did.
    accelerator = Accelerator(mixed_precision=_mixed_precision(config.mixed_precision), cpu=not torch.cuda.is_available(),
                              gradient_accumulation_steps=config.gradient_accumulation_steps,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    main = accelerator.is_main_process
    set_seed(config.seed)
    for engine, flag in (("FSDP", "ACCELERATE_USE_FSDP"), ("DEEPSPEED", "ACCELERATE_USE_DEEPSPEED")):
        if os.environ.get(flag, "false").lower() == "true" and accelerator.distributed_type.name != engine:
            # Accelerate only shards on accelerators; on CPUs it silently runs plain data parallel.
            logger.warning("an %s launch config was given but Accelerate runs %s on this machine (FSDP and DeepSpeed "
                           "need GPUs): no sharding", engine, accelerator.distributed_type.name)

    model = CitrusVForConditionalGeneration.from_pretrained(model_path, dtype=torch.float32)
    owners = apply_freezing(model, config)
    loss_weights = (model.config.mask_bce_weight, model.config.mask_dice_weight)
    _, _, table = dry_run_table(model, config)
    if dry_run:
        if main:
            print(table)
        return TrainResult(out_dir, None, 0, out_dir / "logs" / "train_log.jsonl", dry_run_table=table)
    if main:
        logger.info("\n%s", table)
    processor = CitrusVProcessor.from_pretrained(model_path, config=model.config, min_pixels=config.image_min_pixels,
                                                 max_pixels=config.image_max_pixels)
    model.config.image_min_pixels = processor.image_config.min_pixels
    model.config.image_max_pixels = processor.image_config.max_pixels
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    seg_trainable = any(owners[n] == "seg" and p.requires_grad for n, p in model.named_parameters())

    # ---------------------------------------------------------------- data
    with accelerator.main_process_first():
        index = SampleIndex.build(data_paths, processor, max_length=config.max_length, allow_split=config.packing,
                                  cache_dir=out_dir / "data_index", progress=progress and main)
    rows = TrainingRows(index, processor, config.max_length, packing=config.packing)
    schedule = _Schedule(len(rows), config.per_device_batch_size, accelerator.num_processes,
                         accelerator.process_index, config.seed)
    steps_per_epoch = math.ceil(schedule.micro_per_epoch / config.gradient_accumulation_steps)
    total_steps = config.max_steps or max(1, math.ceil(config.epochs * steps_per_epoch))
    if main:
        logger.info("data: %d rows from %d samples (%s dropped); %d optimizer steps", len(rows), len(index),
                    sum(index.report.dropped.values()), total_steps)

    # ---------------------------------------------------------------- optimisation
    optimizer = torch.optim.AdamW(optimizer_groups(model, config), betas=config.adam_betas, eps=config.adam_eps)
    # The schedule is stepped here once per optimizer step (not through Accelerate's wrapper,
    # which steps it once per process) and checkpointed with the rest of the state.
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: cosine_with_warmup(step, total_steps, config.warmup_steps, config.min_lr_ratio))
    model, optimizer = accelerator.prepare(model, optimizer)
    accelerator.register_for_checkpointing(scheduler)
    # After prepare: FSDP replaces the parameter objects, and the hooks must sit on the new ones.
    grad_scale = (SegmentationGradientScale(accelerator.unwrap_model(model), config.seg_grad_scale).attach()
                  if seg_trainable else None)

    start_step = 0
    checkpoint = _resume_from(resume, out_dir)
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        start_step = json.loads((checkpoint / STATE_FILE).read_text())["global_step"]
        if main:
            logger.info("resumed from %s at step %d", checkpoint, start_step)

    logs = out_dir / "logs"
    log_file = logs / "train_log.jsonl"
    writer = None
    if main:
        logs.mkdir(parents=True, exist_ok=True)
        _truncate_log(log_file, start_step)
        config.save(out_dir / "train_config.yaml")
        (out_dir / "data_report.json").write_text(json.dumps(index.report.to_dict(), indent=2))
        writer = _tensorboard(logs) if config.tensorboard else None
    bar = None
    if main and progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=start_step, desc=f"stage {config.stage}", unit="step")

    # ---------------------------------------------------------------- loop
    window = {"lm": 0.0, "bce": 0.0, "dice": 0.0, "tokens": 0, "masks": 0, "time": 0.0, "steps": 0}
    accumulation = config.gradient_accumulation_steps
    for step in range(start_step, total_steps):
        started = time.perf_counter()
        micro = [collate_packed([rows.build(r) for r in schedule.rows(step * accumulation + k)], processor)
                 for k in range(accumulation)]
        counts = torch.tensor([[float((b["labels"][:, 1:] != -100).sum()),
                                float((b["seg_image_index"] >= 0).sum()) if "seg_image_index" in b else 0.0,
                                float((b["segment_ids"] >= 0).sum())] for b in micro]).sum(0).to(accelerator.device)
        label_tokens, masks, tokens = accelerator.reduce(counts, reduction="sum").tolist()
        sums = torch.zeros(3, device=accelerator.device)
        grad_norm = None
        for batch in micro:
            batch = {key: value.to(accelerator.device) for key, value in batch.items()}
            with accelerator.accumulate(model), accelerator.autocast():
                out = model(**batch, num_items_in_batch=max(label_tokens, 1.0), num_masks_in_batch=max(masks, 1.0))
                # The loss is already a share of the global mean: undo Accelerate's division by the
                # accumulation steps and DDP's averaging over processes.
                accelerator.backward(out.loss * accumulation * accelerator.num_processes)
                if accelerator.sync_gradients:
                    if config.max_grad_norm:
                        grad_norm = accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
            sums += torch.stack([_value(out.lm_loss), _value(out.mask_bce_loss), _value(out.mask_dice_loss)]).to(sums.device)
        lm, bce, dice = accelerator.reduce(sums, reduction="sum").tolist()
        elapsed = time.perf_counter() - started
        for key, value in (("lm", lm), ("bce", bce), ("dice", dice), ("tokens", tokens), ("masks", masks), ("time", elapsed)):
            window[key] += value
        window["steps"] += 1
        done = step + 1
        if bar is not None:
            bar.update(1)
            total = lm + loss_weights[0] * bce + loss_weights[1] * dice
            bar.set_postfix(loss=f"{total:.4f}", tok_s=f"{tokens / elapsed:.0f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
        if done % config.logging_steps == 0 or done == total_steps:
            record = _log_record(done, window, scheduler, optimizer, grad_norm, loss_weights)
            window = {k: 0 if k != "time" else 0.0 for k in window}
            if main:
                with open(log_file, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                if writer is not None:
                    for key, value in record.items():
                        if isinstance(value, (int, float)) and key != "step":
                            writer.add_scalar(key, value, done)
        if done % config.save_steps == 0 or done == total_steps:
            _save_checkpoint(accelerator, out_dir, done, config)

    if grad_scale is not None:
        grad_scale.remove()
    if bar is not None:
        bar.close()
    final_dir = out_dir / "final"
    accelerator.wait_for_everyone()
    unwrapped = accelerator.unwrap_model(model)
    state = accelerator.get_state_dict(model)
    if main:
        unwrapped.save_pretrained(final_dir, state_dict=state)
        processor.save_pretrained(final_dir)
        config.save(final_dir / "train_config.yaml")
        report = {"index": index.report.to_dict(), "while_training": rows.report.to_dict()}
        (out_dir / "data_report.json").write_text(json.dumps(report, indent=2))
        if writer is not None:
            writer.close()
        if config.plot:
            _plot(log_file, out_dir / "loss_curves.png")
    accelerator.wait_for_everyone()
    accelerator.end_training()
    return TrainResult(out_dir, final_dir, total_steps, log_file)


# ------------------------------------------------------------------------------ helpers
def _value(loss: torch.Tensor | None) -> torch.Tensor:
    return loss.detach().float() if loss is not None else torch.zeros(())


def _resume_from(resume: bool | str | Path, out_dir: Path) -> Path | None:
    if resume is False:
        return None
    if resume in (True, "auto"):
        found = _latest_checkpoint(out_dir)
        if found is None and resume is True:
            raise FileNotFoundError(f"resume requested but {out_dir / CHECKPOINTS} holds no complete checkpoint")
        return found
    path = Path(resume)
    if not (path / STATE_FILE).is_file():
        raise FileNotFoundError(f"{path} is not a complete checkpoint (no {STATE_FILE})")
    return path


def _truncate_log(log_file: Path, step: int) -> None:
    """Drop log lines beyond ``step`` (left by a run that died after its last checkpoint)."""
    if not log_file.is_file():
        return
    kept = [line for line in log_file.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    log_file.write_text("".join(line + "\n" for line in kept))


def _log_record(step: int, window: dict[str, float], scheduler: Any, optimizer: Any, grad_norm: Any,
                loss_weights: tuple[float, float]) -> dict[str, Any]:
    steps = max(1, window["steps"])
    record: dict[str, Any] = {
        "step": step,
        "loss": (window["lm"] + loss_weights[0] * window["bce"] + loss_weights[1] * window["dice"]) / steps,
        "lm_loss": window["lm"] / steps,
        "mask_bce_loss": window["bce"] / steps,
        "mask_dice_loss": window["dice"] / steps,
        "tokens_per_s": window["tokens"] / max(window["time"], 1e-9),
        "masks": window["masks"],
        "step_time_s": window["time"] / steps,
    }
    if grad_norm is not None:
        record["grad_norm"] = float(grad_norm)
    for group, lr in zip(optimizer.param_groups, scheduler.get_last_lr()):
        record[f"lr/{group.get('name', 'group')}"] = lr
    return record


def _save_checkpoint(accelerator: Any, out_dir: Path, step: int, config: TrainConfig) -> None:
    """Write ``checkpoints/step-N`` atomically: everything goes to a temporary folder that is
    renamed once complete, so a kill mid-write leaves the previous checkpoint as the latest."""
    folder = out_dir / CHECKPOINTS
    final = folder / f"step-{step:06d}"
    tmp = folder / f".tmp-step-{step:06d}"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        config.save(tmp / "train_config.yaml")
        (tmp / STATE_FILE).write_text(json.dumps({"global_step": step}))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if config.save_total_limit:
            done = sorted(p for p in folder.glob("step-*") if (p / STATE_FILE).is_file())
            for old in done[: -config.save_total_limit]:
                shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _tensorboard(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.warning("tensorboard is not installed (pip install 'citrusv[train]'); logging to JSONL only")
        return None
    return SummaryWriter(log_dir=str(folder / "tensorboard"))


def _plot(log_file: Path, out: Path) -> None:
    """Loss terms and learning rates against the step, one PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        logger.warning("matplotlib is not installed (pip install 'citrusv[train]'); no loss plot")
        return
    records = [json.loads(line) for line in log_file.read_text().splitlines() if line.strip()]
    if not records:
        return
    steps = [r["step"] for r in records]
    fig, (ax_loss, ax_lr) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (("loss", "total"), ("lm_loss", "LM"), ("mask_bce_loss", "mask BCE"), ("mask_dice_loss", "mask Dice")):
        values = [r[key] for r in records]
        if any(values):
            ax_loss.plot(steps, values, label=label)
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("loss")
    ax_loss.set_title("training loss")
    ax_loss.legend()
    for key in sorted({k for r in records for k in r if k.startswith("lr/")}):
        ax_lr.plot(steps, [r.get(key, float("nan")) for r in records], label=key[3:])
    ax_lr.set_xlabel("optimizer step")
    ax_lr.set_ylabel("learning rate")
    ax_lr.set_title("learning rate per group")
    ax_lr.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
