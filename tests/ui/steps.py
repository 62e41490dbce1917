"""What a test does to an app and reads back from it, one short step each.

Every step takes the :class:`~client.ui.app.App` first, runs on its Tk thread
and returns at once with plain values (so a step runs the same in this process
or in an app in a child process, see :mod:`tests.ui.remote`). Steps drive the
real widgets: they type into entries, invoke buttons and menu entries, and
generate mouse and key events; what they read is what the widgets show.
"""

from __future__ import annotations

import tkinter as tk
from pathlib import Path

import numpy as np
import ttkbootstrap as ttk

from client.ui.app import App
from client.ui.views import ChatWindow, MeetingWindow
from client.ui.views.drawer import AVATAR_SIZE
from client.ui.views.theme import palette
from codec.media.stamp import read_stamp


def screen(app: App) -> str:
    """Which view fills the window: ``main`` or ``login`` (read from the
    widgets packed in it, so a view left behind shows up as ``both``)."""
    shown = {type(w).__name__ for w in app.root.pack_slaves() if w.winfo_ismapped()}
    if shown == {"MainView"}:
        return "main"
    if shown == {"LoginView"}:
        return "login"
    return "both" if shown else "none"


def press_key(widget: tk.Misc, keysym: str) -> None:
    """A key press on ``widget``: Tk sends key events to the focus widget, so
    give it the focus first."""
    widget.focus_force()
    widget.update()
    widget.event_generate("<KeyPress>", keysym=keysym)


def window_box(app: App) -> tuple[int, int, int, int]:
    root = app.root
    root.update_idletasks()
    return (
        root.winfo_rootx(),
        root.winfo_rooty(),
        root.winfo_width(),
        root.winfo_height(),
    )


# -- login ------------------------------------------------------------------------


def fill_login(
    app: App, server: str, username: str, password: str, register: bool
) -> None:
    login = app.login
    assert login is not None, "not on the login view"
    if login.register_var.get() != register:
        login.mode_button.invoke()
    for entry, value in (
        (login.server_entry, server),
        (login.username_entry, username),
        (login.password_entry, password),
    ):
        entry.delete(0, "end")
        entry.insert(0, value)
    if register:
        login.confirm_entry.delete(0, "end")
        login.confirm_entry.insert(0, password)


def submit_login(app: App) -> None:
    assert app.login is not None
    app.login.submit_button.invoke()


def login_state(app: App) -> dict[str, object]:
    login = app.login
    if login is None:
        return {}
    dialog = login.dialog
    return {
        "working": login.working,
        "message": login.status_var.get(),
        "username": login.username_var.get(),
        "dialog": type(dialog).__name__ if dialog and dialog.winfo_exists() else None,
        "errors": login.errors(),
        "hint": login.hint(),
        "password_shown": str(login.password_entry.cget("show")) == "",
    }


def type_login(app: App, field: str, text: str) -> None:
    """Type ``text`` key by key at the end of a login field (``server``,
    ``username``, ``password`` or ``confirm``)."""
    assert app.login is not None
    entry = getattr(app.login, f"{field}_entry")
    entry.icursor("end")
    for char in text:
        press_key(entry, "space" if char == " " else char)


def toggle_show_password(app: App) -> None:
    assert app.login is not None
    app.login.show_check.invoke()


def login_field_below(app: App, field: str) -> bool:
    """Whether the field's error line sits right under its entry, inside the
    form's column."""
    assert app.login is not None
    entry = getattr(app.login, f"{field}_entry")
    label = app.login.field_labels[field]
    app.login.update_idletasks()
    gap = label.winfo_rooty() - (entry.winfo_rooty() + entry.winfo_height())
    return label.winfo_ismapped() and 0 <= gap <= 8


def fingerprint_shown(app: App) -> str:
    """The fingerprint text of the open confirmation dialog."""
    assert app.login is not None and app.login.dialog is not None
    return str(app.login.dialog.fingerprint_label.cget("text"))


def dialog_texts(app: App) -> list[str]:
    """Every label text of the open login dialog, top to bottom."""
    assert app.login is not None and app.login.dialog is not None
    return [
        str(w.cget("text"))
        for w in app.login.dialog.body.winfo_children()
        if w.winfo_class() == "TLabel"
    ]


