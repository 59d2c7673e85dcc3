"""A listed input device that cannot be opened at all (its audio server gone, as after
``pulseaudio --kill`` or an unplugged USB stethoscope) is said to be unavailable, not to
"support none of the rates"; a device that opens but refuses a rate keeps the rate message.

The server is made unreachable for this process only: PortAudio lists the PulseAudio ALSA
device while the null sink's server runs, then PULSE_SERVER points the ALSA plugin at a
socket where nothing listens, which is what it meets once the server is killed (the real
``pulseaudio --kill`` would pull the server from under every other audio test)."""

from __future__ import annotations

import pytest

from lungapp.audio import devices

GONE = "unix:/nonexistent/lungapp-test/pulse-native"


@pytest.fixture
def pulse_device(pulse_sink):
    devices.rescan()   # a list made while the server runs
    found = [d for d in devices.list_input_devices() if d.name == "pulse"]
    if not found:
        pytest.skip("no ALSA 'pulse' input device (alsa-plugins' pulse plugin not installed)")
    return found[0]


def test_a_device_whose_server_is_gone_is_unavailable_not_short_of_rates(pulse_device, monkeypatch):
    assert devices.choose_rate(pulse_device) in devices.STANDARD_RATES   # it opens now
    monkeypatch.setenv("PULSE_SERVER", GONE)
    expected = (f"input device {pulse_device.index} (pulse) is unavailable (unplugged, its audio "
                "server stopped, or in use by another program): reconnect it and try again")
    for rate in (None, 48000):   # the device's own rate, or one chosen
        with pytest.raises(devices.DeviceError) as info:
            devices.choose_rate(pulse_device, rate)
        assert str(info.value) == expected
        assert type(info.value).__name__ == "DeviceUnavailable"   # the GUI says "press Refresh"


def test_a_rate_the_device_refuses_keeps_the_rate_message(pulse_device):
    with pytest.raises(devices.DeviceError, match=r"does not support 1000000 Hz") as info:
        devices.choose_rate(pulse_device, 1_000_000)
    assert type(info.value) is devices.DeviceError
