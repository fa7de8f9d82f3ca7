"""`<namespace>-certs`: a VM's workload certificate that verifies through its chain to the root."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from istio_ca.config import parse_settings
from istio_ca.profiles import INTERMEDIATE_CA, WORKLOAD
from istio_ca.settings import CertificateSettings
from tests.e2e.pulumi_cli import new_workspace
from tests.x509_checks import check_certificate, check_key_matches, load_certificates, subject_of

CONFIG = {
    "clusters": [{"name": "cluster1"}],
    "workloads": [{"namespace": "vm-apps", "serviceAccount": "vm-sa", "days": 2}],
}


def test_workload_leaf_verifies_through_its_chain_to_the_root(
    pulumi_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    workspace = new_workspace(tmp_path_factory.mktemp("vm") / "project", "vm", pulumi_env)
    workspace.write_config(CONFIG)
    workspace.up()
    workspace.run("preview", "--expect-no-changes")
    settings = parse_settings(CONFIG)
    (workload,) = settings.workloads

    outputs = workspace.outputs()
    assert "workloadKeys" in outputs and "PRIVATE KEY" not in str(outputs["workloadKeys"])
    files = outputs["workloads"]["vm-apps"]
    keys = workspace.secret_outputs()["workloadKeys"]["vm-apps"]
    leaf, intermediate, root = load_certificates(files["certChainPem"])
    assert load_certificates(files["certPem"]) == [leaf]
    assert load_certificates(files["caCertPem"]) == [intermediate]
    assert load_certificates(outputs["rootCertPem"]) == [root]

    check_certificate(
        intermediate,
        profile=INTERMEDIATE_CA,
        settings=workload.intermediate,
        subject=subject_of(workload.intermediate, locality="vm-apps"),
        issuer=root,
        dns_names=workload.dns_names,
    )
    leaf_settings = CertificateSettings(
        organization=workload.intermediate.organization,
        common_name=workload.common_name,
        validity_days=workload.validity_days,
        key=workload.intermediate.key,
    )
    check_certificate(
        leaf,
        profile=WORKLOAD,
        settings=leaf_settings,
        subject=subject_of(leaf_settings, locality="vm-apps"),
        issuer=intermediate,
        uris=("spiffe://cluster.local/ns/vm-apps/sa/vm-sa",),
    )
    check_key_matches(leaf, keys["keyPem"])
    check_key_matches(intermediate, keys["caKeyPem"])

    directory = tmp_path_factory.mktemp("verify")
    (directory / "root.pem").write_text(outputs["rootCertPem"])
    (directory / "ca.pem").write_text(files["caCertPem"])
    (directory / "leaf.pem").write_text(files["certPem"])
    verify = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", "root.pem", "-untrusted", "ca.pem", "leaf.pem"],
        cwd=Path(directory),
        capture_output=True,
        text=True,
    )
    assert verify.returncode == 0 and verify.stdout.strip() == "leaf.pem: OK", verify.stdout + verify.stderr
