"""GNMT throughput: the trainer against a plain loop, batched beam search against one sentence at a time,
and loading the training corpus from the token cache against encoding its text in Python.

    python perf/gnmt_throughput.py [--parts training,beam,load] [--hidden-size 128] [--threads 1]
                                   [--pairs 4500000] [--work-dir DIR] [--device cpu|cuda]

- training: target tokens/s of `Trainer.train_epoch` (DataLoader over the batch sampler, clipping,
  schedule) and of a bare forward/backward/clip/Adam loop over the same batches, already built, with
  the model and optimizer; rounds alternate the two (and which goes first), and the median of the per-round
  ratios is printed beside the best of each (the sample corpus, built in a temporary folder);
- beam: beam-search (beam 5, an untrained model, so every hypothesis runs to the length limit 60)
  sentences/s over the sample's test sentences in one batch and one at a time;
- load: what the trainer does with the corpus after run_start (training pairs of at most 50 tokens
  and the 3003-sentence test source, plus the bucketing sampler) on a synthetic WMT16-sized corpus
  (4.5 M pairs, 32k vocabulary, lengths 1-80 around a mean of 27), written once into --work-dir
  (default: a temporary folder) with the token cache `prepare` writes. "cache" maps it
  (translation.token_cache); "python" is the loading before the cache: every line encoded in
  Python into one tensor per sentence. Each side runs in its own process, so a warm page cache is
  the only thing they share.
Prints the figures and their ratios; no pass/fail.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

TEST_SENTENCES = 3003
SYNTHETIC_VOCAB = 32000


def _sample(tmp: Path):
    from translation import token_cache  # noqa: PLC0415
    from translation.gnmt.data.dataset import ParallelCorpus, SourceCorpus  # noqa: PLC0415
    from translation.gnmt.data.vocabulary import Vocabulary  # noqa: PLC0415
    from translation.layout import Wmt16Layout  # noqa: PLC0415
    from translation.sample import build_sample  # noqa: PLC0415

    layout = Wmt16Layout(tmp)
    build_sample(layout.data_dir)
    vocab = Vocabulary.load(layout.vocab)
    corpora = token_cache.load(layout, vocab)
    test = SourceCorpus.from_side(corpora.test_src, 150)
    return vocab, ParallelCorpus(corpora.train_src, corpora.train_tgt, 50), test


def plain_loop(model, optimizer, batches: list, device) -> int:
    import torch  # noqa: PLC0415

    from translation.gnmt.train.smoothing import label_smoothed_loss  # noqa: PLC0415

    tokens = 0
    for cpu_batch in batches:
        batch = cpu_batch.to(device)
        logits = model(batch.src, batch.src_lengths, batch.tgt[:, :-1])
        loss = label_smoothed_loss(logits, batch.tgt[:, 1:], 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        tokens += cpu_batch.tgt_tokens
    return tokens


def timed(fn, device) -> tuple[float, object]:
    import torch  # noqa: PLC0415

    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start, result


def training(args: argparse.Namespace, vocab, train) -> None:
    import torch  # noqa: PLC0415

    from translation.gnmt.data.sampler import BucketingSampler  # noqa: PLC0415
    from translation.gnmt.models.gnmt import GNMT  # noqa: PLC0415
    from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule  # noqa: PLC0415
    from translation.gnmt.train.trainer import Trainer  # noqa: PLC0415

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = GNMT(len(vocab), args.hidden_size).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=device.type == "cuda")
    sampler = BucketingSampler(train.lengths(), args.batch_size, [1], 50)
    loader = torch.utils.data.DataLoader(train, sampler=sampler, batch_size=None)
    batches = list(islice(loader, args.steps))
    schedule = WarmupMultiStepSchedule.for_run(10**6)
    trainer = Trainer(model, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), device)
    plain_loop(model, optimizer, batches[:3], device)  # warm-up
    ours, plain = [], []  # (tokens/s of wall time, tokens per CPU second) per round

    def measure(fn, into: list) -> None:
        cpu = time.process_time()
        seconds, tokens = timed(fn, device)
        into.append((tokens / seconds, tokens / (time.process_time() - cpu)))

    def run_ours() -> int:
        return trainer.train_epoch(islice(loader, args.steps)).target_tokens

    def run_plain() -> int:
        return plain_loop(model, optimizer, batches, device)

    sides = [(run_ours, ours), (run_plain, plain)]
    for i in range(args.rounds):  # who goes first alternates, so neither always runs on a warmer machine
        for fn, into in sides if i % 2 == 0 else sides[::-1]:
            measure(fn, into)
    wall = [a[0] / b[0] for a, b in zip(ours, plain, strict=True)]
    cpu = [a[1] / b[1] for a, b in zip(ours, plain, strict=True)]
    print(f"training, hidden {args.hidden_size}, batch {args.batch_size}, {args.threads} thread(s), {device}:")
    print(f"  trainer     {max(o[0] for o in ours):9.0f} target tokens/s (best of {args.rounds})")
    print(f"  plain loop  {max(p[0] for p in plain):9.0f} target tokens/s")
    print(f"  ratio       {statistics.median(wall):9.3f}x median of rounds by wall time, "
          f"{statistics.median(cpu):.3f}x by CPU time (less moved by other load on the machine)")


def beam(args: argparse.Namespace, vocab, test) -> None:
    import torch  # noqa: PLC0415

    from translation.gnmt.data.dataset import collate  # noqa: PLC0415
    from translation.gnmt.inference.beam_search import BeamSettings, beam_search  # noqa: PLC0415
    from translation.gnmt.models.gnmt import GNMT  # noqa: PLC0415

    device = torch.device(args.device)
    torch.manual_seed(0)
    model = GNMT(len(vocab), args.hidden_size).to(device).eval()
    sources = test.src[: args.decode_sentences]
    settings = BeamSettings(beam_size=5, max_len=60)
    batched, single = [], []  # (wall seconds, CPU seconds) per round

    def measure(fn, into: list) -> None:
        cpu = time.process_time()
        seconds, _ = timed(fn, device)
        into.append((seconds, time.process_time() - cpu))

    batch = collate(sources).to(device)
    for _ in range(args.rounds):
        measure(lambda: beam_search(model, batch.src, batch.src_lengths, settings), batched)
        measure(lambda: [beam_search(model, s.unsqueeze(0).to(device), torch.tensor([len(s)]), settings)
                         for s in sources], single)
    n = len(sources)
    print(f"beam search (beam 5), {n} sentences, hidden {args.hidden_size}, {device}:")
    print(f"  batched        {n / min(w for w, _ in batched):8.1f} sentences/s (best of {args.rounds})")
    print(f"  one at a time  {n / min(w for w, _ in single):8.1f} sentences/s")
    print(f"  speed-up       {min(w for w, _ in single) / min(w for w, _ in batched):8.1f}x by wall time, "
          f"{min(c for _, c in single) / min(c for _, c in batched):.1f}x by CPU time")


# --- corpus load ----------------------------------------------------------------------------------


def write_synthetic_corpus(work: Path, pairs: int) -> None:
    """BPE-like text of `pairs` pairs and the 3003-line test source, a 32k vocabulary, and the token cache."""
    import numpy as np  # noqa: PLC0415

    from translation import token_cache  # noqa: PLC0415
    from translation.layout import Wmt16Layout  # noqa: PLC0415

    layout = Wmt16Layout(work)
    if (layout.token_cache / token_cache.MANIFEST).is_file():
        return
    layout.root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    words = np.array([f"w{i}" + ("@@" if i % 3 else "") for i in range(SYNTHETIC_VOCAB)])
    layout.vocab.write_text("".join(w + "\n" for w in words), encoding="utf-8")
    # Zipf-like token frequencies, as in subword text.
    probabilities = 1.0 / np.arange(1, SYNTHETIC_VOCAB + 1) ** 0.9
    probabilities /= probabilities.sum()
    for path, count in ((layout.train("en"), pairs), (layout.train("de"), pairs),
                        (layout.test_bpe("en"), TEST_SENTENCES)):
        lengths = np.clip(np.rint(rng.gamma(2.5, 11.0, size=count)), 1, 80).astype(np.int64)
        ids = rng.choice(SYNTHETIC_VOCAB, size=int(lengths.sum()), p=probabilities)
        ends = np.cumsum(lengths)
        with path.open("w", encoding="utf-8") as out:
            for start in range(0, count, 100_000):
                block = range(start, min(start + 100_000, count))
                out.writelines(" ".join(words[ids[ends[i] - lengths[i]:ends[i]]]) + "\n" for i in block)
    token_cache.write_cache(layout)


def python_load(layout, vocab, max_len: int):
    """The trainer's loading before the token cache: one tensor per sentence, encoded from the text in Python."""
    import torch  # noqa: PLC0415

    def lines(path: Path) -> list[str]:
        with path.open(encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f]

    src, tgt = [], []
    for s_line, t_line in zip(lines(layout.train("en")), lines(layout.train("de")), strict=True):
        s, t = vocab.encode(s_line), vocab.encode(t_line)
        if len(s) <= max_len and len(t) <= max_len:
            src.append(torch.tensor(s, dtype=torch.int64))
            tgt.append(torch.tensor(t, dtype=torch.int64))
    test = [torch.tensor(vocab.encode(line), dtype=torch.int64) for line in lines(layout.test_bpe("en"))]
    return torch.tensor([max(len(s), len(t)) for s, t in zip(src, tgt, strict=True)]), test


