"""AWE models on discovered pairs (issue 17, item 3): the zero-resource twin ``<ds>_zr`` as a pair source.

A made-up dataset 'two' (utterances of the words alpha / bravo, gold word tokens) and its twin
'two_zr' as ``speechreps run --discover`` registers it: the same training utterances, a term-pair
file with cluster ids (each word split over two clusters, boundaries off by a few frames) and
pseudo-labelled validation terms. Real (tiny) training throughout.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from speechreps import cli
from speechreps.awe.compare import CompareJob, compare, discovered_from_results, format_table, plan_discovered
from speechreps.awe.config import awe_config_from_dict
from speechreps.awe.data import MFCCInput
from speechreps.awe.embed import evaluate_embeddings, model_embeddings
from speechreps.awe.train import evaluate_awe, load_awe, scored_checkpoint
from speechreps.data.alignments import TermPair, write_term_pairs
from speechreps.data.archive import format_key, load_archive, parse_word_key, save_archive
from speechreps.data.registry import load_dataset, register_dataset

from test_awe import word

MODEL = "contrastive_rnn"
CLUSTERS = {"alpha": ("c0", "c1"), "bravo": ("c2", "c3")}  # discovery splits each word over two clusters


def tiny_cfg(**kw):
    base = dict(model=MODEL, num_epochs=2, batch_size=8, num_buckets=1, input_dim=6, embedding_dim=8,
                enc_hidden_dim=16, enc_num_layers=1, validate_every=1, checkpoint_interval=1, learning_rate=0.01,
                temperature=0.1)
    return awe_config_from_dict({**base, **kw})


def token(label: str, rng) -> np.ndarray:
    """test_awe's made-up word, 14-21 frames long."""
    return word(label, rng, int(rng.integers(14, 22)))


def make_twin_datasets(root: Path, seed: int = 0) -> tuple[str, list[TermPair]]:
    """data_paths.json with 'two' (gold) and 'two_zr' (discovered pairs, pseudo-labelled validation terms)."""
    rng = np.random.default_rng(seed)
    entries: dict[str, object] = {"speaker_rule": "buckeye"}
    spans: dict[str, list[tuple[str, str, int, int]]] = {}
    for si, split in enumerate(("train", "validation", "test")):
        utts, words, spans[split] = {}, {}, []
        for u in range(6):
            utt = f"s{si}{u % 3}_u{u:03d}"
            pieces, t = [], 0
            for label in rng.permutation(["alpha", "bravo", "alpha", "bravo"]):
                tok = token(str(label), rng)
                pieces.append(tok)
                words[format_key(utt, t, t + len(tok), label=str(label))] = tok
                spans[split].append((str(label), utt, t, t + len(tok)))
                t += len(tok)
                gap = (0.2 * rng.standard_normal((6, 6))).astype(np.float32)
                pieces.append(gap)
                t += len(gap)
            utts[format_key(utt, 0, t)] = np.concatenate(pieces)
        entries[f"{split}_data"] = save_archive(root / "two" / f"{split}_utterances.npz", utts)
        entries[f"{split}_words"] = save_archive(root / "two" / f"{split}_words.npz", words)
    path = root / "data_paths.json"
    register_dataset(path, "two", entries)

    # the twin: pairs between occurrences of one word in different utterances, boundaries shifted by
    # up to 2 frames, named by cluster (never by word)
    def cluster(label, i):
        return CLUSTERS[label][i % 2]

    pairs = []
    train = spans["train"]
    for i, (label, utt, s, e) in enumerate(train):
        for label2, utt2, s2, e2 in train[i + 1:]:
            if label2 == label and utt2 != utt and len(pairs) < 40 and rng.random() < 0.5:
                j = int(rng.integers(0, 3))
                pairs.append(TermPair(cluster(label, len(pairs)), utt, s + j, e, utt2, s2, max(s2 + 5, e2 - j)))
    write_term_pairs(root / "disc" / "train" / "pairs.txt", pairs)
    val_utts = load_archive(root / "two" / "validation_utterances.npz")
    terms = {}
    for i, (label, utt, s, e) in enumerate(spans["validation"]):
        j = int(rng.integers(0, 3))
        full = next(v for k, v in val_utts.items() if k.startswith(utt + "_"))
        terms[format_key(utt, s + j, e, label=cluster(label, i))] = full[s + j:e]
    save_archive(root / "disc" / "validation" / "terms.npz", terms)
    register_dataset(path, "two_zr", {"train_data": entries["train_data"], "validation_data": entries["validation_data"],
                                      "test_data": entries["test_data"], "speaker_rule": "buckeye",
                                      "train_pairs": root / "disc" / "train" / "pairs.txt",
                                      "train_pairs_source": "discovered",
                                      "validation_words": root / "disc" / "validation" / "terms.npz"})
    return str(path), pairs


