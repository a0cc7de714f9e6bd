#!/usr/bin/env bash
# image-test.sh - build the v2m image from the Dockerfile with podman and prove that it runs:
#   1. installs podman, runc and debootstrap when missing (apt, needs root);
#   2. debootstraps a minimal Debian bookworm root filesystem once (a tarball cached in
#      $V2M_IMAGE_CACHE, default .cache/image) and imports it as the local image
#      localhost/v2m-base:bookworm, which stands in for debian:bookworm-slim;
#   3. makes localhost/v2m-go:<go version> = that base + the host's Go toolchain (stands in for
#      golang:1.26), then builds the Dockerfile unchanged with GO_IMAGE and BASE_IMAGE pointing at
#      the two local images; nothing is pulled from a registry, modules come through GOPROXY;
#   4. runs `v2md --help` and `v2md --version` as the image's user 65532 on a read-only root
#      filesystem with a tmpfs on /tmp/v2m;
#   5. converts a 3-second video made with the image's ffmpeg: `v2md standalone` in one container
#      (read-only root, tmpfs /tmp/v2m and /data) on a free loopback port of the host network, and
#      the image's `v2m` in another doing register, login and convert; ffprobe checks the MP3.
# Prints the time of each step and exits non-zero on any failure. Podman's image and build
# caches (/var/lib/containers, /var/tmp) make a second run fast.
#
# Environment: V2M_IMAGE_CACHE (default .cache/image), V2M_IMAGE_TAG (default
# localhost/v2m:test), V2M_DEBIAN_MIRROR and V2M_DEBIAN_SECURITY (default: the mirrors of this machine's apt sources), VERSION
# (default: git describe).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

start=$SECONDS
log() { printf '[image %(%H:%M:%S)T +%ds] %s\n' -1 $((SECONDS - start)) "$*" >&2; }
die() {
	log "FAIL: $*"
	exit 1
}

timings=()
step_start=$SECONDS
step() {
	step_name=$1
	step_start=$SECONDS
	log "$step_name"
}
step_done() { timings+=("$(printf '%4ds  %s' $((SECONDS - step_start)) "$step_name")"); }

cache=${V2M_IMAGE_CACHE:-$root/.cache/image}
image=${V2M_IMAGE_TAG:-localhost/v2m:test}
# The Debian mirrors this machine's apt uses (the first URIs of its deb822 sources: the main
# archive, then the security archive), unless V2M_DEBIAN_MIRROR / V2M_DEBIAN_SECURITY say.
host_uris() { grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}'; }
mirror=${V2M_DEBIAN_MIRROR:-$(host_uris | grep -v -- '-security' | head -n 1)}
security=${V2M_DEBIAN_SECURITY:-$(host_uris | grep -- '-security' | head -n 1)}
[ -n "$mirror" ] || { echo "image-test.sh: set V2M_DEBIAN_MIRROR (no apt source found)" >&2; exit 1; }
version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
base=localhost/v2m-base:bookworm
rootfs_tar=$cache/debian-bookworm-minbase.tar

# runc with explicit limits: the defaults (crun, the host's unlimited nofile) do not start here.
pm() { podman --runtime runc "$@"; }
limits=(--ulimit nofile=1024:1024 --ulimit nproc=4096:4096)

step "tools"
if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
	[ "$(id -u)" = 0 ] || die "podman, runc and debootstrap are missing; run as root to install them"
	log "installing podman, runc and debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends podman runc debootstrap >/dev/null
fi
[ "$(id -u)" = 0 ] || die "podman runs as root here (no rootless setup); run as root"
command -v go >/dev/null || die "go is needed: its toolchain goes into the build image"
goroot=$(go env GOROOT)
gover=$(go env GOVERSION)
goproxy=$(go env GOPROXY)
mkdir -p "$cache"
step_done

