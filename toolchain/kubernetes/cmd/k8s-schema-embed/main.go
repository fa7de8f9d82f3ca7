// k8s-schema-embed produces the two files that pulumi-resource-kubernetes
// embeds, from the committed JSON files of the provider module:
//
//	k8s-schema-embed -version 4.25.0 -in <provider module>/cmd/pulumi-resource-kubernetes -out <scratch dir>
//
// schema-embed.json:            schema.json with "version" set, re-serialised compactly
// terraform-mapping-embed.json: terraform-mapping.json re-serialised compactly
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	version := flag.String("version", "", "provider version to write into the schema (no leading v)")
	in := flag.String("in", "", "directory holding schema.json and terraform-mapping.json")
	out := flag.String("out", "", "directory to write the *-embed.json files into")
	flag.Parse()
	if *version == "" || *in == "" || *out == "" {
		fail(fmt.Errorf("-version, -in and -out are required"))
	}

	raw, err := os.ReadFile(filepath.Join(*in, "schema.json"))
	fail(err)
	var spec schema.PackageSpec
	fail(json.Unmarshal(raw, &spec))
	spec.Version = *version
	b, err := json.Marshal(spec)
	fail(err)
	fail(os.WriteFile(filepath.Join(*out, "schema-embed.json"), b, 0o644))

	raw, err = os.ReadFile(filepath.Join(*in, "terraform-mapping.json"))
	fail(err)
	var mapping any
	fail(json.Unmarshal(raw, &mapping))
	b, err = json.Marshal(mapping)
	fail(err)
	fail(os.WriteFile(filepath.Join(*out, "terraform-mapping-embed.json"), b, 0o644))
}

func fail(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "k8s-schema-embed:", err)
		os.Exit(1)
	}
}
