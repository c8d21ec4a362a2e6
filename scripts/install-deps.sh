#!/usr/bin/env bash
# Installs what drover's tests and `make dev` need on Debian, skipping what
# is already there. Needs root (CI and dev machines here run as root).
set -euo pipefail

need=()
have() { command -v "$1" >/dev/null 2>&1; }
have containerd || need+=(containerd)
have runc || need+=(runc)
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
have iptables || need+=(iptables)
dpkg -s busybox-static >/dev/null 2>&1 || need+=(busybox-static)
have umoci || need+=(umoci)
have skopeo || need+=(skopeo)
have docker-registry || need+=(docker-registry)
have ip || need+=(iproute2)
have curl || need+=(curl)

if ! have go && [ ! -x /usr/local/go/bin/go ]; then
	echo "Go is not installed: install Go 1.26 (https://go.dev/doc/install) and run this again." >&2
	exit 1
fi

if [ ${#need[@]} -eq 0 ]; then
	exit 0
fi

if [ ! -r /etc/debian_version ]; then
	echo "This is not Debian. Install these with your package manager, then run again:" >&2
	printf '  %s\n' "${need[@]}" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "Missing packages; as root run:" >&2
	echo "  apt-get update && apt-get install -y ${need[*]}" >&2
	exit 1
fi
echo "==> installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
