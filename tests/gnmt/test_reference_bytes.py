"""The preprocessing gives the bytes of the reference's own scripts on an adversarial corpus.

The digests below are facts recorded from the MLPerf GNMT reference's pipeline (mosesdecoder 8c5eaa1's
input-from-sgm.perl, tokenizer.perl -threads 8 and clean-corpus-n.perl under perl 5.36, the reference's
filter_dataset.py, subword-nmt 48ba99e's learn_bpe/apply_bpe/get_vocab), run by
`python -m tests.gnmt.reference_digests` on the raw files tests/gnmt/adversarial.py generates (seed 25,
6,000 training pairs, 400 per test set, 600 merges). Nothing of those scripts is in the project; a change
to the generator needs the digests recorded again with that tool.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.gnmt import reference_digests as recorded
from tests.gnmt.adversarial import write_raw
from translation.layout import Wmt16Layout
from translation.preprocess import preprocess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

REFERENCE_SHA256 = {
    "train.en": "41672570ad63e79b2bc008dd38c633f2861ac3901fba30127587d5cfb2b8ba25",
    "train.de": "945cff084b1fe19d7fa4014154fb8b7e8671f23e8a66d912e375693987376de3",
    "newstest2014.en": "d2b9ec8be909cf6ea7efddc4ffafcbabf77148e09d02eef5b49505488cf5f4bf",
    "newstest2014.de": "8447c060de8df48ecf7e7e217daed61ead802a7eea034a69749e559d05f9fa33",
    "newstest2015.en": "bd03103ddd12afd9c0ffd099afbff2571fcf39cdd9fdc3193250d53093d5fae3",
    "newstest2015.de": "3e669fdb49208416642174eb9f8c088d9732d8da39f3f3164680a60f8f00eca4",
    "newstest2016.en": "6a48c2ff008482fc6f361be6bd2a0de3ab1c696a6ce4bc530359efcfb1811de3",
    "newstest2016.de": "2cc71688f5694cf489b40f34bad08e3d5d5b28b84c6b812d66e37beb5c65d3bf",
    "train.tok.en": "3b7219e0cb793f7b670618288dbb3b71f661a9961ba560d5dbff384fad2ed5dc",
    "train.tok.de": "57520f80d657a00f63ba36a2124e935f0c3c755aed3365197d5e1256fe0fea5c",
    "newstest2014.tok.en": "2197539a8944dc4fd333e29ac409e503390babc94b70bdca3e03533028140584",
    "newstest2014.tok.de": "414cbbfa9032266a6ddcf96b09f7872859fd83ae7156112077b773fc98cc105b",
    "newstest2015.tok.en": "2f4632931b3eddca19ce858a651e4b38b9a5a228a5824be314cf55e3043b9afc",
    "newstest2015.tok.de": "8805a79c7b536bcba10ce0290d19d51f2624782d2d0caf9bfad1547ebb902d2d",
    "newstest2016.tok.en": "a30c308ac13afac6d1f86ef2e4cc88ccd05f1a3967cadd951636970bdcbb23a9",
    "newstest2016.tok.de": "370107401c856584b9fe7f8ec180852fea1f7ee373d9a25409c7c19a74aced83",
    "train.tok.clean.en": "82df87c5b179497c9b8460965c1a1ea98a7252dbf07ae007cecbcf4dbbc0c407",
    "train.tok.clean.de": "62db61f3d52c91be8859d5a664e1861a5297085522cec62a71b68a3824871343",
    "newstest2014.tok.clean.en": "0c6e6f2dba29c9c57987e5b94236cc6c3554869c4554ffa121f767fa76139c9f",
    "newstest2014.tok.clean.de": "799d6ce324423049a75e71f08a1e01a962ac2827134dc6da04d412564ee31bda",
    "newstest2015.tok.clean.en": "44cae898e5d7e9943d665a68c33e91c4b5f2d8c4ba767c7d638ded75e2a2be59",
    "newstest2015.tok.clean.de": "bd515fe2538db70926e04636d583d1c3911ff8f283f7573b049f23e5ae5c9c0c",
    "newstest2016.tok.clean.en": "6eb0f7b53cb247c0f6c35d688a37588b05933da7c00134eb12d8e2b876315d01",
    "newstest2016.tok.clean.de": "15e1cbb24a5de328bf197be3cffb2c837b788c2bd16103aefab0629fff2d8879",
    "newstest_dev.tok.clean.en": "58fa33b2c7d3f7d7830716d8f47d06f5214e9086ee1f6cf5be4ae107924eaf48",
    "newstest_dev.tok.clean.de": "b0509763c4a4d07463feee58a070cb8562988e098da80c8e57c0ba55b3849aa7",
    "bpe.32000": "68eb407dff07a80075e0b70300c8ada7a844450465977663f1c581f1319b04fc",
    "vocab.bpe.32000": "27f93e7fdde604e9335d7d1b1c29f813c2bc41fbc7b7750e191d672ddb013146",
    "train.tok.clean.bpe.32000.en": "d67f8f13bdc3b874864533c5fa6a9e297a5de0e40e51bee2c88c7153ad4be54d",
    "train.tok.clean.bpe.32000.de": "1c385a416311dd8923fde98e2dd0c02bbf78ce38f7b9fc91b08c19c892594dae",
    "newstest_dev.tok.clean.bpe.32000.en": "e7a08e0db3355fbc4ba6a6c801f8203c488ed05a53d87037527975d87b8366c6",
    "newstest_dev.tok.clean.bpe.32000.de": "5e039d1db901ba4d2ae44aef872db0420bfc062db5fd1d0d518c40d3b03a763c",
    "newstest2014.tok.bpe.32000.en": "1dc7bcb9f451816b1691cebdffa5e3ce64a4b2b5414c7b32096f96c5fe28a9de",
    "newstest2014.tok.bpe.32000.de": "64cc27772f48785ee2e246f7bc1e4e669eaab1f638864f4813588525d38d2556",
}


def test_every_file_has_the_bytes_of_the_reference_scripts(tmp_path: Path) -> None:
    assert sorted(REFERENCE_SHA256) == sorted(recorded.compared_files())
    layout = Wmt16Layout(tmp_path / "data")
    sources = write_raw(tmp_path / "raw", recorded.SEED, recorded.PAIRS, recorded.TEST_PAIRS)
    preprocess(layout, sources, merges=recorded.MERGES, workers=2)
    produced = {name: hashlib.sha256((layout.root / name).read_bytes()).hexdigest() for name in REFERENCE_SHA256}
    assert [name for name in REFERENCE_SHA256 if produced[name] != REFERENCE_SHA256[name]] == []
    # the corpus is one the cleaning and the latin-1 filter work on: they drop pairs, and pairs remain
    kept = (layout.root / "train.tok.clean.en").read_bytes().count(b"\n")
    assert 0.5 * recorded.PAIRS < kept < 0.9 * recorded.PAIRS
