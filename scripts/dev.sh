#!/usr/bin/env bash
# `make dev`: install what is missing, build drover, start a local registry
# with the example image, start a single-node dev agent (server + client +
# managed containerd) in the background and run the example jobs.
# `make dev-stop` (scripts/dev.sh stop) stops all of it and removes the
# containers it ran and the node's bridge.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

state=$PWD/.dev
pidfile=$state/agent.pid
log=$state/agent.log
data=$state/agent
bin=bin/drover
registry=127.0.0.1:5000
export DROVER_ADDR=http://127.0.0.1:4750
export REGISTRY_ADDR=$registry

stop() {
	sock=$data/containerd/containerd.sock
	if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		# Tasks outlive the agent by design (it reattaches when it comes
		# back): stop and purge the jobs first so the client removes
		# their containers and networks (and the next `make dev` starts
		# with none), then the agent, which stops its containerd.
		jobs=$(curl -fsS "$DROVER_ADDR/v1/jobs" 2>/dev/null | grep -o '"id":"[^"]*"' | cut -d'"' -f4 || true)
		if [ -n "$jobs" ]; then
			echo "==> stopping the dev jobs:" $jobs
			for job in $jobs; do
				"$bin" job stop -purge "$job" >/dev/null 2>&1 || true
			done
			# Until the client has removed every container (kill_timeout
			# may hold a stop for a few seconds).
			for _ in $(seq 1 300); do
				pgrep -f "containerd-shim-runc-v2 .*-address $sock" >/dev/null || break
				sleep 0.1
			done
			# And until it has released their networks: each holds a
			# record under netns/ until its teardown is done.
			for _ in $(seq 1 100); do
				[ -z "$(ls -A "$data/client/network/netns" 2>/dev/null)" ] && break
				sleep 0.1
			done
		fi
		echo "==> stopping the dev agent (pid $(cat "$pidfile"))"
		kill -TERM "$(cat "$pidfile")"
		for _ in $(seq 1 100); do
			kill -0 "$(cat "$pidfile")" 2>/dev/null || break
			sleep 0.1
		done
	fi
	rm -f "$pidfile"
	for _ in $(seq 1 50); do
		pgrep -f "containerd-shim-runc-v2 .*-address $sock" >/dev/null || break
		sleep 0.1
	done
	# Anything still running under the dev containerd (an agent that was
	# killed, say) is removed through a containerd started for the purpose.
	if pgrep -f "containerd-shim-runc-v2 .*-address $sock" >/dev/null; then
		echo "==> removing leftover dev containers"
		started=
		if ! ctr -a "$sock" version >/dev/null 2>&1; then
			containerd --config "$data/containerd/config.toml" >/dev/null 2>&1 &
			started=$!
			for _ in $(seq 1 100); do
				ctr -a "$sock" version >/dev/null 2>&1 && break
				sleep 0.1
			done
		fi
		for id in $(ctr -a "$sock" -n drover tasks ls -q 2>/dev/null); do
			ctr -a "$sock" -n drover tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr -a "$sock" -n drover containers ls -q 2>/dev/null); do
			for _ in $(seq 1 50); do
				ctr -a "$sock" -n drover tasks rm -f "$id" >/dev/null 2>&1 || true
				ctr -a "$sock" -n drover containers rm "$id" >/dev/null 2>&1 && break
				sleep 0.1
			done
		done
		[ -z "$started" ] || kill -TERM "$started" 2>/dev/null || true
	fi
	# runc's state dir of the namespace, empty once its tasks are gone.
	rmdir /run/containerd/runc/drover 2>/dev/null || true
	# The dev node's bridge (the client keeps it across its restarts),
	# once no container is attached to it.
	if [ -d /sys/class/net/drover0/brif ] && [ -z "$(ls /sys/class/net/drover0/brif)" ]; then
		ip link del drover0 2>/dev/null || true
	fi
	scripts/registry.sh stop "$state/registry" >/dev/null 2>&1 || true
}

start() {
	scripts/install-deps.sh
	echo "==> building $bin"
	make -s build
	mkdir -p "$state"
	stop
	echo "==> starting a registry on $registry and pushing the example image"
	scripts/registry.sh start "$state/registry"
	scripts/build-image.sh "$state/image" "$registry"
	echo "==> starting the dev agent (log: $log)"
	nohup "$bin" agent -dev -data-dir "$data" >"$log" 2>&1 &
	echo $! >"$pidfile"
	# Ready with a healthy containerd: the node's record restored from an
	# earlier run may still show the state that run ended in.
	for _ in $(seq 1 300); do
		self=$("$bin" node status -self 2>/dev/null || true)
		if grep -q '^Status *= ready' <<<"$self" && grep -q 'containerd (healthy)' <<<"$self"; then
			break
		fi
		if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
			echo "the dev agent exited; the end of its log:" >&2
			tail -n 30 "$log" >&2
			exit 1
		fi
		sleep 0.1
	done
	"$bin" node status
	echo
	echo "==> running examples/batch.yaml"
	"$bin" job run examples/batch.yaml
	echo
	echo "==> running examples/web.yaml"
	"$bin" job run examples/web.yaml
	echo
	alloc=$(curl -fsS "$DROVER_ADDR/v1/job/hello/allocations" | grep -o '"id":"[0-9a-f-]*"' | head -n1 | cut -d'"' -f4 || true)
	if [ -n "$alloc" ]; then
		for _ in $(seq 1 300); do
			curl -fsS "$DROVER_ADDR/v1/allocation/$alloc" | grep -q '"client_status":"complete"' && break
			sleep 0.1
		done
		echo "==> output of the batch job (drover alloc logs ${alloc:0:8}):"
		"$bin" alloc logs "$alloc" || true
		echo
	fi
	"$bin" job status web
	echo
	echo "==> the web servers answer on their host ports:"
	for id in $(curl -fsS "$DROVER_ADDR/v1/job/web/allocations" | grep -o '"id":"[0-9a-f-]*"' | cut -d'"' -f4); do
		port=$(curl -fsS "$DROVER_ADDR/v1/allocation/$id" | grep -o '"label":"http","value":[0-9]*' | grep -o '[0-9]*$' || true)
		[ -n "$port" ] || continue
		for _ in $(seq 1 50); do
			curl -fsS "http://127.0.0.1:$port/" 2>/dev/null && break
			sleep 0.1
		done
	done
	cat <<MSG

drover is running at $DROVER_ADDR (agent log: $log).
Try:
  $bin status                        # all jobs
  $bin job status web                # the web job and its allocations
  $bin alloc logs -f <alloc>         # follow an allocation's output
  $bin alloc exec <alloc> -- ps      # run a command in its container
  $bin node status -self             # this node: resources, containerd, CNI
  $bin service info web              # healthy instances of the web service
  $bin alloc exec <alloc> -- wget -qO- http://web.service.drover:8080/
  $bin job stop web
  make dev-stop                      # stop the agent, containers and registry
MSG
}

case "${1:-start}" in
start) start ;;
stop) stop ;;
*) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
