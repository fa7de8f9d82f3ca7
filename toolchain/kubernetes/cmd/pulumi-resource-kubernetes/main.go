// Entry point for pulumi-resource-kubernetes, written for this repo (not an
// upstream copy). It serves the provider from the pinned
// github.com/pulumi/pulumi-kubernetes/provider/v4 module.
//
// The two embedded JSON files are NOT committed: build.sh generates them in a
// scratch directory outside the repo and maps them into this package with
// `go build -overlay`, so building this package without build.sh fails with
// "pattern schema-embed.json: no matching files found".
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var schemaJSON []byte

//go:embed terraform-mapping-embed.json
var terraformMappingJSON []byte

func main() {
	provider.Serve("kubernetes", version.Version, schemaJSON, terraformMappingJSON)
}
