#!/usr/bin/env bash
# `make dev`: install what is missing, build drover, start a single-node
# dev agent in the background and submit the example jobs.
# `make dev-stop` (scripts/dev.sh stop) stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

state=.dev
pidfile=$state/agent.pid
log=$state/agent.log
bin=bin/drover
export DROVER_ADDR=http://127.0.0.1:4750

stop() {
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		echo "==> stopping dev agent (pid $(cat "$pidfile"))"
		kill -TERM "$(cat "$pidfile")"
		for _ in $(seq 1 50); do
			kill -0 "$(cat "$pidfile")" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
}

start() {
	scripts/install-deps.sh
	echo "==> building $bin"
	make -s build
	mkdir -p "$state"
	stop
	echo "==> starting dev agent (log: $log)"
	nohup "$bin" agent -dev >"$log" 2>&1 &
	echo $! >"$pidfile"
	for _ in $(seq 1 100); do
		if curl -fsS "$DROVER_ADDR/v1/status/leader" 2>/dev/null | grep -q ':'; then
			break
		fi
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			echo "dev agent exited; its log:" >&2
			tail -n 30 "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	echo "==> submitting examples/web.yaml"
	"$bin" job run -detach examples/web.yaml
	echo
	"$bin" job status web
	cat <<MSG

drover is running at $DROVER_ADDR (agent log: $log).
Try:
  $bin status                     # all jobs
  $bin job status web             # one job and its evaluations
  $bin job validate examples/web.yaml
  $bin server members
  $bin operator raft list-peers
  $bin job stop web
  make dev-stop                   # stop the agent
MSG
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
