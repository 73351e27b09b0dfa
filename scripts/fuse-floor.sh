# The fuse-floor section of make bench (sourced by scripts/bench.sh, which
# owns the server, the tarball, the helpers and the report): the same untar
# through s3sync's mount and through the reference FUSE filesystems, to show
# how much of an untar through s3sync is FUSE itself.
#
#   BENCH_TOOLS=D        where the peers are looked for (default ../tools, next
#                        to the repository, where docs/development.md builds them)
#   PASSTHROUGH_HP=BIN   libfuse's example/passthrough_hp (default
#                        D/passthrough_hp, else D/libfuse-src/build/example/passthrough_hp)
#   GOFUSE_LOOPBACK=BIN  go-fuse's example/loopback (default D/loopback)
#   S3SYNC_MOUNT_FLAGS   extra flags for s3sync's mount in this section
#                        (and BENCH_BASE's), e.g. "--settle 0s"
#
# Peers that are not built are reported as skipped, never as a failure.
# FUSE-over-io_uring needs /sys/module/fuse/parameters/enable_uring (Linux
# 6.14+); the section sets it to Y for its runs and puts the old value back.

FLOOR_TOOLS=${BENCH_TOOLS:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/tools}
FLOOR_NOTBUILT="skipped: not built (see docs/development.md)"
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_OLD=
declare -A FLOOR_SKIP FLOOR_OPTS FLOOR_REQS FLOOR_DROPPED FLOOR_COUNT FLOOR_OPS
FLOOR_KINDS=()

floor_label() {
	case $1 in
	native) echo "native $(findmnt -no FSTYPE -T "$WORK" 2>/dev/null | head -1) (the directory itself)" ;;
	s3sync) echo "s3sync mount" ;;
	s3sync-uring) echo "s3sync mount --io-uring=on" ;;
	base) echo "BENCH_BASE's mount" ;;
	hp) echo "passthrough_hp (/dev/fuse)" ;;
	hp-uring) echo "passthrough_hp -o io_uring" ;;
	loopback) echo "go-fuse loopback example" ;;
	esac
}

# floor_find: which filesystems this machine can run, into FLOOR_KINDS; the
# others get their reason in FLOOR_SKIP.
floor_find() {
	local k hp lb
	FLOOR_KINDS=(native s3sync)
	[ -n "$BASE" ] && FLOOR_KINDS+=(base)
	if "$S3SYNC" mount --help 2>&1 | grep -q -- '--io-uring'; then
		S3SYNC_HAS_URING=1
	else
		S3SYNC_HAS_URING=
		FLOOR_SKIP[s3sync-uring]="skipped: this s3sync has no --io-uring"
	fi
	hp=${PASSTHROUGH_HP:-}
	if [ -z "$hp" ]; then
		for hp in "$FLOOR_TOOLS/passthrough_hp" "$FLOOR_TOOLS/libfuse-src/build/example/passthrough_hp"; do
			[ -x "$hp" ] && break
		done
	fi
	if [ -x "$hp" ] && "$hp" --help >/dev/null 2>&1; then
		PASSTHROUGH_HP=$hp
		FLOOR_KINDS+=(hp)
		if ! "$hp" --help 2>&1 | grep -q io_uring; then
			FLOOR_SKIP[hp-uring]="skipped: passthrough_hp built without io_uring (liburing-dev and libnuma-dev missing; see docs/development.md)"
		fi
	else
		PASSTHROUGH_HP=
		FLOOR_SKIP[hp]=$FLOOR_NOTBUILT
		FLOOR_SKIP[hp-uring]=$FLOOR_NOTBUILT
	fi
	lb=${GOFUSE_LOOPBACK:-$FLOOR_TOOLS/loopback}
	if [ -x "$lb" ]; then
		GOFUSE_LOOPBACK=$lb
		FLOOR_LB_VERSION=$(modver "$lb")
		FLOOR_KINDS+=(loopback)
	else
		GOFUSE_LOOPBACK=
		FLOOR_SKIP[loopback]=$FLOOR_NOTBUILT
	fi
	# FUSE-over-io_uring: the kernel must offer it, and only root may turn it on.
	local why=
	if [ ! -e "$URING_PARAM" ]; then
		why="skipped: this kernel ($(uname -r)) has no FUSE-over-io_uring (Linux 6.14+ with CONFIG_FUSE_IO_URING)"
	elif [ ! -w "$URING_PARAM" ]; then
		why="skipped: $URING_PARAM is not writable (run as root)"
	fi
	if [ -n "$why" ]; then
		[ -z "${FLOOR_SKIP[hp-uring]:-}" ] && FLOOR_SKIP[hp-uring]=$why
		[ -z "${FLOOR_SKIP[s3sync-uring]:-}" ] && FLOOR_SKIP[s3sync-uring]=$why
	fi
	[ -n "$PASSTHROUGH_HP" ] && [ -z "${FLOOR_SKIP[hp-uring]:-}" ] && FLOOR_KINDS+=(hp-uring)
	[ -z "${FLOOR_SKIP[s3sync-uring]:-}" ] && FLOOR_KINDS+=(s3sync-uring)
	for k in "${FLOOR_KINDS[@]}"; do log "  $(floor_label "$k"): will run"; done
	for k in "${!FLOOR_SKIP[@]}"; do log "  $(floor_label "$k"): ${FLOOR_SKIP[$k]}"; done
	[ -n "$PASSTHROUGH_HP" ] && log "  passthrough_hp: $PASSTHROUGH_HP"
	[ -n "$GOFUSE_LOOPBACK" ] && log "  go-fuse loopback: $GOFUSE_LOOPBACK (go-fuse $FLOOR_LB_VERSION; s3sync's: $(floor_gofuse))"
}

