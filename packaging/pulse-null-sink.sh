#!/bin/sh
# Start a PulseAudio daemon with a 48 kHz mono null sink "ci_sink" (idempotent) and make
# its monitor the default source, so tests can play into the sink (paplay) while the
# app's capture code records the monitor through PortAudio's ALSA "pulse" device.
# Exits 0 once `pactl info` answers, printing "started" when it had to start the server;
# exits 2 with one line on stderr when PulseAudio is not installed, 1 when the server does
# not come up. The server logs to $LUNGAPP_CI_PULSE_LOG (the previous server's log is kept
# as LOG.1), so a server that dies during a test run leaves a reason behind.
set -u
SINK=ci_sink
RATE=${LUNGAPP_CI_SINK_RATE:-48000}
LOG=${LUNGAPP_CI_PULSE_LOG:-/tmp/lungapp-ci-pulse.log}
started=

for tool in pulseaudio pactl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "pulse-null-sink.sh: $tool not installed (apt-get install pulseaudio pulseaudio-utils)" >&2
        exit 2
    fi
done

if ! pactl info >/dev/null 2>&1; then
    [ -f "$LOG" ] && mv -f "$LOG" "$LOG.1"
    # --exit-idle-time=-1: stay up between tests; -n: no default.pa (no hardware probing);
    # --no-cpu-limit: on a loaded 2-core machine the daemon's CPU-load watchdog must not
    # end it in the middle of a test run.
    pulseaudio -D --exit-idle-time=-1 -n --no-cpu-limit --log-target="file:$LOG" --log-level=info --log-time=yes \
        -L module-native-protocol-unix \
        -L "module-null-sink sink_name=$SINK rate=$RATE channels=1" >/dev/null 2>&1 || true
    started=1
fi

i=0
until pactl info >/dev/null 2>&1; do
    i=$((i + 1))
    if [ "$i" -gt 50 ]; then
        echo "pulse-null-sink.sh: the PulseAudio server did not answer within 10 s" >&2
        exit 1
    fi
    sleep 0.2
done

# A server that was already running (e.g. a desktop session) may lack the sink.
if ! pactl list short sinks 2>/dev/null | awk '{print $2}' | grep -qx "$SINK"; then
    pactl load-module module-null-sink "sink_name=$SINK" "rate=$RATE" channels=1 >/dev/null || {
        echo "pulse-null-sink.sh: could not load module-null-sink $SINK" >&2
        exit 1
    }
fi
pactl set-default-source "$SINK.monitor" || exit 1
[ -n "$started" ] && echo started
exit 0
