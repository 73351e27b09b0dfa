#!/usr/bin/env bash
# Soak with programs no one here wrote: xfstests' fsx (one file, 100,000
# random reads, writes, mmap writes, truncates, fallocate modes, copy
# ranges) and fsstress (4 processes of 10,000 random namespace and data ops:
# hard links, symlinks, device nodes, renames, chown, ...) inside an
# `s3sync mount` against a local Versity Gateway, fsstress twice: once
# cleanly, once with `kill -9` of the mount in the middle (then the dead
# mount is cleared and the mount restarted on the same WORKDIR and state).
#
#   scripts/soak-fstools.sh FSX FSSTRESS
#
# After each run, once status says nothing is pending or in flight, the
# bucket is read with the AWS CLI (not s3sync's code) and must equal
# WORKDIR: every name of every regular file (hard links: each name its own
# object, same bytes), each symlink as NAME.rclonelink holding its target,
# each empty directory as a "dir/" marker, FIFOs, sockets and devices absent
# (and listed by status as skipped, not failed), nothing else. Then
# `s3sync verify --links` must pass and `s3sync reconcile --links --metadata`
# must restore the tree (bytes and modes of files, link targets, empty
# directories). Exits 1 on any difference, listing the first ones.
# FSX_OPS (100000), FSSTRESS_PROCS (4), FSSTRESS_OPS (10000), SEED (1);
# FSSTRESS_ARGS: more fsstress flags (e.g. "-f rexchange=0" to narrow a
# failure down); RUNS: which of fsx fsstress fsstress-kill to run (all);
# logs stay in $OUT (default a temp dir, printed). Needs root (device nodes,
# chown) and the AWS CLI (Debian's awscli).
set -euo pipefail

