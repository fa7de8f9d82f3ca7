"""Generic checks of config values: each returns the value or raises ConfigError naming the key.

The messages say what is allowed; a value that may hold a key (`pem_text`) is never echoed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pulumi

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
"""Matched whole (`fullmatch`): a trailing newline is not a DNS label."""
SHA256_FINGERPRINT = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){31}")


class ConfigError(pulumi.RunError):
    """Bad stack config; Pulumi prints the message without a stack trace."""


def reject_unknown(values: Mapping[str, Any], allowed: frozenset[str], key: str) -> None:
    unknown = sorted(set(values) - allowed)
    if unknown:
        where = f"{key}: " if key else ""
        raise ConfigError(f"{where}unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def object_at(values: Mapping[str, Any], name: str, key: str) -> dict[str, Any]:
    value = values.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be an object, got {value!r}")
    return value


def text(value: Any, key: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty string, got {value!r}")
    if value != value.strip():
        raise ConfigError(f"{key}: {value!r} starts or ends with white space; remove it")
    return value


def pem_text(value: Any, key: str) -> str:
    """A PEM value: never echoed, since it may hold a key."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{key} must be a non-empty PEM text")
    return value


def optional_text(value: Any, key: str) -> str | None:
    return None if value is None else text(value, key)


def boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    return value


def positive_days(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key} must be a whole number of days greater than 0, got {value!r}")
    return value


def days_within(value: Any, key: str, *, lifetime: int) -> int:
    """A number of days inside a certificate's lifetime: at least 1, shorter than `lifetime`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < lifetime:
        allowed = f"from 1 to {lifetime - 1}" if lifetime > 1 else "none for a 1-day certificate (leave it out)"
        raise ConfigError(
            f"{key} must be a whole number of days shorter than the lifetime ({lifetime} days): {allowed}, "
            f"got {value!r}"
        )
    return value


def whole_hours(value: Any, key: str, *, at_most: int, what: str) -> int:
    """A number of hours from 0 to `at_most` (`what` says what that bound is)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= at_most:
        raise ConfigError(f"{key} must be a whole number of hours from 0 to {at_most} ({what}), got {value!r}")
    return value


def positive_whole(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key} must be a whole number from 1, got {value!r}")
    return value


def dns_label(value: Any, key: str, *, what: str) -> str:
    if not isinstance(value, str) or not DNS_LABEL.fullmatch(value):
        raise ConfigError(
            f"{key}: {value!r} is not a valid {what}; use a DNS label "
            "(1-63 lowercase letters, digits or '-', starting and ending with a letter or digit)"
        )
    return value


def namespace(value: Any, key: str) -> str:
    return dns_label(value, key, what="Kubernetes namespace")


def dns_names(value: Any, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{key} must be a DNS name or a non-empty list of DNS names")
    return tuple(dns_name(name, key) for name in value)


def dns_name(name: Any, key: str) -> str:
    labels = name.split(".") if isinstance(name, str) else []
    if not labels or len(name) > 253 or not all(DNS_LABEL.fullmatch(label) for label in labels):
        raise ConfigError(f"{key}: {name!r} is not a DNS name (dot-separated lowercase DNS labels)")
    return str(name)


def sha256_fingerprint(value: Any, key: str) -> str:
    if not isinstance(value, str) or not SHA256_FINGERPRINT.fullmatch(value):
        raise ConfigError(
            f"{key}: {value!r} is not a SHA-256 fingerprint; use the form `openssl x509 -noout "
            "-fingerprint -sha256` prints (32 colon-separated hex bytes)"
        )
    return value.upper()
