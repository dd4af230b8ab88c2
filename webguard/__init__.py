"""The web guard in front of ``app.py`` (docs/security.md): :class:`WebGuard` (the ASGI layer),
:class:`PathMask` (server folders shown as opaque tokens), :class:`LoginThrottle`, :class:`LoginAges`,
:class:`UploadBudget`, :class:`UploadOwners`, :class:`SessionLimit` and :class:`UploadJanitor`. Imports no Gradio."""

from webguard.guard import BLOCKED_ROUTES, FILE_ROUTE, MountRule, WebGuard
from webguard.janitor import UploadJanitor
from webguard.login_ages import LoginAges
from webguard.masks import PathMask, is_inside
from webguard.sessions import SessionLimit
from webguard.throttle import LoginThrottle, too_many_tries
from webguard.upload_budget import UploadBudget
from webguard.upload_owners import UploadOwners

__all__ = ["BLOCKED_ROUTES", "FILE_ROUTE", "LoginAges", "LoginThrottle", "MountRule", "PathMask", "SessionLimit", "UploadBudget", "UploadJanitor",
           "UploadOwners", "WebGuard", "is_inside", "too_many_tries"]
