#!/usr/bin/env bash
# bench-distributed.sh - measure the distributed services (auth, gateway, convert, notify on
# MariaDB, MongoDB GridFS, RabbitMQ and SMTP) against their targets and print the results
# (make bench-distributed).
#
#  1. A 10-minute 720p MP4: A = `v2m convert` through the services (best of 2, each run on a
#     fresh database); B = the bare driver's GridFS upload + GridFS download (128 KiB chunks) +
#     raw ffmpeg -vn (each best of 2). Target: A/B ≤ 1.2.
#  2. Jobs per minute of one converter, then of two, on a batch of 12 clips of 25 s each. The
#     clips are uploaded while no converter runs, so the batch waits in the queue; then the
#     converters start, and the rate is the batch over the time from the first "conversion
#     started" to the last "conversion done" in their logs. Target: two/one ≥ 1.7.
#  3. The gateway's peak RSS while it receives a big video into GridFS, and then a fresh
#     converter's (ffmpeg excluded) while it converts it. Target: ≤ 100 MiB each. The video is
#     1 GiB unless the rates that part 1 measured say it would not fit in the time budget
#     (V2M_BENCH_BUDGET, 15 minutes for the whole script); then the biggest size that fits.
#     V2M_BENCH_BIG_MIB forces a size.
#
# The services run as processes of bin/v2md on free loopback ports, with a fresh MongoDB
# database for each part (the gateway and the notifier restart between parts), and, when V2M_TEST_RABBITCTL is set, a fresh RabbitMQ vhost, so that other users of
# the same servers neither take these jobs nor give theirs; everything is removed at the end.
# Servers: the V2M_TEST_* variables when set (source the env.sh of scripts/services.sh), else
# the ones scripts/services.sh runs in V2M_SERVICES_DIR (default .cache/services), started when
# needed and then stopped again.
#
# V2M_BENCH_KEEP=1 keeps the services' logs and the work files.
#
# Measurements are printed, never asserted: a missed target says MISS and the script exits 0.
# A failed conversion or a wrong MP3 is an error (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
# shellcheck source-path=SCRIPTDIR/..
source scripts/benchtool/lib.sh
script_start=$(now)
budget=${V2M_BENCH_BUDGET:-900}

for tool in ffmpeg ffprobe curl go; do
	command -v "$tool" >/dev/null || die "$tool is not installed (ffmpeg: scripts/install-ffmpeg.sh)"
done
{ [ -x bin/v2md ] && [ -x bin/v2m ]; } || die "bin/v2md and bin/v2m are missing: run make build (make bench-distributed does)"

cache=${V2M_BENCH_DIR:-$root/.cache/bench}
mkdir -p "$cache"
work=$(mktemp -d "${TMPDIR:-/tmp}/v2m-bench-dist.XXXXXX")
cli_log=$work/cli.log

svc_started=0
svc_dir=${V2M_SERVICES_DIR:-$root/.cache/services}
if [ -z "${V2M_TEST_MONGO_URI:-}" ]; then
	if ! scripts/services.sh status "$svc_dir" >/dev/null 2>&1; then
		scripts/services.sh up "$svc_dir"
		svc_started=1
	fi
	# shellcheck disable=SC1091
	source "$svc_dir/env.sh"
fi
for v in V2M_TEST_MYSQL_DSN V2M_TEST_MONGO_URI V2M_TEST_AMQP_URL V2M_TEST_SMTP_ADDR; do
	[ -n "${!v:-}" ] || die "$v is not set"
done

run_id=$(date +%s)$$
dbs=()
vhost=
amqp_url=$V2M_TEST_AMQP_URL
benchtool=$work/benchtool

