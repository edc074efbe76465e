#!/usr/bin/env bash
# The demo: installs what is needed, builds hfmount, starts the bundled fake
# Hub on loopback (no network, no token), mounts the whole Hub, looks
# around, reads a config and checksums the weights, then unmounts.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh

work=$(mktemp -d /tmp/hfmount-demo.XXXXXX)
mnt="$work/models"
mkdir -p "$mnt"
hub_pid=""
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && fusermount3 -u "$mnt" 2>/dev/null || true
    [ -n "$hub_pid" ] && kill "$hub_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

/usr/bin/python3 tests/fakehub/fakehub.py --port-file "$work/hub.json" --quiet &
hub_pid=$!
for _ in $(seq 100); do [ -s "$work/hub.json" ] && break; sleep 0.1; done
api=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["api"])' "$work/hub.json")

run() { printf '\n$ %s\n' "$*"; "$@"; }

export HF_ENDPOINT="$api" HF_HOME="$work/hf"
run build/hfmount --cache-dir "$work/cache" --log-file "$work/hfmount.log" "$mnt"
run ls -l "$mnt/acme/tiny"
printf '\n$ cat %s | python3 -m json.tool\n' "$mnt/acme/tiny/config.json"
cat "$mnt/acme/tiny/config.json" | /usr/bin/python3 -m json.tool
run sha256sum "$mnt/acme/tiny/model.safetensors"
run getfattr -n user.hf.oid "$mnt/acme/tiny/model.safetensors"
run ls "$mnt/datasets/acme/data/data"
run cat "$mnt/acme/tiny@v1.0/config.json"
run ls "$mnt"
run fusermount3 -u "$mnt"
echo
echo "demo: ok (log: $(grep -c . "$work/hfmount.log") lines)"
