#!/usr/bin/env bash
# Starts or stops a local plain-HTTP image registry (docker-registry,
# distribution 2.x) that stores under DIR, listening on $REGISTRY_ADDR
# (default 127.0.0.1:5000). `make dev`, the e2e tests and the
# client/containerd tests use it. Idempotent: starting a running registry
# or stopping a stopped one does nothing.
#
#   scripts/registry.sh start DIR
#   scripts/registry.sh stop DIR
set -euo pipefail

usage() {
	echo "usage: $0 start|stop DIR" >&2
	exit 2
}
[ $# -eq 2 ] || usage
action=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
addr=${REGISTRY_ADDR:-127.0.0.1:5000}
pidfile=$dir/registry.pid
log=$dir/registry.log
config=$dir/config.yml

running() {
	[ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answers() {
	curl -fsS -o /dev/null --max-time 1 "http://$1/v2/" 2>/dev/null
}

start() {
	if ! command -v docker-registry >/dev/null 2>&1; then
		echo "docker-registry not found: install the docker-registry package (apt-get install docker-registry)" >&2
		exit 1
	fi
	if running; then
		running_addr=$(cat "$dir/addr" 2>/dev/null || true)
		if [ "$running_addr" = "$addr" ] && answers "$addr"; then
			echo "registry already running at http://$addr (pid $(cat "$pidfile"))"
			return
		fi
		# Running with another address, or hung: start over.
		stop
	fi
	mkdir -p "$dir/data"
	# Debian's shipped config listens on every interface and points at an
	# htpasswd path that is a directory; this one is loopback and no auth.
	cat >"$config" <<CONFIG
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr
CONFIG
	# setsid: the registry outlives the caller's process group (a test
	# binary, make) until stop is called.
	setsid docker-registry serve "$config" </dev/null >>"$log" 2>&1 &
	echo $! >"$pidfile"
	echo "$addr" >"$dir/addr"
	for _ in $(seq 1 100); do
		if answers "$addr"; then
			echo "registry running at http://$addr (pid $(cat "$pidfile"), storage $dir/data)"
			return
		fi
		if ! running; then
			break
		fi
		sleep 0.1
	done
	echo "registry did not answer on http://$addr/v2/; its log ($log) ends with:" >&2
	tail -n 20 "$log" >&2 || true
	stop
	exit 1
}

stop() {
	if running; then
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || true
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

case "$action" in
start) start ;;
stop) stop ;;
*) usage ;;
esac