def trust_server(app: App) -> None:
    assert app.login is not None and app.login.dialog is not None
    app.login.dialog.trust_button.invoke()


# -- main window ---------------------------------------------------------------------


def header(app: App) -> tuple[str, str]:
    assert app.main is not None
    return app.main.name_var.get(), app.main.mood_var.get()


def drawer(app: App) -> list[tuple[str, str, str, str]]:
    """(group, name, second line, badge) per row, as drawn; the second line is
    the newest message, else the mood."""
    assert app.main is not None
    return app.main.drawer.shown()


def drawer_times(app: App) -> dict[str, str]:
    """The time of the newest message on each friend's row, as drawn."""
    assert app.main is not None
    return app.main.drawer.times()


def requests(app: App) -> list[str]:
    assert app.main is not None
    return sorted(app.main.request_buttons)


def answer_request(app: App, username: str, label: str) -> None:
    assert app.main is not None
    app.main.request_buttons[username][label].invoke()


def add_friend(app: App, prefix: str) -> None:
    """Open the add-friend dialog from the account menu and search."""
    assert app.main is not None
    menu = app.main.account_menu
    menu.invoke(menu.index("Add friend…"))
    dialog = app.main.people_dialog
    assert dialog is not None
    dialog.query_entry.insert(0, prefix)
    press_key(dialog.query_entry, "Return")


def people_results(app: App) -> list[tuple[str, str]]:
    assert app.main is not None and app.main.people_dialog is not None
    tree = app.main.people_dialog.tree
    return [(iid, str(tree.set(iid, "status"))) for iid in tree.get_children()]


def request_friend(app: App, username: str, note: str) -> str:
    assert app.main is not None and app.main.people_dialog is not None
    dialog = app.main.people_dialog
    dialog.tree.selection_set(username)
    dialog.tree.event_generate("<<TreeviewSelect>>")
    dialog.note_entry.insert(0, note)
    dialog.send_button.invoke()
    return str(dialog.send_button.cget("state"))


def people_status(app: App) -> str:
    assert app.main is not None and app.main.people_dialog is not None
    return app.main.people_dialog.status_var.get()


def close_people(app: App) -> None:
    assert app.main is not None and app.main.people_dialog is not None
    app.main.people_dialog.on_cancel()


def set_presence(app: App, label: str) -> None:
    assert app.main is not None
    menu = app.main.presence_button.cget("menu")
    widget = app.main.nametowidget(menu)
    widget.invoke(widget.index(label))


def double_click_friend(app: App, username: str) -> None:
    """A real double click on the friend's row of the drawer."""
    assert app.main is not None
    canvas = app.main.drawer.canvas
    x, y = app.main.drawer.row_center(username)
    for _ in range(2):
        canvas.event_generate("<ButtonPress-1>", x=x, y=y)
        canvas.event_generate("<ButtonRelease-1>", x=x, y=y)


def toasts(app: App) -> list[tuple[str, str]]:
    return app.toasts.shown()


def banner(app: App) -> str:
    assert app.main is not None
    return app.main.banner_var.get() if app.main.banner.winfo_ismapped() else ""


def sign_out(app: App) -> None:
    assert app.main is not None
    menu = app.main.account_menu
    menu.invoke(menu.index("Sign out"))


# -- chat ---------------------------------------------------------------------------


def _chat(app: App, peer: str) -> ChatWindow:
    window = app.chats.get(peer)
    assert window is not None, f"no chat window with {peer}"
    return window


def chat_open(app: App, peer: str) -> bool:
    return peer in app.chats


def chat_messages(app: App, peer: str) -> list[tuple[int, bool, str, str, str]]:
    """(id, outgoing, text, tick, tick style) per message, as shown."""
    return _chat(app, peer).view.transcript.shown()


def chat_peer_name(app: App, peer: str) -> tuple[str, str]:
    """The name in the chat's header and the chat window's title."""
    window = _chat(app, peer)
    return str(window.view.name_label.cget("text")), window.title()


def chat_status(app: App, peer: str) -> str:
    return _chat(app, peer).view.status_var.get()


def type_message(app: App, peer: str, text: str) -> None:
    """Type ``text`` into the composer key by key."""
    composer = _chat(app, peer).view.composer
    for char in text:
        press_key(composer, "space" if char == " " else char)


