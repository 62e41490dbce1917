"""The desktop client's views: ttk frames and windows that show UI events and
turn clicks into controller commands. No protocol logic lives here."""

from .chat import ChatView, ChatWindow
from .dialogs import (
    CertificateChangedDialog,
    ChangePasswordDialog,
    ConfirmDialog,
    FingerprintDialog,
    MeetDialog,
    format_fingerprint,
)
from .drawer import FriendDrawer
from .filecards import FileCards
from .images import ImageStore
from .login import LoginView
from .main import MainView
from .meeting import MeetingWindow
from .people import PeopleDialog
from .placement import OnScreen, clamp_to_screen
from .profile import ProfileDialog
from .settings import SettingsDialog
from .theme import DARK_THEME, LIGHT_THEME, available_themes
from .toast import Toasts
from .transcript import Transcript
from .transfer_table import TransfersTable, TransfersWindow
from .transfers import open_file, open_folder, prepare_styles

__all__ = [
    "DARK_THEME",
    "LIGHT_THEME",
    "CertificateChangedDialog",
    "ChangePasswordDialog",
    "ConfirmDialog",
    "ChatView",
    "ChatWindow",
    "FileCards",
    "FingerprintDialog",
    "FriendDrawer",
    "ImageStore",
    "LoginView",
    "MainView",
    "MeetDialog",
    "MeetingWindow",
    "OnScreen",
    "PeopleDialog",
    "ProfileDialog",
    "SettingsDialog",
    "Toasts",
    "Transcript",
    "TransfersTable",
    "TransfersWindow",
    "available_themes",
    "clamp_to_screen",
    "format_fingerprint",
    "open_file",
    "open_folder",
    "prepare_styles",
]
