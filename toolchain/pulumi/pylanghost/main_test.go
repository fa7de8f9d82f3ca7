package main

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

// startHost serves h on a loopback port for the test and returns a client for it, so that the
// streaming RPCs go through real gRPC streams as they do under the CLI.
func startHost(t *testing.T, h *pyHost) pulumirpc.LanguageRuntimeClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pulumirpc.RegisterLanguageRuntimeServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return pulumirpc.NewLanguageRuntimeClient(conn)
}

// writeFiles writes name -> content under dir, creating parent directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// makeVenv creates a virtualenv without pip at path (fast: no ensurepip).
func makeVenv(t *testing.T, path string) {
	t.Helper()
	if out, err := exec.Command("python3", "-m", "venv", "--without-pip", path).CombinedOutput(); err != nil {
		t.Fatalf("python3 -m venv: %v\n%s", err, out)
	}
}

// pluginOutput is what a RunPlugin stream carried.
type pluginOutput struct {
	stdout, stderr strings.Builder
	exitCode       *int32
	// afterExit counts messages after the exit code (the engine would drop them).
	afterExit int
}

// collect reads a RunPlugin stream to its end; onStdout (if set) sees each stdout chunk first.
func collect(t *testing.T, stream pulumirpc.LanguageRuntime_RunPluginClient, onStdout func(string)) *pluginOutput {
	t.Helper()
	out := &pluginOutput{}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("RunPlugin stream: %v (stdout %q, stderr %q)", err, out.stdout.String(), out.stderr.String())
		}
		if out.exitCode != nil {
			out.afterExit++
		}
		switch o := msg.GetOutput().(type) {
		case *pulumirpc.RunPluginResponse_Stdout:
			if onStdout != nil {
				onStdout(string(o.Stdout))
			}
			out.stdout.Write(o.Stdout)
		case *pulumirpc.RunPluginResponse_Stderr:
			out.stderr.Write(o.Stderr)
		case *pulumirpc.RunPluginResponse_Exitcode:
			code := o.Exitcode
			out.exitCode = &code
		}
	}
}

// A resource plugin runs `python <dir> args...` in the plugin's default virtualenv "venv", in the
// engine's working directory with the request's environment added, and its stdout, stderr and exit
// code reach the engine in that order.
func TestRunPluginStreamsOutputAndExitCode(t *testing.T) {
	dir, pwd := t.TempDir(), t.TempDir()
	makeVenv(t, filepath.Join(dir, "venv"))
	writeFiles(t, dir, map[string]string{
		"PulumiPlugin.yaml": "runtime: python\n",
		"__main__.py": `import os, sys
print("hello from the plugin", sys.argv[1:], flush=True)
print("prefix=" + sys.prefix)
print("cwd=" + os.getcwd())
print("env=" + os.environ.get("DEMO_ENV", "<unset>"))
print("path-kept=" + str(bool(os.environ.get("PATH"))))
print("oops on stderr", file=sys.stderr)
sys.exit(int(os.environ.get("DEMO_EXIT", "0")))
`,
	})
	client := startHost(t, newHost("unused", "", legacyFlags{}))

	for _, want := range []int32{3, 0} {
		t.Run(fmt.Sprintf("exit %d", want), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			stream, err := client.RunPlugin(ctx, &pulumirpc.RunPluginRequest{
				Pwd:  pwd,
				Args: []string{"127.0.0.1:12345"},
				Env:  []string{"DEMO_ENV=from-engine", fmt.Sprintf("DEMO_EXIT=%d", want)},
				Kind: "resource",
				Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
			})
			if err != nil {
				t.Fatal(err)
			}
			out := collect(t, stream, nil)
			venv, _ := filepath.EvalSymlinks(filepath.Join(dir, "venv"))
			pwdReal, _ := filepath.EvalSymlinks(pwd)
			for _, line := range []string{
				"hello from the plugin ['127.0.0.1:12345']",
				"prefix=" + venv,
				"cwd=" + pwdReal,
				"env=from-engine",
				"path-kept=True",
			} {
				if !strings.Contains(out.stdout.String(), line+"\n") {
					t.Errorf("stdout lacks %q:\n%s", line, out.stdout.String())
				}
			}
			if out.stderr.String() != "oops on stderr\n" {
				t.Errorf("stderr = %q", out.stderr.String())
			}
			if out.exitCode == nil || *out.exitCode != want {
				t.Fatalf("exit code = %v, want %d", out.exitCode, want)
			}
			if out.afterExit != 0 {
				t.Errorf("%d messages after the exit code", out.afterExit)
			}
		})
	}
}

