"""istio-ca: one root CA, and per cluster an intermediate CA in a `cacerts` Secret.

Stack config (stack_config.py) -> the mesh component (istio_ca.MeshCA, which holds every rule) -> outputs.
"""

from typing import cast

import pulumi

from istio_ca import MeshCA, MeshCAArgs
from istio_ca.cancellation import end_quietly_when_cancelled
from istio_ca.config_schema import MeshConfig
from istio_ca.validation import ConfigError
from stack_config import CONFIG_PREFIX, read_secret_paths, read_stack_config, refuse_plain_private_keys

end_quietly_when_cancelled()
config = read_stack_config()
refuse_plain_private_keys(config, read_secret_paths())
try:
    # The stack config is JSON as the user wrote it: MeshCA checks every key and value before it registers.
    mesh = MeshCA("mesh", MeshCAArgs(mesh=cast(MeshConfig, config)))
except ConfigError as error:
    # The component names its arguments; here they are this stack's config keys.
    raise type(error)(f"{CONFIG_PREFIX} config: {error}") from None

pulumi.export("rootCertPem", mesh.root_cert_pem)
pulumi.export("rootNotAfter", mesh.root_not_after)
pulumi.export("trustedRootsPem", mesh.trusted_roots_pem)
pulumi.export("rootGenerations", mesh.root_generations)
pulumi.export("rootSettings", mesh.root_settings)
pulumi.export("clusters", mesh.clusters)
if mesh.adopts_from_cluster:
    pulumi.export("adoptedRoot", mesh.adopted_root)
if mesh.workload_certs:
    pulumi.export("workloads", mesh.workloads)
    pulumi.export("workloadKeys", mesh.workload_keys)
