#!/usr/bin/env bash
# make demo: the main job end to end against a local S3-compatible server.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
REPO=$PWD
S3SYNC=$REPO/bin/s3sync
WORK=$(mktemp -d /tmp/s3sync-demo.XXXXXX)
cleanup() {
	if [ -n "${MOUNT_PID:-}" ]; then kill "$MOUNT_PID" 2>/dev/null; wait "$MOUNT_PID" 2>/dev/null || true; fi
	stop_server
	rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
s3sync() { "$S3SYNC" "$@"; }

start_server "$WORK" versioning
echo "local S3 server (Versity Gateway) at $ENDPOINT; credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, endpoint in AWS_ENDPOINT_URL"
cd "$WORK"

step "Act 1: reconcile, like aws s3 sync"
step "make a bucket, backup-grade: versioning on, unfinished uploads cleaned up after 7 days"
show s3sync mb --versioning s3://demo-bucket

step "make a small folder"
mkdir -p project/docs project/src
echo "# notes" > project/README.md
echo "first draft" > project/docs/draft.txt
printf 'package main\n' > project/src/main.go
head -c 20000000 /dev/urandom > project/data.bin
show find project -type f

step "first sync: everything is uploaded (the 20 MB file in parallel parts)"
show s3sync reconcile project s3://demo-bucket/project

step "sync again right away: nothing to do"
show s3sync reconcile project s3://demo-bucket/project

step "modify, add and delete locally"
echo "second draft" >> project/docs/draft.txt
echo "new file" > project/docs/new.txt
rm -r project/src
show s3sync reconcile project s3://demo-bucket/project
echo "(without --delete the deleted file stays in the bucket:)"
show s3sync ls --recursive s3://demo-bucket/project/src/

step "sync with --delete: the bucket mirrors the folder"
show s3sync reconcile --delete project s3://demo-bucket/project

step "clone to a new folder (as on a new machine)"
show s3sync reconcile s3://demo-bucket/project clone
show diff -r project clone && echo "clone is identical"

step "copy to a second prefix, server-side"
show s3sync reconcile s3://demo-bucket/project s3://demo-bucket/backup-copy

step "list recursively"
show s3sync ls --recursive --human-readable --summarize s3://demo-bucket

if [ -f "$REPO/scripts/demo-mount.sh" ]; then
	. "$REPO/scripts/demo-mount.sh"
fi
step "done"