def composer_text(app: App, peer: str) -> str:
    return _chat(app, peer).view.composer.get("1.0", "end-1c")


def press_return(app: App, peer: str) -> None:
    press_key(_chat(app, peer).view.composer, "Return")


def close_chat(app: App, peer: str) -> None:
    _chat(app, peer).on_window_close()


def avatar_pixel(app: App, x: int, y: int) -> tuple[int, ...]:
    """The colour at (x, y) of the image the header's avatar label shows;
    empty while the image holds no picture yet."""
    assert app.main is not None
    image = app.main.avatar_label.cget("image")
    name = str(image[0] if isinstance(image, tuple) else image)
    try:
        return tuple(int(v) for v in app.root.tk.call(name, "get", x, y))
    except tk.TclError:
        return ()


def choose_avatar(app: App, path: str) -> None:
    assert app.main is not None
    app.main.on_edit_profile()
    dialog = app.main.profile_dialog
    assert dialog is not None
    dialog.on_picture_chosen(Path(path))


def change_password(app: App, old: str, new: str) -> None:
    assert app.main is not None
    menu = app.main.account_menu
    menu.invoke(menu.index("Change password…"))
    dialog = app.main.password_dialog
    assert dialog is not None
    for entry, value in (
        (dialog.old_entry, old),
        (dialog.new_entry, new),
        (dialog.again_entry, new),
    ):
        entry.insert(0, value)
    dialog.submit_button.invoke()


def scroll_chat_to_top(app: App, peer: str) -> None:
    """Drag the transcript's scrollbar to the top."""
    transcript = _chat(app, peer).view.transcript
    transcript.scrollbar.event_generate("<Home>")
    transcript.text.yview_moveto(0.0)


def chat_visible(app: App, peer: str) -> list[str]:
    """Texts of the messages inside the visible part of the transcript."""
    transcript = _chat(app, peer).view.transcript
    return [
        transcript.messages[i].text for i in transcript.ids if transcript.is_visible(i)
    ]


def chat_has_more(app: App, peer: str) -> bool:
    return _chat(app, peer).view.transcript.has_more


def search_chat(app: App, peer: str, text: str) -> None:
    view = _chat(app, peer).view
    view.search_button.invoke()
    view.search_entry.insert(0, text)
    press_key(view.search_entry, "Return")


def search_results(app: App, peer: str) -> list[str]:
    """The result rows as shown: ``date time  who: text``."""
    return _chat(app, peer).view.results.rows()


def search_matches(app: App, peer: str) -> list[str]:
    """The highlighted parts of the result rows."""
    return _chat(app, peer).view.results.highlighted()


def search_results_fit(app: App, peer: str) -> bool:
    """Whether every result row's start (its date) is inside the list's width."""
    text = _chat(app, peer).view.results.text
    text.update_idletasks()
    return all(
        (box := text.bbox(f"{row}.15")) is not None
        and box[0] + box[2] <= text.winfo_width()
        for row in range(1, int(text.index("end-1c").split(".")[0]) + 1)
    )


def pick_search_result(app: App, peer: str, index: int) -> None:
    """Click row ``index`` of the results."""
    text = _chat(app, peer).view.results.text
    text.update_idletasks()
    x, y, _, height = text.bbox(f"{index + 1}.0")
    text.event_generate("<Button-1>", x=x + 4, y=y + height // 2)


def chat_highlighted(app: App, peer: str) -> str:
    """The text of the message highlighted in the transcript."""
    transcript = _chat(app, peer).view.transcript
    found = transcript.found
    return transcript.messages[found].text if found is not None else ""


def chat_leads(app: App, peer: str) -> list[str]:
    """The date separators and sender headers of the transcript, in order."""
    return _chat(app, peer).view.transcript.leads()


def paste_message(app: App, peer: str, text: str) -> None:
    """Paste ``text`` into the composer (as Ctrl+V would)."""
    composer = _chat(app, peer).view.composer
    composer.insert("insert", text)


def composer_error(app: App, peer: str) -> str:
    """The error shown above the composer, empty when none is shown."""
    view = _chat(app, peer).view
    return view.composer_error_var.get() if view.composer_error.winfo_ismapped() else ""


def chat_window_box(app: App, peer: str) -> tuple[int, int, int, int]:
    window = _chat(app, peer)
    window.update_idletasks()
    return (
        window.winfo_rootx(),
        window.winfo_rooty(),
        window.winfo_width(),
        window.winfo_height(),
    )


def bubble_boxes(app: App, peer: str) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) on the screen of every message's bubble."""
    transcript = _chat(app, peer).view.transcript
    transcript.update_idletasks()
    boxes = []
    for message_id in transcript.ids:
        bubble = transcript.bubbles[message_id]
        boxes.append(
            (
                bubble.winfo_rootx(),
                bubble.winfo_rooty(),
                bubble.winfo_width(),
                bubble.winfo_height(),
            )
        )
    return boxes


