"""istio-ca as a library: a shared root of trust for multi-cluster Istio, as Pulumi components.

The source lives in the project's `components/` folder and installs as `istio_ca`; it is imported under
that one name everywhere (the program, the tests, a host stack).
"""

from istio_ca.cluster_ca import ClusterCA, ClusterCAArgs
from istio_ca.existing_root import ExistingRoot, ExistingRootArgs
from istio_ca.root_ca import RootCA, RootCAArgs, RootGenerationArgs
from istio_ca.workload_certs import WorkloadCerts, WorkloadCertsArgs

__version__ = "0.2.0"

__all__ = [
    "ClusterCA",
    "ClusterCAArgs",
    "ExistingRoot",
    "ExistingRootArgs",
    "RootCA",
    "RootCAArgs",
    "RootGenerationArgs",
    "WorkloadCerts",
    "WorkloadCertsArgs",
    "__version__",
]
