# shellcheck shell=bash
# lib.sh - shell functions shared by scripts/bench.sh and scripts/bench-distributed.sh: test
# media in the cache, timing, processes, peak RSS and the summary table. Source it from the
# repository root after setting $root and $cache (the directory of generated media).
# shellcheck disable=SC2154 # $cache comes from the script that sources this file

log() { printf '[bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() {
	log "FAILED: $*"
	if [ -s "${cli_log:-}" ]; then
		log "last lines of the v2m CLI's messages ($cli_log):"
		tail -n 5 "$cli_log" >&2
	fi
	exit 1
}

# v2m runs the CLI with its messages (stderr) appended to $cli_log.
v2m() { "$root/bin/v2m" "$@" 2>>"${cli_log:-/dev/stderr}"; }

# now prints the wall clock in seconds with microseconds.
now() { printf '%s\n' "$EPOCHREALTIME"; }

# calc EXPR evaluates an awk arithmetic expression and prints it with 3 decimals.
calc() { awk "BEGIN { printf \"%.3f\", $1 }"; }

# kv KEY LINE prints the value of KEY in a line of key=value pairs (nothing when it has none).
kv() { awk -v k="$1=" '{ for (i = 1; i <= NF; i++) if (index($i, k) == 1) { print substr($i, length(k) + 1); exit } }' <<<"$2"; }

# min A B prints the smaller number.
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? a : b }'; }

# verdict VALUE OP TARGET prints PASS when VALUE OP TARGET holds (OP is <= or >=), else MISS.
verdict() { awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN { ok = (op == "<=") ? v <= t : v >= t; print ok ? "PASS" : "MISS" }'; }

# Summary rows: measurement, value, target, verdict.
summary_rows=()
# row NAME VALUE OP TARGET [UNIT]: records a measurement and prints its verdict.
row() {
	local v
	v=$(verdict "$2" "$3" "$4")
	summary_rows+=("$1|$2${5:+ $5}|$3 $4${5:+ $5}|$v")
	log "$1: $2${5:+ $5} (target $3 $4${5:+ $5}): $v"
}
# row_two NAME VALUE OP TARGET1 TARGET2 [UNIT]: a measurement with two targets (the main one
# first) on one row.
row_two() {
	local v1 v2
	v1=$(verdict "$2" "$3" "$4")
	v2=$(verdict "$2" "$3" "$5")
	summary_rows+=("$1|$2${6:+ $6}|$3 $4${6:+ $6}, $3 $5${6:+ $6}|$v1, $v2")
	log "$1: $2${6:+ $6} (target $3 $4${6:+ $6}: $v1; target $3 $5${6:+ $6}: $v2)"
}
# info NAME VALUE: records a measurement that has no target.
info() {
	summary_rows+=("$1|$2|-|-")
	log "$1: $2"
}
print_summary() {
	local title=$1 r
	printf '\n== %s ==\n' "$title"
	{
		printf 'MEASUREMENT|VALUE|TARGET|RESULT\n'
		for r in "${summary_rows[@]}"; do printf '%s\n' "$r"; done
	} | column -t -s '|'
	printf '\n'
}

# ---------------------------------------------------------------- media

# gen_media OUT FFMPEG_ARGS...: runs ffmpeg into a temporary file and renames it to OUT, unless
# OUT exists already.
gen_media() {
	local out=$1
	shift
	[ -s "$out" ] && return 0
	local tmp
	tmp="$(dirname "$out")/.gen-$$-$(basename "$out")"
	log "generating $(basename "$out")"
	if ! ffmpeg -nostdin -hide_banner -v error -y "$@" "$tmp"; then
		rm -f "$tmp"
		die "ffmpeg could not generate $out"
	fi
	mv "$tmp" "$out"
}

# long_video prints the path of a 10-minute 720p H.264/AAC MP4 (moov at the end).
long_video() {
	local out=$cache/long-600s-1280x720.mp4
	gen_media "$out" -f lavfi -i testsrc=duration=600:size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=440:duration=600 \
		-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest
	printf '%s\n' "$out"
}

# big_video prints the path of a ~1 GiB 720p H.264/AAC MP4: testsrc with temporal noise, so
# that x264 really spends its 45 Mbit/s, for 190 s (about 40 s of encoding on 2 cores).
big_video() {
	local out=$cache/big-190s-1280x720-45M.mp4
	gen_media "$out" -f lavfi -i testsrc=duration=190:size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=330:duration=190 \
		-vf noise=alls=30:allf=t+u -c:v libx264 -preset ultrafast -b:v 45M -maxrate 45M -bufsize 90M \
		-pix_fmt yuv420p -c:a aac -shortest
	printf '%s\n' "$out"
}

# big_webm prints the path of a ~1 GiB WebM (VP9 + Opus) of the same noisy 720p source: VP9 at
# -deadline realtime -cpu-used 8 and a near-lossless -crf 4, which spends about 170 Mbit/s on the
# noise, cut at 1 GiB by -fs (about 50 s of media; about 80 s of encoding on 2 cores).
big_webm() {
	local out=$cache/big-1GiB-1280x720-vp9-opus.webm
	gen_media "$out" -f lavfi -i testsrc=duration=90:size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=330:duration=90 \
		-vf noise=alls=30:allf=t+u -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -row-mt 1 \
		-crf 4 -b:v 0 -pix_fmt yuv420p -c:a libopus -shortest -fs 1073741824
	printf '%s\n' "$out"
}

# hours_video prints the path of a 2-hour H.264/AAC MP4 (moov at the end). A 2-hour 720p30
# video takes far too long to encode on 2 cores, so this one is 640x360 at 5 fps (ultrafast):
# the audio, which is what a conversion reads and encodes, is a full 2 hours. About 2 minutes
# of encoding on 2 cores, about 150 MB.
hours_video() {
	local out=$cache/hours-7200s-640x360-5fps.mp4
	gen_media "$out" -f lavfi -i testsrc=duration=7200:size=640x360:rate=5 \
		-f lavfi -i sine=frequency=440:duration=7200 \
		-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest
	printf '%s\n' "$out"
}

# sized_video MIB prints the path of the big video cut (without re-encoding) to at most MIB MiB;
# 1024 or more gives the whole ~1 GiB video.
sized_video() {
	local big out
	big=$(big_video)
	if [ "$1" -ge 1024 ]; then
		printf '%s\n' "$big"
		return
	fi
	out=$cache/big-$1MiB.mp4
	gen_media "$out" -i "$big" -map 0 -c copy -fs $(($1 << 20))
	printf '%s\n' "$out"
}

# clip_video prints the path of a 25-second 720p H.264/AAC MP4.
clip_video() {
	local out=$cache/clip-25s-1280x720.mp4
	gen_media "$out" -f lavfi -i testsrc=duration=25:size=1280x720:rate=30 \
		-f lavfi -i sine=frequency=550:duration=25 \
		-c:v libx264 -preset ultrafast -pix_fmt yuv420p -c:a aac -shortest
	printf '%s\n' "$out"
}

# duration FILE prints a media file's duration in seconds.
duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }

