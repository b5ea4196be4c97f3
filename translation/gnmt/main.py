"""Train GNMT to a BLEU target with MLPerf logs: `python -m translation.gnmt.main --data-dir D --seed N`.

Timing follows the 0.7.0 rules: model creation and the vocabulary (allowed during init) come
before `run_start`; reading the corpora is on the clock, and it maps the token cache `prepare`
wrote (translation.token_cache) rather than encoding text. Every epoch ends with BLEU on
newstest2014; the run stops at the target. Every run first flushes the page cache (the dataset's
files without root: common/mlperf/page_cache.py), and `cache_clear` logs whether it was done. Each
optimizer step takes the global batch (`--global-batch-size`, the reference's 1024), accumulating gradients over
`--batch-size` sentences per worker and pass where the workers' share is larger (options.py). The
division is closed only at the reference's model, batch and evaluation settings; otherwise one
line on stderr names what made it open. Exit codes: 0 target reached, 3 all epochs done below
the target, 1 bad input or a training fault, 130 interrupted. Every failure still ends the log
with `run_stop` (status aborted).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

import torch
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from common.mlperf.mllog import MLLog
from common.mlperf.mllog import constants as mlc
from common.mlperf.page_cache import flush_page_cache
from translation import token_cache
from translation.gnmt.data.dataset import Batch, CorpusError, ParallelCorpus, SourceCorpus
from translation.gnmt.data.sampler import BucketingSampler
from translation.gnmt.data.vocabulary import Vocabulary, VocabularyMismatchError, check_unknown_rate
from translation.gnmt.distributed import Workers, init_workers
from translation.gnmt.inference.beam_search import BeamSettings
from translation.gnmt.inference.bleu import bleu_of_bpe_output, intl_tokenize, read_reference
from translation.gnmt.inference.translator import translate
from translation.gnmt.models.gnmt import GNMT
from translation.gnmt.options import OPEN_BECAUSE, departures, division, division_line, parse_args
from translation.gnmt.seeding import RunSeeds
from translation.gnmt.train.hyperparameters import log_hyperparameters
from translation.gnmt.train.lr_scheduler import WarmupMultiStepSchedule
from translation.gnmt.train.trainer import NonFiniteLossError, Trainer
from translation.layout import SRC_LANG, TGT_LANG, Wmt16Layout

EXIT_BELOW_TARGET = 3
EXIT_INTERRUPTED = 130


class RunInterruptedError(BaseException):
    """SIGINT or SIGTERM arrived: stop, log the abort, keep the log.

    A BaseException, like KeyboardInterrupt: logging and mlperf_logging swallow any Exception raised while
    they write, which is where a signal often lands (a run signalled as it logged `epoch_start` trained on).
    """


class DataMissingError(FileNotFoundError):
    """--data-dir lacks files the trainer reads."""


def _raise_interrupt(signum: int, _frame: FrameType | None) -> None:
    raise RunInterruptedError(f"received {signal.Signals(signum).name}")


def _check_data(layout: Wmt16Layout) -> None:
    missing = [str(p) for p in layout.required() if not p.is_file()]
    if missing:
        raise DataMissingError(
            f"{layout.root}: missing {', '.join(missing)}; prepare the data (invoke gnmt.prepare, or --sample)"
        )


def _load_corpora(layout: Wmt16Layout, vocab: Vocabulary, args: argparse.Namespace, rank: int
                  ) -> tuple[ParallelCorpus, SourceCorpus]:
    corpora = token_cache.load(layout, vocab)
    if rank == 0:
        print(f"gnmt: corpora from {corpora.source}", file=sys.stderr, flush=True)
    for path, side in ((layout.train(SRC_LANG), corpora.train_src), (layout.train(TGT_LANG), corpora.train_tgt)):
        check_unknown_rate(path, side.unknown, len(side.ids))
    train = ParallelCorpus(corpora.train_src, corpora.train_tgt, args.max_length_train)
    return train, SourceCorpus.from_side(corpora.test_src, args.max_length_test)


def _batches(loader: torch.utils.data.DataLoader, epoch: int, rank: int) -> Iterator[Batch]:
    yield from tqdm(
        loader, desc=f"epoch {epoch}", unit="batch", disable=None if rank == 0 else True, leave=False, file=sys.stderr
    )


def _train(args: argparse.Namespace, workers: Workers, log: MLLog) -> int:
    # Each node's first worker flushes the node's cache (the dataset's pages at least); true only if every node did.
    flush = flush_page_cache(args.data_dir) if workers.local_rank == 0 else None
    flushed = workers.all_true(flush is None or flush.done)
    log.event(mlc.CACHE_CLEAR, flushed, metadata=flush.metadata() if flush else None)
    log.start(mlc.INIT_START)
    platform = args.submission_platform or f"{workers.world_size}x{workers.device.type}"
    open_because = departures(args)
    log.submission(
        "gnmt",
        org=args.submission_org,
        platform=platform,
        division=division(args),
        status=args.submission_status,
        division_metadata={OPEN_BECAUSE: list(open_because)} if open_because else None,
    )
    log.event(mlc.SEED, args.seed)
    seeds = RunSeeds.derive(args.seed, workers.world_size, args.epochs)
    layout = Wmt16Layout(args.data_dir)
    _check_data(layout)
    vocab = Vocabulary.load(layout.vocab, pad_to=8 if args.amp else 1)
    torch.manual_seed(seeds.worker[0])  # the same initial weights on every worker
    model = GNMT(len(vocab), args.hidden_size, args.num_layers, args.dropout).to(workers.device)
    torch.manual_seed(seeds.worker[workers.rank])  # dropout differs per worker
    train_model = DistributedDataParallel(model) if workers.distributed else model
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=workers.device.type == "cuda")
    intl_tokenize("")  # BLEU's tokeniser builds its Unicode classes (seconds) before the clock, as 1.2.10 at import
    log.end(mlc.INIT_STOP)

    log.start(mlc.RUN_START)
    train, test = _load_corpora(layout, vocab, args, workers.rank)
    references = read_reference(layout.test_raw(TGT_LANG))
    if len(references) != len(test):
        raise CorpusError(
            f"{layout.test_raw(TGT_LANG)} has {len(references)} lines, "
            f"{layout.test_bpe(SRC_LANG)} has {len(test)}: expected one reference per source"
        )
    sampler = BucketingSampler(
        train.lengths(),
        args.batch_size,
        seeds.epoch,
        args.max_length_train,
        args.num_buckets,
        workers.world_size,
        workers.rank,
        args.accumulation,
    )
    loader = torch.utils.data.DataLoader(
        train,
        sampler=sampler,
        batch_size=None,
        num_workers=args.loader_workers,
        pin_memory=workers.device.type == "cuda",
    )
    schedule = WarmupMultiStepSchedule.for_run(
        sampler.steps() * args.epochs, args.warmup_steps, args.remain_steps, args.decay_interval
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    log_hyperparameters(
        log,
        global_batch_size=sampler.global_batch_size,
        accumulation=args.accumulation,
        learning_rate=args.lr,
        schedule=schedule,
        max_sequence_length=args.max_length_train,
    )
    log.event(mlc.TRAIN_SAMPLES, len(train))
    log.event(mlc.EVAL_SAMPLES, len(test))
    trainer = Trainer(train_model, optimizer, scheduler, workers.device, args.label_smoothing, args.clip_grad, args.amp,
                      accumulation=args.accumulation)
    beam = BeamSettings(
        args.beam_size, args.max_length_test, args.len_norm_factor, args.len_norm_const, args.cov_penalty_factor
    )

    for epoch in range(1, args.epochs + 1):
        log.start(mlc.EPOCH_START, metadata={mlc.EPOCH_NUM: epoch})
        sampler.set_epoch(epoch - 1)
        stats = trainer.train_epoch(_batches(loader, epoch, workers.rank))
        log.end(mlc.EPOCH_STOP, metadata={mlc.EPOCH_NUM: epoch})
        log.start(mlc.EVAL_START, metadata={mlc.EPOCH_NUM: epoch})
        output = translate(
            model,
            test,
            vocab,
            beam,
            args.test_batch_size,
            workers.device,
            workers.rank,
            workers.world_size,
            workers.gather_dicts,
        )
        bleu = bleu_of_bpe_output(output, layout.test_raw(TGT_LANG))
        log.event(mlc.EVAL_ACCURACY, round(bleu / 100.0, 6), metadata={mlc.EPOCH_NUM: epoch})
        log.end(mlc.EVAL_STOP, metadata={mlc.EPOCH_NUM: epoch})
        if workers.rank == 0:
            print(
                f"epoch {epoch}: loss {stats.mean_loss:.3f}, {stats.tokens_per_second:.0f} target tokens/s "
                f"per worker, BLEU {bleu:.2f}",
                flush=True,
            )
        if bleu >= args.target_bleu:
            log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.SUCCESS})
            return 0
    log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED})
    if workers.rank == 0:
        print(f"BLEU target {args.target_bleu} not reached in {args.epochs} epochs", file=sys.stderr)
    return EXIT_BELOW_TARGET


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"gnmt: {division_line(args)}", file=sys.stderr, flush=True)
    previous = {s: signal.signal(s, _raise_interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = init_workers(args.device)
    log = MLLog.open(args.log_file, rank=workers.rank)
    try:
        return _train(args, workers, log)
    except (DataMissingError, CorpusError, VocabularyMismatchError, NonFiniteLossError, ValueError) as error:
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED, "error": str(error)})
        print(f"gnmt: {error}", file=sys.stderr)
        return 1
    except RunInterruptedError as error:
        log.end(mlc.RUN_STOP, metadata={mlc.STATUS: mlc.ABORTED, "error": str(error)})
        print(f"gnmt: {error}; run aborted, log kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        log.close()
        workers.close()
        for s, handler in previous.items():
            signal.signal(s, handler)


if __name__ == "__main__":
    sys.exit(main())
