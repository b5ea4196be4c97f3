"""GNMT throughput: the trainer against a plain loop, batched beam search against one sentence at a time.

    python perf/gnmt_throughput.py [--hidden-size 128] [--steps 20] [--threads 1] [--device cpu|cuda]

Builds the sample corpus in a temporary folder, then measures in one process, alternating the two
sides of each pair so machine noise hits both alike:
- training target tokens/s of `Trainer.train_epoch` (DataLoader, bucketing, clipping, schedule)
  and of a bare forward/backward/Adam loop over the same batches and model;
- beam-search (beam 5) sentences/s over the test set in batches of 128 and one sentence at a time.
Prints the figures and their ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from translation.gnmt.data.dataset import ParallelCorpus, SourceCorpus, collate, collate_pairs
from translation.gnmt.data.sampler import BucketingSampler
from translation.gnmt.data.vocabulary import PAD, Vocabulary
from translation.gnmt.inference.beam_search import BeamSettings, beam_search
from translation.gnmt.models.gnmt import GNMT
from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule
from translation.gnmt.train.smoothing import label_smoothed_loss
from translation.gnmt.train.trainer import Trainer
from translation.layout import SRC_LANG, TGT_LANG, Wmt16Layout
from translation.sample import build_sample


def plain_loop(model: GNMT, optimizer: torch.optim.Optimizer, batches: list, device: torch.device) -> int:
    tokens = 0
    for cpu_batch in batches:
        batch = cpu_batch.to(device)
        logits = model(batch.src, batch.src_lengths, batch.tgt[:, :-1])
        loss = label_smoothed_loss(logits, batch.tgt[:, 1:], 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        tokens += int((batch.tgt[:, 1:] != PAD).sum())
    return tokens


def timed(fn, device: torch.device) -> tuple[float, object]:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements per side")
    parser.add_argument("--decode-sentences", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    with tempfile.TemporaryDirectory(prefix="gnmt-perf-") as tmp:
        layout = Wmt16Layout(Path(tmp))
        build_sample(layout.data_dir)
        vocab = Vocabulary.load(layout.vocab)
        train = ParallelCorpus.load(layout.train(SRC_LANG), layout.train(TGT_LANG), vocab, 50)
        test = SourceCorpus.load(layout.test_bpe(SRC_LANG), vocab, 150).src[: args.decode_sentences]

    torch.manual_seed(0)
    model = GNMT(len(vocab), args.hidden_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = BucketingSampler(train.lengths(), args.batch_size, [1], 50)
    loader = torch.utils.data.DataLoader(train, batch_sampler=sampler, collate_fn=collate_pairs)
    batches = list(islice(loader, args.steps))
    schedule = WarmupMultiStepSchedule.for_run(10**6)
    trainer = Trainer(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), device)
    plain_loop(model, optimizer, batches[:3], device)  # warm-up

    ours, plain = [], []
    for _ in range(args.rounds):
        stats = trainer.train_epoch(islice(loader, args.steps))
        ours.append(stats.target_tokens / stats.seconds)
        seconds, tokens = timed(lambda: plain_loop(model, optimizer, batches, device), device)
        plain.append(tokens / seconds)
    best_ours, best_plain = max(ours), max(plain)
    print(f"training, hidden {args.hidden_size}, batch {args.batch_size}, {args.threads} thread(s), {device}:")
    print(f"  trainer     {best_ours:9.0f} target tokens/s")
    print(f"  plain loop  {best_plain:9.0f} target tokens/s")
    print(f"  ratio       {best_ours / best_plain:9.3f}x")

    model.eval()
    settings = BeamSettings(beam_size=5, max_len=60)
    batched_s, single_s = [], []
    for _ in range(args.rounds):
        batch = collate(test).to(device)
        seconds, _ = timed(lambda b=batch: beam_search(model, b.src, b.src_lengths, settings), device)
        batched_s.append(seconds)
        seconds, _ = timed(
            lambda: [beam_search(model, s.unsqueeze(0).to(device), torch.tensor([len(s)]), settings) for s in test],
            device,
        )
        single_s.append(seconds)
    n = len(test)
    print(f"beam search (beam 5), {n} sentences:")
    print(f"  batched        {n / min(batched_s):8.1f} sentences/s")
    print(f"  one at a time  {n / min(single_s):8.1f} sentences/s")
    print(f"  speed-up       {min(single_s) / min(batched_s):8.1f}x")


if __name__ == "__main__":
    main()