cleanup() {
	stop_all
	if [ -x "$benchtool" ]; then
		for db in "${dbs[@]}"; do
			"$benchtool" dropdb -uri "$V2M_TEST_MONGO_URI" -db "$db" || log "could not drop database $db"
		done
	fi
	if [ -n "$vhost" ]; then
		# shellcheck disable=SC2086
		$V2M_TEST_RABBITCTL ctl -q delete_vhost "$vhost" >/dev/null || log "could not delete vhost $vhost"
	fi
	if [ "$svc_started" = 1 ]; then
		scripts/services.sh down "$svc_dir" || true
	fi
	if [ "${V2M_BENCH_KEEP:-0}" = 1 ]; then
		log "kept the logs and files in $work"
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT

go build -o "$benchtool" ./scripts/benchtool || die "build scripts/benchtool"

if [ -n "${V2M_TEST_RABBITCTL:-}" ]; then
	vhost=bench_$run_id
	# shellcheck disable=SC2086
	$V2M_TEST_RABBITCTL ctl -q add_vhost "$vhost" >/dev/null || die "add vhost $vhost"
	# shellcheck disable=SC2086
	$V2M_TEST_RABBITCTL ctl -q set_permissions -p "$vhost" "$(printf '%s' "$amqp_url" | sed -E 's|^amqps?://([^:@/]+).*|\1|')" \
		'.*' '.*' '.*' >/dev/null || die "set permissions on vhost $vhost"
	amqp_url=$(printf '%s' "$amqp_url" | sed -E "s|^(amqps?://[^/]+)(/.*)?\$|\\1/$vhost|")
else
	log "V2M_TEST_RABBITCTL is not set: using the broker's default vhost; other consumers of its queues would skew the numbers"
fi

# ------------------------------------------------------------ the services
keyfile=$work/jwt.pem
"$root/bin/v2md" keygen -o "$keyfile" >/dev/null || die "v2md keygen"
export V2MD_MONGO_URI=$V2M_TEST_MONGO_URI V2MD_AMQP_URL=$amqp_url V2MD_LOG_FORMAT=json

port() { "$benchtool" freeport; }

p=$(port)
start_proc auth "$work/auth.log" "$root/bin/v2md" auth --listen "127.0.0.1:$p" --metrics-addr= \
	--mysql-dsn "$V2M_TEST_MYSQL_DSN" --jwt-key-file "$keyfile" --bcrypt-cost 4
auth_url=http://127.0.0.1:$p
wait_ready "$auth_url/readyz" "$last_pid"
gw_url=http://127.0.0.1:$(port)
gw_pid='' notify_pid=''

# use_db NAME: (re)starts the gateway, always on the same address, and the notifier on a fresh
# database. Each part gets its own: FerretDB does not use the GridFS chunk index, so every read
# of a file scans the whole chunks collection (about 25 ms per MiB held here), and the files of
# one part would slow the next.
use_db() {
	[ -z "$gw_pid" ] || stop_proc "$gw_pid"
	[ -z "$notify_pid" ] || stop_proc "$notify_pid"
	export V2MD_MONGO_DB=bench_${run_id}_$1
	dbs+=("$V2MD_MONGO_DB")
	start_proc "gateway ($V2MD_MONGO_DB)" "$work/gateway-$1.log" "$root/bin/v2md" gateway \
		--listen "${gw_url#http://}" --metrics-addr= --auth-url "$auth_url"
	gw_pid=$last_pid
	local p
	p=$(port)
	start_proc notify "$work/notify-$1.log" "$root/bin/v2md" notify --listen "127.0.0.1:$p" --metrics-addr= \
		--smtp-addr "$V2M_TEST_SMTP_ADDR" --public-url "$gw_url"
	notify_pid=$last_pid
	wait_ready "$gw_url/readyz" "$gw_pid"
}
use_db convert1

# start_converter NAME [nowait]: a converter with one conversion at a time, logging to
# $work/NAME.log; sets $last_pid and $last_ready (its readiness URL), and waits until it is
# ready unless told not to.
start_converter() {
	local p
	p=$(port)
	mkdir -p "$work/tmp"
	start_proc "converter $1" "$work/$1.log" "$root/bin/v2md" convert --listen "127.0.0.1:$p" --metrics-addr= \
		--concurrency 1 --tmp-dir "$work/tmp"
	last_ready=http://127.0.0.1:$p/readyz
	[ "${2:-}" = nowait ] || wait_ready "$last_ready" "$last_pid"
}

export V2M_SERVER=$gw_url V2M_CONFIG_DIR=$work/cli
email=bench-$run_id@example.com
printf 'bench-password\n' | v2m register --email "$email" --password-stdin >/dev/null || die "register"
printf 'bench-password\n' | v2m login --email "$email" --password-stdin >/dev/null || die "login"

log "preparing media in $cache"
long=$(long_video)
clip=$(clip_video)
long_s=$(duration "$long")
clip_s=$(duration "$clip")

# ------------------------------------------------------------ 1. convert overhead
# A and B take turns, each A on a fresh database (B drops its bucket after each round trip):
# on FerretDB a second file in the bucket makes every read of the first one slower.
log "1. v2m convert of $(basename "$long") through the services, and bare GridFS + raw ffmpeg (each best of 2)"
a_best='' up_best='' down_best='' raw_best=''
for i in 1 2; do
	[ "$i" = 1 ] || use_db "convert$i"
	start_converter "convert$i"
	c1=$last_pid
	t0=$(now)
	v2m convert "$long" -o "$work/conv-$i.mp3" >/dev/null || die "v2m convert run $i"
	t=$(calc "$(now) - $t0")
	stop_proc "$c1"
	check_mp3 "$work/conv-$i.mp3" "$long_s"
	log "   v2m convert run $i: ${t}s"
	a_best=$(min "${a_best:-$t}" "$t")

	out=$("$benchtool" gridfs -uri "$V2M_TEST_MONGO_URI" -db "$V2MD_MONGO_DB" -file "$long") || die "GridFS round trip"
	u=$(printf '%s\n' "$out" | sed -E 's/.*upload_s=([0-9.]+).*/\1/')
	d=$(printf '%s\n' "$out" | sed -E 's/.*download_s=([0-9.]+).*/\1/')
	log "   GridFS run $i: upload ${u}s, download ${d}s"
	up_best=$(min "${up_best:-$u}" "$u")
	down_best=$(min "${down_best:-$d}" "$d")
	t0=$(now)
	raw_ffmpeg "$long" "$work/raw-$i.mp3" || die "raw ffmpeg"
	t=$(calc "$(now) - $t0")
	check_mp3 "$work/raw-$i.mp3" "$long_s"
	log "   raw ffmpeg run $i: ${t}s"
	raw_best=$(min "${raw_best:-$t}" "$t")
done
long_mib=$(calc "$(size_of "$long") / 1048576")
b=$(calc "$up_best + $down_best + $raw_best")
info "GridFS upload, ${long_mib} MiB (best of 2)" "${up_best} s ($(calc "$long_mib / $up_best") MiB/s)"
info "GridFS download (best of 2)" "${down_best} s ($(calc "$long_mib / $down_best") MiB/s)"
info "raw ffmpeg -vn (best of 2)" "${raw_best} s"
info "B = upload + download + ffmpeg" "${b} s"
info "A = v2m convert, 10 min 720p (best of 2)" "${a_best} s"
row "A / B" "$(calc "$a_best / $b")" "<=" 1.2 "x"

# ------------------------------------------------------------ 2. one converter vs two
batch=12
# run_batch NAME CONVERTERS: uploads the batch with no converter running, starts CONVERTERS
# converters, waits for every job, checks one MP3, stops the converters; sets $jpm to the jobs
# per minute.
run_batch() {
	local name=$1 k=$2 i pids=() jobs=() logs=() ids
	for ((i = 0; i < batch; i++)); do
		cp "$clip" "$work/$name-$i.mp4" # one path per upload: the CLI resumes uploads by path
	done
	use_db "$name"
	log "2. $name: uploading $batch clips at once"
	for ((i = 0; i < batch; i++)); do
		v2m upload "$work/$name-$i.mp4" >"$work/$name-$i.job" &
		pids+=("$!")
	done
	local failed=()
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || failed+=("$name-$i")
	done
	[ ${#failed[@]} = 0 ] || die "upload ${failed[*]}"
	for ((i = 0; i < batch; i++)); do
		jobs+=("$(cat "$work/$name-$i.job")")
	done
	log "2. $name: starting $k converter(s)"
	ids=()
	local ready=()
	for ((i = 1; i <= k; i++)); do # all at once, so that none has a head start
		start_converter "$name-c$i" nowait
		ids+=("$last_pid")
		ready+=("$last_ready")
		logs+=("$work/$name-c$i.log")
	done
	for i in "${!ids[@]}"; do
		wait_ready "${ready[$i]}" "${ids[$i]}"
	done
	for j in "${jobs[@]}"; do
		v2m wait "$j" --timeout 10m >/dev/null || die "job $j did not finish"
	done
	v2m download "${jobs[0]}" -o "$work/$name.mp3" >/dev/null || die "download the MP3 of ${jobs[0]}"
	check_mp3 "$work/$name.mp3" "$clip_s"
	for i in "${ids[@]}"; do
		stop_proc "$i"
	done
	local out count secs
	out=$("$benchtool" span -start "conversion started" -end "conversion done" "${logs[@]}") || die "read the converter logs"
	count=$(printf '%s\n' "$out" | sed -E 's/.*count=([0-9]+).*/\1/')
	secs=$(printf '%s\n' "$out" | sed -E 's/.*seconds=([0-9.]+).*/\1/')
	[ "$count" = "$batch" ] || die "$name: $count conversions done for $batch jobs"
	if [ "$k" -gt 1 ]; then
		for i in "${logs[@]}"; do
			grep -q '"msg":"conversion done"' "$i" || log "   $(basename "$i" .log) converted nothing"
		done
	fi
	log "   $name: $batch jobs in ${secs}s"
	jpm=$(calc "$batch * 60 / $secs")
}
run_batch one 1
jpm1=$jpm
run_batch two 2
jpm2=$jpm
info "jobs/min, 1 converter ($batch clips of ${clip_s%.*} s)" "$jpm1"
info "jobs/min, 2 converters" "$jpm2"
row "2 converters / 1 converter" "$(calc "$jpm2 / $jpm1")" ">=" 1.7 "x"

# ------------------------------------------------------------ 3. peak RSS with a big video
# Time left, at the rates part 1 measured: the upload, the converter's download, ffmpeg (at
# the rate it ran on the 10-minute file, by duration) and a margin for the rest.
if [ -n "${V2M_BENCH_BIG_MIB:-}" ]; then
	big_mib=$V2M_BENCH_BIG_MIB
	why="set by V2M_BENCH_BIG_MIB"
else
	left=$(calc "$budget - ($(now) - $script_start) - 60")
	# Seconds per MiB of the big video: GridFS up and down, and ffmpeg, whose time goes with
	# the media's duration (seconds of media per MiB taken from the big video itself). The
	# product does more than that; 1.3 leaves room for it.
	big=$(big_video)
	big_full_mib=$(calc "$(size_of "$big") / 1048576")
	per_mib=$(calc "$up_best / $long_mib + $down_best / $long_mib + ($raw_best / $long_s) * ($(duration "$big") / $big_full_mib)")
	fit=$(awk -v l="$left" -v p="$per_mib" 'BEGIN { m = int(l / p / 1.3 / 64) * 64; print (m > 1024) ? 1024 : m }')
	if [ "$fit" -ge 1024 ]; then
		big_mib=1024
		why="1 GiB fits the budget"
	else
		big_mib=$fit
		why="1 GiB does not fit the ${budget}s budget at ${per_mib} s/MiB through GridFS; ${fit} MiB does"
	fi
	[ "$big_mib" -ge 64 ] || die "no time left for part 3 ($left s)"
fi
log "3. big video: $big_mib MiB ($why)"
use_db big
big=$(sized_video "$big_mib")
big_s=$(duration "$big")
big_bytes=$(size_of "$big")
t0=$(now)
job=$(v2m upload "$big") || die "upload the big video"
up_s=$(calc "$(now) - $t0")
gw_hwm=$(hwm_mib "$gw_pid")
log "   uploaded $(calc "$big_bytes / 1048576") MiB in ${up_s}s; starting a fresh converter"
start_converter big
cb=$last_pid
t0=$(now)
v2m wait "$job" --timeout 30m >/dev/null || die "job $job did not finish"
conv_s=$(calc "$(now) - $t0")
conv_hwm=$(hwm_mib "$cb")
stop_proc "$cb"
v2m download "$job" -o "$work/big.mp3" >/dev/null || die "download the MP3 of $job"
check_mp3 "$work/big.mp3" "$big_s"
info "big video size" "$(calc "$big_bytes / 1048576") MiB ($why)"
info "upload through the gateway into GridFS" "${up_s} s ($(calc "$big_bytes / 1048576 / $up_s") MiB/s)"
info "conversion (GridFS download, ffmpeg, MP3 upload)" "${conv_s} s"
row "gateway peak RSS while receiving" "$gw_hwm" "<=" 100 "MiB"
row "converter peak RSS while converting" "$conv_hwm" "<=" 100 "MiB"

info "script run time" "$(calc "$(now) - $script_start") s"
print_summary "v2m distributed benchmark ($(nproc) cores, $(date -u +%Y-%m-%dT%H:%MZ))"