if [ $# -ne 2 ]; then
	sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
fi
FSX=$1
FSSTRESS=$2
FSX_OPS=${FSX_OPS:-100000}
FSSTRESS_PROCS=${FSSTRESS_PROCS:-4}
FSSTRESS_OPS=${FSSTRESS_OPS:-10000}
SEED=${SEED:-1}
FSSTRESS_ARGS=${FSSTRESS_ARGS:-}
RUNS=${RUNS:-fsx fsstress fsstress-kill}

howto() {
	cat >&2 <<'EOF'
fsx and fsstress are xfstests' (https://git.kernel.org/pub/scm/fs/xfs/xfstests-dev.git), built
outside this tree (see docs/development.md):
  apt-get install -y xfslibs-dev libattr1-dev libacl1-dev libaio-dev liburing-dev autoconf libtool
  git clone https://git.kernel.org/pub/scm/fs/xfs/xfstests-dev.git ../tools/xfstests
  (cd ../tools/xfstests && make configure && ./configure && make -C lib && make -C ltp fsx fsstress)
then: make soak-fstools   (or FSX=... FSSTRESS=... to point elsewhere)
EOF
}
for t in "$FSX" "$FSSTRESS"; do
	if [ ! -x "$t" ]; then
		echo "$t: not built" >&2
		howto
		exit 1
	fi
done
FSX=$(realpath "$FSX")
FSSTRESS=$(realpath "$FSSTRESS")
if [ "$(id -u)" != 0 ]; then
	echo "soak-fstools must run as root (fsstress makes device nodes and changes owners)" >&2
	exit 1
fi
command -v aws >/dev/null || { echo "the AWS CLI is needed to read the bucket: apt-get install -y awscli" >&2; exit 1; }
command -v jq >/dev/null || { echo "jq is needed to read status --json: apt-get install -y jq" >&2; exit 1; }

cd "$(dirname "$0")/.."
REPO=$(pwd)
S3SYNC=${S3SYNC:-$REPO/bin/s3sync}
[ -x "$S3SYNC" ] || { echo "$S3SYNC not built: make build" >&2; exit 1; }
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

WORK=$(mktemp -d /tmp/s3sync-fstools.XXXXXX)
OUT=${OUT:-$WORK/out}
mkdir -p "$OUT" "$WORK/work" "$WORK/mnt"
WORKDIR=$WORK/work
MNT=$WORK/mnt
STATE=$WORK/state
URL=s3://soak/data
MOUNT_PID=
FAILED=0

cleanup() {
	if [ -n "$MOUNT_PID" ]; then
		kill -INT "$MOUNT_PID" 2>/dev/null || true
		wait "$MOUNT_PID" 2>/dev/null || true
	fi
	if mountpoint -q "$MNT" 2>/dev/null; then umount -l "$MNT" || true; fi
	stop_server || true
	rm -rf "$WORK/work" "$WORK/mnt" "$WORK/state" "$WORK/server" "$WORK"/pulled "$WORK"/restore
	[ "$OUT" = "$WORK/out" ] || rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "$(date -u +%H:%M:%S) $*"; }

mount_start() {
	"$S3SYNC" mount --delete --max-delete -1 --settle 200ms --state-dir "$STATE" \
		"$WORKDIR" "$MNT" "$URL" >>"$OUT/mount.log" 2>&1 &
	MOUNT_PID=$!
	for _ in $(seq 600); do
		mountpoint -q "$MNT" && return 0
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	echo "the mount did not come up; see $OUT/mount.log" >&2
	tail -20 "$OUT/mount.log" >&2
	exit 1
}

status_json() { "$S3SYNC" status --json --state-dir "$STATE" "$WORKDIR"; }

# wait_drained: until status says nothing pending and nothing in flight on
# two polls a second apart (a release may record just after the first).
wait_drained() {
	local start=$SECONDS quiet=0 s
	while [ $((SECONDS - start)) -lt 3600 ]; do
		s=$(status_json)
		if [ "$(jq '.pending + .in_flight' <<<"$s")" = 0 ]; then
			quiet=$((quiet + 1))
			[ $quiet -ge 2 ] && return 0
		else
			quiet=0
			[ $(((SECONDS - start) % 30)) -eq 0 ] && log "  draining: $(jq -c '{pending, pending_bytes, in_flight}' <<<"$s")"
		fi
		sleep 1
	done
	echo "still pending after an hour: $s" >&2
	return 1
}

# fail NAME: record that run NAME differs (its lines are in $OUT/NAME.diff).
fail() {
	FAILED=1
	echo "FAIL $1: $(wc -l <"$OUT/$1.diff") differences, the first:"
	head -20 "$OUT/$1.diff" | cut -c1-300 | sed 's/^/  /'
}

# check NAME: the bucket (read by the AWS CLI), status, verify and a
# restore against WORKDIR; prints the counts.
check() {
	local name=$1 diff=$OUT/$1.diff t0=$SECONDS
	: >"$diff"
	(
		cd "$WORKDIR"
		find . -mindepth 1 -type f -printf '%P\n' | LC_ALL=C sort >"$OUT/$name.files"
		find . -mindepth 1 -type l -printf '%P\n' | LC_ALL=C sort >"$OUT/$name.links"
		find . -mindepth 1 -type d -printf '%P\n' | LC_ALL=C sort >"$OUT/$name.dirs"
		# Empty: holding nothing S3 stores (FIFOs, sockets, devices aside).
		find . -mindepth 1 \( -type f -o -type l -o -type d \) -printf '%h\n' | sed -n 's|^\./||p' | LC_ALL=C sort -u |
			LC_ALL=C comm -23 "$OUT/$name.dirs" - | sed 's|$|/|' >"$OUT/$name.empty"
		find . -mindepth 1 -type f -links +1 -printf '%P\n' | LC_ALL=C sort >"$OUT/$name.hardlinked"
		find . -mindepth 1 \( -type p -o -type c -o -type b -o -type s \) -printf '%P\n' | LC_ALL=C sort >"$OUT/$name.special"
	)
	{
		cat "$OUT/$name.files" "$OUT/$name.empty"
		sed 's/$/.rclonelink/' "$OUT/$name.links"
	} | LC_ALL=C sort >"$OUT/$name.want"
	aws s3api list-objects-v2 --bucket soak --prefix data/ --output json |
		jq -r '.Contents[]?.Key | ltrimstr("data/")' | LC_ALL=C sort >"$OUT/$name.keys"
	LC_ALL=C comm -23 "$OUT/$name.want" "$OUT/$name.keys" | sed 's/$/: missing from the bucket/' >>"$diff"
	# A directory that was empty keeps its marker once it has entries (by
	# design: its entries bring it back anyway); a marker of a directory
	# WORKDIR does not have is extra.
	local k markers=0
	while IFS= read -r k; do
		if [[ $k == */ ]] && [ -d "$WORKDIR/$k" ]; then
			markers=$((markers + 1))
		else
			echo "$k: in the bucket, not in WORKDIR (or a special file)" >>"$diff"
		fi
	done < <(LC_ALL=C comm -13 "$OUT/$name.want" "$OUT/$name.keys")

	# Every object's bytes, downloaded by the AWS CLI.
	rm -rf "$WORK/pulled"
	aws s3 cp --recursive --quiet --exclude '*/' "$URL/" "$WORK/pulled/" 2>>"$diff" || echo "aws s3 cp failed" >>"$diff"
	while IFS= read -r f; do
		[ -f "$WORK/pulled/$f" ] && ! cmp -s "$WORKDIR/$f" "$WORK/pulled/$f" &&
			echo "$f: the object's bytes differ from the file's ($(stat -c %s "$WORK/pulled/$f") vs $(stat -c %s "$WORKDIR/$f") bytes)" >>"$diff"
	done <"$OUT/$name.files"
	while IFS= read -r l; do
		[ -f "$WORK/pulled/$l.rclonelink" ] && ! cmp -s <(readlink -n "$WORKDIR/$l") "$WORK/pulled/$l.rclonelink" &&
			echo "$l.rclonelink: holds $(head -c 200 "$WORK/pulled/$l.rclonelink"), the link points to $(readlink "$WORKDIR/$l")" >>"$diff"
	done <"$OUT/$name.links"

	# status: nothing failed, every special file skipped.
	local s
	s=$(status_json)
	jq -r '.failed[]? | "\(.path): in the failed list: \(.error)"' <<<"$s" >>"$diff"
	# (status lists the first 100 and counts them all)
	jq -r '.skipped[]?.path' <<<"$s" | LC_ALL=C sort >"$OUT/$name.skipped"
	local nskipped
	nskipped=$(jq '.skipped_count' <<<"$s")
	[ "$nskipped" = "$(wc -l <"$OUT/$name.special")" ] ||
		echo "status counts $nskipped skipped, WORKDIR holds $(wc -l <"$OUT/$name.special") special files" >>"$diff"
	if [ "$nskipped" -le 100 ]; then
		LC_ALL=C comm -23 "$OUT/$name.special" "$OUT/$name.skipped" | sed 's/$/: a special file status does not list as skipped/' >>"$diff"
	fi
	LC_ALL=C comm -13 "$OUT/$name.special" "$OUT/$name.skipped" | sed 's/$/: listed as skipped, not a special file in WORKDIR/' >>"$diff"

	if ! "$S3SYNC" verify --links --endpoint-url "$ENDPOINT" "$WORKDIR" "$URL" >"$OUT/$name.verify" 2>&1; then
		echo "s3sync verify --links failed: $(grep -v '^warning: skipping' "$OUT/$name.verify" | tail -1)" >>"$diff"
	fi

	# A restore gives back files (bytes, mode), links, every directory that
	# holds something stored, and empty ones.
	local r=$WORK/restore
	rm -rf "$r"
	mkdir -p "$r"
	if ! "$S3SYNC" reconcile --links --metadata --no-progress --endpoint-url "$ENDPOINT" "$URL" "$r" >"$OUT/$name.restore" 2>&1; then
		echo "restore failed: $(tail -3 "$OUT/$name.restore" | tr '\n' ' ')" >>"$diff"
	fi
	while IFS= read -r f; do
		if [ ! -f "$r/$f" ] || [ -L "$r/$f" ]; then
			echo "$f: not restored as a file" >>"$diff"
		elif ! cmp -s "$WORKDIR/$f" "$r/$f"; then
			echo "$f: restored with other bytes" >>"$diff"
		elif [ "$(stat -c %a "$WORKDIR/$f")" != "$(stat -c %a "$r/$f")" ]; then
			echo "$f: restored with mode $(stat -c %a "$r/$f"), WORKDIR has $(stat -c %a "$WORKDIR/$f")" >>"$diff"
		fi
	done <"$OUT/$name.files"
	while IFS= read -r l; do
		[ "$(readlink "$r/$l")" = "$(readlink "$WORKDIR/$l")" ] ||
			echo "$l: restored link points to '$(readlink "$r/$l" | head -c 100)', WORKDIR's to '$(readlink "$WORKDIR/$l" | head -c 100)' ($(readlink "$WORKDIR/$l" | wc -c) bytes)" >>"$diff"
	done <"$OUT/$name.links"
	# The directories a restore can give back: those of a stored key.
	sed -e 's|/[^/]*$||' -e 't' -e 'd' "$OUT/$name.keys" | awk -F/ '{p=""; for (i=1;i<=NF;i++) {p = p (i>1?"/":"") $i; print p}}' |
		LC_ALL=C sort -u >"$OUT/$name.wantdirs"
	(cd "$r" && find . -mindepth 1 -type d -printf '%P\n' | LC_ALL=C sort) >"$OUT/$name.gotdirs"
	LC_ALL=C comm -23 "$OUT/$name.wantdirs" "$OUT/$name.gotdirs" | sed 's|$|/: directory not restored|' >>"$diff"
	(cd "$r" && find . -mindepth 1 ! -type d -printf '%P\n' | LC_ALL=C sort) >"$OUT/$name.gotnames"
	LC_ALL=C sort -u "$OUT/$name.files" "$OUT/$name.links" >"$OUT/$name.wantnames"
	LC_ALL=C comm -13 "$OUT/$name.wantnames" "$OUT/$name.gotnames" | sed 's/$/: restored, not in WORKDIR/' >>"$diff"
	# Every directory comes back, those holding only special files too
	# (their marker keeps them).
	LC_ALL=C comm -23 "$OUT/$name.dirs" "$OUT/$name.gotdirs" | sed 's|$|/: WORKDIR directory not restored|' >>"$diff"

	log "$name: $(wc -l <"$OUT/$name.files") file names ($(wc -l <"$OUT/$name.hardlinked") of them hard-linked), $(wc -l <"$OUT/$name.links") symlinks, $(wc -l <"$OUT/$name.dirs") directories ($(wc -l <"$OUT/$name.empty") empty), $(wc -l <"$OUT/$name.special") special files skipped, $(wc -l <"$OUT/$name.keys") objects; check $((SECONDS - t0)) s"
	[ "$markers" = 0 ] || log "$name: $markers directories no longer empty keep their marker"
	if [ -s "$diff" ]; then fail "$name"; else log "$name: bucket = WORKDIR (AWS CLI), verify passed, restore equal"; fi
}

# fsx_flags: fsx's flags for the op classes the mount answers EOPNOTSUPP
# (or ENOSYS) to, found by fsx's own probe on a scratch file.
fsx_flags() {
	local probe=$MNT/fsx-probe flags=() line
	"$FSX" -N 1 -S "$SEED" -P "$OUT" "$probe" >"$OUT/fsx-probe.log" 2>&1 || true
	rm -f "$probe"
	while IFS= read -r line; do
		case $line in
		*"fallocate mode 0,"*) flags+=(-F) ;;
		*FALLOC_FL_KEEP_SIZE*) flags+=(-K) ;;
		*FALLOC_FL_PUNCH_HOLE*) flags+=(-H) ;;
		*FALLOC_FL_ZERO_RANGE*) flags+=(-z) ;;
		*FALLOC_FL_COLLAPSE_RANGE*) flags+=(-C) ;;
		*FALLOC_FL_INSERT_RANGE*) flags+=(-I) ;;
		*FALLOC_FL_UNSHARE_RANGE*) flags+=(-u) ;;
		*"clone range"*) flags+=(-J) ;;
		*"dedupe range"*) flags+=(-B) ;;
		*"copy range"*) flags+=(-E) ;;
		*"exchange range"*) flags+=(-0) ;;
		*"dontcache IO"* | *"atomic writes"*)
			# fsx turns these off itself (its -T is missing from its
			# getopt string; atomic writes are for -Z, O_DIRECT, only).
			echo "  fsx: ${line#main: } (fsx turns it off itself)" >&2
			continue
			;;
		*) continue ;;
		esac
		echo "  fsx: ${line#main: } -> ${flags[-1]}" >&2
	done < <(grep -E 'disabling' "$OUT/fsx-probe.log")
	echo "${flags[*]}"
}

