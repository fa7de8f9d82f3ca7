// Command pulumi-resource-tls is the Pulumi resource plugin for the "tls"
// package.
//
// The two embedded files are produced at build time by build.sh (with
// pulumi-tfgen-tls) in a scratch directory outside the repository and are
// supplied to the compiler through `go build -overlay`; a plain `go build` of
// this package without that overlay fails on purpose.
package main

import (
	"context"
	_ "embed"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"

	"istio-ca.local/toolchain/tls/provider"
)

//go:embed schema-embed.json
var packageSchema []byte

//go:embed bridge-metadata.json
var bridgeMetadata []byte

func main() {
	meta := pftfbridge.ProviderMetadata{PackageSchema: packageSchema, BridgeMetadata: bridgeMetadata}
	pftfbridge.Main(context.Background(), "tls", provider.Info(bridgeMetadata), meta)
}
