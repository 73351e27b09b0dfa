#!/usr/bin/env bash
# make bench-scale: s3sync at a million files, side by side with rclone (and
# the aws CLI at ≤ 100,000 files), against one local Versity Gateway.
#
#   sync:  reconcile initial upload, no-op re-sync, 1,000 changed, clone
#          (S3 → an empty directory); wall time and peak RSS of each
#   mount: start-up on that WORKDIR (first mount, clean, after kill -9 with
#          10,000 unsynced changes), `status` with 100,000 pending, and a
#          small-file create/stat loop through the mount with an empty
#          journal and with one record per file pending (a day offline)
#
#   BENCH_SCALE_FILES=N   files in the tree (default 1000000; 100000 for a quicker run)
#   BENCH_TMPDIR=D        where the data, the server root and the clone go (default /tmp);
#                         needs about 16 KB of free space per file
#   BENCH_SCALE_ONLY="sync mount"   the sections to run (default both)
#   BENCH_SCALE_PEERS=0   s3sync alone
#   BENCH_SCALE_AWS_MAX=N the aws CLI runs only up to N files (default 100000)
#   BENCH_SCALE_PEER_FULL_MAX=N  above N files, rclone's initial upload and
#                         clone are left out (its no-op and changed runs stay)
#   BENCH_SCALE_NOOP_RUNS=N  no-op re-syncs per tool, interleaved (default 2; the median is reported)
#
# Prints the table and writes it to bench/out/scale.md (raw numbers in
# bench/out/scale.tsv, CPU profiles of s3sync's commands and logs of failed
# ones in bench/out/scale/).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
REPO=$PWD
S3SYNC=$REPO/bin/s3sync
GOBIN=$(go env GOPATH)/bin
RCLONE=$GOBIN/rclone
N=${BENCH_SCALE_FILES:-1000000}
NCHANGED=1000
NCRASH=$((N < 100000 ? N / 10 : 10000))
NSTATUS=$((N < 1000000 ? N / 10 : 100000))
NLOOP=5000
AWS_MAX=${BENCH_SCALE_AWS_MAX:-100000}
PEER_FULL_MAX=${BENCH_SCALE_PEER_FULL_MAX:-$N}
NOOP_RUNS=${BENCH_SCALE_NOOP_RUNS:-2}
TMO=${BENCH_SCALE_TIMEOUT:-7200} # seconds any one measured command may take
ONLY=${BENCH_SCALE_ONLY:-sync mount}
section() { [[ " $ONLY " == *" $1 "* ]]; }

say() { printf '\n\033[1m== %s\033[0m  (%s)\n' "$*" "$(date -u +%H:%M:%S)" >&2; }
log() { printf '%s\n' "$*" >&2; }
calc() { awk "BEGIN { printf \"%.3f\", $* }"; }

say "tools"
[ -x "$S3SYNC_VERSITYGW" ] || make -s tools
[ -x "$S3SYNC" ] || make -s build
AWS=
if [ "${BENCH_SCALE_PEERS:-1}" = 0 ]; then
	RCLONE=
else
	[ -x "$RCLONE" ] || { log "rclone not built: run make bench once (it installs rclone $(grep -m1 RCLONE_VERSION Makefile | awk '{ print $3 }'))"; RCLONE=; }
	if [ "$N" -le "$AWS_MAX" ]; then AWS=$(command -v aws || true); fi
fi
[ -x /usr/bin/time ] || { log "/usr/bin/time is needed for peak RSS (Debian package time)"; exit 1; }
log "s3sync: $S3SYNC ($(git -C "$REPO" describe --always --dirty 2>/dev/null))"
[ -n "$RCLONE" ] && log "rclone: $("$RCLONE" version 2>/dev/null | head -1)"
[ -n "$AWS" ] && log "aws: $("$AWS" --version 2>&1)"

TMPROOT=${BENCH_TMPDIR:-/tmp}
need_kb=$((N * 16))
free_kb=$(df -Pk "$TMPROOT" | awk 'NR == 2 { print $4 }')
if [ "$free_kb" -lt "$need_kb" ]; then
	log "$TMPROOT has $((free_kb / 1048576)) GiB free; $N files need about $((need_kb / 1048576)) GiB: set BENCH_TMPDIR or BENCH_SCALE_FILES"
	exit 1
