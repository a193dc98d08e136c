#!/usr/bin/env bash
# Runs every benchmark of the project and ends with one line per figure:
#   bench <name>: <value> <unit>
# Criterion benchmarks report their medians (full reports stay in
# target/criterion); custom benchmarks print their own `bench` lines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
custom="$(mktemp)"
trap 'rm -f "$custom"' EXIT

# Criterion keeps its results between runs; start clean so every figure
# printed below was measured by this run.
rm -rf "$target_dir/criterion"
# Every benchmark target of the harness: Criterion ones leave estimates,
# custom ones print their own `bench` lines.
cargo bench -p doorstep-sim --benches -- --noplot | tee "$custom"

python3 - "$target_dir/criterion" "$custom" <<'PY'
import json, pathlib, sys

root = pathlib.Path(sys.argv[1])
def scaled(ns):
    for unit, size in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= size:
            return f"{ns / size:.3f} {unit}"
    return f"{ns:.1f} ns"

medians = {}
for path in sorted(root.glob("*/*/new/estimates.json")):
    group, name = path.parts[-4], path.parts[-3]
    medians[f"{group}/{name}"] = json.loads(path.read_text())["median"]["point_estimate"]
if not medians:
    sys.exit("bench: Criterion wrote no estimates")

print()
for name, ns in medians.items():
    print(f"bench {name}: {scaled(ns)}")
# Figures derived from the medians, as the targets are stated.
if "store/batch_of_100_transitions" in medians:
    print(f"bench store/batched_actions_per_second: {100 / (medians['store/batch_of_100_transitions'] / 1e9):.0f} actions/s")
if "store/durable_transition" in medians and "store/bare_sqlite_transaction" in medians:
    print(f"bench store/durable_transition_vs_bare: {medians['store/durable_transition'] / medians['store/bare_sqlite_transaction']:.2f} x")
for line in pathlib.Path(sys.argv[2]).read_text().splitlines():
    if line.startswith("bench "):
        print(line)
PY