def click_toast(app: App, title: str) -> None:
    """Click the notice titled ``title``."""
    for toast in list(app.toasts._toasts):
        if toast.title == title:
            toast.frame.event_generate("<Button-1>", x=5, y=5)
            return
    raise AssertionError(f"no notice titled {title!r}")


def filter_friends(app: App, text: str) -> None:
    """Clear the friend filter with BackSpace, then type ``text`` into it."""
    assert app.main is not None
    entry = app.main.filter_entry
    entry.icursor("end")
    keys = ["BackSpace"] * len(entry.get()) + ["space" if c == " " else c for c in text]
    for keysym in keys:
        press_key(entry, keysym)
        entry.event_generate("<KeyRelease>", keysym=keysym)


def edit_profile(app: App, name: str, mood: str) -> None:
    assert app.main is not None
    app.main.mood_label.event_generate("<Button-1>", x=2, y=2)
    dialog = app.main.profile_dialog
    assert dialog is not None
    for entry, value in ((dialog.name_entry, name), (dialog.mood_entry, mood)):
        entry.delete(0, "end")
        entry.insert(0, value)
    dialog.save_button.invoke()


def profile_dialog_open(app: App) -> bool:
    dialog = app.main.profile_dialog if app.main is not None else None
    return dialog is not None and bool(dialog.winfo_exists())


def profile_dialog_message(app: App) -> str:
    assert app.main is not None and app.main.profile_dialog is not None
    return app.main.profile_dialog.error_var.get()


def open_settings(app: App) -> None:
    """Open the settings from the account menu."""
    assert app.main is not None
    menu = app.main.account_menu
    menu.invoke(menu.index("Settings…"))


def settings_themes(app: App) -> list[str]:
    """The themes the open settings offer (none while they are not open)."""
    dialog = app.settings_dialog
    if dialog is None or not dialog.winfo_exists():
        return []
    return [str(v) for v in dialog.theme_box.cget("values")]


def choose_theme_and_save(app: App, theme: str) -> None:
    """Pick the theme labelled ``theme`` in the settings and save."""
    dialog = app.settings_dialog
    assert dialog is not None
    dialog.theme_box.set(theme)
    dialog.theme_box.event_generate("<<ComboboxSelected>>")
    dialog.buttons.winfo_children()[0].invoke()


def settings_video(app: App) -> tuple[list[str], list[str], bool]:
    """The settings' camera and screen choices, and whether the engine's
    device list arrived."""
    dialog = app.settings_dialog
    assert dialog is not None
    cameras, screens = dialog.camera_box, dialog.screen_box
    return cameras.labels(), screens.labels(), cameras.found and screens.found


def type_settings_source(app: App, kind: str, text: str) -> None:
    """Type ``text`` into the settings' camera or screen box."""
    dialog = app.settings_dialog
    assert dialog is not None
    box = dialog.camera_box if kind == "camera" else dialog.screen_box
    box.var.set(text)


def save_settings(app: App) -> None:
    dialog = app.settings_dialog
    assert dialog is not None
    dialog.buttons.winfo_children()[0].invoke()


def theme(app: App) -> str:
    return str(ttk.Style.get_instance().theme_use())


def transfer_styles_built(app: App) -> bool:
    """Whether the transfer bars' styles exist in the current theme before
    any transfer asked for them (``prepare_styles``)."""
    style = ttk.Style.get_instance()
    return all(
        style.style_exists_in_theme(f"{name}.Horizontal.TProgressbar")
        for name in ("primary.Striped", "success", "danger", "secondary")
    )


def drawer_background(app: App) -> str:
    assert app.main is not None
    return str(app.main.drawer.canvas.cget("background"))


