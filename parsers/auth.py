"""Authentication records: logins, registration, password reset, 2FA."""

from __future__ import annotations

import re
from typing import Final

from parsers.errors import AUTH_2FA, REGISTER, put_exception
from parsers.event import Attributes
from parsers.fields import put_request
from parsers.winston import Raw

LOGIN: Final = "librechat.auth.login"
PASSWORD_RESET: Final = "librechat.auth.password_reset"

# `[Login] [Login failed] [Username: ${email}] [Request-IP: ${ip}]`. The e-mail is user input and may itself
# contain `] [Request-IP: …]`, so the real IP is the last bracket and the user name is everything before it.
_LOGIN: Final = re.compile(
    r"\[Login\] \[Login (successful|failed)\] \[Username: ([\s\S]*)\] \[Request-IP: ([^\]\s]*)\]$"
)
_EMAIL: Final = re.compile(r"\[Email: ([^\]]*)\]")
_IP: Final = re.compile(r"\[IP: ([^\]\s]*)\]")
_ID: Final = re.compile(r"\[ID: (\w+)\]")
_TAG: Final = re.compile(r"^\[(\w+)\]")

_RESET_STEPS: Final = (
    ("Password reset request initiated", "request"),
    ("No user found", "no_user"),
    ("Link emailed", "link_emailed"),
    ("Link issued", "link_issued"),
    ("Password reset successful", "success"),
)
_REGISTER_REASONS: Final = (
    ("Validation Error", "validation_error", "failure"),
    ("Email in use", "email_in_use", "failure"),
    ("Registration not allowed", "domain_not_allowed", "failure"),
    ("Temporary User deleted", "temp_user_deleted", None),
    ("Error in registering user", "error", "failure"),
)


def login(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    found = _LOGIN.search(raw.message)
    if found:
        ok = found.group(1) == "successful"
        attrs["librechat.auth.outcome"] = "success" if ok else "failure"
        attrs["librechat.auth.reason"] = "Login successful" if ok else "Login failed"
        attrs["user.email"] = found.group(2)
        if found.group(3):
            attrs["client.address"] = found.group(3)
    else:
        failed = "failed" in raw.message or raw.level == "error"
        attrs["librechat.auth.outcome"] = "failure" if failed else "success"
    return LOGIN


def login_detail(raw: Raw, attrs: Attributes) -> str:
    """`Passport Local Strategy - <reason>` with `parameters: [{name, value}]`."""
    put_request(attrs, raw.fields)
    attrs["librechat.auth.outcome"] = "failure"
    attrs["librechat.auth.reason"] = raw.message.partition(" - ")[2] or raw.message
    params = raw.fields.get("parameters")
    if isinstance(params, list):
        for param in params:
            if isinstance(param, dict) and param.get("name") in ("email", "username"):
                value = param.get("value")
                if isinstance(value, str):
                    attrs["user.email"] = value
    return LOGIN


def register(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    message = raw.message
    for needle, reason, outcome in _REGISTER_REASONS:
        if needle in message:
            attrs["librechat.auth.reason"] = reason
            if outcome:
                attrs["librechat.auth.outcome"] = outcome
            break
    email = _EMAIL.search(message)
    if email:
        attrs["user.email"] = email.group(1)
    if raw.level == "error":
        put_exception(raw, attrs, "auth")
    return REGISTER


def password_reset(raw: Raw, attrs: Attributes) -> str:
    put_request(attrs, raw.fields)
    message = raw.message
    for needle, step in _RESET_STEPS:
        if needle in message:
            attrs["librechat.auth.reason"] = step
            break
    email = _EMAIL.search(message)
    if email:
        attrs["user.email"] = email.group(1)
    ip = _IP.search(message)
    if ip:
        attrs["client.address"] = ip.group(1)
    user = _ID.search(message)
    if user:
        attrs["user.id"] = user.group(1)
    return PASSWORD_RESET


def twofa(raw: Raw, attrs: Attributes) -> str:
    """`[enable2FA]`, `[verify2FA]`, … + Error (the newest logger drops the tag)."""
    put_request(attrs, raw.fields)
    tag = _TAG.match(raw.message)
    if tag:
        attrs["librechat.auth.operation"] = tag.group(1)
    put_exception(raw, attrs, "auth")
    return AUTH_2FA
