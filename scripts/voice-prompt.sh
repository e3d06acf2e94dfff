#!/usr/bin/env bash
# Speaks the prompt a voice-token call plays into a WAV file as the SIP calls need it (8 kHz, mono,
# 16-bit): Debian's espeak-ng says it, sox converts it. An administrator may record their own
# instead (`sox IN.wav -r 8000 -c 1 -b 16 OUT.wav` converts one).
#   scripts/voice-prompt.sh OUT.wav ["the text"]
set -euo pipefail
out=${1:?usage: scripts/voice-prompt.sh OUT.wav [TEXT]}
text=${2:-"Please key in the six digit code shown on your screen. If you did not ask to sign in, press 9."}
spoken=$(mktemp --suffix .wav)
trap 'rm -f "$spoken"' EXIT
espeak-ng -v en -s 150 -w "$spoken" "$text"
sox "$spoken" -r 8000 -c 1 -b 16 "$out"