def chat_background(app: App, peer: str) -> str:
    return str(_chat(app, peer).view.transcript.text.cget("background"))


def send_file(app: App, peer: str, path: str) -> None:
    """What the chat's File… button does once a file is picked."""
    _chat(app, peer).view.on_file_chosen(Path(path))


def chat_files(app: App, peer: str) -> list[tuple[str, str, str, list[str]]]:
    """(kind, name, detail, buttons) of the transfers shown in the chat."""
    return _chat(app, peer).view.files.shown()


def chat_blocks(app: App, peer: str) -> list[str]:
    """The transcript top to bottom: each message's text, each file's name in
    brackets."""
    return _chat(app, peer).view.transcript.blocks()


def chat_card_backgrounds(app: App, peer: str) -> list[str]:
    """The background colour of each file card in the chat, top to bottom."""
    transcript = _chat(app, peer).view.transcript
    cards = [transcript.card(key) for key in transcript.card_order()]
    return [str(card.cget("background")) for card in cards if card is not None]


def press_chat_file(app: App, peer: str, name: str, button: str) -> None:
    _chat(app, peer).view.files.press(name, button)


def open_transfers(app: App) -> None:
    assert app.main is not None
    menu = app.main.account_menu
    menu.invoke(menu.index("Transfers…"))


def transfers(app: App) -> list[tuple[str, ...]]:
    """The cells of every row of the transfers window: name, peer, size,
    progress, rate, state."""
    window = app.transfers_window
    if window is None or not window.winfo_exists():
        return []
    return window.panel.shown()


def transfer_columns(app: App) -> list[str]:
    assert app.transfers_window is not None
    tree = app.transfers_window.panel.tree
    return [str(tree.heading(c, "text")) for c in tree.cget("columns")]


def transfer_actions(app: App, name: str) -> list[str]:
    """Select the row of ``name``: the buttons that are then enabled."""
    assert app.transfers_window is not None
    table = app.transfers_window.panel
    tree = table.tree
    key = next(k for k in tree.get_children() if tree.set(k, "name") == name)
    tree.selection_set(key)
    table.update_buttons()
    return [
        label
        for label, button in table.buttons.items()
        if str(button.cget("state")) == "normal"
    ]


def press_transfer(app: App, name: str, button: str) -> None:
    assert app.transfers_window is not None
    app.transfers_window.panel.press(name, button)


def clear_finished_transfers(app: App) -> None:
    assert app.transfers_window is not None
    app.transfers_window.panel.clear_button.invoke()


def transfers_message(app: App) -> str:
    assert app.transfers_window is not None
    return app.transfers_window.panel.message_var.get()


def chat_files_message(app: App, peer: str) -> str:
    files = _chat(app, peer).view.files
    return files.message_var.get() if files.message_label.winfo_ismapped() else ""


# -- meetings -----------------------------------------------------------------------


def _meeting(app: App) -> MeetingWindow:
    window = app.meetings.window
    assert window is not None, "no meeting window"
    return window


def start_meeting(app: App) -> None:
    """Meet → Start a meeting."""
    assert app.main is not None
    app.main.meet_button.invoke()
    assert app.meetings.dialog is not None
    app.meetings.dialog.start_button.invoke()


def join_meeting(app: App, code: str) -> None:
    """Meet → type the code → Join."""
    assert app.main is not None
    app.main.meet_button.invoke()
    dialog = app.meetings.dialog
    assert dialog is not None
    dialog.code_entry.insert(0, code)
    press_key(dialog.code_entry, "Return")


def meeting_open(app: App) -> bool:
    window = app.meetings.window
    return window is not None and bool(window.winfo_exists())


def meeting_code(app: App) -> str:
    return str(_meeting(app).code_label.cget("text"))


def meeting_members(app: App) -> list[tuple[str, str]]:
    return _meeting(app).members.members()


def invite_to_meeting(app: App, username: str) -> None:
    """Pick ``username``'s line (shown by name) in the invite box, invite."""
    panel = _meeting(app).members
    label = next(k for k, v in panel.invitable.items() if v == username)
    panel.invite_box.set(label)
    panel.invite_button.invoke()


def invite_choices(app: App) -> list[str]:
    return [str(v) for v in _meeting(app).members.invite_box.cget("values")]


