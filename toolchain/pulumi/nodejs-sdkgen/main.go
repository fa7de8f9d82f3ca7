// Command pulumi-nodejs-sdkgen writes a TypeScript (Node.js) SDK for a Pulumi package schema.
//
//	pulumi-nodejs-sdkgen SCHEMA.json OUT_DIR
//
// It does what `pulumi package gen-sdk SCHEMA.json --language nodejs` does, without the Node.js
// language host that command asks to generate the code (this toolchain has none; see ../NOTES.md,
// "pulumi-nodejs-sdkgen"): it binds the schema and runs pkg/v3's codegen/nodejs GeneratePackage,
// the generator the upstream host runs, in-process.
//
// A schema that references another package's types (e.g. a kubernetes Provider as an input) needs
// that package's schema to bind. It is loaded as the CLI loads it: from the provider plugin, found
// by the plugin host in $PULUMI_HOME/plugins or, as an ambient plugin, on PATH (so put the
// toolchain's providers/ directory on PATH, and leave PULUMI_IGNORE_AMBIENT_PLUGINS unset). Plugins
// are never downloaded. The loaded schema is cached in $PULUMI_HOME/schemas, as the CLI does.
//
// OUT_DIR must be absent or empty; it receives package.json, tsconfig.json, index.ts, one .ts file
// per resource and types/{input,output}.ts (the SDK's sources, not compiled).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
	pkghost "github.com/pulumi/pulumi/pkg/v3/host"
	"github.com/pulumi/pulumi/pkg/v3/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag"
	"github.com/pulumi/pulumi/sdk/v3/go/common/diag/colors"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/contract"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
)

const tool = "pulumi-nodejs-sdkgen"

func main() {
	showVersion := flag.Bool("version", false, "print the version of the Pulumi codegen this was built from and exit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: %s SCHEMA.json OUT_DIR\n", tool)
		flag.PrintDefaults()
	}
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	if flag.NArg() != 2 {
		flag.Usage()
		os.Exit(2)
	}
	count, err := run(flag.Arg(0), flag.Arg(1))
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", tool, err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "%s: wrote %d files to %s\n", tool, count, flag.Arg(1))
}

func run(schemaPath, outDir string) (int, error) {
	if err := checkOutDir(outDir); err != nil {
		return 0, err
	}
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		return 0, err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(raw, &spec); err != nil {
		return 0, fmt.Errorf("%s is not a package schema: %w", schemaPath, err)
	}

	// Offline by construction: a referenced package whose plugin is not installed is an error, never
	// a download.
	if err := os.Setenv("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", "true"); err != nil {
		return 0, err
	}
	sink := diag.DefaultSink(os.Stderr, os.Stderr, diag.FormatOptions{Color: colors.Never})
	ctx := context.Background()
	host, err := pkghost.New(ctx, sink, sink, nil, nil, schema.NewLoaderServerFromContext, nil, nil)
	if err != nil {
		return 0, fmt.Errorf("starting the plugin host: %w", err)
	}
	defer contract.IgnoreClose(host)
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	// Not NewContext: it would read the plugins and packages of a Pulumi.yaml above the working directory.
	pctx, err := plugin.NewContextWithRoot(ctx, sink, sink, host, wd, wd, nil, true, nil, nil, nil, nil, nil)
	if err != nil {
		return 0, fmt.Errorf("creating the plugin context: %w", err)
	}
	defer contract.IgnoreClose(pctx)
	loader := schema.NewPluginLoader(pctx)

	// As `pulumi package gen-sdk` binds it (cmd/pulumi/packages.BindSpec).
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{AllowDanglingReferences: true})
	if err != nil {
		return 0, fmt.Errorf("binding %s: %w", schemaPath, err)
	}
	for _, d := range diags {
		fmt.Fprintf(os.Stderr, "%s: %s\n", tool, d.Error())
	}
	if diags.HasErrors() {
		return 0, fmt.Errorf("binding %s: %w", schemaPath, errors.Join(diags.Errs()...))
	}

	files, err := nodejs.GeneratePackage(tool, pkg, nil, nil, false, loader)
	if err != nil {
		return 0, fmt.Errorf("generating the Node.js SDK: %w", err)
	}
	return len(files), writeFiles(outDir, files)
}

// checkOutDir refuses an OUT_DIR with files in it: the generator's files would mix with stale ones,
// and removing a directory the caller named is not ours to do.
func checkOutDir(outDir string) error {
	entries, err := os.ReadDir(outDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(entries) > 0 {
		return fmt.Errorf("%s is not empty; give a new or empty directory", outDir)
	}
	return nil
}

func writeFiles(outDir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		path := filepath.Join(outDir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, files[name], 0o644); err != nil { //nolint:gosec // an SDK's sources
			return err
		}
	}
	return nil
}
