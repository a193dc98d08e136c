#!/usr/bin/env bash
# Runs every benchmark of the project and ends with one line per figure:
#   bench <name>: <value> <unit>
# Figures are Criterion medians; the full reports stay in target/criterion.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"

# Criterion keeps its results between runs; start clean so every figure
# printed below was measured by this run.
rm -rf "$target_dir/criterion"
cargo bench -p doorstep-sim --bench store -- --noplot

python3 - "$target_dir/criterion" <<'PY'
import json, pathlib, sys

root = pathlib.Path(sys.argv[1])
def scaled(ns):
    for unit, size in (("s", 1e9), ("ms", 1e6), ("us", 1e3)):
        if ns >= size:
            return f"{ns / size:.3f} {unit}"
    return f"{ns:.1f} ns"

figures = sorted(root.glob("*/*/new/estimates.json"))
if not figures:
    sys.exit("bench: Criterion wrote no estimates")
print()
for path in figures:
    group, name = path.parts[-4], path.parts[-3]
    median = json.loads(path.read_text())["median"]["point_estimate"]
    print(f"bench {group}/{name}: {scaled(median)}")
PY