def cache_load(layout, vocab, max_len: int):
    from translation import token_cache  # noqa: PLC0415
    from translation.gnmt.data.dataset import ParallelCorpus, SourceCorpus  # noqa: PLC0415

    corpora = token_cache.load(layout, vocab)
    train = ParallelCorpus(corpora.train_src, corpora.train_tgt, max_len)
    return train.lengths(), SourceCorpus.from_side(corpora.test_src, 150).src


def _peak_rss_gb() -> float:
    """This process's peak resident memory (VmHWM; getrusage would count the parent's from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def measure_load(kind: str, work: Path) -> dict:
    """One side of the load benchmark (run in a child process)."""
    import torch  # noqa: PLC0415

    from translation.gnmt.data.sampler import BucketingSampler  # noqa: PLC0415
    from translation.gnmt.data.vocabulary import Vocabulary  # noqa: PLC0415
    from translation.layout import Wmt16Layout  # noqa: PLC0415

    torch.set_num_threads(1)
    layout = Wmt16Layout(work)
    vocab = Vocabulary.load(layout.vocab)  # before run_start in the trainer
    start = time.perf_counter()
    lengths, test = (cache_load if kind == "cache" else python_load)(layout, vocab, 50)
    sampler = BucketingSampler(lengths, 128, [1], 50)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "pairs": len(lengths), "test": len(test), "batches": len(sampler),
            "rss_gb": _peak_rss_gb()}


def load(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="gnmt-load-") as tmp:
        work = args.work_dir or Path(tmp)
        start = time.perf_counter()
        write_synthetic_corpus(work, args.pairs)
        print(f"corpus load, {args.pairs} synthetic pairs in {work} (written in {time.perf_counter() - start:.0f} s):")
        results = {}
        for kind in ("cache", "python"):
            child = subprocess.run([sys.executable, __file__, "--measure-load", kind, "--work-dir", str(work)],
                                   capture_output=True, text=True, check=True)
            results[kind] = json.loads(child.stdout.splitlines()[-1])
            r = results[kind]
            print(f"  {kind:7s} {r['seconds']:7.1f} s, {r['pairs']} pairs of <= 50 tokens, {r['batches']} batches "
                  f"of 128, peak RSS {r['rss_gb']:.1f} GB")
        print(f"  speed-up {results['python']['seconds'] / results['cache']['seconds']:7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="training,beam,load", help="comma-separated: training, beam, load")
    parser.add_argument("--hidden-size", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20, help="training steps per measurement")
    parser.add_argument("--rounds", type=int, default=5, help="alternating measurements per side")
    parser.add_argument("--decode-sentences", type=int, default=128, help="at most the sample's 120 (reference: 128)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--pairs", type=int, default=4_500_000, help="synthetic pairs for the load benchmark")
    parser.add_argument("--work-dir", type=Path, default=None, help="keep (and reuse) the synthetic corpus here")
    parser.add_argument("--measure-load", choices=["cache", "python"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_load:
        print(json.dumps(measure_load(args.measure_load, args.work_dir)))
        return
    parts = set(args.parts.split(","))
    if parts & {"training", "beam"}:
        import torch  # noqa: PLC0415

        torch.set_num_threads(args.threads)
        with tempfile.TemporaryDirectory(prefix="gnmt-perf-") as tmp:
            vocab, train, test = _sample(Path(tmp))
            if "training" in parts:
                training(args, vocab, train)
            if "beam" in parts:
                beam(args, vocab, test)
    if "load" in parts:
        load(args)


if __name__ == "__main__":
    main()
