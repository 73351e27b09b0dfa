# Sourced by demo.sh: the second act, the mounted folder.
step "Act 2: a mounted folder that mirrors itself"
mkdir -p work mnt
cp -a project/. work/
step "mount WORKDIR at MOUNTPOINT, mirrored to s3://demo-bucket/live (first mount sends everything)"
echo "\$ s3sync mount --delete --settle 500ms --metrics-addr 127.0.0.1:0 work mnt s3://demo-bucket/live &"
"$S3SYNC" mount --delete --settle 500ms --metrics-addr 127.0.0.1:0 --state-dir "$WORK/state" work mnt s3://demo-bucket/live 2> mount.log &
MOUNT_PID=$!
for _ in $(seq 100); do mountpoint -q mnt 2>/dev/null && break; sleep 0.1; done
wait_drained() {
	for _ in $(seq 600); do
		if "$S3SYNC" status --json --state-dir "$WORK/state" work | grep -q '"pending": 0,'; then return 0; fi
		sleep 0.1
	done
}
wait_drained
step "edit it with ordinary commands"
show cp /etc/services mnt/docs/services
show sh -c 'echo "a line appended" >> mnt/README.md'
show sh -c 'printf "saved by an editor\n" > mnt/docs/.draft.txt.swp && mv mnt/docs/.draft.txt.swp mnt/docs/draft.txt'
show mv mnt/docs/new.txt mnt/docs/renamed.txt
show rm mnt/data.bin
step "a script, a symlink to a folder outside WORKDIR, an empty folder"
show sh -c 'printf "#!/bin/sh\necho hello\n" > mnt/run.sh && chmod 755 mnt/run.sh'
show ln -s /etc mnt/etc-link
show mkdir -p mnt/cache/empty
step "status while changes are pending"
show s3sync status --state-dir "$WORK/state" work
wait_drained
step "status after they drained"
show s3sync status --state-dir "$WORK/state" work
step "the same numbers for Prometheus (--metrics-addr; port 0 picked a free one)"
metrics=$(sed -n 's/.*msg="serving metrics" url=http:\/\/\([^ /]*\)\/metrics.*/\1/p' mount.log | head -1)
echo "\$ curl -s http://$metrics/metrics | grep -E '^s3sync_(pending_records|offline) |^s3sync_(uploads|copies|deletes)_total.result=.ok'"
# bash's /dev/tcp, so the demo needs no curl.
exec 3<>"/dev/tcp/${metrics%:*}/${metrics##*:}"
printf 'GET /metrics HTTP/1.0\r\nHost: %s\r\n\r\n' "$metrics" >&3
grep -E '^s3sync_(pending_records|offline) |^s3sync_(uploads|copies|deletes)_total.result=.ok' <&3 | sed 's/^/  /'
exec 3<&-
step "the bucket: the link is one object holding its target (nothing from /etc), the empty folder a marker"
show s3sync ls --recursive --human-readable s3://demo-bucket/live/
step "unmount (Ctrl-C in real use)"
kill -INT "$MOUNT_PID"; wait "$MOUNT_PID" || true; MOUNT_PID=
sed 's/^/  mount log: /' mount.log

step "Act 3: a restore gives back what you had"
show s3sync reconcile --links s3://demo-bucket/live restored
show ls -l restored restored/cache
show ./restored/run.sh
show s3sync verify --links work s3://demo-bucket/live

step "a mistake: WORKDIR is an empty folder at the next mount (a disk that did not mount)"
show mv work work-elsewhere
show mkdir work
echo "\$ s3sync mount --delete work mnt s3://demo-bucket/live"
if "$S3SYNC" mount --delete --state-dir "$WORK/state" work mnt s3://demo-bucket/live; then
	echo "the mount should have refused" >&2
	exit 1
fi
echo "(refused, nothing deleted:)"
show s3sync ls --summarize s3://demo-bucket/live/