start_server "$WORK/server"
"$S3SYNC" mb s3://soak >/dev/null
log "Versity Gateway at $ENDPOINT; WORKDIR $WORKDIR, mount $MNT, $URL; logs in $OUT"
mount_start
T0=$SECONDS

# 1. fsx on one file.
run_fsx() {
	local t flags
	log "fsx: probing which op classes the mount supports"
	flags=$(fsx_flags)
	log "fsx -N $FSX_OPS -S $SEED ${flags:-(all op classes)} $MNT/fsx/file"
	mkdir "$MNT/fsx"
	t=$SECONDS
	# shellcheck disable=SC2086
	if "$FSX" -N "$FSX_OPS" -S "$SEED" -P "$OUT" $flags "$MNT/fsx/file" >"$OUT/fsx.log" 2>&1; then
		log "fsx: $(tail -1 "$OUT/fsx.log") ($((SECONDS - t)) s)"
	else
		echo "FAIL fsx exited $? (its log: $OUT/fsx.log, .fsxlog/.fsxgood in $OUT):"
		tail -30 "$OUT/fsx.log" | sed 's/^/  /'
		FAILED=1
	fi
	t=$SECONDS
	wait_drained
	log "fsx: drained in $((SECONDS - t)) s"
	check fsx
}

fsstress() { # DIR LOG SEED
	# shellcheck disable=SC2086
	"$FSSTRESS" -d "$1" -p "$FSSTRESS_PROCS" -n "$FSSTRESS_OPS" -s "$3" $FSSTRESS_ARGS >"$2" 2>&1
}

