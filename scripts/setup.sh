#!/usr/bin/env bash
# One-command set-up on Debian/Ubuntu: the system packages SmartEye runs with (MQTT broker,
# FFmpeg, GStreamer RTSP server) and the Python package with its test tools in ./.venv.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(
  python3 python3-venv python3-pip
  mosquitto mosquitto-clients
  ffmpeg
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gir1.2-gst-plugins-bad-1.0 gstreamer1.0-nice  # webrtcbin as a WHEP viewer (tests/e2e/test_gstreamer_whep.py)
  chromium chromium-driver
  opencv-doc  # vtest.avi, the demo's site camera, without ../shared
)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
echo "SmartEye is set up: activate with '. .venv/bin/activate', then 'smarteye demo'."
