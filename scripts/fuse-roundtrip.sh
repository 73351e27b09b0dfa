#!/usr/bin/env bash
# The cost of one FUSE round trip through an s3sync mount against the same
# call on WORKDIR: access(2) (a round trip that records nothing) and
# chmod(2) (a SETATTR, recorded), each 20,000 times. An untar makes six
# round trips per file through the mount, which bounds it from below.
# Usage: scripts/fuse-roundtrip.sh   (after `make build tools`; needs python3)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
W=$(mktemp -d /tmp/s3sync-rt.XXXXXX)
P=
trap '[ -n "$P" ] && kill -INT "$P" 2>/dev/null && wait "$P"; stop_server; rm -rf "$W"' EXIT
start_server "$W"
bin/s3sync mb s3://roundtrip >/dev/null 2>&1
mkdir -p "$W/wd" "$W/mnt"
bin/s3sync mount --settle 600s --state-dir "$W/st" "$W/wd" "$W/mnt" s3://roundtrip/x >"$W/log" 2>&1 &
P=$!
for _ in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.1; done
mountpoint -q "$W/mnt" || { echo "the mount did not come up; see $W/log" >&2; exit 1; }
echo x >"$W/mnt/f"
python3 - "$W/mnt/f" "$W/wd/f" <<'PY'
import os, sys, time
n = 20000
for label, p in zip(("through the mount", "on WORKDIR"), sys.argv[1:]):
    for name, call in (("access", lambda: os.access(p, os.W_OK)), ("chmod", lambda: os.chmod(p, 0o644))):
        t = time.perf_counter()
        for _ in range(n):
            call()
        print(f"{name:6} {label:17} {(time.perf_counter() - t) / n * 1e6:6.1f} µs per call")
PY