# 2. fsstress, cleanly.
STRESS_TIME=60
run_fsstress() {
	local t
	log "fsstress -p $FSSTRESS_PROCS -n $FSSTRESS_OPS -s $SEED $FSSTRESS_ARGS in $MNT/fsstress"
	t=$SECONDS
	if fsstress "$MNT/fsstress" "$OUT/fsstress.log" "$SEED"; then
		log "fsstress: done ($((SECONDS - t)) s)"
	else
		echo "FAIL fsstress exited $? (log: $OUT/fsstress.log):"
		tail -20 "$OUT/fsstress.log" | sed 's/^/  /'
		FAILED=1
	fi
	STRESS_TIME=$((SECONDS - t))
	t=$SECONDS
	wait_drained
	log "fsstress: drained in $((SECONDS - t)) s"
	check fsstress
}

# 3. fsstress again, the mount killed with kill -9 about half way through
# (half the clean run's time).
run_fsstress_kill() {
	local t pid after=$(((STRESS_TIME + 1) / 2))
	log "fsstress -p $FSSTRESS_PROCS -n $FSSTRESS_OPS -s $((SEED + 1)) $FSSTRESS_ARGS in $MNT/fsstress-kill, kill -9 of the mount after ${after}s"
	t=$SECONDS
	fsstress "$MNT/fsstress-kill" "$OUT/fsstress-kill.log" $((SEED + 1)) &
	pid=$!
	sleep "$after"
	if kill -0 "$pid" 2>/dev/null; then
		log "kill -9 of the mount; fsstress now gets ENOTCONN"
	else
		log "fsstress ended before the kill: killing the mount anyway"
	fi
	kill -9 "$MOUNT_PID"
	wait "$MOUNT_PID" 2>/dev/null || true
	MOUNT_PID=
	wait "$pid" || true # its ops fail once the mount is gone
	umount -l "$MNT" 2>/dev/null || fusermount3 -uz "$MNT"
	mount_start
	log "restarted on the same WORKDIR and state dir"
	wait_drained
	log "fsstress-kill: drained $((SECONDS - t)) s after it started"
	check fsstress-kill
}

for run in $RUNS; do
	case $run in
	fsx) run_fsx ;;
	fsstress) run_fsstress ;;
	fsstress-kill) run_fsstress_kill ;;
	*)
		echo "RUNS: unknown run $run (fsx, fsstress, fsstress-kill)" >&2
		exit 2
		;;
	esac
done

kill -INT "$MOUNT_PID"
wait "$MOUNT_PID" || true
MOUNT_PID=
log "total $((SECONDS - T0)) s: fsx $FSX_OPS ops, fsstress 2 x $FSSTRESS_PROCS x $FSSTRESS_OPS ops"
if [ $FAILED != 0 ]; then
	echo "soak-fstools: FAILED (logs in $OUT)"
	exit 1
fi
echo "soak-fstools: passed (logs in $OUT)"
