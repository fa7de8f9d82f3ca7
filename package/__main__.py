"""istio-ca's components served to any language: the package `istio-ca`, whose schema Pulumi infers from the
components' typed arguments and outputs (`pulumi package get-schema package/`)."""

from istio_ca.component_package import serve

if __name__ == "__main__":
    serve()