fi
WORK=$(mktemp -d "$TMPROOT/s3sync-scale.XXXXXX")
OUT=$REPO/bench/out
PROF=$OUT/scale
mkdir -p "$PROF"
rm -f "$PROF"/*
BT=$WORK/benchtool
go build -o "$BT" ./bench/cmd/benchtool || { log "cannot build bench/cmd/benchtool"; exit 1; }

MNT=$WORK/mnt MOUNT_PID=
cleanup() {
	[ -n "$MOUNT_PID" ] && kill -KILL "$MOUNT_PID" 2>/dev/null
	mountpoint -q "$MNT" 2>/dev/null && { fusermount3 -u "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null; }
	[ -n "${SERVER_PID:-}" ] && kill -CONT "$SERVER_PID" 2>/dev/null
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
T_START=$SECONDS

start_bench_server || exit 1
srv_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }
: >"$OUT/scale.tsv"
declare -A T_ RSS_ SCPU_

# timed NAME CMD...: T (wall s), PEAK_MB, SCPU (server CPU s); s3sync's
# commands write a CPU profile to bench/out/scale/NAME.cpu.
timed() {
	local name=$1 t0 t1 s0 rc
	shift
	s0=$(srv_ticks)
	t0=$EPOCHREALTIME
	S3SYNC_CPUPROFILE=$PROF/$name.cpu timeout -k 10 "$TMO" /usr/bin/time -f '%M' -o "$WORK/time.out" "$@" >"$WORK/log.$name" 2>&1
	rc=$?
	t1=$EPOCHREALTIME
	T=$(calc "$t1 - $t0")
	SCPU=$(calc "($(srv_ticks) - $s0) / $TICK")
	PEAK_MB=$(awk 'END { printf "%.0f", $1 / 1024 }' "$WORK/time.out" 2>/dev/null)
	[ -s "$PROF/$name.cpu" ] || rm -f "$PROF/$name.cpu"
	if [ $rc != 0 ]; then
		log "  $name: FAILED (exit $rc); log in bench/out/scale/$name.log"
		cp "$WORK/log.$name" "$PROF/$name.log"
		return $rc
	fi
	log "  $(printf '%-24s %9.2f s   peak RSS %5s MiB   server CPU %7.2f s' "$name" "$T" "$PEAK_MB" "$SCPU")"
}
# rec KEY: records the last timed command under KEY.
rec() {
	T_[$1]=$T RSS_[$1]=${PEAK_MB:-} SCPU_[$1]=$SCPU
	printf '%s\t%s\t%s\t%s\n' "$1" "$T" "${PEAK_MB:-}" "$SCPU" >>"$OUT/scale.tsv"
}

sync_cmd() { # sync_cmd TOOL SRC DST
	case $1 in
	s3sync) CMD=("$S3SYNC" reconcile --no-progress --only-show-errors "$2" "$3") ;;
	aws) CMD=("$AWS" s3 sync --only-show-errors --no-progress --endpoint-url "$ENDPOINT" "$2" "$3") ;;
	rclone) CMD=("$RCLONE" sync "${2/#s3:\/\//bench:}" "${3/#s3:\/\//bench:}") ;;
	esac
}
measure() { # measure WORKLOAD TOOL SRC DST
	sync_cmd "$2" "$3" "$4"
	timed "$1.$2" "${CMD[@]}" && rec "$1|$2"
}
objects() { "$BT" count "$1" data | awk '{ print $1 }'; }

say "data: $N files in a tree of depths 1–6 (flat directories of up to 50,000)"
DATA=$WORK/data LIST=$WORK/list
t0=$SECONDS
"$BT" gentree "$DATA" "$N" 1 "$LIST" || exit 1
log "  generated in $((SECONDS - t0)) s; $(du -sk "$DATA" | awk '{ printf "%.1f GiB", $1 / 1048576 }')"

TOOLS=(s3sync)
[ -n "$RCLONE" ] && TOOLS+=(rclone)
[ -n "$AWS" ] && TOOLS+=(aws)

# ---------------------------------------------------------------- sync
# Each tool uploads into a bucket of its own, dropped after; the other
# workloads all run against s3sync's bucket, which rclone takes as in sync
# (s3sync stores mtimes as rclone does), so a peer needs no upload of its
# own at full size to be measured there. The 1,000 changed files are other
# files for each tool: after one tool sent its 1,000, the next sees those as
# in sync and sends its own.
BUCKET=sync-s3sync
peer_full() { [ "$1" = s3sync ] || [ "$N" -le "$PEER_FULL_MAX" ]; }
if section sync; then
	say "initial upload"
	for tool in "${TOOLS[@]}"; do
		peer_full "$tool" || { log "  $tool: skipped at $N files (BENCH_SCALE_PEER_FULL_MAX=$PEER_FULL_MAX)"; continue; }
		"$BT" mb "sync-$tool" || exit 1
		measure upload "$tool" "$DATA" "s3://sync-$tool/data"
		n=$(objects "sync-$tool")
		[ "$n" = "$N" ] || log "  WARNING $tool upload: the bucket holds $n objects, want $N"
		[ "$tool" = s3sync ] || rm -rf "${GW:?}/sync-$tool"
	done
	say "no-op re-sync ($NOOP_RUNS× each, interleaved)"
	for r in $(seq "$NOOP_RUNS"); do
		for tool in "${TOOLS[@]}"; do measure "noop$r" "$tool" "$DATA" "s3://$BUCKET/data"; done
	done
	say "re-sync with $NCHANGED files changed"
	off=1
	for tool in "${TOOLS[@]}"; do
		sleep 1.2 # the changed files get an mtime clearly newer than the last upload
		"$BT" modify "$DATA" "$LIST" "$NCHANGED" "$off" || exit 1
		off=$((off + 1))
		measure changed "$tool" "$DATA" "s3://$BUCKET/data"
	done
	if [ "$N" -le 100000 ]; then
		"$BT" verify "$DATA" "$BUCKET" data || log "  WARNING: the bucket does not match the tree"
	fi
	say "clone into an empty directory"
	for tool in "${TOOLS[@]}"; do
		peer_full "$tool" || { log "  $tool: skipped at $N files (BENCH_SCALE_PEER_FULL_MAX=$PEER_FULL_MAX)"; continue; }
		rm -rf "$WORK/clone"
		mkdir "$WORK/clone"
		measure clone "$tool" "s3://$BUCKET/data" "$WORK/clone"
		n=$(find "$WORK/clone" -type f | wc -l)
		[ "$n" = "$N" ] || log "  WARNING $tool clone: $n files, want $N"
		rm -rf "$WORK/clone"
	done
fi

# ---------------------------------------------------------------- mount
# mount_up NAME [ARGS]: starts the mount on DATA and times it until the
# mountpoint serves (T_UP).
ST=$WORK/state
mount_up() {
	local name=$1 t0
	shift
	mkdir -p "$MNT"
	t0=$EPOCHREALTIME
	S3SYNC_CPUPROFILE=$PROF/$name.cpu "$S3SYNC" mount --state-dir "$ST" "$@" "$DATA" "$MNT" s3://sync-s3sync/data --endpoint-url "$ENDPOINT" >>"$WORK/mount.log" 2>&1 &
	MOUNT_PID=$!
	until mountpoint -q "$MNT" 2>/dev/null; do
		if ! kill -0 "$MOUNT_PID" 2>/dev/null; then
			log "  $name: the mount did not come up; log in bench/out/scale/mount.log"
			cp "$WORK/mount.log" "$PROF/mount.log"
			return 1
		fi
		sleep 0.01
	done
	T=$(calc "$EPOCHREALTIME - $t0")
	PEAK_MB= SCPU=0
	log "  $(printf '%-24s %9.2f s until the mountpoint serves' "$name" "$T")"
	sample_anon "$MOUNT_PID" &
}
# sample_anon PID: the process's peak anonymous RSS (its own memory, not
# the state database's pages mapped from the page cache, which VmHWM also
# counts), polled, into $WORK/anon.PID.
sample_anon() {
	local m=0 a
	while a=$(awk '/RssAnon/ { print $2 }' "/proc/$1/status" 2>/dev/null) && [ -n "$a" ]; do
		[ "$a" -gt "$m" ] && { m=$a; echo "$m" >"$WORK/anon.$1"; }
		sleep 0.2
	done
}
mount_rss() { # peak RSS (VmHWM), and in brackets the peak anonymous RSS
	printf '%s (%s)' "$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$MOUNT_PID/status" 2>/dev/null)" \
		"$(awk '{ printf "%.0f", $1 / 1024 }' "$WORK/anon.$MOUNT_PID" 2>/dev/null)"
}
mount_down() { # mount_down [KILL]
	[ -n "$MOUNT_PID" ] || return 0
	if [ "${1:-}" = KILL ]; then
		kill -KILL "$MOUNT_PID"
	else
		kill -INT "$MOUNT_PID"
	fi
	wait "$MOUNT_PID" 2>/dev/null
	MOUNT_PID=
	# After kill -9 the mountpoint is left stale (ENOTCONN), which
	# mountpoint(1) does not report as mounted.
	fusermount3 -u -z "$MNT" 2>/dev/null || umount -l "$MNT" 2>/dev/null || true
}
status_json() { "$S3SYNC" status --json --state-dir "$ST" "$DATA" 2>/dev/null; }
pending() { status_json | awk -F': ' '/"pending"/ { gsub(/[, ]/, "", $2); print $2; exit }'; }
wait_drained() { # wait_drained: nothing pending or in flight
	local deadline=$((SECONDS + TMO)) j
	while [ $SECONDS -lt $deadline ]; do
		j=$(status_json)
		grep -Eq '"pending": 0,?$' <<<"$j" && grep -Eq '"in_flight": 0,?$' <<<"$j" && return 0
		sleep 0.5
	done
	log "  the mount did not drain in ${TMO}s"
	return 1
}
wait_pending() { # wait_pending N: at least N records pending
	local deadline=$((SECONDS + 600)) p
	while [ $SECONDS -lt $deadline ]; do
		p=$(pending)
		[ "${p:-0}" -ge "$1" ] && return 0
		sleep 0.5
	done
	log "  pending stayed at ${p:-?}, want $1"
	return 1
}
loop() { # loop KEY: the create/stat loop in a fresh directory, recorded as KEY-create and KEY-stat
	local out
	out=$("$BT" fuseloop "$MNT/.bench-$1" "$NLOOP") || { log "  $1: the create/stat loop failed"; return 1; }
	read -r c s <<<"$out"
	T_[$1-create]=$c T_[$1-stat]=$s
	printf '%s\t%s\n%s\t%s\n' "$1-create" "$c" "$1-stat" "$s" >>"$OUT/scale.tsv"
	log "  $(printf '%-24s %9s creates/s %9s stats/s' "$1" "$c" "$s")"
}

if section mount; then
	if ! section sync; then
		"$BT" mb sync-s3sync && measure upload s3sync "$DATA" s3://sync-s3sync/data
	fi
	say "mount start-up on the $N-file WORKDIR"
	if mount_up mount-first; then
		rec mount-first
		wait_drained
		T_[mount-first-rss]=$(mount_rss)
		mount_down
	fi
	for r in 1 2 3; do
		mount_up "mount-clean$r" && rec "mount-clean$r"
		[ $r = 3 ] || mount_down
	done
	T_[mount-rss]=$(mount_rss)
	log "  the mount's peak RSS so far: ${T_[mount-rss]} MiB"
	say "create/stat loop through the mount, $NLOOP files, empty journal"
	loop loop-empty
	wait_drained
	say "kill -9 with $NCRASH unsynced changes (server stopped), then start-up"
	kill -STOP "$SERVER_PID"
	"$BT" modify "$MNT" "$LIST" "$NCRASH" 0 && wait_pending "$NCRASH"
	mount_down KILL
	kill -CONT "$SERVER_PID"
	mount_up mount-crash && rec mount-crash
	wait_drained
	say "status with $NSTATUS pending (server stopped)"
	kill -STOP "$SERVER_PID"
	"$BT" modify "$MNT" "$LIST" "$NSTATUS" 0 && wait_pending "$NSTATUS"
	for r in 1 2 3; do timed "status$r" "$S3SYNC" status --state-dir "$ST" "$DATA" && rec "status$r"; done
	say "a day offline: every file changed, $N records pending"
	t0=$SECONDS
	"$BT" modify "$MNT" "$LIST" "$N" 0 && wait_pending "$N"
	log "  $N changes through the mount in $((SECONDS - t0)) s"
	loop loop-full
	timed status-full "$S3SYNC" status --state-dir "$ST" "$DATA" && rec status-full
	T_[mount-full-rss]=$(mount_rss)
	mount_down KILL
	kill -CONT "$SERVER_PID"
	timed status-unmounted "$S3SYNC" status --state-dir "$ST" "$DATA" && rec status-unmounted
	say "start-up after kill -9 with $N records pending (the scan finds every file changed again)"
	if mount_up mount-offline; then
		rec mount-offline
		T_[mount-offline-rss]=$(mount_rss)
		mount_down
	fi
	du -sk "$ST" | awk '{ printf "  state dir with the records pending: %.0f MiB\n", $1 / 1024 }' >&2
	T_[state-mb]=$(du -sk "$ST" | awk '{ printf "%.0f", $1 / 1024 }')
fi

# ---------------------------------------------------------------- report
ELAPSED=$((SECONDS - T_START))
v() { echo "${T_[$1]:-n/a}"; }
fmt_s() { [ "$1" = n/a ] && echo n/a || awk -v v="$1" 'BEGIN { printf (v < 10 ? "%.2f s" : "%.0f s"), v }'; }
ratio() { { [ "$1" = n/a ] || [ "$2" = n/a ]; } && echo n/a || awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f×", a / b }'; }
mb() { [ -n "${RSS_[$1]:-}" ] && echo "${RSS_[$1]} MiB" || echo n/a; }
med() { printf '%s\n' "$@" | awk '$1 != "n/a" { a[n++] = $1 } END { if (!n) { print "n/a"; exit }
	for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
	print (n % 2) ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2 }'; }
for tool in "${TOOLS[@]}"; do
	ts=() rs=()
	for r in $(seq "$NOOP_RUNS"); do ts+=("$(v "noop$r|$tool")") rs+=("${RSS_[noop$r|$tool]:-n/a}"); done
	T_[noop|$tool]=$(med "${ts[@]}")
	RSS_[noop|$tool]=$(med "${rs[@]}")
	[ "${RSS_[noop|$tool]}" = n/a ] && RSS_[noop|$tool]=
done
{
	echo "# s3sync at scale: $N files"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr), load average at the end $(cut -d' ' -f1-3 /proc/loadavg);" \
		"s3sync $(git -C "$REPO" describe --always --dirty 2>/dev/null); Versity Gateway $(go version -m "$S3SYNC_VERSITYGW" 2>/dev/null | awk '$1 == "mod" { print $3 }') on loopback;" \
		"$([ -n "$RCLONE" ] && "$RCLONE" version 2>/dev/null | head -1)$([ -n "$AWS" ] && echo "; $("$AWS" --version 2>&1 | cut -d' ' -f1)")." \
		"$N files of 1 B–4 KiB at depths 1–6, $(awk -F/ 'NF == 4 && /^photos/' "$LIST" 2>/dev/null | wc -l) of them in flat directories of up to 50,000." \
		"One run (no-op: median of $NOOP_RUNS); \`make bench-scale\` with BENCH_SCALE_FILES=$N took $((ELAPSED / 60)) min."
	echo
	echo "| workload | s3sync | rclone | aws | s3sync/rclone | s3sync/aws | peak RSS s3sync | rclone | aws |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for w in upload noop changed clone; do
		case $w in
		upload) l="initial upload" ;; noop) l="re-sync, nothing changed" ;; changed) l="re-sync, $NCHANGED changed" ;; clone) l="clone into an empty directory" ;;
		esac
		s=$(v "$w|s3sync") rc=$(v "$w|rclone") a=$(v "$w|aws")
		echo "| $l | $(fmt_s "$s") | $(fmt_s "$rc") | $(fmt_s "$a") | $(ratio "$s" "$rc") | $(ratio "$s" "$a") | $(mb "$w|s3sync") | $(mb "$w|rclone") | $(mb "$w|aws") |"
	done
	echo
	echo "| mount | |"
	echo "| --- | ---: |"
	echo "| first mount (cache seeded from the bucket listing), until the mountpoint serves | $(fmt_s "$(v mount-first)") |"
	echo "| clean start-up, until the mountpoint serves (median of 3; target ≤ 5 s) | $(fmt_s "$(med "$(v mount-clean1)" "$(v mount-clean2)" "$(v mount-clean3)")") |"
	echo "| start-up after kill -9 with $NCRASH unsynced changes | $(fmt_s "$(v mount-crash)") |"
	echo "| \`status\` with $NSTATUS pending, mounted (median of 3; target ≤ 1 s) | $(fmt_s "$(med "$(v status1)" "$(v status2)" "$(v status3)")") |"
	echo "| \`status\` with $N pending, mounted / not mounted | $(fmt_s "$(v status-full)") / $(fmt_s "$(v status-unmounted)") |"
	echo "| create+write+close of $NLOOP files, empty journal / $N pending | $(v loop-empty-create) / $(v loop-full-create) per s ($(ratio "$(v loop-full-create)" "$(v loop-empty-create)")) |"
	echo "| stat of those files, empty journal / $N pending | $(v loop-empty-stat) / $(v loop-full-stat) per s ($(ratio "$(v loop-full-stat)" "$(v loop-empty-stat)")) |"
	echo "| start-up after kill -9 with $N pending (every file found changed again) | $(fmt_s "$(v mount-offline)") |"
	echo "| the mount's peak RSS (anonymous only): first mount / clean start-ups / with $N pending / that start-up | $(v mount-first-rss) / $(v mount-rss) / $(v mount-full-rss) / $(v mount-offline-rss) MiB |"
	echo "| state dir (journal + cache) with $N pending | $(v state-mb) MiB |"
	echo
	echo "Targets: no-op ≤ 0.3× rclone; peak RSS ≤ 150 MiB for every s3sync command."
} >"$OUT/scale.md"
say "results (also in bench/out/scale.md)"
cat "$OUT/scale.md"
