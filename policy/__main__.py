"""The policy pack: each rule of cacerts_guard.rules as a mandatory Pulumi policy.

Only the wiring lives here: pulumi-policy's values, with unknowns marked, become plain values
(cacerts_guard.resources) for the rules, whose findings are reported as violations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
)

from cacerts_guard.resources import UNKNOWN, Resource, Stack
from cacerts_guard.rules import PLANNED_SUFFIX, RULES, Rule

PACK_NAME = "istio-ca-cacerts"
UNKNOWN_SENTINELS = {
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
}


def plain(value: Any) -> Any:
    """pulumi-policy's proxied value as plain dicts and lists, each unknown as UNKNOWN (no access raises)."""
    if type(value).__name__ in ("_DictProxy", "_ListProxy"):
        value = value["__target"]  # the proxy's own contents, unchecked
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return [plain(item) for item in value]
    if isinstance(value, str) and value in UNKNOWN_SENTINELS:
        return UNKNOWN
    return value


def resource_of(args: ResourceValidationArgs) -> Resource:
    provider = None
    if args.provider is not None:
        provider = Resource(
            args.provider.resource_type, args.provider.name, plain(args.provider.props), args.provider.urn
        )
    return Resource(args.resource_type, args.name, plain(args.props), args.urn, provider)


def stack_of(args: StackValidationArgs) -> Stack:
    def one(resource: PolicyResource) -> Resource:
        dependencies = {prop: [r.urn for r in found] for prop, found in resource.property_dependencies.items()}
        return Resource(resource.resource_type, resource.name, plain(resource.props), resource.urn, None, dependencies)

    return Stack([one(resource) for resource in args.resources])


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.findings(resource_of(args), args.get_config()):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name, description=rule.description, validate=validate, config_schema=_schema(rule)
    )


def stack_policy(rule: Rule, name: str) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for urn, message in rule.stack_findings(stack_of(args), args.get_config()):
            report_violation(message, urn)

    return StackValidationPolicy(
        name=name, description=rule.description, validate=validate, config_schema=_schema(rule)
    )


def _schema(rule: Rule) -> PolicyConfigSchema | None:
    if not rule.options:
        return None
    return PolicyConfigSchema(
        {key: {**option.schema, "description": option.description} for key, option in rule.options.items()}
    )


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    found: list[ResourceValidationPolicy | StackValidationPolicy] = []
    for rule in RULES:
        if rule.check is not None:
            found.append(resource_policy(rule))
        if rule.planned is not None:
            found.append(stack_policy(rule, rule.name + PLANNED_SUFFIX))
        if rule.stack_check is not None:
            found.append(stack_policy(rule, rule.name))
    return found


PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())