def test_discovered_rows_train_on_the_pair_file_log_pseudo_labels_and_score_last_on_gold(tmp_path):
    data_paths, pairs = make_twin_datasets(tmp_path)
    cfg = tiny_cfg(drop_hardest_discovered=0.5)
    log: list[str] = []
    rows = compare(data_paths, ["two"], {}, cfg, tmp_path / "cmp", log=log.append, discovered={"two": "two_zr"})
    assert [(r["features"], r["dataset"], r["pairs"]) for r in rows] == [("mfcc", "two", "gold"),
                                                                          ("mfcc", "two", "discovered")]
    gold, disc = rows
    # training: the discovered pair file, every pair of it (the gold row: all same-word pairs of the gold tokens)
    assert disc["pairs_from"] == "two_zr" and disc["pair_file"] == str(tmp_path / "disc" / "train" / "pairs.txt")
    assert disc["n_pairs"] == len(pairs) == 40 and gold["n_pairs"] != disc["n_pairs"] and gold["pair_file"] is None
    # selection: best.pt is the epoch with the highest AP on the pseudo-labelled validation terms
    ck = Path(disc["ckpt_dir"])
    assert ck == tmp_path / "cmp" / "mfcc" / "-" / "two_zr" / "s0" / MODEL
    metrics = [json.loads(x) for x in (ck / "metrics.jsonl").read_text().splitlines() if x.strip()]
    val = [m["val_ap"] for m in metrics if "val_ap" in m]
    assert len(val) == 2 and disc["selection_val_ap"] == pytest.approx(max(val))
    model, _ = load_awe(ck)
    # noisy pairs: the discovered job trained with the config's drop_hardest_discovered, the gold one without
    assert model.cfg.drop_hardest == 0.5 and load_awe(gold["ckpt_dir"])[0].cfg.drop_hardest == 0.0
    zr = load_dataset(data_paths, "two_zr")
    terms = load_archive(zr.word_tokens("validation"))
    assert {parse_word_key(k).label for k in terms} == {"c0", "c1", "c2", "c3"}
    pseudo_ap = evaluate_embeddings(model_embeddings(model, terms), zr.speaker_rule(zr.word_tokens("validation"))).ap
    assert disc["selection_val_ap"] == pytest.approx(pseudo_ap)
    # scores: of last.pt (the pseudo-labelled pick above is logged, not scored), on the gold validation
    # and test words of 'two', the same ones as the gold row's; the gold row is of its best.pt
    assert disc["checkpoint"] == "last.pt" and gold["checkpoint"] == "best.pt" and scored_checkpoint(ck) == "last"
    last, _ = load_awe(ck, checkpoint="last")
    again = evaluate_awe(load_dataset(data_paths, "two"), MFCCInput(), last)
    assert disc[f"test_{MODEL}_ap"] == pytest.approx(again["test"][MODEL]["ap"])
    assert disc[f"validation_{MODEL}_ap"] == pytest.approx(again["validation"][MODEL]["ap"])
    assert disc[f"validation_{MODEL}_ap"] != pytest.approx(evaluate_embeddings(
        model_embeddings(last, terms), zr.speaker_rule(zr.word_tokens("validation"))).ap)
    assert disc["test_downsample_ap"] == pytest.approx(gold["test_downsample_ap"])
    table = format_table(rows)
    assert "| training pairs |" in table
    assert "| mfcc | - | two | gold | 6 |" in table and "| mfcc | - | two | discovered | 6 |" in table
    assert (tmp_path / "cmp" / "stages" / "awe-discovered__mfcc__-__two_zr__s0.json").is_file()

    # a rerun reuses both jobs
    log.clear()
    assert compare(data_paths, ["two"], {}, cfg, tmp_path / "cmp", log=log.append, discovered={"two": "two_zr"}) == rows
    assert not any(line.endswith("running") for line in log) and sum("up to date" in x for x in log) == 2
    # a new discovery (another pair file) reruns the discovered job only
    write_term_pairs(tmp_path / "disc" / "train" / "pairs.txt", pairs[:-5])
    log.clear()
    rows2 = compare(data_paths, ["two"], {}, cfg, tmp_path / "cmp", log=log.append, discovered={"two": "two_zr"})
    ran = [line.split("]")[0].strip("[") for line in log if line.endswith("running")]
    assert ran == ["awe-discovered:mfcc:-:two_zr:s0"] and rows2[1]["n_pairs"] == 35 and rows2[0] == gold


