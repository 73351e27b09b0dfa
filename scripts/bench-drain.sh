#!/usr/bin/env bash
# The mount's drain loop against reconcile, without FUSE or the settle
# delay: 10,000 files are found in WORKDIR at start-up and drained; the
# same files are also sent by `reconcile`. Prints both times.
# Usage: scripts/bench-drain.sh [FILES]   (after `make build tools`)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
N=${1:-10000}
WORK=$(mktemp -d /tmp/s3sync-drain.XXXXXX)
trap 'pkill -INT -f "state-dir $WORK/st" 2>/dev/null; sleep 1; stop_server; rm -rf "$WORK"' EXIT
go build -o "$WORK/benchtool" ./bench/cmd/benchtool
start_server "$WORK"
bin/s3sync mb s3://drainbench >/dev/null 2>&1
"$WORK/benchtool" gen "$WORK/wd" "$N" 100 4096 1
mkdir "$WORK/mnt"
/usr/bin/time -f "reconcile of $N files: %e s" bin/s3sync reconcile --quiet "$WORK/wd" s3://drainbench/rec
t0=$EPOCHREALTIME
bin/s3sync mount --settle 0s --state-dir "$WORK/st" "$WORK/wd" "$WORK/mnt" s3://drainbench/mnt >"$WORK/log" 2>&1 &
sleep 0.5
until bin/s3sync status --json --state-dir "$WORK/st" "$WORK/wd" 2>/dev/null | grep -q '"pending": 0,'; do sleep 0.05; done
echo "mount start-up and drain of $N files: $(awk -v a="$EPOCHREALTIME" -v b="$t0" 'BEGIN { printf "%.2f", a - b }') s"
