// Package shim exposes the upstream Terraform TLS provider (a Plugin Framework
// provider that lives in an internal package) to the Pulumi bridge.
//
// Written for istio-ca's offline toolchain. The module path must stay
// github.com/hashicorp/terraform-provider-tls/shim: Go only lets packages under
// github.com/hashicorp/terraform-provider-tls/ import its internal packages.
package shim

import (
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"

	upstream "github.com/hashicorp/terraform-provider-tls/internal/provider"
)

// NewProvider returns a fresh instance of the upstream TLS provider.
func NewProvider() fwprovider.Provider {
	return upstream.New()
}
