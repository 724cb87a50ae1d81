#!/bin/sh
# A tiny end-to-end job with the installed `speechreps` and `learn_speech_reps`: both --help texts,
# a built-in corpus of 8 voices and 2 minutes, its MFCCs, one APC epoch (the packaged demo config),
# evaluation and extraction (through the original command line), and same-different AP of the extracted
# features. Run in the folder given (default: a new temporary one), never inside the source tree,
# so that only the installed package can be imported. Used by both Dockerfiles at build time and by
# scripts/check_wheel.sh. One process, one thread at a time: on a busy machine worker start-ups cost more than they save.
set -eu
work=${1:-$(mktemp -d)}
mkdir -p "$work"
cd "$work"
export SPEECHREPS_CORPORA="$work/corpora"
speechreps --help > help.txt
grep -q "prepare" help.txt
learn_speech_reps --help > legacy_help.txt
grep -q "representation_type" legacy_help.txt
python - tiny.json <<'PY'
import json, sys
from importlib.resources import files

cfg = json.loads(files("speechreps").joinpath("configs", "demo.json").read_text())
cfg["apc"].update(num_epochs=1, checkpoint_interval=1, validate_every=1)
with open(sys.argv[1], "w") as f:
    json.dump({"apc": cfg["apc"]}, f)
PY
speechreps synth --language en --speakers 8 --minutes 2 --jobs 1
speechreps prepare corpora/synth_en data --name synth_en --jobs 1
# train, evaluate and extract in one process, through the original command line
learn_speech_reps apc all tiny.json ckpt --language synth_en --data-paths data/data_paths.json \
    --save_path feats --extract-test --jobs 1
speechreps samediff feats/synth_en_test_apc_gru2.npz --distance both --json samediff.json
python - samediff.json <<'PY'
import json, sys

res = {r["distance"]: r for r in json.load(open(sys.argv[1]))["results"]}
assert set(res) == {"dtw", "downsample"}, res
for distance, r in res.items():
    assert 0.0 < r["ap"] <= 1.0 and 0.0 < r["prb"] <= 1.0, r
    print(f"smoke test: {distance} AP {r['ap']:.3f} PRB {r['prb']:.3f} on {r['n_tokens']} extracted APC test tokens")
PY
echo "smoke test: passed in $work"