floor_gofuse() { sed -n 's/^const Upstream = "github.com\/hanwen\/go-fuse\/v2 \(.*\)"/\1 + patches (third_party\/go-fuse)/p' "$REPO/third_party/go-fuse/fuse/upstream.go" 2>/dev/null | grep . || echo unknown; }

floor_uring_on() {
	[ -n "$URING_OLD" ] && return 0
	URING_OLD=$(cat "$URING_PARAM")
	[ "$URING_OLD" = Y ] && { log "  $URING_PARAM: already Y"; return 0; }
	echo Y >"$URING_PARAM" || { URING_OLD=; return 1; }
	log "  $URING_PARAM: $URING_OLD → Y for this section"
}
# floor_cleanup puts enable_uring back; bench.sh's cleanup calls it too, for
# an interrupted run.
floor_cleanup() {
	[ -n "$URING_OLD" ] || return 0
	[ "$URING_OLD" = Y ] && { URING_OLD=; return 0; }
	echo "$URING_OLD" >"$URING_PARAM" && log "  $URING_PARAM: back to $URING_OLD"
	URING_OLD=
}

# uring_cq PID: completions on all of PID's io_uring rings, each a FUSE
# request answered over io_uring (the fdinfo's CqHead, a 32-bit counter).
uring_cq() {
	local fd n=0 v
	for fd in /proc/"$1"/fd/*; do
		[ "$(readlink "$fd" 2>/dev/null)" = "anon_inode:[io_uring]" ] || continue
		v=$(awk '$1 == "CqHead:" { print $2 }' "/proc/$1/fdinfo/${fd##*/}" 2>/dev/null)
		n=$((n + ${v:-0}))
	done
	echo "$n"
}
floor_ran() { [[ " ${FLOOR_KINDS[*]} " == *" $1 "* ]]; }
proc_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

