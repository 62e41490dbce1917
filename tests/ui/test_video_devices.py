"""Video devices as the machine has them: the meeting lists the cameras that
open and the screens mss sees, with the test pattern and "File…"; a camera
that cannot start says why in the meeting."""

from __future__ import annotations

import json
from pathlib import Path

from client.media.video_devices import (
    VideoDeviceInfo,
    camera_candidates,
    list_cameras,
    list_screens,
)
from tests.conftest import ServerProcess

from .conftest import SCREEN
from .harness import screenshot, sign_up, wait_until

WIDTH, HEIGHT = SCREEN.split("x")[:2]


def test_a_camera_that_does_not_open_is_not_listed() -> None:
    absent = max(camera_candidates(), default=-1) + 10
    assert list_cameras([absent]) == []


def test_the_screens_are_the_displays_monitors(display: str) -> None:
    assert list_screens() == [
        VideoDeviceInfo("screen:1", f"Screen 1 · {WIDTH}×{HEIGHT}")
    ]


def test_the_meeting_lists_the_devices_and_says_when_one_fails(
    apps, ui_server: ServerProcess, names, tmp_path: Path
) -> None:
    alice = names("alice")
    app = apps("alice")
    sign_up(app, ui_server.address, alice)

    # Settings list the same devices, and still take a spec typed in.
    app.call("open_settings")
    cameras, screens, _ = wait_until(
        lambda: (lambda c: c if c and c[2] else None)(
            app.call("settings_video") if app.call("settings_themes") else None
        ),
        app,
        what="the settings' device lists",
    )
    assert cameras[-2:] == ["Test pattern", "File…"]
    assert screens == [f"Screen 1 · {WIDTH}×{HEIGHT}"]
    app.call("type_settings_source", "screen", "screen:0,0,640,480")
    app.call("save_settings")
    config = tmp_path / "homes" / "alice" / "config.json"
    wait_until(
        lambda: json.loads(config.read_text()).get("screen") == "screen:0,0,640,480",
        app,
        what="the typed screen saved",
    )
    app.call("start_meeting")
    wait_until(lambda: app.call("meeting_open"), app)
    cameras, screens, _ = wait_until(
        lambda: (lambda c: c if c[2] else None)(app.call("video_choices")),
        app,
        what="the device lists",
    )
    # The app's default camera (camera:0) stays listed, marked, when this
    # machine has no camera at all.
    found = [c.label for c in list_cameras()] or ["Camera 0 (not found)"]
    assert cameras == [*found, "Test pattern", "File…"]
    # The region typed in the settings stays the choice, the monitor is listed.
    assert screens == ["Screen area 640×480 at 0,0", f"Screen 1 · {WIDTH}×{HEIGHT}"]
    assert app.call("choose_video_source", "screen", screens[1]) == "screen:1"

    assert app.call("choose_video_source", "camera", "Test pattern") == "synthetic"
    app.call("meeting_toggle", "camera")
    wait_until(lambda: app.call("meeting_camera_on"), app, what="the test pattern")
    app.call("meeting_toggle", "camera")
    wait_until(lambda: not app.call("meeting_camera_on"), app)

    app.call("use_camera_source", "camera:7")
    app.call("meeting_toggle", "camera")
    problem = wait_until(lambda: app.call("meeting_problem"), app, what="the problem")
    assert problem == "The camera did not start: cannot open camera 7"
    assert not app.call("meeting_camera_on")
    wait_until(
        lambda: [t[0] for t in app.call("meeting_tiles")] == [f"member:{alice}"],
        app,
        what="our avatar tile back",
    )
    screenshot("meeting_devices_camera_failed", app)