# 2. The base image. The tarball is kept so that a wiped podman store does not mean another
# debootstrap; the image is kept in podman's store so that a fresh clone does not either.
step "base image ($base)"
if ! pm image exists "$base"; then
	if [ ! -s "$rootfs_tar" ]; then
		log "debootstrap bookworm (minbase) from $mirror"
		tmp=$cache/rootfs.tmp
		rm -rf "$tmp"
		if ! debootstrap --variant=minbase bookworm "$tmp" "$mirror" >"$cache/debootstrap.log" 2>&1; then
			tail -n 20 "$cache/debootstrap.log" >&2
			die "debootstrap failed (log: $cache/debootstrap.log)"
		fi
		# Like debian:bookworm-slim: the three suites in deb822 form, no documentation.
		rm -f "$tmp/etc/apt/sources.list"
		cat >"$tmp/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${security:-$mirror-security}
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
		cat >"$tmp/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
		rm -rf "$tmp"/var/cache/apt/archives/*.deb "$tmp"/var/lib/apt/lists/*
		tar -C "$tmp" --numeric-owner -cf "$rootfs_tar.tmp" .
		mv "$rootfs_tar.tmp" "$rootfs_tar"
		rm -rf "$tmp"
	fi
	pm import -q --change 'CMD ["/bin/bash"]' "$rootfs_tar" "$base" >/dev/null
fi
base_id=$(pm image inspect --format '{{.Id}}' "$base")
step_done

# 3a. The Go image: the base plus the host's toolchain, laid out like golang:1.26.
goimage=localhost/v2m-go:$gover
# The label names the base and the recipe below: a change to either makes the image again.
go_label="$base_id recipe-2"
step "Go image ($goimage)"
if [ "$(pm image inspect --format '{{index .Labels "v2m.go"}}' "$goimage" 2>/dev/null || true)" != "$go_label" ]; then
	pm rmi -f "$goimage" >/dev/null 2>&1 || true
	cid=$(pm create "$base" true)
	trap 'pm rm -f "$cid" >/dev/null 2>&1 || true' EXIT
	pm cp "$goroot" "$cid:/usr/local/go"
	# minbase has no CA certificates; go needs them to reach GOPROXY over https.
	ca=""
	for f in /etc/ssl/certs/ca-certificates.crt /etc/pki/tls/certs/ca-bundle.crt /etc/ssl/cert.pem; do
		if [ -s "$f" ]; then
			ca=$f
			break
		fi
	done
	[ -n "$ca" ] || die "no CA bundle on the host for the Go image"
	pm cp "$ca" "$cid:/usr/local/share/ca-bundle.crt"
	pm commit -q \
		--change 'ENV PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
		--change 'ENV GOPATH=/go' --change 'ENV GOTOOLCHAIN=local' \
		--change 'ENV SSL_CERT_FILE=/usr/local/share/ca-bundle.crt' \
		--change "LABEL v2m.go=\"$go_label\"" \
		--change 'CMD ["/bin/bash"]' \
		"$cid" "$goimage" >/dev/null
	pm rm -f "$cid" >/dev/null
	trap - EXIT
fi
step_done

# 3b. The project's image from the real Dockerfile.
step "podman build ($image, VERSION=$version)"
build_log=$cache/build.log
if ! pm build --pull=never --network host "${limits[@]}" \
	--build-arg GO_IMAGE="$goimage" --build-arg BASE_IMAGE="$base" \
	--build-arg VERSION="$version" --build-arg COMMIT="$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)" \
	--build-arg GOPROXY="$goproxy" \
	-f Dockerfile -t "$image" . >"$build_log" 2>&1; then
	tail -n 40 "$build_log" >&2
	die "podman build failed (log: $build_log)"
fi
# Layers of earlier builds (both stages carry a label of ours) go after a day; recent ones stay
# as the cache of the next run.
for label in v2m.go org.opencontainers.image.title=v2m; do
	pm image prune -f --filter "label=$label" --filter until=24h >/dev/null 2>&1 || true
done
step_done

work=$(mktemp -d "${TMPDIR:-/tmp}/v2m-image-test.XXXXXX")
chmod 0777 "$work" # the container's user 65532 writes here
server=v2m-image-test-$$
cleanup() {
	local rc=$?
	if [ "$rc" != 0 ] && pm container exists "$server" 2>/dev/null; then
		log "server log:"
		pm logs "$server" 2>&1 | tail -n 40 >&2 || true
	fi
	pm rm -f -t 0 "$server" >/dev/null 2>&1 || true
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT

# Every container: the image's own user, read-only root, a tmpfs on TMPDIR. runc gives a tmpfs
# the mode of its mount point whatever mode= says, owned by root; U hands it to the container's
# user, as a Kubernetes emptyDir is writable by the pod's user.
ro=(--read-only --tmpfs "/tmp/v2m:rw,U" "${limits[@]}")

# 4. The image's contract.
step "image checks (--help, --version, user)"
user=$(pm image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "65532:65532" ] || die "image user is $user, want 65532:65532"
entry=$(pm image inspect --format '{{json .Config.Entrypoint}}' "$image")
[ "$entry" = '["v2md"]' ] || die "image entrypoint is $entry, want [\"v2md\"]"
pm run --rm "${ro[@]}" "$image" --help >"$work/help.txt" 2>&1 || {
	cat "$work/help.txt" >&2
	die "v2md --help failed"
}
grep -q standalone "$work/help.txt" || die "v2md --help does not list standalone"
got=$(pm run --rm "${ro[@]}" "$image" --version 2>&1) || die "v2md --version failed: $got"
case $got in
*"$version"*) ;;
*) die "v2md --version printed '$got', want the stamp $version" ;;
esac
uid=$(pm run --rm "${ro[@]}" --entrypoint id "$image" -u)
[ "$uid" = 65532 ] || die "container runs as uid $uid, want 65532"
pm run --rm "${ro[@]}" --entrypoint sh "$image" -c 'touch /usr/local/bin/x 2>/dev/null' &&
	die "the root filesystem is writable despite --read-only"
log "v2md $got, uid $uid, read-only root"
step_done

# 5. One conversion through the image's v2md and v2m.
step "conversion in the image"
pm run --rm "${ro[@]}" -v "$work:/io" --entrypoint ffmpeg "$image" -nostdin -hide_banner -loglevel error \
	-f lavfi -i "testsrc=duration=3:size=320x240:rate=25" -f lavfi -i "sine=frequency=440:duration=3" \
	-c:v mpeg4 -c:a aac -shortest /io/in.mp4 || die "ffmpeg in the image could not make the test video"

port=""
for _ in $(seq 50); do
	p=$((20000 + RANDOM % 40000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		port=$p
		break
	fi
done
[ -n "$port" ] || die "no free loopback port"
pm run -d --name "$server" --network host "${ro[@]}" --tmpfs "/data:rw,U" "$image" \
	standalone --addr "127.0.0.1:$port" --metrics-addr= --data /data --bcrypt-cost 4 >/dev/null
healthy() {
	local line
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
	read -r -t 5 line <&3 || true
	exec 3<&- 3>&-
	[[ $line == *" 200"* ]]
}
for i in $(seq 100); do
	healthy 2>/dev/null && break
	[ "$(pm container inspect --format '{{.State.Running}}' "$server")" = true ] || die "v2md standalone exited"
	[ "$i" = 100 ] && die "v2md standalone did not answer /healthz on 127.0.0.1:$port within 20s"
	sleep 0.2
done
log "v2md standalone ready on 127.0.0.1:$port"

cli() {
	pm run --rm -i --network host "${ro[@]}" -v "$work:/io" -w /io \
		-e V2M_SERVER="http://127.0.0.1:$port" -e V2M_CONFIG_DIR=/io/config \
		--entrypoint v2m "$image" "$@"
}
password='image-test-password'
printf '%s\n' "$password" | cli register --email image-test@example.com --password-stdin || die "v2m register failed"
printf '%s\n' "$password" | cli login --email image-test@example.com --password-stdin || die "v2m login failed"
cli convert /io/in.mp4 -o /io/out.mp3 --timeout 2m </dev/null || die "v2m convert failed"
[ -s "$work/out.mp3" ] || die "no MP3 came back"
# Whether the container runtime lets ffmpeg be confined by Landlock (v2md logs it at start).
sandbox=$(pm logs "$server" 2>&1 | grep -o -m1 -E 'ffmpeg runs confined by Landlock.*landlock_abi=[0-9]+|this kernel offers no Landlock' || true)
log "sandbox in the image: ${sandbox:-not reported}"

# ffprobe of the host when there is one (an independent check), else the image's.
if command -v ffprobe >/dev/null; then
	probe() { ffprobe "$@" "$work/out.mp3"; }
else
	probe() { pm run --rm "${ro[@]}" -v "$work:/io:ro" --entrypoint ffprobe "$image" "$@" /io/out.mp3; }
fi
info=$(probe -v error -select_streams a:0 -show_entries stream=codec_name:format=duration -of default=nw=1) ||
	die "ffprobe cannot read the MP3"
codec=$(sed -n 's/^codec_name=//p' <<<"$info")
duration=$(sed -n 's/^duration=//p' <<<"$info")
[ "$codec" = mp3 ] || die "the output's audio codec is '$codec', want mp3"
awk -v d="$duration" 'BEGIN { exit !(d >= 2.5 && d <= 3.6) }' || die "the MP3 lasts $duration s, want about 3 s"
log "MP3 ok: codec $codec, $duration s, $(stat -c %s "$work/out.mp3") bytes"
step_done

size=$(pm image inspect --format '{{.Size}}' "$image")
log "image $image: $((size / 1024 / 1024)) MiB"
printf 'timings:\n' >&2
printf '  %s\n' "${timings[@]}" >&2
printf '  %4ds  %s\n' $((SECONDS - start)) total >&2
log "image test passed"