def meeting_tiles(app: App) -> list[tuple[str, str, tuple[int, int], int]]:
    """(key, name label, size, pictures shown) per tile, in stage order."""
    return [
        (key, tile.text_of("name"), tile.tile_size, tile.frames_shown)
        for key, tile in _meeting(app).stage.tiles.items()
    ]


def tile_stamp(app: App, key: str) -> tuple[int, int] | None:
    """The synthetic stamp (frame number, capture ms) read from the pixels the
    tile shows, None while it shows no readable picture."""
    tile = _meeting(app).stage.tiles.get(key)
    image = tile.shown_image() if tile is not None else None
    if image is None:
        return None
    return read_stamp(np.asarray(image))


def tile_stats(app: App, key: str) -> str:
    return _meeting(app).stage.tiles[key].text_of("stats")


def meeting_toggle(app: App, button: str) -> None:
    """Click a toolbar toggle: camera, screen, hand, speaker or stats."""
    window = _meeting(app)
    buttons = {
        "camera": window.camera_button,
        "screen": window.screen_button,
        "hand": window.hand_button,
        "speaker": window.speaker_button,
        "stats": window.stats_button,
        "microphone": window.microphone_button,
    }
    buttons[button].invoke()


def meeting_say(app: App, text: str) -> None:
    entry = _meeting(app).chat.entry
    entry.insert(0, text)
    press_key(entry, "Return")


def meeting_chat(app: App) -> list[tuple[str, str]]:
    return [(line.name, line.text) for line in _meeting(app).chat.lines]


def host_action(app: App, username: str, action: str) -> None:
    panel = _meeting(app).members
    panel.tree.selection_set(username)
    panel.tree.event_generate("<<TreeviewSelect>>")
    panel.update()
    panel.host_buttons[action].invoke()


def end_button_shown(app: App) -> bool:
    return bool(_meeting(app).end_button.winfo_ismapped())


def leave_meeting(app: App) -> None:
    _meeting(app).leave_button.invoke()


# -- meeting sound -------------------------------------------------------------------


def meeting_sound(app: App) -> dict[str, object]:
    """The microphone button's state, the "sound off" label and its reason."""
    window = _meeting(app)
    return {
        "microphone": bool(window.microphone_var.get()),
        "label": str(window.sound_label.cget("text")),
        "problem": window.audio_problem,
    }


def speaking_tiles(app: App) -> list[str]:
    """The keys of the tiles drawn with a speaking ring."""
    return [
        key
        for key, tile in _meeting(app).stage.tiles.items()
        if tile.find_withtag("speaking")
    ]


def talk(app: App, pressed: bool) -> None:
    """Press or release the space bar over the stage (push to talk)."""
    stage = _meeting(app).stage
    stage.focus_force()
    stage.update()
    stage.event_generate("<KeyPress>" if pressed else "<KeyRelease>", keysym="space")


def tile_menu(app: App, key: str, entry: str) -> None:
    """Open ``key``'s tile menu (a right click) and pick ``entry``: "Mute for
    me", or a volume such as "50 %" from its Volume submenu."""
    window = _meeting(app)
    tile = window.stage.tiles[key]
    tile.event_generate("<Button-3>", x=10, y=10, rootx=10, rooty=10)
    menu = window.stage.people.menu
    assert menu is not None, "no menu opened"
    menu.unpost()
    if entry.endswith(" %"):
        submenu = menu.nametowidget(menu.entrycget(1, "menu"))
        submenu.invoke(submenu.index(entry))
    else:
        menu.invoke(menu.index(entry))


def _settings_audio(app: App):
    dialog = app.settings_dialog
    assert dialog is not None and dialog.winfo_exists(), "settings not open"
    assert dialog.audio is not None
    return dialog.audio


def sound_devices(app: App) -> dict[str, object]:
    """What the settings' sound pickers offer and show."""
    panel = _settings_audio(app)
    return {
        "microphones": [str(v) for v in panel.microphone_box.cget("values")],
        "speakers": [str(v) for v in panel.speaker_box.cget("values")],
        "status": panel.status_var.get(),
        "level_dbov": panel.level_dbov,
        "levels_shown": panel.levels_shown,
        "meter": panel.level_var.get(),
    }