// A resource plugin whose virtualenv does not exist fails with the sdk's how-to-create-it error
// instead of a missing-binary error.
func TestRunPluginMissingVenv(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"__main__.py": "print('never')\n"})
	client := startHost(t, newHost("unused", "", legacyFlags{}))
	stream, err := client.RunPlugin(context.Background(), &pulumirpc.RunPluginRequest{
		Kind: "resource",
		Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if err == nil || !strings.Contains(err.Error(), "virtual environment") {
		t.Fatalf("want a virtualenv error, got %v", err)
	}
}

// fakeAnalyzer answers the proxy's ConfigureStack with Unimplemented, like an old policy pack.
type fakeAnalyzer struct {
	pulumirpc.UnimplementedAnalyzerServer
}

// A policy pack (kind analyzer) runs `python -u -m pulumi.policy args... <dir>` in its own
// directory with the ambient Python (no default virtualenv), behind the policy proxy: the engine
// first gets the proxy's port, sends the stack configuration, which the pack sees in its
// environment, and the proxy attaches to the port the pack prints.
func TestRunPluginPolicyPack(t *testing.T) {
	dir := t.TempDir()
	// A stand-in for pulumi-policy: `-m pulumi.policy` finds it in the working directory first.
	writeFiles(t, dir, map[string]string{
		"PulumiPolicy.yaml":         "runtime: python\n",
		"pulumi/__init__.py":        "",
		"pulumi/policy/__init__.py": "",
		"pulumi/policy/__main__.py": `import json, os, sys
print(os.environ["FAKE_PACK_PORT"], flush=True)
cfg = json.loads(os.environ["PULUMI_CONFIG"])
print("args=%s cwd=%s project=%s stack=%s org=%s dry=%s cfg=%s" % (sys.argv[1:], os.getcwd(),
      os.environ["PULUMI_PROJECT"], os.environ["PULUMI_STACK"], os.environ["PULUMI_ORGANIZATION"],
      os.environ["PULUMI_DRY_RUN"], cfg["proj:key"]), file=sys.stderr)
`,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pack := grpc.NewServer()
	pulumirpc.RegisterAnalyzerServer(pack, &fakeAnalyzer{})
	go func() { _ = pack.Serve(lis) }()
	defer pack.Stop()

	client := startHost(t, newHost("unused", "", legacyFlags{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := client.RunPlugin(ctx, &pulumirpc.RunPluginRequest{
		Pwd:  t.TempDir(),
		Args: []string{"127.0.0.1:12345"},
		Env:  []string{fmt.Sprintf("FAKE_PACK_PORT=%d", lis.Addr().(*net.TCPAddr).Port)},
		Kind: "analyzer",
		Info: &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	configured := false
	out := collect(t, stream, func(chunk string) {
		if configured {
			return
		}
		// The first stdout line is the proxy's port; the engine configures the stack through it.
		configured = true
		conn, err := grpc.NewClient("127.0.0.1:"+strings.TrimSpace(chunk),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		_, err = pulumirpc.NewAnalyzerClient(conn).ConfigureStack(ctx, &pulumirpc.AnalyzerStackConfigureRequest{
			Organization: "org", Project: "proj", Stack: "dev", DryRun: true,
			Config: map[string]string{"proj:key": "value"},
		})
		if err != nil {
			t.Fatalf("ConfigureStack via proxy: %v", err)
		}
	})
	dirReal, _ := filepath.EvalSymlinks(dir)
	want := fmt.Sprintf("args=['127.0.0.1:12345', '%s'] cwd=%s project=proj stack=dev org=org dry=true cfg=value\n",
		dir, dirReal)
	if out.stderr.String() != want {
		t.Errorf("stderr = %q, want %q", out.stderr.String(), want)
	}
	if out.exitCode == nil || *out.exitCode != 0 {
		t.Fatalf("exit code = %v, want 0 (stdout %q)", out.exitCode, out.stdout.String())
	}
}

// buildWheel writes a minimal pure-Python wheel of name==version with files to dir and returns its
// path. Wheels install without a build step or an index, which keeps the test offline.
func buildWheel(t *testing.T, dir, name, version string, files map[string]string) string {
	t.Helper()
	info := fmt.Sprintf("%s-%s.dist-info/", name, version)
	files[info+"METADATA"] = fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, version)
	files[info+"WHEEL"] = "Wheel-Version: 1.0\nGenerator: pylanghost-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	path := filepath.Join(dir, fmt.Sprintf("%s-%s-py3-none-any.whl", name, version))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw := zip.NewWriter(f)
	record := ""
	for fname, content := range files {
		w, err := zw.Create(fname)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
		sum := sha256.Sum256([]byte(content))
		record += fmt.Sprintf("%s,sha256=%s,%d\n", fname, base64.RawURLEncoding.EncodeToString(sum[:]), len(content))
	}
	w, err := zw.Create(info + "RECORD")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte(record + info + "RECORD,,\n"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// InstallDependencies for a plugin creates the plugin's own virtualenv (default "venv" in the
// plugin directory) and installs its requirements.txt into it.
func TestInstallDependenciesPlugin(t *testing.T) {
	dir, wheels := t.TempDir(), t.TempDir()
	demo := buildWheel(t, wheels, "demodep", "1.0", map[string]string{"demodep/__init__.py": "VALUE = 42\n"})
	// The sdk's pip step first runs `pip install --upgrade pip setuptools wheel`; with no index a
	// fresh virtualenv has pip (and setuptools before Python 3.12) but not wheel, so stand-ins are
	// offered (an installed newer version is kept over them).
	buildWheel(t, wheels, "wheel", "0.0.1", map[string]string{})
	buildWheel(t, wheels, "setuptools", "0.0.1", map[string]string{})
	t.Setenv("PIP_NO_INDEX", "1")
	t.Setenv("PIP_FIND_LINKS", wheels)
	writeFiles(t, dir, map[string]string{
		"PulumiPlugin.yaml": "runtime: python\n",
		"requirements.txt":  demo + "\n",
		"__main__.py":       "import demodep\n",
	})

	client := startHost(t, newHost("unused", "", legacyFlags{}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := client.InstallDependencies(ctx, &pulumirpc.InstallDependenciesRequest{
		IsPlugin: true,
		Info:     &pulumirpc.ProgramInfo{RootDirectory: dir, ProgramDirectory: dir, EntryPoint: "."},
	})
	if err != nil {
		t.Fatal(err)
	}
	var output strings.Builder
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("InstallDependencies: %v\n%s", err, output.String())
		}
		output.Write(msg.GetStdout())
		output.Write(msg.GetStderr())
	}
	if !strings.Contains(output.String(), "Finished installing dependencies") {
		t.Errorf("output lacks the finish line:\n%s", output.String())
	}
	got, err := exec.Command(filepath.Join(dir, "venv", "bin", "python"), "-c",
		"import demodep; print(demodep.VALUE)").CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "42" {
		t.Fatalf("demodep in the plugin's venv: %v %s\ninstall output:\n%s", err, got, output.String())
	}
}

// The flags a legacy engine (pulumi-yaml v1.25.0's sdk v3.206.0) passes parse, and they are the
// options of a request without ProgramInfo only.
func TestLegacyFlags(t *testing.T) {
	fs := flag.NewFlagSet("pulumi-language-python", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f, err := parseFlags(fs, []string{
		"-virtualenv=.venv", "-toolchain=pip", "-typechecker=mypy", "-root=/proj", "-tracing=http://t", "127.0.0.1:4242",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := legacyFlags{root: "/proj", virtualenv: ".venv", toolchain: "pip", typechecker: "mypy"}
	if f.legacy != want || f.engineAddress != "127.0.0.1:4242" || f.tracing != "http://t" {
		t.Fatalf("parsed %+v", f)
	}
	h := newHost("unused", f.tracing, f.legacy)

	opts, err := h.hostOptions(nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Root != "/proj" || opts.ProgramDir != "/proj" || opts.Virtualenv != ".venv" ||
		opts.Toolchain != toolchain.Pip || opts.Typechecker != toolchain.TypeCheckerMypy {
		t.Errorf("without ProgramInfo: %+v", opts)
	}

	// A request's ProgramInfo wins whole: a legacy engine sends the same options there.
	opts, err = h.hostOptions(&pulumirpc.ProgramInfo{RootDirectory: "/other", ProgramDirectory: "/other"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Root != "/other" || opts.Virtualenv != "" || opts.Toolchain != toolchain.Auto ||
		opts.Typechecker != toolchain.TypeCheckerNone {
		t.Errorf("with ProgramInfo: %+v", opts)
	}

	// No flags at all: pip and the ambient Python, as before the flags existed.
	opts, err = newHost("unused", "", legacyFlags{}).hostOptions(nil, false)
	if err != nil || opts.Toolchain != toolchain.Pip || opts.Virtualenv != "" {
		t.Errorf("no flags: %+v %v", opts, err)
	}

	// Like upstream's, our host refuses a flag it does not declare.
	fs = flag.NewFlagSet("pulumi-language-python", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseFlags(fs, []string{"-binary=x"}); err == nil {
		t.Error("-binary was accepted")
	}
}

// parseOptions maps runtime options onto toolchain options, with a "venv" default for plugins of
// the pip or automatic toolchain only.
func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		name     string
		raw      map[string]any
		isPlugin bool
		want     toolchain.PythonOptions
		err      string
	}{
		{name: "program defaults", raw: map[string]any{}, want: toolchain.PythonOptions{}},
		{name: "plugin defaults", raw: map[string]any{}, isPlugin: true,
			want: toolchain.PythonOptions{Virtualenv: "venv"}},
		{name: "plugin pip", raw: map[string]any{"toolchain": "pip"}, isPlugin: true,
			want: toolchain.PythonOptions{Virtualenv: "venv", Toolchain: toolchain.Pip}},
		{name: "plugin own venv", raw: map[string]any{"virtualenv": "/abs/env"}, isPlugin: true,
			want: toolchain.PythonOptions{Virtualenv: "/abs/env"}},
		{name: "plugin uv", raw: map[string]any{"toolchain": "uv"}, isPlugin: true,
			want: toolchain.PythonOptions{Toolchain: toolchain.Uv}},
		{name: "plugin poetry", raw: map[string]any{"toolchain": "poetry"}, isPlugin: true,
			want: toolchain.PythonOptions{Toolchain: toolchain.Poetry}},
		{name: "typechecker", raw: map[string]any{"typechecker": "pyright", "virtualenv": "v"},
			want: toolchain.PythonOptions{Typechecker: toolchain.TypeCheckerPyright, Virtualenv: "v"}},
		{name: "bad toolchain", raw: map[string]any{"toolchain": "conda"}, err: "unsupported toolchain option: conda"},
		{name: "bad typechecker", raw: map[string]any{"typechecker": "pytype"},
			err: "unsupported typechecker option: pytype"},
		{name: "non-string", raw: map[string]any{"virtualenv": true}, err: `runtime option "virtualenv" must be a string`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOptions("/root", "/root/prog", tc.raw, tc.isPlugin)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want.Root, tc.want.ProgramDir = "/root", "/root/prog"
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}

	// Through a request's ProgramInfo (a structpb, as the engine sends it).
	raw, err := structpb.NewStruct(map[string]any{"virtualenv": "env", "toolchain": "pip"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := newHost("unused", "", legacyFlags{}).hostOptions(
		&pulumirpc.ProgramInfo{RootDirectory: "/r", ProgramDirectory: "/r/p", Options: raw}, true)
	want := toolchain.PythonOptions{Root: "/r", ProgramDir: "/r/p", Virtualenv: "env", Toolchain: toolchain.Pip}
	if err != nil || got != want {
		t.Errorf("hostOptions = %+v, %v", got, err)
	}
}
