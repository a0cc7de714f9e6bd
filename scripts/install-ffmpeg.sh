#!/usr/bin/env bash
# install-ffmpeg.sh - make sure ffmpeg and ffprobe are installed (Debian/Ubuntu: apt-get).
set -euo pipefail
if command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null; then
	exit 0
fi
echo "ffmpeg is missing: installing it with apt-get" >&2
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends ffmpeg
