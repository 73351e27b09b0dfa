#!/usr/bin/env bash
# make bench: s3sync side by side with `aws s3 sync` and `rclone sync`, and its
# mount side by side with a native directory and `rclone mount`, all against
# one local Versity Gateway started for the run (issue 4's workloads).
#
#   BENCH_RUNS=N     runs per workload (default 3; the median is reported)
#   BENCH_QUICK=1    smoke run: 1 run, 1,000 small files, a 100 MiB big file
#   BENCH_TMPDIR=D   where the data, the server root and the mounts go (default /tmp)
#   BENCH_ONLY="sync mount latency rss journal fuse-floor"
#                    the sections to run (default all; mount ratios against
#                    reconcile need sync; fuse-floor's peers and variables:
#                    scripts/fuse-floor.sh)
#   BENCH_PEERS=0    s3sync alone, without aws, rclone and rclone mount
#   BENCH_BASE=BIN   another s3sync build (say, main before a change) run
#                    interleaved with this one in the sync and mount
#                    workloads, reported as ratios this/base
#
# Prints the tables and writes them to bench/out/results.md (raw numbers in
# bench/out/raw.tsv, logs of failed commands in bench/out/logs/).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
REPO=$PWD
S3SYNC=$REPO/bin/s3sync
GOBIN=$(go env GOPATH)/bin
RCLONE_VERSION=v1.76.0

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
	RUNS=${BENCH_RUNS:-1} NFILES=1000 BIGMB=100 RSSFILES=10000 LATN=10
else
	RUNS=${BENCH_RUNS:-3} NFILES=10000 BIGMB=1024 RSSFILES=100000 LATN=50
fi
NDIRS=100 FSIZE=4096 NCHANGED=100
TMO=900 # seconds any one measured command may take

say() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
log() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- installs
APT_UPDATED=
apt_install() {
	local sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	log "installing Debian packages: $*"
	if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null; then
		[ -n "$APT_UPDATED" ] || { $sudo apt-get update -q >/dev/null; APT_UPDATED=1; }
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "$@" >/dev/null
	fi
}

say "tools"
[ -x /usr/bin/aws ] || apt_install awscli || log "could not install Debian's awscli"
if [ -x /usr/bin/aws ]; then AWS=/usr/bin/aws; else AWS=$(command -v aws || true); fi
command -v fusermount3 >/dev/null || apt_install fuse3 || log "could not install fuse3 (rclone mount will be n/a)"
[ -x /usr/bin/time ] || apt_install time || log "could not install time (peak RSS will be n/a)"
RCLONE=$GOBIN/rclone
modver() { go version -m "$1" 2>/dev/null | awk '$1 == "mod" { print $3 }'; }
if [ "$(modver "$RCLONE")" != "$RCLONE_VERSION" ]; then
	log "building rclone $RCLONE_VERSION with go install (takes a few minutes the first time)"
	go install "github.com/rclone/rclone@$RCLONE_VERSION" || log "could not build rclone"
fi
[ -x "$S3SYNC_VERSITYGW" ] || make -s tools
[ -x "$S3SYNC" ] || make -s build
if [ -n "$AWS" ]; then log "aws: $AWS: $("$AWS" --version 2>&1)"; else log "aws: not available"; fi
if [ -x "$RCLONE" ]; then log "rclone: $RCLONE: $("$RCLONE" version 2>/dev/null | head -1)"; else log "rclone: not available"; RCLONE=; fi
log "s3sync: $S3SYNC ($(git -C "$REPO" describe --always --dirty 2>/dev/null))"
log "server: $S3SYNC_VERSITYGW (Versity Gateway $(modver "$S3SYNC_VERSITYGW"))"

