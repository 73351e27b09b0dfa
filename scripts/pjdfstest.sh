#!/usr/bin/env bash
# POSIX conformance: run pjdfstest (https://github.com/pjd/pjdfstest) as root
# inside an `s3sync mount --allow-other`, and the same tests inside go-fuse's
# own loopback example as the baseline, then print both summaries.
#
#   scripts/pjdfstest.sh PJDFSTEST_DIR LOOPBACK_BIN [TARGET...] [-- TEST_PATH...]
#
# PJDFSTEST_DIR: a built pjdfstest checkout (tests/ and the pjdfstest binary);
# LOOPBACK_BIN: go-fuse's example/loopback, built from the release our fork
# started from (fuse.Upstream). TARGETs: s3sync, loopback (default: both),
# ext4 (a plain directory on the disk WORKDIR lives on, to see what the
# kernel's filesystem itself fails). TEST_PATHs narrow the run (tests/chown),
# relative to PJDFSTEST_DIR. Neither tool is built here or kept in the tree:
# see docs/development.md. Not part of `make test` (it takes minutes and
# needs root). Per-target prove output is kept in $OUT (default a temp dir);
# PROVE_ARGS (default -r) are prove's flags, e.g. PROVE_ARGS=-rv to see each
# subtest.
set -euo pipefail

if [ $# -lt 2 ]; then
	sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
PJD=$(realpath "$1")
LOOPBACK=$(realpath "$2")
shift 2
targets=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	targets+=("$1")
	shift
done
[ "${1:-}" = -- ] && shift
tests=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(s3sync loopback)
[ ${#tests[@]} -gt 0 ] || tests=(tests)

if [ "$(id -u)" != 0 ]; then
	echo "pjdfstest must run as root (it changes owners and makes device nodes)" >&2
	exit 1
fi
[ -x "$PJD/pjdfstest" ] || { echo "$PJD/pjdfstest not built; see docs/development.md" >&2; exit 1; }
[ -x "$LOOPBACK" ] || { echo "$LOOPBACK: not an executable" >&2; exit 1; }
command -v prove >/dev/null || { echo "prove (perl's Test::Harness) not installed" >&2; exit 1; }

cd "$(dirname "$0")/.."
REPO=$(pwd)
S3SYNC=${S3SYNC:-$REPO/bin/s3sync}
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

WORK=$(mktemp -d /tmp/s3sync-pjdfstest.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT"
# The tests switch to other users, who must be able to reach the mount.
chmod 755 "$WORK"
MOUNT_PID=
cleanup() {
	if mountpoint -q "$WORK/mnt" 2>/dev/null; then
		[ -n "$MOUNT_PID" ] && kill -INT "$MOUNT_PID" 2>/dev/null
		for _ in $(seq 100); do mountpoint -q "$WORK/mnt" || break; sleep 0.1; done
		mountpoint -q "$WORK/mnt" && umount -l "$WORK/mnt"
	fi
	[ -n "$MOUNT_PID" ] && wait "$MOUNT_PID" 2>/dev/null || true
	stop_server
	rm -rf "$WORK/work" "$WORK/mnt" "$WORK/plain" "$WORK/state" "$WORK/server/gw"
	# Keep the prove output (and the logs) only when it lives here.
	[ "$OUT" = "$WORK/out" ] || rm -rf "$WORK"
}
trap cleanup EXIT

wait_mounted() {
	for _ in $(seq 300); do
		mountpoint -q "$1" && return 0
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "$2 did not mount; see $OUT/$2.log" >&2
	return 1
}

unmount() {
	kill -INT "$MOUNT_PID"
	wait "$MOUNT_PID" || true
	MOUNT_PID=
	mountpoint -q "$WORK/mnt" && umount "$WORK/mnt"
	rm -rf "$WORK/work" "$WORK/mnt"
}

# run_prove NAME DIR: run the tests with DIR as the current directory.
run_prove() {
	local name=$1 dir=$2 paths=()
	for t in "${tests[@]}"; do paths+=("$PJD/$t"); done
	echo "== $name: prove ${PROVE_ARGS:--r} ${tests[*]} in $dir"
	# shellcheck disable=SC2086
	(cd "$dir" && prove ${PROVE_ARGS:--r} "${paths[@]}") >"$OUT/$name.prove" 2>&1 || true
	summary "$name"
}

# summary NAME: the counts and the failing tests of one run.
summary() {
	local f=$OUT/$1.prove
	sed -n '/^Test Summary Report/,$p' "$f" | grep -E '^(tests|/|  Failed|  Non-zero|  Parse)' |
		sed "s|$PJD/||" || true
	grep -E '^(Files=|Result:)' "$f" || { echo "no summary; see $f"; tail -5 "$f"; }
	grep -E '^Files=' "$f" | sed -E 's/^Files=([0-9]+), Tests=([0-9]+),.*/\1 \2/' | {
		read -r files total || return 0
		sed -n '/^Test Summary Report/,$p' "$f" | { grep -oE 'Failed: [0-9]+\)' || true; } | tr -dc '0-9\n' |
			awk -v name="$1" -v files="$files" -v total="$total" \
				'$1 > 0 { n += $1; k++ } END { printf "%s: %d tests in %d files, %d failed in %d files\n", name, total, files, n, k }'
	}
	echo
}

for target in "${targets[@]}"; do
	mkdir -p "$WORK/work" "$WORK/mnt"
	case $target in
	s3sync)
		[ -x "$S3SYNC" ] || { echo "$S3SYNC not built: make build" >&2; exit 1; }
		[ -n "${SERVER_PID:-}" ] || { start_server "$WORK/server" && "$S3SYNC" mb s3://pjdfstest >/dev/null; }
		"$S3SYNC" mount --allow-other --delete --max-delete -1 --settle 200ms --state-dir "$WORK/state" \
			"$WORK/work" "$WORK/mnt" s3://pjdfstest >"$OUT/s3sync.log" 2>&1 &
		MOUNT_PID=$!
		wait_mounted "$WORK/mnt" s3sync
		chmod 755 "$WORK/mnt"
		run_prove s3sync "$WORK/mnt"
		unmount
		rm -rf "$WORK/state"
		;;
	loopback)
		"$LOOPBACK" -allow-other -directmount -q "$WORK/mnt" "$WORK/work" >"$OUT/loopback.log" 2>&1 &
		MOUNT_PID=$!
		wait_mounted "$WORK/mnt" loopback
		chmod 755 "$WORK/mnt"
		run_prove loopback "$WORK/mnt"
		unmount
		;;
	ext4 | plain)
		mkdir -p "$WORK/plain" && chmod 755 "$WORK/plain"
		run_prove "$target" "$WORK/plain"
		rm -rf "$WORK/plain"
		;;
	*)
		echo "unknown target $target (s3sync, loopback, ext4)" >&2
		exit 2
		;;
	esac
done
echo "full prove output: $OUT"
