"""GNMT on one GPU: training tokens/s of the full-size model, beam search on newstest-sized input, and
the projected time to train on 8 GPUs.

    python perf/gpu/gnmt.py [--json out.json]                  # one H200: about a minute
    python perf/gpu/gnmt.py --tiny --device cpu                # the same code at a toy size (tests)

Needs torch and numpy only (no dataset, no sacrebleu, no mlperf-logging): the batches are synthetic,
with the reference's shapes. What it measures, in this order:
1. training: the reference's model (hidden 1024, 4+4 layers, vocabulary 32,320 = the reference's
   32,317 padded to a multiple of 8) with bf16 autocast (`--amp`), at the reference's 128 sentences
   per GPU, lengths drawn as the bucketed WMT16 training pairs are (max 50 with BOS/EOS): target
   tokens/s and steps/s of `Trainer.train_epoch` over the batch sampler's DataLoader, and of a plain
   loop over the same batches that reads the loss every step (what most loops do to log it);
2. beam search in fp32 as the trainer evaluates (beam 5, batches of 128, max length 150) over 3003
   sentences of newstest2014's length spread: the untrained model never ends a hypothesis, so every
   batch runs all 149 steps; the time per decoder step then estimates the test set with outputs 1.1x
   the longest source of their batch; 16 of the sentences are also decoded one at a time;
3. the projection for 8 GPUs at global batch 1024: 3,498,161 training pairs (the reference log) per
   epoch at this GPU's steps/s, plus the test set split 8 ways, for 4 and 6 epochs; perfect scaling
   is assumed (no all-reduce time), so it is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from itertools import islice
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from translation.gnmt.data.dataset import Batch, ParallelCorpus, collate  # noqa: E402
from translation.gnmt.data.sampler import BucketingSampler  # noqa: E402
from translation.gnmt.inference.beam_search import BeamSettings, beam_search  # noqa: E402
from translation.gnmt.models.gnmt import GNMT  # noqa: E402
from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule  # noqa: E402
from translation.gnmt.train.smoothing import label_smoothed_loss  # noqa: E402
from translation.gnmt.train.trainer import Trainer  # noqa: E402
from translation.token_cache import Side  # noqa: E402

REFERENCE_TRAIN_PAIRS = 3_498_161  # after the <= 50-token filter (reference log)
NEWSTEST2014 = 3003
GPUS = 8


def synthetic_side(rng: np.random.Generator, count: int, vocab: int, low: int, high: int) -> Side:
    """`count` sentences of low..high words (BOS/EOS not counted), lengths spread like WMT16's BPE text."""
    lengths = np.clip(np.rint(rng.gamma(2.5, 11.0, size=count)), low, high).astype(np.int64)
    offsets = np.zeros(count + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = rng.integers(4, vocab, size=int(offsets[-1]), dtype=np.int64).astype(np.uint16)
    return Side(ids, offsets, 0)


def plain_loop(model: GNMT, optimizer: torch.optim.Optimizer, batches: list[Batch], device: torch.device) -> float:
    losses = []
    for cpu_batch in batches:
        batch = cpu_batch.to(device)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            logits = model(batch.src, batch.src_lengths, batch.tgt[:, :-1])
        loss = label_smoothed_loss(logits, batch.tgt[:, 1:], 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        losses.append(loss.item())
    return sum(losses)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def training(args: argparse.Namespace, device: torch.device, rng: np.random.Generator) -> dict:
    pairs = args.batch_size * args.steps * 8
    corpus = ParallelCorpus(*(synthetic_side(rng, pairs, args.vocab, 1, 48) for _ in range(2)), max_len=50)
    sampler = BucketingSampler(corpus.lengths(), args.batch_size, [1], 50)
    loader = torch.utils.data.DataLoader(corpus, sampler=sampler, batch_size=None, pin_memory=device.type == "cuda")
    torch.manual_seed(0)
    model = GNMT(args.vocab, args.hidden_size, args.num_layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupMultiStepSchedule.for_run(10**6))
    trainer = Trainer(model, optimizer, schedule, device, amp=True)
    batches = [corpus[b] for b in list(iter(sampler))[: args.steps]]
    trainer.train_epoch(batches[: args.warmup])  # cuDNN plans, allocator, autocast caches
    plain_loop(model, optimizer, batches[: args.warmup], device)
    ours, plain = [], []
    for _ in range(args.rounds):
        stats = trainer.train_epoch(islice(loader, args.steps))
        ours.append((stats.target_tokens / stats.seconds, stats.steps / stats.seconds))
        _sync(device)
        start = time.perf_counter()
        plain_loop(model, optimizer, batches, device)
        _sync(device)
        plain.append(sum(b.tgt_tokens for b in batches) / (time.perf_counter() - start))
    best = max(ours)
    return {"tokens_per_s": best[0], "steps_per_s": best[1], "plain_tokens_per_s": max(plain),
            "median_ratio": statistics.median(o[0] / p for o, p in zip(ours, plain, strict=True)),
            "peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def decoding(args: argparse.Namespace, device: torch.device, rng: np.random.Generator) -> dict:
    torch.manual_seed(1)
    model = GNMT(args.vocab, args.hidden_size, args.num_layers).to(device).eval()
    side = synthetic_side(rng, args.test_sentences, args.vocab, 1, args.max_len - 2)
    order = np.argsort(-side.lengths, kind="stable")
    settings = BeamSettings(beam_size=5, max_len=args.max_len)
    batches = [order[i : i + args.test_batch_size] for i in range(0, len(order), args.test_batch_size)]

    def sources(rows: np.ndarray) -> Batch:
        return collate([torch.from_numpy(np.concatenate([[2], side.sentence(int(r)).astype(np.int64), [3]]))
                        for r in rows]).to(device)

    warm = sources(batches[0])  # in fp32, as the trainer evaluates
    beam_search(model, warm.src, warm.src_lengths, BeamSettings(beam_size=5, max_len=4))
    _sync(device)
    start = time.perf_counter()
    for rows in batches:
        batch = sources(rows)
        beam_search(model, batch.src, batch.src_lengths, settings)
    _sync(device)
    seconds = time.perf_counter() - start
    single_start = time.perf_counter()
    for row in order[: args.single_sentences]:
        one = sources(np.array([row]))
        beam_search(model, one.src, one.src_lengths, settings)
    _sync(device)
    single = args.single_sentences / (time.perf_counter() - single_start)
    step_seconds = seconds / (len(batches) * (args.max_len - 1))
    expected_steps = sum(min(args.max_len - 1, int(np.ceil(1.1 * (side.lengths[rows].max() + 2)))) for rows in batches)
    return {"sentences_per_s": len(order) / seconds, "one_at_a_time_sentences_per_s": single,
            "seconds_all_at_max_length": seconds,
            "step_seconds": step_seconds, "estimated_test_set_seconds": expected_steps * step_seconds}


def projection(train: dict, decode: dict, args: argparse.Namespace) -> dict:
    steps_per_epoch = REFERENCE_TRAIN_PAIRS // (GPUS * args.batch_size)
    epoch_seconds = steps_per_epoch / train["steps_per_s"]
    eval_seconds = decode["estimated_test_set_seconds"] / GPUS
    return {"steps_per_epoch": steps_per_epoch, "epoch_minutes": epoch_seconds / 60, "eval_minutes": eval_seconds / 60,
            **{f"minutes_{e}_epochs": e * (epoch_seconds + eval_seconds) / 60 for e in (4, 6)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy sizes: checks the script on a CPU in seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    tiny = {"hidden_size": 32, "num_layers": 4, "vocab": 200, "batch_size": 8, "steps": 4, "warmup": 1, "rounds": 2,
            "test_sentences": 20, "test_batch_size": 8, "max_len": 8, "single_sentences": 4}
    full = {"hidden_size": 1024, "num_layers": 4, "vocab": 32320, "batch_size": 128, "steps": 60, "warmup": 5,
            "rounds": 3, "test_sentences": NEWSTEST2014, "test_batch_size": 128, "max_len": 150,
            "single_sentences": 16}
    sizes = tiny if args.tiny else full
    vars(args).update(sizes)
    device = torch.device(args.device)
    rng = np.random.default_rng(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"GNMT on {name}, torch {torch.__version__}, hidden {args.hidden_size}, vocabulary {args.vocab}", flush=True)
    train = training(args, device, rng)
    precision = "bf16 autocast" if device.type == "cuda" else "fp32"
    print(f"training ({precision}, {args.batch_size} sentences per step):\n"
          f"  trainer     {train['tokens_per_s']:10.0f} target tokens/s, {train['steps_per_s']:.2f} steps/s\n"
          f"  plain loop  {train['plain_tokens_per_s']:10.0f} target tokens/s (loss read every step)\n"
          f"  ratio       {train['median_ratio']:10.3f}x (median of rounds)"
          + (f"\n  peak memory {train['peak_memory_gb']:10.1f} GiB" if train["peak_memory_gb"] else ""), flush=True)
    decode = decoding(args, device, rng)
    print(f"beam search (beam 5, batches of {args.test_batch_size}, {args.test_sentences} sentences):\n"
          f"  {decode['sentences_per_s']:10.1f} sentences/s with every hypothesis at the maximum length "
          f"({decode['seconds_all_at_max_length']:.1f} s)\n"
          f"  {decode['one_at_a_time_sentences_per_s']:10.1f} sentences/s one at a time ({args.single_sentences} "
          f"sentences): batched {decode['sentences_per_s'] / decode['one_at_a_time_sentences_per_s']:.1f}x\n"
          f"  {decode['estimated_test_set_seconds']:10.1f} s estimated for the test set (outputs 1.1x the longest "
          "source of a batch)", flush=True)
    project = projection(train, decode, args)
    print(f"projected on {GPUS} such GPUs (global batch {GPUS * args.batch_size}, perfect scaling):\n"
          f"  {project['epoch_minutes']:10.2f} min per epoch ({project['steps_per_epoch']} steps) + "
          f"{project['eval_minutes']:.2f} min of BLEU evaluation\n"
          f"  {project['minutes_4_epochs']:10.1f} min to train in 4 epochs, {project['minutes_6_epochs']:.1f} in 6 "
          "(MLPerf v0.7 DGX A100, 8 GPUs: 7.81 min)", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"device": name, "training": train, "beam_search": decode,
                                         "projection_8_gpus": project}, indent=1) + "\n")


if __name__ == "__main__":
    main()
