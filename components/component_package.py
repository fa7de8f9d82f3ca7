"""The components served to any language: the Pulumi component package `istio-ca` (package/ runs `serve`).

Pulumi's analyzer infers the package's schema from the components' `*Args` TypedDicts and annotated outputs,
docstrings included, so what a YAML or TypeScript program sees is what a Python caller reads here.
"""

import ast
import inspect
import sys
import textwrap
from typing import Any, is_typeddict

from pulumi.provider.experimental import analyzer, component_provider_host
from pulumi.provider.experimental.component import ComponentProvider

from istio_ca import __version__
from istio_ca.cluster_ca import ClusterCA
from istio_ca.existing_root import ExistingRoot
from istio_ca.mesh_ca import MeshCA
from istio_ca.mesh_member import MeshMember
from istio_ca.mesh_pki import MeshPKI
from istio_ca.root_ca import RootCA
from istio_ca.workload_certs import WorkloadCerts

PACKAGE_NAME = "istio-ca"
COMPONENTS = (MeshCA, MeshPKI, MeshMember, RootCA, ClusterCA, ExistingRoot, WorkloadCerts)
"""What the package serves, in the order its schema lists them."""


def schema_provider() -> ComponentProvider:
    """The provider `serve` runs, whose `schema` is what `pulumi package get-schema package/` prints."""
    _document_inherited_keys()
    return ComponentProvider(list(COMPONENTS), PACKAGE_NAME, None, __version__)


def serve() -> None:
    """Serve the components to the engine (the plugin's entry point)."""
    _document_inherited_keys()
    component_provider_host(list(COMPONENTS), PACKAGE_NAME, version=__version__)


def _document_inherited_keys() -> None:
    """The analyzer reads a key's docstring from the Args class itself only, so the keys RootCAArgs, ClusterCAArgs
    and WorkloadCertsArgs inherit (CertificateArgs') would reach the schema undocumented: look in the bases too.
    A TypedDict keeps no bases at runtime (Python 3.11), so they are read from its source."""
    own = analyzer.Analyzer.get_docstring
    if getattr(own, "reads_bases", False):
        return

    def get_docstring(self: analyzer.Analyzer, typ: type, name: str) -> Any:
        for cls in [typ, *_typed_dict_bases(typ)]:
            docstring = own(self, cls, name)
            if docstring:
                return docstring
        return None

    get_docstring.reads_bases = True  # type: ignore[attr-defined]
    analyzer.Analyzer.get_docstring = get_docstring  # type: ignore[method-assign]


def _typed_dict_bases(typ: type) -> list[type]:
    """The TypedDicts `typ` derives from, nearest first, by the names its class statement gives."""
    if not is_typeddict(typ):
        return []
    (statement,) = ast.parse(textwrap.dedent(inspect.getsource(typ))).body
    assert isinstance(statement, ast.ClassDef)
    module = sys.modules[typ.__module__]
    bases = [getattr(module, base.id) for base in statement.bases if isinstance(base, ast.Name)]
    bases = [base for base in bases if is_typeddict(base)]
    return bases + [ancestor for base in bases for ancestor in _typed_dict_bases(base)]
