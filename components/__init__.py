"""istio-ca as a library: a shared root of trust for multi-cluster Istio, as Pulumi components.

MeshCA is the whole mesh in one component, with every rule the program applies; the others are its
parts, for a stack that wires its own. The source lives in the project's `components/` folder and
installs as `istio_ca`; it is imported under that one name everywhere (the program, the tests, a host stack).
"""

from istio_ca.cluster_ca import ClusterCA, ClusterCAArgs, HostCluster
from istio_ca.config_schema import (
    ClusterConfig,
    ExistingRootConfig,
    IntermediateConfig,
    KeyAlgorithm,
    MeshConfig,
    RootConfig,
    RootRotationConfig,
    RootRotationPhase,
    WorkloadConfig,
)
from istio_ca.existing_root import ExistingRoot, ExistingRootArgs
from istio_ca.mesh_ca import MeshCA, MeshCAArgs
from istio_ca.mesh_member import MeshMember, MeshMemberArgs
from istio_ca.mesh_pki import MeshPKI, MeshPKIArgs
from istio_ca.root_ca import RootCA, RootCAArgs, TrustedRootArgs
from istio_ca.validation import ConfigError
from istio_ca.workload_certs import WorkloadCerts, WorkloadCertsArgs

__version__ = "0.4.0"

__all__ = [
    "ClusterCA",
    "ClusterCAArgs",
    "ClusterConfig",
    "ConfigError",
    "ExistingRoot",
    "ExistingRootArgs",
    "ExistingRootConfig",
    "HostCluster",
    "IntermediateConfig",
    "KeyAlgorithm",
    "MeshCA",
    "MeshCAArgs",
    "MeshConfig",
    "MeshMember",
    "MeshMemberArgs",
    "MeshPKI",
    "MeshPKIArgs",
    "RootCA",
    "RootCAArgs",
    "RootConfig",
    "RootRotationConfig",
    "RootRotationPhase",
    "TrustedRootArgs",
    "WorkloadCerts",
    "WorkloadCertsArgs",
    "WorkloadConfig",
    "__version__",
]