# floor_umount MNT PID: unmount a peer and wait for its daemon to exit.
floor_umount() {
	local m=$1 p=$2
	umount "$m" 2>/dev/null || fusermount3 -u "$m" 2>/dev/null
	for _ in $(seq 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$p" 2>/dev/null; then
		log "  $m: the daemon did not exit after unmounting; killing it"
		kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	mountpoint -q "$m" 2>/dev/null && umount -l "$m" 2>/dev/null
}

# floor_run KIND R: one timed untar of $TAR into a fresh directory through
# KIND. Nothing is deleted until the section ends: deletions slow creating
# inodes on ext4 without a journal for a minute (see native_run), and that
# must fall on no one filesystem's runs.
floor_run() {
	local kind=$1 r=$2 src=$WORK/floor/$1-r$2 mnt=$WORK/floor/mnt-$1 st=$WORK/floor/state-$1-r$2 b=floor-$1-r$2
	local pid= bin flags=() dir c0 c1 q0 q1
	mkdir -p "$src" "$mnt"
	case $kind in
	native) dir=$src ;;
	s3sync | s3sync-uring | base)
		bin=$(bin_of "$kind")
		"$bin" mount --help 2>&1 | grep -q -- '--io-uring' && { [ "$kind" = s3sync-uring ] && flags=(--io-uring=on) || flags=(--io-uring=off); }
		# shellcheck disable=SC2206 # word-split on purpose: a list of flags
		flags+=(${S3SYNC_MOUNT_FLAGS:-})
		"$BT" mb "$b" || { log "  cannot make bucket $b"; return 1; }
		"$bin" mount "${flags[@]}" --state-dir "$st" "$src" "$mnt" "s3://$b/data" --endpoint-url "$ENDPOINT" >"$WORK/floor/mount.log" 2>&1 &
		pid=$!
		;;
	hp)
		"$PASSTHROUGH_HP" --foreground "$src" "$mnt" >"$WORK/floor/mount.log" 2>&1 &
		pid=$!
		;;
	hp-uring)
		"$PASSTHROUGH_HP" --foreground -o io_uring "$src" "$mnt" >"$WORK/floor/mount.log" 2>&1 &
		pid=$!
		;;
	loopback)
		[ "$(id -u)" = 0 ] && flags=(-directmount)
		"$GOFUSE_LOOPBACK" -q "${flags[@]}" "$mnt" "$src" >"$WORK/floor/mount.log" 2>&1 &
		pid=$!
		;;
	esac
	if [ -n "$pid" ]; then
		MOUNT_PIDS+=("$pid")
		MOUNTS+=("$mnt")
		if ! wait_mounted "$mnt" "$pid"; then
			log "  $(floor_label "$kind") did not come up; log in bench/out/logs/mount-floor-$kind"
			cp "$WORK/floor/mount.log" "$OUT/logs/mount-floor-$kind"
			floor_umount "$mnt" "$pid"
			return 1
		fi
		dir=$mnt
		[ -n "${FLOOR_OPTS[$kind]:-}" ] || FLOOR_OPTS[$kind]="$(findmnt -no OPTIONS "$mnt" 2>/dev/null)${flags[*]:+; flags: ${flags[*]}}"
	fi
	quiesce
	c0=0 q0=0
	[ -n "$pid" ] && { c0=$(proc_ticks "$pid"); q0=$(uring_cq "$pid"); }
	if timed "floor.$kind.r$r" tar -xf "$TAR" -C "$dir"; then
		if [ -n "$pid" ]; then
			c1=$(proc_ticks "$pid") q1=$(uring_cq "$pid")
			FLOOR_REQS[$kind]+="$(calc "($q1 - $q0) / $NFILES") "
			if [[ $kind == *-uring ]] && [ $((q1 - q0)) -lt "$NFILES" ]; then
				log "  floor.$kind.r$r: only $((q1 - q0)) requests came over io_uring; not counted"
				FLOOR_DROPPED[$kind]=$((${FLOOR_DROPPED[$kind]:-0} + 1))
			else
				add "floor|$kind" "$T"
				add "floor-cpu|$kind" "$(calc "($c1 - $c0) / $TICK")"
			fi
		else
			add "floor|$kind" "$T"
		fi
	fi
	sync
	case $kind in
	native) ;;
	s3sync | s3sync-uring | base)
		# The drain finishes (untimed) before the next filesystem's run, so
		# its uploads do not fall on another's untar.
		wait_s3sync "$st" "$src" "$b" "$NFILES" $((NFILES * FSIZE)) "$bin" ||
			log "  floor.$kind.r$r: the mount did not drain"
		unmount "$mnt" "$pid"
		;;
	*) floor_umount "$mnt" "$pid" ;;
	esac
}