def test_cli_trains_on_the_twin_and_evaluates_on_the_gold_words(tmp_path, capsys):
    data_paths, pairs = make_twin_datasets(tmp_path)
    config = tmp_path / "awe.json"
    config.write_text(json.dumps({"awe": {k: v for k, v in vars(tiny_cfg(num_epochs=1, drop_hardest_discovered=0.5)).items()}}))
    ck = tmp_path / "ck"
    assert cli.main(["awe", "train", str(config), str(ck), "--language", "two_zr", "--data-paths", data_paths,
                     "--no-progress", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert f"{len(pairs)} pairs" in out
    # the twin's registered pairs are discovered ones: the config's drop_hardest_discovered, said in the log
    assert load_awe(ck)[0].cfg.drop_hardest == 0.5 and "0.5 of each batch's pairs with the highest loss" in out
    # a --pairs file replaces them, and counts as discovered only with --discovered-pairs
    for extra, drop in (([], 0.0), (["--discovered-pairs"], 0.5)):
        other = tmp_path / f"ck_pairs{len(extra)}"
        assert cli.main(["awe", "train", str(config), str(other), "--language", "two_zr", "--data-paths", data_paths,
                         "--pairs", str(tmp_path / "disc" / "train" / "pairs.txt"), "--no-progress", "--device", "cpu",
                         *extra]) == 0
        assert load_awe(other)[0].cfg.drop_hardest == drop
    assert cli.main(["awe", "evaluate", str(ck), "--language", "two", "--data-paths", data_paths]) == 0
    report = json.loads((ck / "awe_evaluation_two.json").read_text())
    # a model of discovered pairs is read at last.pt unless --checkpoint says otherwise; one of gold-labelled
    # pairs (the --pairs file without --discovered-pairs) at best.pt
    assert Path(report["checkpoint"]).name == "last.pt" and "last.pt" in capsys.readouterr().out
    assert cli.main(["awe", "evaluate", str(ck), "--language", "two", "--data-paths", data_paths,
                     "--checkpoint", "best"]) == 0
    assert Path(json.loads((ck / "awe_evaluation_two.json").read_text())["checkpoint"]).name == "best.pt"
    assert cli.main(["awe", "evaluate", str(tmp_path / "ck_pairs0"), "--language", "two", "--data-paths", data_paths]) == 0
    assert Path(json.loads((tmp_path / "ck_pairs0" / "awe_evaluation_two.json").read_text())["checkpoint"]).name == "best.pt"
    assert scored_checkpoint(tmp_path / "ck_pairs1") == "last"
    assert set(report["splits"]) == {"validation", "test"}
    assert report["splits"]["test"]["n_tokens"] == len(load_archive(tmp_path / "two" / "test_words.npz"))


def test_discovered_jobs_take_label_free_inputs_only(tmp_path, monkeypatch):
    # plan: MFCC, a model trained without pairs on the dataset, a model trained on the twin's pairs
    jobs = plan_discovered(["two", "deux"], {"two": "two_zr"},
                           {"cpc": {"two": tmp_path / "cpc"}, "frame_cae": {"two_zr": tmp_path / "cae_zr"}})
    assert [(j.features, j.trained_on, j.dataset, j.pairs_from) for j in jobs] == [
        ("mfcc", None, "two", "two_zr"), ("cpc", "two", "two", "two_zr"), ("frame_cae", "two_zr", "two", "two_zr")]
    # the dataset's own CPC picked its best.pt on gold validation words: its last.pt is read instead
    assert [j.frame_checkpoint for j in jobs[1:]] == ["last", "best"]
    assert jobs[2].stage(0) == "awe-discovered:frame_cae:two_zr:two_zr:s0"
    assert CompareJob("mfcc", "two").stage(0) == "awe:mfcc:-:two:s0"  # the gold jobs keep their stage names
    # --discover-on cpc's second round: its frame CAE (on two_zr_cpc) is an input too, trained on two_zr's pairs;
    # "twofold_zr" is another dataset's twin, not two's
    jobs = plan_discovered(["two"], {"two": "two_zr"},
                           {"frame_cae": {"two_zr_cpc": tmp_path / "cae_cpc", "two_zr": tmp_path / "cae_zr",
                                          "twofold_zr": tmp_path / "other"}})
    assert [(j.features, j.trained_on, j.pairs_from, j.frame_checkpoint) for j in jobs] == [
        ("mfcc", None, "two_zr", "best"), ("frame_cae", "two_zr", "two_zr", "best"),
        ("frame_cae", "two_zr_cpc", "two_zr", "best")]

    # the main job: gold-pair frame models (CAPC, frame CAE of the gold dataset) are not discovered-pair inputs
    from speechreps import experiment
    from speechreps.awe import compare as compare_module

    seen = {}

    def fake_compare(data_paths, names, feature_sets, cfg, out, **kw):
        seen.update(feature_sets=feature_sets, **kw)
        return []

    monkeypatch.setattr(compare_module, "compare", fake_compare)
    training = {f"{rep}:two:s0": {"rep": rep, "dataset": "two", "seed": 0, "ckpt_dir": f"m/{rep}"}
                for rep in ("apc", "cpc", "capc", "frame_ae", "frame_cae")}
    track = {"datasets": {"two": "two_zr"}, "models": {"capc": {"two_zr": "m/zr/capc"}, "frame_cae": {"two_zr": "m/zr/cae"}}}
    opts = experiment.MainJobOptions(run_dir=tmp_path / "run", progress=False, log=lambda m: None)
    md = experiment._awe_comparison(experiment.default_config(), tmp_path / "dp.json", ["two"], training, 0, opts,
                                    experiment.StageCache(tmp_path, log=lambda m: None), track)
    assert seen["discovered"] == {"two": "two_zr"}
    assert {k: {d: str(p) for d, p in v.items()} for k, v in seen["discovered_features"].items()} == {
        "apc": {"two": "m/apc"}, "cpc": {"two": "m/cpc"}, "capc": {"two_zr": "m/zr/capc"},
        "frame_cae": {"two_zr": "m/zr/cae"}}
    assert set(seen["feature_sets"]) == {"apc", "cpc", "capc", "frame_cae"}  # the gold rows as before
    assert '"discovered"' in md

    # `speechreps awe compare --run-dir` of a run with --discover finds the same
    run = tmp_path / "run"
    (run / "models" / "s0" / "two_zr" / "frame_cae").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"zero_resource": {"datasets": {"two": "two_zr"}}}))
    discovered, label_free = discovered_from_results(run, {"cpc": {"two": Path("c")}, "frame_cae": {"two": Path("f")}}, 0)
    assert discovered == {"two": "two_zr"}
    assert label_free == {"cpc": {"two": Path("c")}, "frame_cae": {"two_zr": run / "models" / "s0" / "two_zr" / "frame_cae"}}
    (run / "models" / "s0" / "two_zr_cpc" / "frame_cae").mkdir(parents=True)  # a second round's model
    (run / "models" / "s0" / "twofold" / "frame_cae").mkdir(parents=True)  # another dataset's
    assert discovered_from_results(run, {"frame_cae": {"two": Path("f")}}, 0)[1] == {"frame_cae": {
        "two_zr": run / "models" / "s0" / "two_zr" / "frame_cae",
        "two_zr_cpc": run / "models" / "s0" / "two_zr_cpc" / "frame_cae"}}
    (run / "results.json").write_text(json.dumps({"rows": []}))
    assert discovered_from_results(run, {"cpc": {"two": Path("c")}}, 0) == ({}, {"cpc": {"two": Path("c")}})
