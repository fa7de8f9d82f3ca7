"""The split layout at N clusters (render mode: no cluster needed): each stack's state, and what an
unchanged run of each kind of stack costs.

    ISTIO_CA_TOOLCHAIN=<dir> .venv/bin/python -m bench.split_layout [N]

Brings up examples/split with N cluster stacks on a fresh file backend and prints, per stack, the size
of `pulumi stack export` (secrets encrypted) and of the PKI's exchange output, which is what every
cluster stack would also store if it read the PKI through a StackReference instead of readStackOutputs;
then the wall time and the process tree's peak PSS of an unchanged `pulumi preview` of the PKI stack and
of one cluster stack (bench.benchmark.measure).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from bench.benchmark import measure
from tests.e2e.pulumi_cli import Toolchain, Workspace, new_workspace, scratch_environment
from tests.installed import install_checkout
from tests.program import PROJECT_DIR


def main(clusters: int) -> None:
    toolchain = Toolchain(Path(os.environ["ISTIO_CA_TOOLCHAIN"]))
    with tempfile.TemporaryDirectory(prefix="split-state-") as scratch:
        base = Path(scratch)
        env = scratch_environment(toolchain, base)
        venv = install_checkout(base / "install", "examples/split/pki")
        names = [f"c{index:02d}" for index in range(clusters)]

        def workspace(project: str, stack: str) -> Workspace:
            source = PROJECT_DIR / "examples" / "split" / project
            return new_workspace(base / f"{project}-{stack}" / "project", stack, env, source, virtualenv=venv)

        pki = workspace("pki", "prod")
        for index, name in enumerate(names):
            pki.run("config", "set", "--path", f"clusters[{index}].name", name)
        members = {name: workspace("cluster", name) for name in names}
        for member in members.values():
            member.up()
        pki.up()
        for member in members.values():
            member.up()
        sizes = {f"mesh-pki/{pki.stack}": len(pki.export())}
        sizes |= {f"mesh-cluster/{name}": len(member.export()) for name, member in members.items()}
        exchange = len(json.dumps(pki.outputs()["istioCaPki"]))
        cluster_sizes = [size for stack, size in sizes.items() if stack.startswith("mesh-cluster/")]
        print(f"clusters: {clusters}")
        print(f"  PKI stack export:            {sizes[f'mesh-pki/{pki.stack}']:>9} bytes")
        print(f"  cluster stack export:        {min(cluster_sizes):>9} .. {max(cluster_sizes)} bytes")
        print(f"  PKI exchange output:         {exchange:>9} bytes (a StackReference would store it in each)")
        print(f"  all stacks:                  {sum(sizes.values()):>9} bytes")
        print(f"  with a StackReference each:  {sum(sizes.values()) + clusters * exchange:>9} bytes (at least)")
        for label, stack in (("PKI stack", pki), ("a cluster stack", members[names[-1]])):
            command = ["pulumi", "preview", "--expect-no-changes", "--stack", stack.stack, "--non-interactive"]
            preview = measure(command, stack.directory, stack.env)
            cost = f"{preview.seconds:>6.2f} s, peak PSS {preview.peak_pss >> 20} MB"
            print(f"  unchanged preview, {label + ':':<16} {cost}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 10)