# floor_count KIND: the FUSE requests an untar makes per file through
# KIND, by opcode, from the daemon's debug log of an untimed untar of a
# tenth of the directories. Sets FLOOR_COUNT[KIND] (total per file) and
# FLOOR_OPS[KIND] (the breakdown).
floor_count() {
	local kind=$1 src=$WORK/floor/count-$1 mnt=$WORK/floor/mnt-count st=$WORK/floor/state-count-$1 b=floor-count-$1
	local pid bin logf=$WORK/floor/debug-$1.log n0 nf
	mkdir -p "$src" "$mnt"
	case $kind in
	s3sync | base)
		bin=$(bin_of "$kind")
		"$BT" mb "$b" || return 1
		"$bin" mount --debug-fuse --state-dir "$st" "$src" "$mnt" "s3://$b/data" --endpoint-url "$ENDPOINT" >"$logf" 2>&1 &
		;;
	hp) "$PASSTHROUGH_HP" --foreground --debug-fuse "$src" "$mnt" >"$logf" 2>&1 & ;;
	loopback) "$GOFUSE_LOOPBACK" -debug $([ "$(id -u)" = 0 ] && echo -directmount) "$mnt" "$src" >"$logf" 2>&1 & ;;
	esac
	pid=$!
	MOUNT_PIDS+=("$pid")
	MOUNTS+=("$mnt")
	wait_mounted "$mnt" "$pid" || { floor_umount "$mnt" "$pid"; return 1; }
	ls "$mnt" >/dev/null
	n0=$(wc -c <"$logf")
	tar -xf "$WORK/floor/count.tar" -C "$mnt"
	nf=$(tar -tf "$WORK/floor/count.tar" | grep -vc '/$')
	# RELEASE follows close() asynchronously; unmounting waits for it.
	if [ "$kind" = s3sync ] || [ "$kind" = base ]; then unmount "$mnt" "$pid"; else floor_umount "$mnt" "$pid"; fi
	# libfuse logs "opcode: LOOKUP (1)", go-fuse "rx 12: LOOKUP n1 …".
	tail -c +$((n0 + 1)) "$logf" | grep -aoE 'opcode: [A-Z_]+|(^|[^a-z])rx [0-9]+: [A-Z_]+' | awk '{ print $NF }' |
		grep -vE '^(FORGET|BATCH_FORGET|DESTROY|STATFS|INTERRUPT)$' | sort | uniq -c | sort -rn >"$WORK/floor/ops-$kind"
	FLOOR_COUNT[$kind]=$(awk -v n="$nf" '{ s += $1 } END { if (s && n) printf "%.1f", s / n }' "$WORK/floor/ops-$kind")
	FLOOR_OPS[$kind]=$(awk -v n="$nf" '$1 / n >= 0.05 { printf "%s%s %.1f", sep, $2, $1 / n; sep = ", " }' "$WORK/floor/ops-$kind")
}

# floor_section: every filesystem once per run, the order rotating between
# runs; all the trees are deleted at the end.
floor_section() {
	say "FUSE floor: untar $NFILES × $FSIZE B through each filesystem"
	floor_find
	FLOOR_LOAD=$(cut -d' ' -f1 /proc/loadavg)
	mkdir -p "$WORK/floor"
	local k r dev kinds=()
	if [[ " ${FLOOR_KINDS[*]} " == *-uring\ * ]] && ! floor_uring_on; then
		for k in "${FLOOR_KINDS[@]}"; do
			if [[ $k == *-uring ]]; then FLOOR_SKIP[$k]="skipped: could not write $URING_PARAM"; else kinds+=("$k"); fi
		done
		FLOOR_KINDS=("${kinds[@]}")
	fi
	# Earlier sections deleted many files; on ext4 without a journal that
	# slows creating inodes for 60 s (recently_deleted()), which would fall
	# on whichever filesystem runs first.
	dev=$(findmnt -no SOURCE -T "$WORK" 2>/dev/null | head -1)
	if [ "$QUICK" != 1 ] && [ "$(findmnt -no FSTYPE -T "$WORK" 2>/dev/null | head -1)" = ext4 ] && ! compgen -G "/proc/fs/jbd2/${dev##*/}-*" >/dev/null &&
		[[ " $ONLY " =~ \ (sync|mount|rss)\  ]]; then
		log "  waiting 60 s for ext4 (no journal) to stop skipping recently freed inodes"
		sleep 60
	fi
	for r in $(seq "$RUNS"); do
		for k in $(rotated $((r - 1)) "${FLOOR_KINDS[@]}"); do
			floor_run "$k" "$r"
		done
	done
	floor_cleanup
	FLOOR_LOAD+=" → $(cut -d' ' -f1 /proc/loadavg)"
	# A tenth of the directories, for the request counts.
	tar -cf "$WORK/floor/count.tar" -C "$DATA" $(cd "$DATA" && ls | head -n $((NDIRS / 10 > 0 ? NDIRS / 10 : 1)))
	for k in "${FLOOR_KINDS[@]}"; do
		case $k in s3sync | base | hp | loopback) floor_count "$k" ;; esac
	done
	for k in "${FLOOR_KINDS[@]}"; do
		for r in $(seq "$RUNS"); do rmbucket "floor-$k-r$r"; done
		rmbucket "floor-count-$k"
	done
	rm -rf "$WORK/floor"
}