# size_of FILE prints its size in bytes.
size_of() { stat -c %s "$1"; }

# check_mp3 FILE SECONDS fails unless FILE is an MP3 lasting SECONDS (within 2 s or 2%).
check_mp3() {
	local got fmt
	[ -s "$1" ] || die "no MP3 at $1"
	fmt=$(ffprobe -v error -show_entries format=format_name -of csv=p=0 "$1") || die "ffprobe $1"
	[ "$fmt" = mp3 ] || die "$1 is $fmt, not mp3"
	got=$(duration "$1") || die "ffprobe $1"
	awk -v g="$got" -v w="$2" 'BEGIN { t = (w / 50 > 2) ? w / 50 : 2; exit !(g >= w - t && g <= w + t) }' ||
		die "$1 lasts ${got}s, want ${2}s"
}

# raw_ffmpeg IN OUT: the reference conversion, timed by the caller.
raw_ffmpeg() { ffmpeg -nostdin -hide_banner -v error -y -i "$1" -vn -c:a libmp3lame -q:a 2 "$2"; }

# ---------------------------------------------------------------- processes

started_pids=()

# start_proc NAME LOGFILE CMD...: starts CMD in the background with its output in LOGFILE and
# sets $last_pid to its process id (the command itself, not a subshell).
start_proc() {
	local name=$1 logf=$2
	shift 2
	"$@" >"$logf" 2>&1 &
	last_pid=$!
	started_pids+=("$last_pid")
	log "started $name (pid $last_pid)"
}

# stop_proc PID: SIGTERM, then SIGKILL after 30 s; PID must be one that start_proc started
# (and that was not stopped yet: a process id may be reused once its process is reaped).
stop_proc() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	local rest=() p
	for p in "${started_pids[@]}"; do
		[ "$p" = "$pid" ] || rest+=("$p")
	done
	started_pids=("${rest[@]}")
}

stop_all() {
	local p
	for p in "${started_pids[@]}"; do
		stop_proc "$p"
	done
}

# wait_ready URL PID: waits up to 60 s for URL to answer 200 while PID lives.
wait_ready() {
	local i
	for ((i = 0; i < 600; i++)); do
		kill -0 "$2" 2>/dev/null || die "the process behind $1 exited"
		curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	die "$1 is not ready after 60 s"
}

# hwm_mib PID prints the process's own peak RSS (VmHWM, children excluded) in MiB.
hwm_mib() {
	local kib
	kib=$(awk '/^VmHWM:/ { print $2 }' "/proc/$1/status") || die "no /proc/$1/status"
	[ -n "$kib" ] || die "no VmHWM for $1"
	calc "$kib / 1024"
}

