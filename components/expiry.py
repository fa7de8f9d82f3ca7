"""Expiry you can see: when each certificate ends, when its renewal window opens, and warnings for both.

pulumi-tls re-issues a certificate on the first `pulumi up` after its renewal window opens
(`early_renewal_hours`); nothing happens between runs. So every preview and up says which
certificates are inside their window or expired, and a scheduled `pulumi preview
--expect-no-changes` is the alarm (see the README).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pulumi

from istio_ca.validation import ConfigError


def renewal_opens(not_after: pulumi.Input[str], renew_before_hours: pulumi.Input[int]) -> pulumi.Output[str]:
    """RFC 3339: from when the certificate is re-issued on `pulumi up`."""
    return pulumi.Output.all(not_after=not_after, hours=renew_before_hours).apply(
        lambda values: _format(_parse(values["not_after"]) - timedelta(hours=values["hours"]))
    )


def warn_of_due_certificates(
    last_outputs: Mapping[str, Any] | None, renew_before_hours: Mapping[str, int], what: str
) -> None:
    """Warn for each certificate the last run issued that is inside its renewal window now, or expired.

    `last_outputs` is a stack output of the last run by name (`clusters`, `workloads`), each with a
    `notAfter`; `what` names one, e.g. "the intermediate CA of {}". The last run's dates are what
    counts: a preview knows no date of a certificate it is about to replace.
    """
    for name, hours in renew_before_hours.items():
        not_after = ((last_outputs or {}).get(name) or {}).get("notAfter")
        if not_after:
            warn_when_due(what.format(name), not_after, hours)


def refuse_an_expired_root(last_not_after: str | None, rotating: bool) -> None:
    """A root that has ended would be re-issued by the provider, and every intermediate with it, in one
    step that no istiod accepts: stop, and point to the rotation, which is explicit."""
    if last_not_after is None or rotating or _parse(last_not_after) > datetime.now(UTC):
        return
    raise ConfigError(
        f"the root ended on {_format(_parse(last_not_after))}: istio-ca will not re-issue it implicitly (every "
        "intermediate and trust bundle would change at once). Rotate it in explicit phases: set "
        "rootRotation.phase to trust-both (see the README, Root rotation)"
    )


def warn_when_due(what: str, not_after: str, renew_before_hours: int) -> None:
    """Warn when `what` is inside its renewal window, or expired."""
    now = datetime.now(UTC)
    ends = _parse(not_after)
    if ends <= now:
        pulumi.log.warn(f"{what} expired on {_format(ends)}; the next `pulumi up` re-issues it")
    elif ends - timedelta(hours=renew_before_hours) <= now:
        pulumi.log.warn(
            f"{what} is inside its renewal window (it ends {_format(ends)}): the next `pulumi up` re-issues it"
        )


def warn_when_the_root_ends_first(
    root_not_after: pulumi.Input[str], what: str, renewal_opens: pulumi.Input[str], validity_days: int
) -> None:
    """Warn when an intermediate re-issued as soon as its window opens would outlive the root."""

    def check(values: dict[str, str]) -> None:
        root_ends = _parse(values["root"])
        renewed_ends = _parse(values["opens"]) + timedelta(days=validity_days)
        if renewed_ends > root_ends:
            pulumi.log.warn(
                f"the root ends {_format(root_ends)}, before {what} re-issued at its renewal "
                f"({values['opens']}, {validity_days} days) would: renew the root first (see the README, Day two)"
            )

    pulumi.Output.all(root=root_not_after, opens=renewal_opens).apply(check)


def _parse(timestamp: str) -> datetime:
    # The provider writes nanoseconds; Python reads microseconds at most.
    whole, _, _ = timestamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(whole).replace(tzinfo=UTC)


def _format(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