WORK=$(mktemp -d "${BENCH_TMPDIR:-/tmp}/s3sync-bench.XXXXXX")
OUT=$REPO/bench/out
mkdir -p "$OUT/logs"
rm -f "$OUT"/logs/*
BT=$WORK/benchtool
go build -o "$BT" ./bench/cmd/benchtool || { log "cannot build bench/cmd/benchtool"; exit 1; }

MOUNT_PIDS=() MOUNTS=()
cleanup() {
	local m p
	declare -F floor_cleanup >/dev/null && floor_cleanup
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
	done
	for p in "${MOUNT_PIDS[@]}"; do kill -INT "$p" 2>/dev/null; done
	for p in "${MOUNT_PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	for m in "${MOUNTS[@]}"; do
		mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
	done
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_bench_server || exit 1

# ---------------------------------------------------------------- helpers
declare -A RES CPU CCPU
ONLY=${BENCH_ONLY:-sync mount latency rss journal fuse-floor}
section() { [[ " $ONLY " == *" $1 "* ]]; }
if [ "${BENCH_PEERS:-1}" = 0 ]; then AWS= RCLONE=; fi
TOOLS=(s3sync)
BASE=${BENCH_BASE:-}
if [ -n "$BASE" ]; then
	BASE=$(realpath "$BASE")
	[ -x "$BASE" ] || { log "BENCH_BASE=$BASE is not an executable"; exit 1; }
	log "base: $BASE"
	TOOLS+=(base)
fi
[ -n "$AWS" ] && TOOLS+=(aws)
[ -n "$RCLONE" ] && TOOLS+=(rclone)

calc() { awk "BEGIN { printf \"%.3f\", $* }"; }
srv_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }
rmbucket() { rm -rf "${GW:?}/$1"; }

# add KEY WALL [SERVER_CPU [CLIENT_CPU]]
add() {
	RES[$1]+="$2 "
	[ -n "${3:-}" ] && CPU[$1]+="$3 "
	[ -n "${4:-}" ] && CCPU[$1]+="$4 "
	printf '%s\t%s\t%s\t%s\n' "$1" "$2" "${3:-}" "${4:-}" >>"$OUT/raw.tsv"
}

median() {
	printf '%s\n' $1 | awk 'NF { a[n++] = $1 } END {
		if (n == 0) { print "n/a"; exit }
		for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		printf "%.3f\n", (n % 2) ? a[(n - 1) / 2] : (a[n / 2 - 1] + a[n / 2]) / 2 }'
}
fmt_s() { [ "$1" = n/a ] && echo n/a || awk -v v="$1" 'BEGIN { printf (v < 10 ? "%.2f s" : "%.1f s"), v }'; }
ratio() { { [ "$1" = n/a ] || [ "$2" = n/a ]; } && echo n/a || awk -v a="$1" -v b="$2" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f×", a / b }'; }

# timed NAME CMD...: runs CMD (output to a log), sets T (wall seconds), SCPU
# (server CPU seconds) and CCPU_S (client CPU seconds); non-zero on failure.
timed() {
	local name=$1 s0 s1 t0 t1 rc
	shift
	local logf=$WORK/log.$name
	s0=$(srv_ticks)
	t0=$EPOCHREALTIME
	rm -f "$WORK/time.out"
	if [ -x /usr/bin/time ]; then
		timeout -k 10 "$TMO" /usr/bin/time -f '%U %S %M' -o "$WORK/time.out" "$@" >"$logf" 2>&1
	else
		timeout -k 10 "$TMO" "$@" >"$logf" 2>&1
	fi
	rc=$?
	t1=$EPOCHREALTIME
	s1=$(srv_ticks)
	T=$(calc "$t1 - $t0")
	SCPU=$(calc "($s1 - $s0) / $TICK")
	CCPU_S=$(awk 'END { printf "%.3f", $1 + $2 }' "$WORK/time.out" 2>/dev/null)
	PEAK_KB=$(awk 'END { print $3 }' "$WORK/time.out" 2>/dev/null)
	if [ $rc != 0 ]; then
		log "  $name: FAILED (exit $rc); log in bench/out/logs/$name"
		cp "$logf" "$OUT/logs/$name"
		return $rc
	fi
	log "  $(printf '%-28s %8.2f s   server CPU %6.2f s   client CPU %6.2f s' "$name" "$T" "$SCPU" "${CCPU_S:-0}")"
}

# sync_cmd TOOL SRC DST: the command line of one sync, s3://… for S3.
sync_cmd() {
	local tool=$1 src=$2 dst=$3
	case $tool in
	s3sync) CMD=("$S3SYNC" reconcile --no-progress "$src" "$dst") ;;
	base) CMD=("$BASE" reconcile --no-progress "$src" "$dst") ;;
	aws) CMD=("$AWS" s3 sync --no-progress --endpoint-url "$ENDPOINT" "$src" "$dst") ;;
	rclone) CMD=("$RCLONE" sync "${src/#s3:\/\//bench:}" "${dst/#s3:\/\//bench:}") ;;
	esac
}

# measure KEY TOOL SRC DST: one timed sync, recorded under KEY|TOOL.
measure() {
	local key=$1 tool=$2
	sync_cmd "$tool" "$3" "$4"
	if timed "$key.$tool.r$r" "${CMD[@]}"; then
		add "$key|$tool" "$T" "$SCPU" "$CCPU_S"
		return 0
	fi
	return 1
}

check() { # check DIR BUCKET PREFIX LABEL: the bucket holds DIR exactly
	"$BT" verify "$1" "$2" "$3" 2>"$WORK/verify.err" && return 0
	log "  WARNING $4: $(tail -1 "$WORK/verify.err")"
	return 1
}

# ---------------------------------------------------------------- data
say "data: $NFILES × $FSIZE B in $NDIRS directories, one $BIGMB MiB file"
DATA=$WORK/data BIG=$WORK/big TAR=$WORK/small.tar
"$BT" gen "$DATA" "$NFILES" "$NDIRS" "$FSIZE" 1
mkdir -p "$BIG"
head -c "${BIGMB}M" /dev/urandom >"$BIG/big.bin"
tar -cf "$TAR" -C "$DATA" .
: >"$OUT/raw.tsv"

# ---------------------------------------------------------------- sync workloads
# rotate: each run starts with another tool, so none always follows the
# deletions of the one before (ext4 here slows down creating inodes while
# many were recently deleted).
rotated() { local k=$1; shift; local a=("$@"); local n=${#a[@]}; for i in $(seq 0 $((n - 1))); do echo "${a[$(((i + k) % n))]}"; done; }
section sync && for r in $(seq "$RUNS"); do
	for tool in $(rotated $((r - 1)) "${TOOLS[@]}"); do
		say "sync workloads: $tool, run $r of $RUNS"
		b=sync-$tool-r$r
		"$BT" mb "$b" || { log "cannot make bucket $b"; continue; }
		if measure upload "$tool" "$DATA" "s3://$b/data"; then
			check "$DATA" "$b" data "$tool initial upload" || true
			measure noop "$tool" "$DATA" "s3://$b/data"
			sleep 1.2 # the changed files get an mtime clearly newer than the upload
			"$BT" change "$DATA" "$NCHANGED"
			measure changed "$tool" "$DATA" "s3://$b/data" && check "$DATA" "$b" data "$tool re-sync of $NCHANGED changed files"
			rm -rf "$WORK/clone"
			mkdir "$WORK/clone"
			if measure clone "$tool" "s3://$b/data" "$WORK/clone"; then
				n=$(find "$WORK/clone" -type f | wc -l)
				[ "$n" = "$NFILES" ] || log "  WARNING $tool clone: $n files, want $NFILES"
			fi
			rm -rf "$WORK/clone"
		fi
		measure big "$tool" "$BIG" "s3://$b/big" && check "$BIG" "$b" big "$tool $BIGMB MiB upload"
		rmbucket "$b"
	done
done

# ---------------------------------------------------------------- mount workloads
wait_mounted() { # wait_mounted MNT PID
	for _ in $(seq 200); do
		mountpoint -q "$1" 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}
unmount() { # unmount MNT PID
	local m=$1 p=$2
	kill -INT "$p" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		log "  $m: the mount did not exit on SIGINT; killing it"
		kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	mountpoint -q "$m" 2>/dev/null && { fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; }
}
drained() { # drained STATE WORKDIR [BIN]: nothing pending or in flight
	local j
	j=$("${3:-$S3SYNC}" status --json --state-dir "$1" "$2" 2>/dev/null) || return 1
	grep -Eq '"pending": 0,?$' <<<"$j" && grep -Eq '"in_flight": 0,?$' <<<"$j"
}
# wait_s3sync STATE WORKDIR BUCKET N BYTES [BIN]: until the mount has
# drained; then checks the bucket (untimed) and waits on for it if status
# was early.
wait_s3sync() {
	local deadline=$((SECONDS + TMO))
	until drained "$1" "$2" "${6:-}"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
	T_DONE=$EPOCHREALTIME
	if ! "$BT" waitobjs "$3" data "$4" "$5" 0s 2>/dev/null; then
		log "  WARNING: status reported drained before the bucket held everything"
		"$BT" waitobjs "$3" data "$4" "$5" "${TMO}s" || return 1
		T_DONE=$EPOCHREALTIME
	fi
}
# native_run NAME KEY CMD...: the same work in a native directory, recorded
# as KEY|native. The directory is left in place until native_clean, after
# the mount has done the same work: deleting 10,000 files slows creating
# inodes on this ext4 for about a minute (recently_deleted() in
# find_inode_bit), and that must not fall on the mount's run alone.
native_run() {
	local name=$1 key=$2
	shift 2
	native_clean
	mkdir -p "$WORK/native"
	quiesce "$key"
	timed "$name" "$@" && add "$key|native" "$T"
	sync
}
# quiesce: before each timed mount workload and its native twin, write
# back and drop the page cache (as root), so both start from the same
# memory. For the big write, first write and delete a scratch file of the
# same size: in this VM writing into memory freed a moment ago ran 3× faster
# than into memory not touched for a while, so whichever dd came second
# (after the other's file was dropped) won, by up to 3×.
quiesce() {
	if [ "${1:-}" = dd ]; then
		dd if=/dev/zero of="$WORK/scratch" bs=1M count="$BIGMB" status=none
		rm -f "$WORK/scratch"
	fi
	sync
	if [ -w /proc/sys/vm/drop_caches ]; then echo 3 >/proc/sys/vm/drop_caches; fi
}
native_clean() { rm -rf "$WORK/native"; }

# mount_step KEY N BYTES CMD...: one timed workload through the mount,
# recorded as KEY|kind, then the time until the bucket holds all N objects
# (BYTES in all) as KEY-bucket|kind, with the server's CPU from the start of
# CMD. Uses mount_run's kind, st, wd, b and round (r).
mount_step() {
	local key=$1 n=$2 bytes=$3 s0 s1 t0 t1
	shift 3
	quiesce "$key"
	s0=$(srv_ticks)
	timed "$key.$kind.r$r" "$@" || return 0
	add "$key|$kind" "$T"
	t0=$EPOCHREALTIME
	if [ "$kind" = s3sync ] || [ "$kind" = base ]; then
		wait_s3sync "$st" "$wd" "$b" "$n" "$bytes" "$(bin_of "$kind")" && t1=$T_DONE || t1=
	else
		"$BT" waitobjs "$b" data "$n" "$bytes" "${TMO}s" && t1=$EPOCHREALTIME || t1=
	fi
	s1=$(srv_ticks)
	if [ -z "$t1" ]; then
		log "  $key.$kind.r$r: the bucket never got all $n objects"
		return 0
	fi
	add "$key-bucket|$kind" "$(calc "$t1 - $t0")" "$(calc "($s1 - $s0) / $TICK")"
	add "$key-total|$kind" "$(calc "$T + $t1 - $t0")"
	log "  $(printf '%-28s %8.2f s more until all %d objects are in the bucket' "$key.$kind.r$r" "$(calc "$t1 - $t0")" "$n")"
}

bin_of() { if [ "$1" = base ]; then echo "$BASE"; else echo "$S3SYNC"; fi; }

# mount_run KIND R: untar and dd through one mount of KIND (s3sync|rclone).
mount_run() {
	local kind=$1 r=$2 b=mnt-$1-r$2 mnt=$WORK/mnt-$1 wd=$WORK/wd-$1 st=$WORK/state-$1 pid
	rm -rf "$mnt" "$wd" "$st" "$WORK/rcache"
	mkdir -p "$mnt" "$wd"
	"$BT" mb "$b" || return 1
	MOUNTS+=("$mnt")
	if [ "$kind" = s3sync ] || [ "$kind" = base ]; then
		"$(bin_of "$kind")" mount --state-dir "$st" "$wd" "$mnt" "s3://$b/data" --endpoint-url "$ENDPOINT" >"$WORK/mount.log" 2>&1 &
	else
		"$RCLONE" mount "bench:$b/data" "$mnt" --vfs-cache-mode full --cache-dir "$WORK/rcache" >"$WORK/mount.log" 2>&1 &
	fi
	pid=$!
	MOUNT_PIDS+=("$pid")
	if ! wait_mounted "$mnt" "$pid"; then
		log "  $kind mount did not come up; log in bench/out/logs/mount-$kind"
		cp "$WORK/mount.log" "$OUT/logs/mount-$kind"
		unmount "$mnt" "$pid"
		return 1
	fi
	# Each workload right after the same work in a native directory, both
	# from the same disk and memory state (native_run, quiesce).
	native_run "untar.native-$kind.r$2" untar tar -xf "$TAR" -C "$WORK/native"
	mount_step untar "$NFILES" $((NFILES * FSIZE)) tar -xf "$TAR" -C "$mnt"
	native_run "dd.native-$kind.r$2" dd dd if=/dev/zero of="$WORK/native/big.bin" bs=1M count="$BIGMB" conv=fsync
	mount_step dd $((NFILES + 1)) $((NFILES * FSIZE + BIGMB * 1048576)) dd if=/dev/zero of="$mnt/big.bin" bs=1M count="$BIGMB" conv=fsync
	unmount "$mnt" "$pid"
	native_clean
	rm -rf "$wd" "$WORK/rcache"
	rmbucket "$b"
}

MOUNT_KINDS=(s3sync)
[ -n "$BASE" ] && MOUNT_KINDS+=(base)
if [ -n "$RCLONE" ] && command -v fusermount3 >/dev/null; then MOUNT_KINDS+=(rclone); fi
section mount && for r in $(seq "$RUNS"); do
	say "mount workloads, run $r of $RUNS"
	for kind in $(rotated $((r - 1)) "${MOUNT_KINDS[@]}"); do mount_run "$kind" "$r"; done
done

# ---------------------------------------------------------------- latency
LAT="n/a n/a"
if section latency; then
	say "close()-to-visible latency through the s3sync mount (--settle 0s), $LATN files"
	b=latency mnt=$WORK/mnt-lat wd=$WORK/wd-lat
	mkdir -p "$mnt" "$wd"
	if "$BT" mb "$b"; then
		MOUNTS+=("$mnt")
		"$S3SYNC" mount --settle 0s --state-dir "$WORK/state-lat" "$wd" "$mnt" "s3://$b/data" --endpoint-url "$ENDPOINT" >"$WORK/mount.log" 2>&1 &
		pid=$!
		MOUNT_PIDS+=("$pid")
		if wait_mounted "$mnt" "$pid"; then
			if out=$("$BT" latency "$mnt" "$b" data "$LATN"); then LAT=$out; fi
			log "  p50 and p99 in ms: $LAT"
		else
			log "  the mount did not come up"
		fi
		unmount "$mnt" "$pid"
fi
fi

# ---------------------------------------------------------------- peak RSS
RSS=n/a RSS_T=n/a
if section rss; then
	say "peak RSS of s3sync reconcile of $RSSFILES empty files, local → S3"
	"$BT" gen "$WORK/many" "$RSSFILES" 100 0 2
	if "$BT" mb rss && timed "rss.s3sync" "$S3SYNC" reconcile --no-progress --only-show-errors "$WORK/many" s3://rss/data; then
		RSS=$(awk -v k="$PEAK_KB" 'BEGIN { printf "%.1f", k / 1024 }')
		RSS_T=$T
		RSS_CPU=$SCPU
		log "  peak RSS $RSS MiB"
fi
rm -rf "$WORK/many"
rmbucket rss
fi

# ---------------------------------------------------------------- journal
JOURNAL=n/a
if section journal; then
	say "journal: records committed per second (go test -bench BenchmarkRecordCommit ./journal)"
	# A fixed count: with an open-ended b.Loop the recording can run far ahead of
	# the commits, and the benchmark's final Sync may then outlast its deadline.
	JOURNAL=$(go test -count=1 -run XXX -bench 'BenchmarkRecordCommit' -benchtime "${BENCH_JOURNAL_RECORDS:-300000}x" ./journal 2>&1 | tee "$WORK/journal.out" |
		awk '/^BenchmarkRecordCommit/ { for (i = 2; i <= NF; i++) if ($i == "records/s") { n = $1; sub(/-[0-9]+$/, "", n); printf "%s%s %.0f records/s", sep, n, $(i - 1); sep = "; " } }
		/^--- FAIL: BenchmarkRecordCommit/ { printf "%s%s FAILED", sep, $3; sep = "; " }')
	grep -q FAIL "$WORK/journal.out" && cp "$WORK/journal.out" "$OUT/logs/journal"
	[ -n "$JOURNAL" ] || { JOURNAL=n/a; cp "$WORK/journal.out" "$OUT/logs/journal"; }
	log "  $JOURNAL"
fi

# ---------------------------------------------------------------- FUSE floor
. scripts/fuse-floor.sh
section fuse-floor && floor_section

# ---------------------------------------------------------------- report
M() { median "${RES[$1]:-}"; }
MC() { median "${CPU[$1]:-}"; }
MCC() { median "${CCPU[$1]:-}"; }
KB=$((FSIZE / 1024))
label() {
	case $1 in
	upload) echo "initial upload, $NFILES × $KB KiB in $NDIRS directories" ;;
	noop) echo "re-sync, nothing changed" ;;
	changed) echo "re-sync, $NCHANGED files changed" ;;
	clone) echo "clone $NFILES files into an empty directory" ;;
	big) echo "upload one $BIGMB MiB file" ;;
	esac
}
{
	echo "# s3sync benchmark"
	echo
	echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr);" \
		"s3sync $(git -C "$REPO" describe --always --dirty 2>/dev/null); Versity Gateway $(modver "$S3SYNC_VERSITYGW") on loopback;" \
		"$([ -n "$AWS" ] && "$AWS" --version 2>&1 | cut -d' ' -f1); $([ -n "$RCLONE" ] && echo "rclone $(modver "$RCLONE")")." \
		"Median of $RUNS run(s). Ratios: lower is better. Reproduce: \`make bench\`$([ "$QUICK" = 1 ] && echo " with BENCH_QUICK=1")."
	echo
	echo "| workload | s3sync | aws | rclone | s3sync/aws | s3sync/rclone |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	for w in upload noop changed clone big; do
		s=$(M "$w|s3sync") a=$(M "$w|aws") rc=$(M "$w|rclone")
		echo "| $(label $w) | $(fmt_s "$s") | $(fmt_s "$a") | $(fmt_s "$rc") | $(ratio "$s" "$a") | $(ratio "$s" "$rc") |"
	done
	echo
	echo "Server (versitygw) and client CPU seconds during each sync (medians); the machine has $(nproc) cores,"
	echo "so server + client near $(nproc)× wall means the box is CPU-bound, and server CPU near wall means one full core is the server's."
	echo
	echo "| workload | tool | wall | server CPU | client CPU | server CPU / wall |"
	echo "| --- | --- | ---: | ---: | ---: | ---: |"
	for w in upload noop changed clone big; do
		for tool in "${TOOLS[@]}"; do
			s=$(M "$w|$tool") c=$(MC "$w|$tool") cc=$(MCC "$w|$tool")
			echo "| $(label $w) | $tool | $(fmt_s "$s") | $(fmt_s "$c") | $(fmt_s "$cc") | $(ratio "$c" "$s") |"
		done
	done
	echo
	up=$(M "upload|s3sync") bg=$(M "big|s3sync")
	echo "| mount workload | native directory | s3sync mount | rclone mount (vfs-cache-mode full) | s3sync/native | s3sync/rclone |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: |"
	n=$(M "untar|native") s=$(M "untar|s3sync") rc=$(M "untar|rclone")
	echo "| untar $NFILES × $KB KiB: until tar exits | $(fmt_s "$n") | $(fmt_s "$s") | $(fmt_s "$rc") | $(ratio "$s" "$n") | $(ratio "$s" "$rc") |"
	s=$(M "untar-bucket|s3sync") rc=$(M "untar-bucket|rclone")
	echo "| … then until all are in the bucket | | $(fmt_s "$s") | $(fmt_s "$rc") | | $(ratio "$s" "$rc") |"
	n=$(M "dd|native") s=$(M "dd|s3sync") rc=$(M "dd|rclone")
	echo "| write $BIGMB MiB (dd conv=fsync): until dd exits | $(fmt_s "$n") | $(fmt_s "$s") | $(fmt_s "$rc") | $(ratio "$s" "$n") | $(ratio "$s" "$rc") |"
	s=$(M "dd-bucket|s3sync") rc=$(M "dd-bucket|rclone")
	echo "| … then until it is in the bucket | | $(fmt_s "$s") | $(fmt_s "$rc") | | $(ratio "$s" "$rc") |"
	s=$(M "untar-total|s3sync") rc=$(M "untar-total|rclone")
	echo "| untar: from its start until all are in the bucket | | $(fmt_s "$s") | $(fmt_s "$rc") | | $(ratio "$s" "$rc") |"
	s=$(M "dd-total|s3sync") rc=$(M "dd-total|rclone")
	echo "| write: from its start until it is in the bucket | | $(fmt_s "$s") | $(fmt_s "$rc") | | $(ratio "$s" "$rc") |"
	echo
	echo "s3sync mounts with its default --settle (1s), which bounds 'until in the bucket' from below."
	echo
	echo "- the native directory, WORKDIR, rclone's cache and the server's root are all on $(df -P "$WORK" | awk 'NR == 2 { print $1 }') ($(findmnt -no FSTYPE -T "$WORK" 2>/dev/null | head -1))"
	echo "- mount, after the last write until all in the bucket, against s3sync reconcile of the same data:" \
		"untar $(ratio "$(M "untar-bucket|s3sync")" "$up") (target ≤ 1.5×; from the start of the untar $(ratio "$(M "untar-total|s3sync")" "$up")), $BIGMB MiB $(ratio "$(M "dd-bucket|s3sync")" "$bg") (from the start of dd $(ratio "$(M "dd-total|s3sync")" "$bg"));" \
		"server CPU from the start of the write until all in the bucket $(fmt_s "$(MC "untar-bucket|s3sync")") and $(fmt_s "$(MC "dd-bucket|s3sync")")"
	read -r p50 p99 <<<"$LAT"
	echo "- close()-to-object-visible through the s3sync mount (--settle 0s), $LATN files one at a time: p50 $p50 ms, p99 $p99 ms"
	echo "- peak RSS of \`s3sync reconcile\` of $RSSFILES empty files, local → S3: $RSS MiB (target ≤ 150 MiB); it took $(fmt_s "$RSS_T"), server CPU $(fmt_s "${RSS_CPU:-n/a}")"
	echo "- journal records committed per second: $JOURNAL (go test -bench BenchmarkRecordCommit ./journal; target ≥ 20,000)"
	if [ -n "$BASE" ]; then
		echo
		echo "This build against BENCH_BASE ($BASE), interleaved in the same run:"
		echo
		echo "| workload | s3sync | base | s3sync/base |"
		echo "| --- | ---: | ---: | ---: |"
		for w in upload noop changed clone big untar untar-bucket dd dd-bucket; do
			s=$(M "$w|s3sync") bs=$(M "$w|base")
			[ "$s" = n/a ] && [ "$bs" = n/a ] && continue
			echo "| $w | $(fmt_s "$s") | $(fmt_s "$bs") | $(ratio "$s" "$bs") |"
		done
	fi
	section fuse-floor && floor_report
} >"$OUT/results.md"
say "results (also in bench/out/results.md)"
cat "$OUT/results.md"
