#!/usr/bin/env bash
# Builds the test image drover/busybox:latest from Debian's busybox-static
# (one layer: /bin/busybox and one symlink per applet, ~1 MB), without
# the internet. Idempotent: a second run only pushes.
#
#   scripts/build-image.sh OUTDIR [REGISTRY]
#
# Writes OUTDIR/oci (OCI layout, tag latest) and OUTDIR/busybox.tar (OCI
# archive named $IMAGE_NAME, default 127.0.0.1:5000/drover/busybox:latest,
# for an agent's image directory). With REGISTRY (host:port), pushes it as
# REGISTRY/drover/busybox:latest over plain HTTP.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
	echo "usage: $0 OUTDIR [REGISTRY]" >&2
	exit 2
fi
mkdir -p "$1"
out=$(cd "$1" && pwd)
registry=${2:-}
name=${IMAGE_NAME:-127.0.0.1:5000/drover/busybox:latest}
busybox=/bin/busybox

missing=()
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
# The dynamic busybox package also installs /bin/busybox; only the static
# one runs in an image with no libc (ldd fails on a static binary).
if [ ! -x "$busybox" ] || ldd "$busybox" >/dev/null 2>&1; then
	missing+=(busybox-static)
fi
if [ ${#missing[@]} -gt 0 ]; then
	echo "missing: ${missing[*]}: install with apt-get install ${missing[*]}" >&2
	exit 1
fi

oci=$out/oci
stamp=$out/.built
arch=$(dpkg --print-architecture 2>/dev/null || uname -m)
want="$(sha256sum "$busybox" | cut -d' ' -f1) $arch $name v1"

if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
	rm -rf "$oci" "$out/bundle" "$out/busybox.tar" "$stamp"
	umoci init --layout "$oci"
	umoci new --image "$oci:latest"
	umoci unpack --image "$oci:latest" "$out/bundle" >/dev/null
	rootfs=$out/bundle/rootfs
	mkdir -p "$rootfs/bin" "$rootfs/etc" "$rootfs/tmp" "$rootfs/root" "$rootfs/www"
	chmod 1777 "$rootfs/tmp"
	cp "$busybox" "$rootfs/bin/busybox"
	for applet in $("$busybox" --list); do
		[ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$rootfs/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
	echo "hello from drover" >"$rootfs/www/index.html"
	umoci repack --image "$oci:latest" "$out/bundle"
	umoci config --image "$oci:latest" --architecture "$arch" --os linux \
		--config.env PATH=/bin --config.cmd /bin/sh --config.workingdir /
	umoci gc --layout "$oci"
	rm -rf "$out/bundle"
	skopeo --insecure-policy copy --quiet "oci:$oci:latest" "oci-archive:$out/busybox.tar:$name"
	echo "$want" >"$stamp"
	echo "built $name in $oci and $out/busybox.tar"
fi

if [ -n "$registry" ]; then
	skopeo --insecure-policy copy --quiet --dest-tls-verify=false \
		"oci:$oci:latest" "docker://$registry/drover/busybox:latest"
	echo "pushed $registry/drover/busybox:latest"
fi