# floor_report: the table for results.md.
floor_report() {
	local k hp hpu nat m c q
	hp=$(M "floor|hp") hpu=$(M "floor|hp-uring") nat=$(M "floor|native")
	echo
	echo "FUSE floor: untar $NFILES × $KB KiB (\`tar -xf\`, until tar exits) through each filesystem, in one run," \
		"the order rotating between runs, caches dropped before each; median of $RUNS." \
		"Load average (1 min) at the start and the end of the timed runs: ${FLOOR_LOAD:-n/a} on $(nproc) cores."
	echo "Daemon CPU: the FUSE server's CPU seconds during the untar (s3sync's includes its journal and the drain's uploads);" \
		"requests/file: FUSE requests per file, over io_uring from the rings' completion counters during the timed runs," \
		"otherwise from the daemon's debug log of an untimed untar of a tenth of the tree."
	echo
	echo "| filesystem | untar | fastest–slowest run | ÷ passthrough_hp | ÷ passthrough_hp io_uring | ÷ native | daemon CPU | requests/file |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
	for k in native s3sync s3sync-uring base hp hp-uring loopback; do
		if [ -n "${FLOOR_SKIP[$k]:-}" ]; then
			echo "| $(floor_label "$k") | ${FLOOR_SKIP[$k]} | | | | | | |"
			continue
		fi
		floor_ran "$k" || continue
		m=$(M "floor|$k") c=$(M "floor-cpu|$k") q=$(median "${FLOOR_REQS[$k]:-}")
		[ "$k" = native ] && c=n/a
		[[ $k == *-uring ]] && q=$(awk -v v="$q" 'BEGIN { if (v != "n/a") printf "%.1f", v }') || q=${FLOOR_COUNT[$k]:-}
		echo "| $(floor_label "$k") | $(fmt_s "$m") | $(floor_range "${RES[floor|$k]:-}") | $(ratio "$m" "$hp") | $(ratio "$m" "$hpu") | $(ratio "$m" "$nat") | $(fmt_s "$c") | $q |"
	done
	for k in "${!FLOOR_DROPPED[@]}"; do
		echo
		echo "$(floor_label "$k"): ${FLOOR_DROPPED[$k]} of $RUNS runs not counted: their requests did not come over io_uring" \
			"(is $URING_PARAM still Y? something else on the machine may have set it back)."
	done
	echo
	echo "FUSE requests per file by opcode (debug log; FORGET, DESTROY and STATFS left out, and any under 0.05 per file):"
	echo
	for k in s3sync base hp loopback; do
		[ -n "${FLOOR_OPS[$k]:-}" ] && echo "- $(floor_label "$k"): ${FLOOR_OPS[$k]}"
	done
	echo
	echo "What each mounts with (kernel mount options as /proc shows them, and the caching each asks for):"
	echo
	for k in s3sync s3sync-uring base hp hp-uring loopback; do
		[ -n "${FLOOR_OPTS[$k]:-}" ] || continue
		echo "- $(floor_label "$k"): ${FLOOR_OPTS[$k]}"
	done
	echo "- s3sync: attribute and entry timeouts 1 s, FUSE passthrough for reads and writes (root, Linux 6.9+)," \
		"no default_permissions (no GETATTR of the directory before each create), xattrs answered ENOSYS (no security.capability" \
		"lookup per write), HANDLE_KILLPRIV, ATOMIC_O_TRUNC; every change journaled (bbolt, group commit), the drain uploading meanwhile."
	floor_ran hp && echo "- passthrough_hp (libfuse $(floor_hp_version)): attribute and entry timeouts 86,400 s, keep_cache, FUSE passthrough" \
		"(root, Linux 6.9+; writeback cache only without it), splice, always default_permissions, xattrs passed through;" \
		"-o io_uring: one ring per CPU."
	floor_ran loopback && echo "- go-fuse loopback example (go-fuse ${FLOOR_LB_VERSION:-n/a}; s3sync's: $(floor_gofuse)): attribute and entry timeouts 1 s," \
		"FUSE passthrough (root), no default_permissions, xattrs passed through."
	return 0
}

# floor_range "T1 T2 …": the fastest and the slowest run, to show the noise.
floor_range() {
	printf '%s\n' $1 | awk 'NF { if (n++ == 0 || $1 < lo) lo = $1; if ($1 > hi) hi = $1 }
		END { if (n) printf "%.2f–%.2f s", lo, hi; else print "n/a" }'
}

# floor_hp_version: the libfuse tag passthrough_hp was built from, when it
# is still in its build tree.
floor_hp_version() {
	local v
	v=$(git -C "$(dirname "$PASSTHROUGH_HP")" describe --tags 2>/dev/null) || v=
	echo "${v:-of unknown version}"
}