def choose_sound_devices(app: App, microphone: str, speaker: str) -> None:
    panel = _settings_audio(app)
    panel.microphone_box.set(microphone)
    panel.microphone_box.event_generate("<<ComboboxSelected>>")
    panel.speaker_box.set(speaker)
    panel.speaker_box.event_generate("<<ComboboxSelected>>")


def press_test_tone(app: App) -> None:
    _settings_audio(app).tone_button.invoke()


def close_settings(app: App) -> None:
    dialog = app.settings_dialog
    assert dialog is not None
    dialog.on_cancel()


# -- the engine ----------------------------------------------------------------------


def engine(app: App) -> dict[str, object]:
    """The engine process: its pid and how often it was started again."""
    return {"pid": app.link.pid, "restarts": app.link.restarts}


# -- looks --------------------------------------------------------------------------


def _boxes(top: tk.Misc) -> list[tuple[str, int, int, int, int]]:
    """Widgets with a background of their own: not scrollbars (a thumb in the
    theme's own colour) nor separators (lines)."""
    top.update_idletasks()
    boxes = []
    stack = [top]
    while stack:
        widget = stack.pop()
        stack.extend(widget.winfo_children())
        if (
            widget.winfo_ismapped()
            and widget.winfo_width() > 6
            and widget.winfo_class() not in ("TScrollbar", "TSeparator")
        ):
            boxes.append(
                (
                    str(widget),
                    widget.winfo_rootx(),
                    widget.winfo_rooty(),
                    widget.winfo_width(),
                    widget.winfo_height(),
                )
            )
    return boxes


def chat_widget_boxes(app: App, peer: str) -> list[tuple[str, int, int, int, int]]:
    """(path, x, y, width, height) on the screen of every widget shown in the
    chat window: transcript, bubbles, composer, buttons."""
    return _boxes(_chat(app, peer).view)


def meeting_chat_boxes(app: App) -> list[tuple[str, int, int, int, int]]:
    """The same for the meeting window's chat box."""
    return _boxes(_meeting(app).chat)


def chat_tick_color(app: App, peer: str, index: int) -> tuple[str, str]:
    """(style, colour) of the tick of message ``index`` as drawn."""
    transcript = _chat(app, peer).view.transcript
    bubble = transcript.bubbles[transcript.ids[index]]
    _, style = bubble.tick()
    return style, str(bubble.itemcget("tick", "fill"))


def theme_colors(app: App) -> dict[str, str]:
    """The current palette's colours by name."""
    colors = palette()
    return {name: str(getattr(colors, name)) for name in ("primary", "tick_read")}


# -- meeting etiquette --------------------------------------------------------------


def invitations(app: App) -> list[tuple[str, str]]:
    """(meeting code, text) of the invitation bars in the main window."""
    assert app.main is not None
    return app.main.invitations.shown()


def answer_invitation(app: App, room_id: str, label: str) -> None:
    """Press Join or Decline on the invitation to ``room_id``."""
    assert app.main is not None
    app.main.invitations.buttons[room_id][label].invoke()


def confirm_box(app: App) -> tuple[int, int, int, int]:
    """Where the meeting's open confirmation is on the screen."""
    dialog = _meeting(app).confirm
    assert dialog is not None
    dialog.update_idletasks()
    return (
        dialog.winfo_rootx(),
        dialog.winfo_rooty(),
        dialog.winfo_width(),
        dialog.winfo_height(),
    )


def confirm_shown(app: App) -> tuple[str, str] | None:
    """(title, text) of the meeting's open confirmation, None when none is."""
    window = app.meetings.window
    dialog = window.confirm if window is not None else None
    if dialog is None or not dialog.winfo_exists():
        return None
    return str(dialog.title()), dialog.text


def answer_confirm(app: App, label: str) -> None:
    """Press the confirmation's action button or Cancel."""
    dialog = _meeting(app).confirm
    assert dialog is not None and dialog.winfo_exists()
    button = dialog.cancel_button if label == "Cancel" else dialog.confirm_button
    assert label == "Cancel" or str(button.cget("text")) == label
    button.invoke()


def end_for_all(app: App) -> None:
    _meeting(app).end_button.invoke()


def copy_meeting_code(app: App) -> tuple[str, str]:
    """Press "Copy code": (the button's text right after, the clipboard)."""
    window = _meeting(app)
    window.copy_button.invoke()
    return str(window.copy_button.cget("text")), window.clipboard_get()


