# Shared by demo.sh and bench.sh: start a local Versity Gateway on a free
# loopback port with a throw-away root, and stop it on exit.

S3SYNC_VERSITYGW=${S3SYNC_VERSITYGW:-$(go env GOPATH)/bin/versitygw}

free_port() {
	local p
	for p in $(seq 17070 17170); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port in 17070-17170" >&2
	return 1
}

# start_server DIR [versioning]: sets ENDPOINT, SERVER_PID and the AWS_*
# variables. With "versioning" the server can keep object versions (buckets
# still start without; s3sync mb --versioning turns it on).
start_server() {
	local root=$1 port vargs=()
	port=$(free_port)
	mkdir -p "$root/gw"
	if [ "${2:-}" = versioning ]; then
		mkdir -p "$root/versions"
		vargs=(--versioning-dir "$root/versions")
	fi
	export AWS_ACCESS_KEY_ID=s3syncdemo AWS_SECRET_ACCESS_KEY=s3syncdemosecret AWS_REGION=us-east-1
	export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
	unset AWS_PROFILE
	"$S3SYNC_VERSITYGW" --port "127.0.0.1:$port" --access "$AWS_ACCESS_KEY_ID" --secret "$AWS_SECRET_ACCESS_KEY" \
		--quiet --keep-alive posix "${vargs[@]}" "$root/gw" >"$root/server.log" 2>&1 &
	SERVER_PID=$!
	ENDPOINT="http://127.0.0.1:$port"
	export AWS_ENDPOINT_URL=$ENDPOINT
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "the S3 server did not start; see $root/server.log" >&2
	return 1
}

stop_server() {
	[ -n "${SERVER_PID:-}" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
	SERVER_PID=
}

# start_bench_server: the benchmarks' server in $WORK (GW its root), rclone's
# remote "bench:" pointing at it, and TICK, the clock ticks per second of
# /proc's CPU times. Needs log().
start_bench_server() {
	start_server "$WORK" || return 1
	GW=$WORK/gw
	log "Versity Gateway at $ENDPOINT (pid $SERVER_PID), root $GW"
	export RCLONE_CONFIG=$WORK/rclone.conf
	: >"$RCLONE_CONFIG"
	export RCLONE_CONFIG_BENCH_TYPE=s3 RCLONE_CONFIG_BENCH_PROVIDER=Other RCLONE_CONFIG_BENCH_ENDPOINT=$ENDPOINT \
		RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
		RCLONE_CONFIG_BENCH_REGION=us-east-1
	TICK=$(getconf CLK_TCK)
}
