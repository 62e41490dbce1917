"""What a test does to an app and reads back from it, one short step each.

Every step takes the :class:`~client.ui.app.App` first, runs on its Tk thread
and returns at once with plain values (so a step runs the same in this process
or in an app in a child process, see :mod:`tests.ui.remote`). Steps drive the
real widgets: they type into entries, invoke buttons and menu entries, and
generate mouse and key events; what they read is what the widgets show.
"""

from __future__ import annotations

from pathlib import Path

from client.ui.app import App
from client.ui.views import ChatWindow


def screen(app: App) -> str:
    """Which view fills the window: ``main`` or ``login`` (read from the
    widgets packed in it, so a view left behind shows up as ``both``)."""
    shown = {type(w).__name__ for w in app.root.pack_slaves() if w.winfo_ismapped()}
    if shown == {"MainView"}:
        return "main"
    if shown == {"LoginView"}:
        return "login"
    return "both" if shown else "none"


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
        "busy": login.busy,
        "message": login.status_var.get(),
        "username": login.username_var.get(),
        "dialog": type(dialog).__name__ if dialog and dialog.winfo_exists() else None,
    }


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
    """(group, name, mood, badge) per row, as drawn."""
    assert app.main is not None
    return app.main.drawer.shown()


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
    dialog.query_entry.event_generate("<Return>")


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
    canvas.event_generate("<Button-1>", x=x, y=y)
    canvas.event_generate("<ButtonRelease-1>", x=x, y=y)
    canvas.event_generate("<Double-Button-1>", x=x, y=y)


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


def chat_status(app: App, peer: str) -> str:
    return _chat(app, peer).view.status_var.get()


def type_message(app: App, peer: str, text: str) -> None:
    """Type ``text`` into the composer key by key."""
    composer = _chat(app, peer).view.composer
    composer.focus_force()
    for char in text:
        keysym = "space" if char == " " else char
        composer.event_generate("<KeyPress>", keysym=keysym)


def composer_text(app: App, peer: str) -> str:
    return _chat(app, peer).view.composer.get("1.0", "end-1c")


def press_return(app: App, peer: str) -> None:
    composer = _chat(app, peer).view.composer
    composer.focus_force()
    composer.event_generate("<KeyPress>", keysym="Return")


def close_chat(app: App, peer: str) -> None:
    _chat(app, peer).on_close()


def avatar_pixel(app: App, x: int, y: int) -> tuple[int, ...]:
    """The colour at (x, y) of the header's avatar image."""
    assert app.main is not None
    image_name = app.main.avatar_label.cget("image")
    value = app.root.tk.call(
        str(image_name[0] if isinstance(image_name, tuple) else image_name), "get", x, y
    )
    return tuple(int(v) for v in value)


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
