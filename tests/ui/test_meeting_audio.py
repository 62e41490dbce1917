"""Sound in the desktop app, on PulseAudio's null sink: the settings list the
real devices, meter the microphone and play a test tone; in a meeting a
speaking ring follows a remote talker, the speaker view follows the active
speaker, the microphone button really mutes, push to talk sends while the
space bar is held, and each person's volume and mute change what the engine
mixes."""

from __future__ import annotations

import re
import time
from pathlib import Path

from tests.conftest import ServerProcess

from .harness import Peer, sign_up, wait_until, write_config

DEVICE = "pulse"
"""The ALSA device that plays on the null sink and records its monitor."""


def played_dbov(stats: str) -> float | None:
    """The "played N dBov" of a tile's audio line."""
    found = re.search(r"played (-?\d+) dBov", stats)
    return float(found.group(1)) if found else None


def test_settings_list_devices_meter_the_microphone_and_play_a_tone(
    pulse_devices, apps, ui_server: ServerProcess, names
) -> None:
    a = apps("alice")
    sign_up(a, ui_server.address, names("alice"))
    a.call("open_settings")
    wait_until(lambda: a.call("settings_themes"), a, what="the settings")
    devices = wait_until(
        lambda: (d := a.call("sound_devices"))["speakers"] != [] and d,
        a,
        what="the device list",
    )
    assert DEVICE in devices["microphones"] and DEVICE in devices["speakers"]
    assert devices["microphones"][0] == "Default"
    assert devices["microphones"][-1] == "tone"
    assert devices["status"] == ""

    # The microphone is the null sink's monitor: silent until the tone plays
    # on the sink, then the meter rises.
    a.call("choose_sound_devices", DEVICE, DEVICE)
    wait_until(lambda: a.call("sound_devices")["levels_shown"] > 2, a, what="the meter")
    assert a.call("sound_devices")["level_dbov"] < -60
    a.call("press_test_tone")
    heard = wait_until(
        lambda: (d := a.call("sound_devices"))["level_dbov"] > -30 and d,
        a,
        timeout=10,
        what="the tone on the meter",
    )
    assert heard["meter"] > 40
    a.call("close_settings")


def test_meeting_sound_ring_speaker_view_microphone_and_volume(
    pulse_devices, apps, peers, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice, bob = names("alice"), names("bob")
    write_config(tmp_path / "homes" / "alice", microphone="tone", speaker=DEVICE)
    a = apps("alice")
    sign_up(a, ui_server.address, alice)
    b: Peer = peers(bob)
    a.call("start_meeting")
    wait_until(lambda: a.call("meeting_open"), a, what="the meeting window")
    assert a.call("meeting_sound") == {"microphone": False, "label": "", "problem": ""}
    b.run("join_with_tone", a.call("meeting_code"))

    # Bob's buzz rings his tile, and the speaker view puts him large.
    tile = f"member:{bob}"
    wait_until(lambda: tile in a.call("speaking_tiles"), a, what="Bob's ring")
    a.call("meeting_toggle", "speaker")
    assert a.call("meeting_layout")[:3] == (True, bob, "member")
    wait_until(lambda: a.call("speaking_tiles") == [], a, timeout=5, what="a pause")

    # Alice's microphone (the test buzz): Bob hears her speak, then, muted,
    # only silence and the rare keep-alive.
    a.call("meeting_toggle", "microphone")
    wait_until(lambda: b.run("audio_from", alice)["speaking"], a, what="Alice's voice")
    wait_until(lambda: a.call("meeting_sound")["microphone"], a, what="Mic on")
    a.call("meeting_toggle", "microphone")
    wait_until(lambda: not a.call("meeting_sound")["microphone"], a, what="mic off")
    quiet = wait_until(
        lambda: (
            (h := b.run("audio_from", alice))["level"] == 127
            and not h["speaking"]
            and h
        ),
        a,
        what="silence from Alice",
    )
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        a.pump()
        time.sleep(0.02)
    later = b.run("audio_from", alice)
    assert not later["speaking"] and later["level"] == 127
    assert later["packets"] - quiet["packets"] <= 4  # keep-alives, not 125 frames

    # Push to talk: the space bar held sends her microphone, for as long.
    a.call("talk", True)
    wait_until(lambda: b.run("audio_from", alice)["speaking"], a, what="push to talk")
    wait_until(lambda: a.call("meeting_sound")["microphone"], a, what="Mic shown on")
    a.call("talk", False)
    wait_until(lambda: not a.call("meeting_sound")["microphone"], a, what="released")
    wait_until(
        lambda: not b.run("audio_from", alice)["speaking"], a, what="silence again"
    )

    # Bob's volume and mute, for Alice only: what the engine mixes follows.
    a.call("meeting_toggle", "stats")

    def played() -> float | None:
        return played_dbov(a.call("tile_stats", tile))

    normal = wait_until(
        lambda: (p := played()) and p > -60 and p, a, timeout=30, what="a level"
    )
    a.call("tile_menu", tile, "Mute for me")
    wait_until(
        lambda: "muted for you" in a.call("tile_stats", tile), a, what="muted for me"
    )
    a.call("tile_menu", tile, "Mute for me")
    a.call("tile_menu", tile, "200 %")
    wait_until(lambda: "volume 200%" in a.call("tile_stats", tile), a, what="200%")
    louder = wait_until(
        lambda: (p := played()) and p > normal + 3 and p,
        a,
        timeout=30,
        what=f"louder than {normal} dBov",
    )
    a.call("tile_menu", tile, "0 %")
    wait_until(lambda: played() == -127, a, timeout=30, what="silence at 0 %")
    assert louder <= 0
    b.run("leave_call")
    wait_until(lambda: len(a.call("meeting_members")) == 1, a, what="Bob gone")
    a.call("leave_meeting")  # the host alone: no question asked
    wait_until(lambda: not a.call("meeting_open"), a, what="the meeting closed")
