#!/usr/bin/env python3
"""Writes the replay traces of the golden-output test (crates/optiscope-cli/tests/golden.rs):
every spec vector of tests/replay/reference.py as a trace, the traces whose answer depends on how
a tensor of rank >= 3 is read, and the first two random traces of every optimizer from
tests/replay/check_replay.py (parameter groups, roles, every orthogonalizer). The files are
committed; rerun only to add traces (the golden hashes must then be recorded again):

    python3 tests/golden/make_replay_traces.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "replay"))
import check_replay  # noqa: E402
import reference as ref  # noqa: E402


def main():
    out = os.path.join(HERE, "replay")
    os.makedirs(out, exist_ok=True)
    traces = [(label, trace) for label, trace, _ in ref.spec_vector_traces()]
    traces += [(label, trace) for label, trace, _ in check_replay.reading_traces()]
    seen = {}
    for name, label, trace in check_replay.random_traces():
        if seen.get(name, 0) < 2:
            seen[name] = seen.get(name, 0) + 1
            traces.append((label, trace))
    for old in os.listdir(out):
        if old.endswith(".json"):
            os.remove(os.path.join(out, old))
    index = {}
    for i, (label, trace) in enumerate(traces):
        name = f"{i:02d}.json"
        index[name] = label
        with open(os.path.join(out, name), "w") as f:
            json.dump(trace, f)
    with open(os.path.join(HERE, "replay_index.json"), "w") as f:
        json.dump(index, f, indent=1)
        f.write("\n")
    print(f"wrote {len(traces)} traces to {out}")


if __name__ == "__main__":
    main()
