// Package provider describes how the bridged Terraform TLS provider is exposed
// as the Pulumi "tls" package (tokens tls:index/<camelName>:<PascalName>), the
// shape the pulumi-tls Python SDK expects.
//
// Written for istio-ca's offline toolchain: the pulumi-tls provider module is
// not available from the Go module proxy reachable here, so this package
// configures the bridge directly (see ../NOTES.md).
package provider

import (
	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"

	"github.com/hashicorp/terraform-provider-tls/shim"
)

// Version is stamped at link time with
// -X istio-ca.local/toolchain/tls/provider.Version=<semver without "v">.
// The bridge refuses to start or generate a schema when it is empty.
var Version string

// Info returns the bridge configuration. bridgeMetadata is the content of the
// bridge-metadata.json produced by the schema generator ("{}" before the first
// generation).
func Info(bridgeMetadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pf.ShimProvider(shim.NewProvider()),
		Name:         "tls",
		Description:  "A Pulumi package to create TLS resources in Pulumi programs.",
		Keywords:     []string{"pulumi", "tls"},
		License:      "Apache-2.0",
		Homepage:     "https://pulumi.io",
		Repository:   "https://github.com/pulumi/pulumi-tls",
		GitHubOrg:    "hashicorp",
		Version:      Version,
		MetadataInfo: tfbridge.NewProviderMetadata(bridgeMetadata),

		// Language sections only matter for SDK generation; set so that the
		// schema the plugin reports resembles the published pulumi-tls one.
		JavaScript: &tfbridge.JavaScriptInfo{RespectSchemaVersion: true},
		Python:     pythonInfo(),
		Golang: &tfbridge.GolangInfo{
			ImportBasePath:                 "github.com/pulumi/pulumi-tls/sdk/v5/go/tls",
			GenerateResourceContainerTypes: true,
			RespectSchemaVersion:           true,
		},
		CSharp: &tfbridge.CSharpInfo{
			RespectSchemaVersion: true,
			PackageReferences:    map[string]string{"Pulumi": "3.*"},
			Namespaces:           map[string]string{"tls": "Tls"},
		},

		EnableZeroDefaultSchemaVersion: true,
		EnableAccurateBridgePreview:    true,
	}
	// tls_private_key -> tls:index/privateKey:PrivateKey, and so on.
	info.MustComputeTokens(tokens.SingleModule("tls_", "index", tokens.MakeStandard("tls")))
	return info
}

func pythonInfo() *tfbridge.PythonInfo {
	p := &tfbridge.PythonInfo{RespectSchemaVersion: true}
	p.PyProject.Enabled = true
	return p
}
