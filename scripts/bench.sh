#!/usr/bin/env bash
# bench.sh - measure v2md standalone against its targets and print the results (make bench).
#
#  1. A 10-minute 720p H.264/AAC MP4: bare `ffmpeg -vn -c:a libmp3lame -q:a 2` (best of 2)
#     against `v2m convert` through a fresh standalone server (best of 2). Target: ≤ 1.3×.
#  2. A ~1 GiB video: `v2m upload` (no --wait) gives the upload rate up to the job's creation,
#     `v2m wait` the conversion; the server's peak RSS (VmHWM, ffmpeg excluded) covers both.
#     Targets: ≥ 300 MiB/s upload, ≤ 100 MiB peak RSS.
#
# Measurements are printed, never asserted: a missed target says MISS and the script still
# exits 0. A failed conversion or a wrong MP3 is an error (exit 1).
#
# Needs bin/v2md and bin/v2m (make build), ffmpeg, ffprobe, curl and go. Generated media are
# kept in .cache/bench (V2M_BENCH_DIR); generating them the first time takes about 3 minutes.
# V2M_BENCH_KEEP=1 keeps the servers' logs and the work files.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source-path=SCRIPTDIR/..
source scripts/benchtool/lib.sh

for tool in ffmpeg ffprobe curl go; do
	command -v "$tool" >/dev/null || die "$tool is not installed (ffmpeg: scripts/install-ffmpeg.sh)"
done
{ [ -x bin/v2md ] && [ -x bin/v2m ]; } || die "bin/v2md and bin/v2m are missing: run make build (make bench does)"

cache=${V2M_BENCH_DIR:-$root/.cache/bench}
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/v2m-bench.XXXXXX")
cleanup() {
	stop_all
	if [ "${V2M_BENCH_KEEP:-0}" = 1 ]; then
		log "kept the logs and files in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

cli_log=$work/cli.log
benchtool=$work/benchtool
go build -o "$benchtool" ./scripts/benchtool || die "build scripts/benchtool"

# start_standalone NAME: a fresh v2md standalone with its own data dir; sets $sa_pid, $sa_url,
# and logs in a fresh user whose CLI config lives in $work/NAME/cli.
start_standalone() {
	local name=$1 port
	port=$("$benchtool" freeport)
	mkdir -p "$work/$name"
	V2MD_LOG_FORMAT=json start_proc "standalone $name" "$work/$name/v2md.log" \
		"$root/bin/v2md" standalone --addr "127.0.0.1:$port" --metrics-addr= --data "$work/$name/data" --bcrypt-cost 4
	sa_pid=$last_pid
	sa_url=http://127.0.0.1:$port
	wait_ready "$sa_url/readyz" "$sa_pid"
	export V2M_SERVER=$sa_url V2M_CONFIG_DIR=$work/$name/cli
	local email=bench-$name@example.com
	printf 'bench-password\n' | v2m register --email "$email" --password-stdin >/dev/null ||
		die "register on $name"
	printf 'bench-password\n' | v2m login --email "$email" --password-stdin >/dev/null ||
		die "login on $name"
}

log "preparing media in $cache"
long=$(long_video)
big=$(big_video)
long_s=$(duration "$long")
big_s=$(duration "$big")
big_bytes=$(size_of "$big")

# ------------------------------------------------------------ 1. convert overhead
log "1. raw ffmpeg on $(basename "$long") (best of 2)"
raw_best=
for i in 1 2; do
	t0=$(now)
	raw_ffmpeg "$long" "$work/raw-$i.mp3" || die "raw ffmpeg"
	t=$(calc "$(now) - $t0")
	check_mp3 "$work/raw-$i.mp3" "$long_s"
	log "   raw ffmpeg run $i: ${t}s"
	raw_best=$(min "${raw_best:-$t}" "$t")
done

log "1. v2m convert through a fresh standalone (best of 2)"
start_standalone convert
conv_best=
for i in 1 2; do
	t0=$(now)
	v2m convert "$long" -o "$work/conv-$i.mp3" >/dev/null || die "v2m convert run $i"
	t=$(calc "$(now) - $t0")
	check_mp3 "$work/conv-$i.mp3" "$long_s"
	log "   v2m convert run $i: ${t}s"
	conv_best=$(min "${conv_best:-$t}" "$t")
done
stop_proc "$sa_pid"
ratio=$(calc "$conv_best / $raw_best")
info "raw ffmpeg -vn, 10 min 720p (best of 2)" "${raw_best} s"
info "v2m convert, same file (best of 2)" "${conv_best} s"
row "v2m convert / raw ffmpeg" "$ratio" "<=" 1.3 "x"

# ------------------------------------------------------------ 2. big upload
log "2. upload of $(basename "$big") ($(calc "$big_bytes / 1048576") MiB) to a fresh standalone"
start_standalone upload
t0=$(now)
job=$(v2m upload "$big") || die "v2m upload"
up_s=$(calc "$(now) - $t0")
t1=$(now)
v2m wait "$job" --timeout 30m >/dev/null || die "job $job did not finish"
wait_s=$(calc "$(now) - $t1")
hwm=$(hwm_mib "$sa_pid")
v2m download "$job" -o "$work/big.mp3" >/dev/null || die "download the MP3 of $job"
check_mp3 "$work/big.mp3" "$big_s"
stop_proc "$sa_pid"
rate=$(calc "$big_bytes / 1048576 / $up_s")
info "upload size" "$(calc "$big_bytes / 1048576") MiB"
info "upload time (to job created)" "${up_s} s"
info "conversion after upload (v2m wait)" "${wait_s} s"
row "upload rate" "$rate" ">=" 300 "MiB/s"
row "standalone peak RSS (VmHWM)" "$hwm" "<=" 100 "MiB"

print_summary "v2m standalone benchmark ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