def copy_button_text(app: App) -> str:
    return str(_meeting(app).copy_button.cget("text"))


def hands_notice(app: App) -> str:
    """The raised-hands notice above the stage, empty when hidden."""
    label = _meeting(app).hands_label
    return str(label.cget("text")) if label.winfo_ismapped() else ""


def meeting_window_box(app: App) -> tuple[int, int, int, int]:
    window = _meeting(app)
    window.update_idletasks()
    return (
        window.winfo_rootx(),
        window.winfo_rooty(),
        window.winfo_width(),
        window.winfo_height(),
    )


def screen_size(app: App) -> tuple[int, int]:
    return app.root.winfo_screenwidth(), app.root.winfo_screenheight()


def drawer_avatar_color(app: App, username: str) -> tuple[int, ...]:
    """The colour of a friend's letter avatar in the drawer, read from the
    picture shown, away from the letter and the presence dot; empty while
    the picture is not drawn yet."""
    assert app.main is not None
    friend = next(f for f in app.main.roster.friends if f.person.username == username)
    image = app.main.drawer.images.avatar(friend.person, AVATAR_SIZE, friend.presence)
    spot = AVATAR_SIZE // 4
    try:
        pixel = app.root.tk.call(str(image), "get", spot, spot)
    except tk.TclError:
        return ()
    return tuple(int(v) for v in pixel)


def meeting_layout(app: App) -> tuple[bool, str, str, bool]:
    """(speaker layout on, the large tile's name label and kind, the Speaker
    view toggle's state)."""
    window = _meeting(app)
    stage = window.stage
    key = stage.speaker() if stage.speaker_layout else None
    tile = stage.tiles[key].tile if key is not None else None
    return (
        stage.speaker_layout,
        tile.username if tile is not None else "",
        tile.kind if tile is not None else "",
        bool(window.speaker_var.get()),
    )


def use_camera_source(app: App, spec: str) -> None:
    """Choose ``spec`` as the camera (what "File…" does once a file is picked)."""
    _meeting(app).use_source("camera", spec)


def video_choices(app: App) -> tuple[list[str], list[str], bool]:
    """The camera and screen pickers' choices as listed, and whether the
    engine's device list arrived."""
    window = _meeting(app)
    return (
        window.camera_box.labels(),
        window.screen_box.labels(),
        window.camera_box.found and window.screen_box.found,
    )


def choose_video_source(app: App, kind: str, label: str) -> str:
    """Pick ``label`` in the camera or screen picker as a user does; the spec
    now in use."""
    window = _meeting(app)
    box = window.camera_box if kind == "camera" else window.screen_box
    box.var.set(label)
    box.event_generate("<<ComboboxSelected>>")
    return box.spec


def meeting_problem(app: App) -> str:
    """The red line above the stage, empty when hidden."""
    label = _meeting(app).problem_label
    return str(label.cget("text")) if label.winfo_ismapped() else ""


def meeting_camera_on(app: App) -> bool:
    return bool(_meeting(app).camera_var.get())


def copy_message_text(app: App, peer: str, index: int) -> str:
    """Right-click message ``index``'s bubble, choose "Copy text": the
    clipboard's text after."""
    transcript = _chat(app, peer).view.transcript
    bubble = transcript.bubbles[transcript.ids[index]]
    bubble.event_generate(
        "<Button-3>",
        x=5,
        y=5,
        rootx=bubble.winfo_rootx() + 5,
        rooty=bubble.winfo_rooty() + 5,
    )
    transcript.menu.invoke(transcript.menu.index("Copy text"))
    transcript.menu.unpost()
    return transcript.clipboard_get()


def meeting_toolbar_cut_off(app: App) -> list[str]:
    """The meeting toolbar's buttons that are squeezed or cut off, with the
    window shrunk to its minimum width."""
    window = _meeting(app)
    window.geometry(f"{window.minsize()[0]}x{window.winfo_height()}")
    window.update()
    bar = window.toolbar
    return [
        str(child.cget("text")) if "text" in child.keys() else str(child)
        for child in bar.winfo_children()
        if child.winfo_manager()
        and (
            child.winfo_width() < child.winfo_reqwidth()
            or child.winfo_x() + child.winfo_width() > bar.winfo_width()
        )
    ]
