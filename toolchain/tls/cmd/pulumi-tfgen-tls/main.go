// Command pulumi-tfgen-tls generates the Pulumi package schema for "tls".
//
//	pulumi-tfgen-tls schema --out DIR [--skip-docs] [--skip-examples]
//	    writes DIR/schema.json and DIR/bridge-metadata.json (bridge tfgen);
//	    set TLS_BRIDGE_METADATA=<file> to start from an existing metadata file.
//	pulumi-tfgen-tls embed-schema IN OUT
//	    rewrites schema IN as compact JSON with "version" set to the stamped
//	    provider version (tfgen leaves it out), for embedding in the plugin.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	pftfgen "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfgen"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"

	"istio-ca.local/toolchain/tls/provider"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "embed-schema" {
		if err := embedSchema(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "embed-schema:", err)
			os.Exit(1)
		}
		return
	}
	meta := []byte("{}")
	if p := os.Getenv("TLS_BRIDGE_METADATA"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		meta = b
	}
	pftfgen.Main("tls", provider.Info(meta))
}

func embedSchema(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: embed-schema IN OUT")
	}
	if provider.Version == "" {
		return fmt.Errorf("binary built without a version stamp")
	}
	in, err := os.ReadFile(args[0])
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(in, &spec); err != nil {
		return fmt.Errorf("parse %s: %w", args[0], err)
	}
	spec.Version = provider.Version
	out, err := json.Marshal(spec)
	if err != nil {
		return err
	}
	return os.WriteFile(args[1], out, 0o644)
}
