// Command pylanghost is istio-ca's own minimal Python language host for the Pulumi CLI.
//
// It exists because the Go module proxy reachable from CI serves no version of the upstream
// module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 (see ../NOTES.md).
// build.sh compiles it as OUT_DIR/pulumi-language-python and copies the upstream executor script
// pulumi-language-python-exec (from the sdk/v3 module) next to it.
//
// It speaks the LanguageRuntime gRPC protocol of github.com/pulumi/pulumi/sdk/v3 and covers what a
// Python *program* and a Python *plugin* (component provider or policy pack) need: Handshake,
// GetPluginInfo, GetRequiredPackages, Run, RunPlugin, InstallDependencies (programs and plugins),
// About, GetProgramDependencies and Cancel. Virtualenv/toolchain handling is delegated to the sdk's
// python/toolchain package. Not covered (answer Unimplemented): code generation (convert, import,
// package gen-sdk), pulumi new prompts, Pack and Link; --attach-debugger is refused.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	sdk "github.com/pulumi/pulumi/sdk/v3"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/logging"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	"github.com/pulumi/pulumi/sdk/v3/go/common/version"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"github.com/pulumi/pulumi/sdk/v3/python/toolchain"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Exit code the executor script uses after it already printed an actionable error.
const exitAfterUserMessage = 32

// cliFlags is our command line: upstream's flags plus the legacy ones older engines still pass.
type cliFlags struct {
	tracing     string
	showVersion bool
	executor    string
	legacy      legacyFlags
	// engineAddress is the optional positional argument.
	engineAddress string
}

// legacyFlags are the start-up flags of engines built on sdk/v3 before v3.209.0 (pulumi-yaml
// v1.25.0 embeds v3.206.0): `-<key>=<value>` for each runtime option, then `-root=<abs root>`.
// Upstream's host has kept them as "[obsolete]" no-ops since it got ProgramInfo (pulumi#14654),
// because those engines send the same root and options in every request's ProgramInfo; before that
// -root and -virtualenv were its only source. So they are only defaults for a request that carries
// no ProgramInfo at all (see hostOptions).
type legacyFlags struct {
	root, virtualenv, toolchain, typechecker string
}

// parseFlags declares our flags on fs and parses args. Like upstream, an undeclared flag is an
// error: a legacy engine turns every runtime option key into a flag, so this also rejects an
// option key that Python does not know.
func parseFlags(fs *flag.FlagSet, args []string) (cliFlags, error) {
	var f cliFlags
	fs.StringVar(&f.tracing, "tracing", "", "Zipkin-compatible tracing endpoint (passed to the program)")
	fs.BoolVar(&f.showVersion, "version", false, "print the version and exit")
	fs.StringVar(&f.executor, "use-executor", "",
		"path of pulumi-language-python-exec (default: next to this binary)")
	fs.StringVar(&f.legacy.root, "root", "", "[legacy] project root, for requests without ProgramInfo")
	fs.StringVar(&f.legacy.virtualenv, "virtualenv", "",
		"[legacy] runtime option virtualenv, for requests without ProgramInfo")
	fs.StringVar(&f.legacy.toolchain, "toolchain", "",
		"[legacy] runtime option toolchain, for requests without ProgramInfo")
	fs.StringVar(&f.legacy.typechecker, "typechecker", "",
		"[legacy] runtime option typechecker, for requests without ProgramInfo")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	// The engine passes its address as the first positional argument (older protocol); newer
	// engines may instead call Handshake.
	if fs.NArg() > 0 {
		f.engineAddress = fs.Arg(0)
	}
	return f, nil
}

func main() {
	flags, err := parseFlags(flag.CommandLine, os.Args[1:])
	if err != nil {
		cmdutil.Exit(err) // flag.CommandLine exits on a parse error; this is belt and braces
	}
	if flags.showVersion {
		fmt.Println(version.Version)
		return
	}
	logging.InitLogging(false, 0, false)

	executor := flags.executor
	if executor == "" {
		self, err := os.Executable()
		if err != nil {
			cmdutil.Exit(fmt.Errorf("could not determine current executable: %w", err))
		}
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		executor = filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	}
	if _, err := os.Stat(executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s: %w", executor, err))
	}

	host := newHost(executor, flags.tracing, flags.legacy)

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	done := make(chan bool)
	go func() {
		<-sigCtx.Done()
		stop()
		close(done)
	}()

	if flags.engineAddress != "" {
		host.engineAddress = flags.engineAddress
		if err := rpcutil.Healthcheck(sigCtx, host.engineAddress, 5*time.Minute, stop); err != nil {
			cmdutil.Exit(fmt.Errorf("could not start health check: %w", err))
		}
	}

	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: done,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterLanguageRuntimeServer(srv, host)
			return nil
		},
		Options: rpcutil.TracingServerInterceptorOptions(nil),
	})
	if err != nil {
		cmdutil.Exit(fmt.Errorf("could not start language host gRPC server: %w", err))
	}
	// The CLI reads the port from our first line of stdout.
	fmt.Printf("%d\n", handle.Port)
	if err := <-handle.Done; err != nil {
		cmdutil.Exit(fmt.Errorf("language host stopped serving: %w", err))
	}
}

type pyHost struct {
	pulumirpc.UnimplementedLanguageRuntimeServer

	exec          string
	tracing       string
	legacy        legacyFlags
	engineAddress string
	cancelCtx     context.Context
	cancel        context.CancelFunc
}

// newHost is a host that runs programs through the executor script exec.
func newHost(exec, tracing string, legacy legacyFlags) *pyHost {
	h := &pyHost{exec: exec, tracing: tracing, legacy: legacy}
	h.cancelCtx, h.cancel = context.WithCancel(context.Background())
	return h
}

// hostOptions resolves the toolchain options of one request: its ProgramInfo when it has one, else
// the legacy start-up flags (an engine that sends no ProgramInfo only had those). isPlugin is true
// for a plugin that must run in a virtualenv of its own (not for policy packs, see parseOptions).
func (h *pyHost) hostOptions(info *pulumirpc.ProgramInfo, isPlugin bool) (toolchain.PythonOptions, error) {
	if info != nil {
		raw := map[string]any{}
		if info.GetOptions() != nil {
			raw = info.GetOptions().AsMap()
		}
		return parseOptions(info.GetRootDirectory(), info.GetProgramDirectory(), raw, isPlugin)
	}
	raw := map[string]any{}
	for key, value := range map[string]string{
		"virtualenv": h.legacy.virtualenv, "toolchain": h.legacy.toolchain, "typechecker": h.legacy.typechecker,
	} {
		if value != "" {
			raw[key] = value
		}
	}
	if _, ok := raw["toolchain"]; !ok {
		// Without a program directory there is nowhere to look for uv.lock or poetry.lock.
		raw["toolchain"] = "pip"
	}
	return parseOptions(h.legacy.root, h.legacy.root, raw, isPlugin)
}

// parseOptions turns Pulumi.yaml/PulumiPlugin.yaml `runtime.options` into toolchain options. A
// plugin with the pip (or automatic) toolchain and no virtualenv option gets "venv", as upstream
// does: plugins never run in the ambient Python, unlike programs and policy packs, which may.
func parseOptions(root, programDir string, raw map[string]any, isPlugin bool) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{Root: root, ProgramDir: programDir}
	opts, err := parseOptionValues(opts, raw)
	if err != nil {
		return opts, err
	}
	if isPlugin && opts.Virtualenv == "" && (opts.Toolchain == toolchain.Pip || opts.Toolchain == toolchain.Auto) {
		opts.Virtualenv = "venv"
	}
	return opts, nil
}

// parseOptionValues sets the virtualenv, toolchain and typechecker options in raw on opts.
func parseOptionValues(opts toolchain.PythonOptions, raw map[string]any) (toolchain.PythonOptions, error) {
	str := func(key string) (string, error) {
		v, ok := raw[key]
		if !ok {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("runtime option %q must be a string", key)
		}
		return s, nil
	}
	var err error
	if opts.Virtualenv, err = str("virtualenv"); err != nil {
		return opts, err
	}
	tc, err := str("toolchain")
	if err != nil {
		return opts, err
	}
	switch tc {
	case "":
	case "pip":
		opts.Toolchain = toolchain.Pip
	case "poetry":
		opts.Toolchain = toolchain.Poetry
	case "uv":
		opts.Toolchain = toolchain.Uv
	default:
		return opts, fmt.Errorf("unsupported toolchain option: %s", tc)
	}
	checker, err := str("typechecker")
	if err != nil {
		return opts, err
	}
	switch checker {
	case "":
	case "mypy":
		opts.Typechecker = toolchain.TypeCheckerMypy
	case "pyright":
		opts.Typechecker = toolchain.TypeCheckerPyright
	default:
		return opts, fmt.Errorf("unsupported typechecker option: %s", checker)
	}
	return opts, nil
}

func (h *pyHost) Handshake(ctx context.Context,
	req *pulumirpc.LanguageHandshakeRequest,
) (*pulumirpc.LanguageHandshakeResponse, error) {
	h.engineAddress = req.GetEngineAddress()
	return &pulumirpc.LanguageHandshakeResponse{}, nil
}

func (h *pyHost) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: version.Version}, nil
}

func (h *pyHost) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	h.cancel()
	return &emptypb.Empty{}, nil
}

// listPluginsScript prints, for every installed distribution that ships a pulumi-plugin.json (or
// whose name starts with "pulumi-"), its name, version and the parsed pulumi-plugin.json.
const listPluginsScript = `import importlib.metadata as md, json, os
out = []
for dist in md.distributions():
    name = dist.metadata["Name"] or ""
    meta = None
    for f in dist.files or []:
        if f.name == "pulumi-plugin.json":
            try:
                with open(dist.locate_file(f)) as fh:
                    meta = json.load(fh)
            except Exception:
                pass
            break
    if meta is not None or name.lower().startswith("pulumi-"):
        out.append({"name": name, "version": dist.version, "plugin": meta})
print(json.dumps(out))
`

type pyDist struct {
	Name    string                   `json:"name"`
	Version string                   `json:"version"`
	Plugin  *plugin.PulumiPluginJSON `json:"plugin"`
}

var plainVersion = regexp.MustCompile(`^\d+(\.\d+){0,2}$`)

func (h *pyHost) GetRequiredPackages(ctx context.Context,
	req *pulumirpc.GetRequiredPackagesRequest,
) (*pulumirpc.GetRequiredPackagesResponse, error) {
	_, tc, err := h.validatedToolchain(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	cmd, err := tc.Command(ctx, "-c", listPluginsScript)
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("listing installed Pulumi packages: %w", err)
	}
	var dists []pyDist
	if err := json.Unmarshal(out, &dists); err != nil {
		return nil, fmt.Errorf("parsing installed Pulumi packages: %w", err)
	}
	resp := &pulumirpc.GetRequiredPackagesResponse{}
	for _, d := range dists {
		lname := strings.ToLower(d.Name)
		if lname == "pulumi-policy" || lname == "pulumi-esc-sdk" {
			continue // no plugin behind these
		}
		dep := &pulumirpc.PackageDependency{Kind: "resource"}
		if p := d.Plugin; p != nil {
			if !p.Resource {
				continue
			}
			dep.Name, dep.Version, dep.Server = p.Name, p.Version, p.Server
			if x := p.Parameterization; x != nil {
				dep.Parameterization = &pulumirpc.PackageParameterization{
					Name: x.Name, Version: x.Version, Value: x.Value,
				}
			}
			if x := p.ExtensionParameterization; x != nil {
				dep.Extension = &pulumirpc.PackageParameterization{
					Name: x.Name, Version: x.Version, Value: x.Value,
				}
			}
		}
		if dep.Name == "" {
			dep.Name = strings.TrimPrefix(lname, "pulumi-")
		}
		if dep.Version == "" {
			// Only plain N[.N[.N]] package versions map unambiguously onto a plugin version.
			if !plainVersion.MatchString(d.Version) {
				logging.V(5).Infof("skipping %s: cannot derive plugin version from %q", d.Name, d.Version)
				continue
			}
			v := d.Version
			for strings.Count(v, ".") < 2 {
				v += ".0"
			}
			dep.Version = v
		}
		if !strings.HasPrefix(dep.Version, "v") {
			dep.Version = "v" + dep.Version
		}
		resp.Packages = append(resp.Packages, dep)
	}
	return resp, nil
}

// Run runs the Python program once for the engine: resolve and check its virtualenv, build the
// executor's arguments and environment, run the optional type checker, then run the program and
// map its exit status onto the response.
func (h *pyHost) Run(ctx context.Context, req *pulumirpc.RunRequest) (*pulumirpc.RunResponse, error) {
	if req.GetAttachDebugger() {
		return &pulumirpc.RunResponse{Error: "this language host does not support --attach-debugger"}, nil
	}
	opts, tc, err := h.validatedToolchain(ctx, req.GetInfo())
	if err != nil {
		return nil, err
	}
	args := h.executorArgs(req)
	env, err := programEnv(req)
	if err != nil {
		return nil, err
	}
	if err := runTypechecker(ctx, tc, opts, req.GetInfo().GetProgramDirectory()); err != nil {
		return nil, err
	}
	return h.runProgram(ctx, tc, args, env)
}

// validatedToolchain resolves the program's Python toolchain from its runtime options and checks
// that its virtualenv is usable.
func (h *pyHost) validatedToolchain(ctx context.Context,
	info *pulumirpc.ProgramInfo,
) (toolchain.PythonOptions, toolchain.Toolchain, error) {
	opts, err := h.hostOptions(info, false)
	if err != nil {
		return opts, nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return opts, nil, err
	}
	if err := tc.ValidateVenv(ctx); err != nil {
		return opts, nil, err
	}
	return opts, tc, nil
}

// executorArgs is the command line of pulumi-language-python-exec, as upstream's host builds it:
// the executor script, a --flag value pair for every non-empty setting, the entry point (default
// ".") and the program's own arguments.
func (h *pyHost) executorArgs(req *pulumirpc.RunRequest) []string {
	args := []string{h.exec}
	flagArg := func(name, value string) {
		if value != "" {
			args = append(args, "--"+name, value)
		}
	}
	flagArg("monitor", req.GetMonitorAddress())
	flagArg("engine", h.engineAddress)
	flagArg("project", req.GetProject())
	flagArg("root_directory", req.GetInfo().GetRootDirectory())
	flagArg("stack", req.GetStack())
	flagArg("pwd", req.GetPwd())
	flagArg("dry_run", strconv.FormatBool(req.GetDryRun()))
	flagArg("parallel", strconv.Itoa(int(req.GetParallel())))
	flagArg("tracing", h.tracing)
	flagArg("organization", req.GetOrganization())
	entry := req.GetInfo().GetEntryPoint()
	if entry == "" {
		entry = "."
	}
	args = append(args, entry)
	return append(args, req.GetArgs()...)
}

// programEnv is what the program's environment gets on top of ours: the stack config as JSON in
// PULUMI_CONFIG (when there is any) and the secret config keys in PULUMI_CONFIG_SECRET_KEYS
// (always, "[]" when none).
func programEnv(req *pulumirpc.RunRequest) ([]string, error) {
	env := []string{}
	if cfg := req.GetConfig(); cfg != nil {
		b, err := json.Marshal(cfg)
		if err != nil {
			return nil, fmt.Errorf("serializing config: %w", err)
		}
		env = append(env, "PULUMI_CONFIG="+string(b))
	}
	secretKeys := req.GetConfigSecretKeys()
	if secretKeys == nil {
		secretKeys = []string{}
	}
	b, err := json.Marshal(secretKeys)
	if err != nil {
		return nil, fmt.Errorf("serializing secret config keys: %w", err)
	}
	return append(env, "PULUMI_CONFIG_SECRET_KEYS="+string(b)), nil
}

// runTypechecker runs the type checker the runtime options name (none by default) over the program
// directory; its output goes to ours, and a failure fails the run before the program starts.
func runTypechecker(ctx context.Context, tc toolchain.Toolchain,
	opts toolchain.PythonOptions, programDir string,
) error {
	if opts.Typechecker == toolchain.TypeCheckerNone {
		return nil
	}
	checker := toolchain.TypeCheckerName(opts.Typechecker)
	checkArgs := []string{}
	if opts.Typechecker == toolchain.TypeCheckerMypy {
		// Keep mypy out of the virtualenv when it lives inside the program directory.
		if venv, err := tc.VirtualEnvPath(ctx); err == nil && venv != "" {
			if rel, err := filepath.Rel(programDir, venv); err == nil {
				checkArgs = append(checkArgs, "--exclude", rel)
			}
		}
	}
	checkArgs = append(checkArgs, programDir)
	cmd, err := tc.ModuleCommand(ctx, checker, checkArgs...)
	if err != nil {
		return err
	}
	cmd.Dir = programDir
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s failed: %w", checker, err)
	}
	return nil
}

// runProgram runs the executor with args and env (added to ours) until it exits. When the engine
// calls Cancel or the request's context ends, the program gets SIGINT (SIGKILL if that cannot be
// sent) and 5 seconds to finish.
func (h *pyHost) runProgram(ctx context.Context, tc toolchain.Toolchain,
	args, env []string,
) (*pulumirpc.RunResponse, error) {
	runCtx, runCancel := context.WithCancel(h.cancelCtx)
	defer runCancel()
	context.AfterFunc(ctx, runCancel)
	cmd, err := tc.Command(runCtx, args...)
	if err != nil {
		return nil, err
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.Cancel = func() error {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			return cmd.Process.Kill()
		}
		return nil
	}
	cmd.WaitDelay = 5 * time.Second
	return runResponse(cmd.Run()), nil
}

// runResponse maps the executor's exit onto the engine's answer: success; exit code 32 (the program
// already printed an actionable error) is a bail; any other exit code or a failure to start is an
// error message.
func runResponse(runErr error) *pulumirpc.RunResponse {
	if runErr == nil {
		return &pulumirpc.RunResponse{}
	}
	_ = os.Stdout.Sync()
	_ = os.Stderr.Sync()
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.ExitStatus() == exitAfterUserMessage {
			return &pulumirpc.RunResponse{Bail: true}
		}
		return &pulumirpc.RunResponse{
			Error: fmt.Sprintf("program exited with non-zero exit code: %d", exitErr.ExitCode()),
		}
	}
	return &pulumirpc.RunResponse{
		Error: fmt.Sprintf("problem executing program (could not run language executor): %v", runErr),
	}
}

// InstallDependencies installs a program's or a plugin's requirements into its virtualenv (for a
// plugin by default its own "venv", see parseOptions), creating the virtualenv first. A plugin that
// is a buildable package (pyproject.toml with a build system) is itself installed too, so that
// RunPlugin can start it through pulumi.run.plugin.
func (h *pyHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	opts, err := h.hostOptions(req.GetInfo(), req.GetIsPlugin())
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	stdout, stderr, _ = serialized(stdout, stderr)
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	ctx, dir := server.Context(), req.GetInfo().GetProgramDirectory()
	useVersionTools := req.GetUseLanguageVersionTools()
	fmt.Fprintf(stdout, "Installing dependencies...\n\n")
	if req.GetIsPlugin() {
		buildable, err := toolchain.IsBuildablePackage(dir)
		if err != nil {
			return fmt.Errorf("checking if plugin is a buildable package: %w", err)
		}
		if buildable {
			if err := tc.InstallPackage(ctx, dir, useVersionTools, true, stdout, stderr); err != nil {
				return err
			}
		}
	}
	if err := tc.InstallDependencies(ctx, dir, useVersionTools, true, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Finished installing dependencies\n\n")
	return closer.Close()
}

// serialized wraps two writers that share one gRPC stream so that only one writes at a time:
// exec.Cmd copies a child's stdout and stderr on two goroutines, and a gRPC stream must not be
// sent on from two goroutines at once. Other sends on the stream must hold the returned lock.
func serialized(stdout, stderr io.Writer) (io.Writer, io.Writer, *sync.Mutex) {
	mu := &sync.Mutex{}
	return &lockedWriter{mu: mu, w: stdout}, &lockedWriter{mu: mu, w: stderr}, mu
}

// lockedWriter writes to w while holding mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

// Write writes p to the underlying writer under the shared lock.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// RunPlugin runs a Python plugin for the engine, as upstream's host does: a resource plugin (a
// component provider) is `python <dir> args...` in the plugin's own virtualenv, a policy pack
// (kind analyzer) is `python -u -m pulumi.policy args... <dir>` started behind the sdk's policy
// proxy, and a buildable package without __main__.py is `python -m pulumi.run.plugin <name> args...`.
// Its stdout and stderr stream to the engine, then its exit code.
func (h *pyHost) RunPlugin(req *pulumirpc.RunPluginRequest, server pulumirpc.LanguageRuntime_RunPluginServer) error {
	if req.GetAttachDebugger() {
		return errors.New("this language host does not support --attach-debugger")
	}
	ctx := server.Context()
	analyzer := req.GetKind() == string(apitype.AnalyzerPlugin)
	opts, err := h.hostOptions(req.GetInfo(), !analyzer)
	if err != nil {
		return err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	// Upstream skips this check and then fails on a missing python binary; the sdk's error says
	// how to create the virtualenv.
	if err := tc.ValidateVenv(ctx); err != nil {
		return err
	}
	cmd, err := pluginCommand(ctx, tc, opts, req)
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeRunPluginStreams(server, false)
	if err != nil {
		return err
	}
	defer closer.Close()
	stdout, stderr, sendLock := serialized(stdout, stderr)
	// Start from our environment: the sdk's Command leaves Env nil for the ambient Python, and
	// appending to a nil Env would hand the plugin nothing but the engine's variables.
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if analyzer {
		err = runPolicyPack(ctx, cmd, req.GetEnv(), stdout)
	} else {
		cmd.Env = append(cmd.Env, req.GetEnv()...)
		err = cmd.Run()
	}
	code, err := pluginExitCode(err)
	if err != nil {
		return err
	}
	if err := closer.Close(); err != nil {
		return err
	}
	// The engine stops reading at the exit code, so it goes last; the policy proxy may still be
	// copying a last chunk of the pack's stdout, hence the lock.
	sendLock.Lock()
	defer sendLock.Unlock()
	return server.Send(&pulumirpc.RunPluginResponse{Output: &pulumirpc.RunPluginResponse_Exitcode{Exitcode: code}})
}

// pluginCommand is the plugin's command line and working directory (see RunPlugin). A policy pack
// runs in its own directory, as the retired pulumi-analyzer-python-policy shim ran it; any other
// plugin runs in the engine's working directory.
func pluginCommand(ctx context.Context, tc toolchain.Toolchain,
	opts toolchain.PythonOptions, req *pulumirpc.RunPluginRequest,
) (*exec.Cmd, error) {
	dir := req.GetInfo().GetProgramDirectory()
	module, err := pluginRunModuleName(ctx, tc, opts.Root, dir)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch {
	case module != "":
		cmd, err = tc.ModuleCommand(ctx, "pulumi.run.plugin", append([]string{module}, req.GetArgs()...)...)
	case req.GetKind() == string(apitype.AnalyzerPlugin):
		// The directory goes last for policy packs and first for everything else.
		args := append([]string{"-u", "-m", "pulumi.policy"}, req.GetArgs()...)
		cmd, err = tc.Command(ctx, append(args, dir)...)
	default:
		cmd, err = tc.Command(ctx, append([]string{dir}, req.GetArgs()...)...)
	}
	if err != nil {
		return nil, err
	}
	cmd.Dir = req.GetPwd()
	if req.GetKind() == string(apitype.AnalyzerPlugin) {
		cmd.Dir = dir
	}
	return cmd, nil
}

// pluginRunModuleName is the package name to hand `python -m pulumi.run.plugin` when the plugin
// runs that way: it has no __main__.py, its root is a buildable package, and its pulumi SDK has
// pulumi.run.plugin (older SDKs do not). Otherwise it is "" and the directory runs as a script.
func pluginRunModuleName(ctx context.Context, tc toolchain.Toolchain, root, dir string) (string, error) {
	if _, err := os.Stat(filepath.Join(dir, "__main__.py")); err == nil {
		return "", nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("looking for __main__.py: %w", err)
	}
	check, err := tc.Command(ctx, "-c", "import pulumi.run.plugin")
	if err != nil {
		return "", err
	}
	if out, err := check.CombinedOutput(); err != nil && strings.Contains(string(out), "ModuleNotFoundError") {
		return "", nil
	}
	buildable, err := toolchain.IsBuildablePackage(root)
	if err != nil {
		return "", fmt.Errorf("checking if plugin is a buildable package: %w", err)
	}
	if !buildable {
		return "", errors.New("plugin is not runnable, it provides neither __main__.py nor a buildable pyproject.toml")
	}
	pyproject, err := toolchain.LoadPyproject(root)
	if err != nil {
		return "", fmt.Errorf("loading pyproject: %w", err)
	}
	return pyproject.Project.Name, nil
}

// runPolicyPack runs a policy pack behind the sdk's PolicyProxy: the engine talks to the proxy
// first (its port is our first stdout line) and sends the stack's configuration, which
// pulumi-policy reads from the environment, so the pack can only start once that has arrived. The
// proxy then reads the pack's port from its stdout and forwards the engine's calls to it.
func runPolicyPack(ctx context.Context, cmd *exec.Cmd, env []string, stdout io.Writer) error {
	proxy, packStdout, err := sdk.NewPolicyProxy(ctx, stdout)
	if err != nil {
		return fmt.Errorf("could not start policy pack proxy: %w", err)
	}
	cmd.Stdout = packStdout
	cfg, err := proxy.AwaitConfiguration(ctx)
	if err != nil {
		return fmt.Errorf("could not get stack configuration: %w", err)
	}
	stackEnv, err := policyPackEnv(cfg)
	if err != nil {
		return err
	}
	cmd.Env = append(append(cmd.Env, stackEnv...), env...)
	if err := cmd.Start(); err != nil {
		// Unblock engine calls already waiting on the proxy for the pack.
		proxy.Abort(err)
		return err
	}
	if err := proxy.Attach(ctx, cmd); err != nil {
		return fmt.Errorf("could not attach policy pack proxy: %w", err)
	}
	return nil
}

// policyPackEnv is the stack's configuration as upstream's host passes it to a policy pack:
// PULUMI_ORGANIZATION, PULUMI_PROJECT, PULUMI_STACK (each when set), PULUMI_DRY_RUN and the config
// as JSON in PULUMI_CONFIG.
func policyPackEnv(cfg *pulumirpc.AnalyzerStackConfigureRequest) ([]string, error) {
	if cfg == nil {
		return nil, nil
	}
	env := []string{}
	for _, kv := range [][2]string{
		{"PULUMI_ORGANIZATION", cfg.GetOrganization()},
		{"PULUMI_PROJECT", cfg.GetProject()},
		{"PULUMI_STACK", cfg.GetStack()},
		{"PULUMI_DRY_RUN", strconv.FormatBool(cfg.GetDryRun())},
	} {
		if kv[1] != "" {
			env = append(env, kv[0]+"="+kv[1])
		}
	}
	if cfg.GetConfig() != nil {
		b, err := json.Marshal(cfg.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("could not marshal stack configuration: %w", err)
		}
		env = append(env, "PULUMI_CONFIG="+string(b))
	}
	return env, nil
}

// pluginExitCode maps how the plugin ended onto the exit code for the engine: 0, its exit status
// (-1 when a signal ended it), or an error when it could not be run at all.
func pluginExitCode(runErr error) (int32, error) {
	if runErr == nil {
		return 0, nil
	}
	var exitErr *exec.ExitError
	if errors.As(runErr, &exitErr) {
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok {
			return int32(ws.ExitStatus()), nil
		}
		return int32(exitErr.ExitCode()), nil
	}
	return 0, fmt.Errorf("problem executing plugin program (could not run language executor): %w", runErr)
}

func (h *pyHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	opts, err := h.hostOptions(req.GetInfo(), false)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	info, err := tc.About(ctx)
	if err != nil {
		return nil, err
	}
	return &pulumirpc.AboutResponse{
		Executable: info.PythonExecutable,
		Version:    info.PythonVersion.String(),
		Metadata: map[string]string{
			"toolchain":        toolchain.Name(opts.Toolchain),
			"toolchainVersion": info.ToolchainVersion.String(),
			"typechecker":      toolchain.TypeCheckerName(opts.Typechecker),
		},
	}, nil
}

func (h *pyHost) GetProgramDependencies(ctx context.Context,
	req *pulumirpc.GetProgramDependenciesRequest,
) (*pulumirpc.GetProgramDependenciesResponse, error) {
	opts, err := h.hostOptions(req.GetInfo(), false)
	if err != nil {
		return nil, err
	}
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return nil, err
	}
	deps, err := tc.ListPackages(ctx, req.GetTransitiveDependencies())
	if err != nil {
		return nil, fmt.Errorf("failed to get python dependencies: %w", err)
	}
	resp := &pulumirpc.GetProgramDependenciesResponse{}
	for _, d := range deps {
		resp.Dependencies = append(resp.Dependencies, &pulumirpc.DependencyInfo{Name: d.Name, Version: d.Version})
	}
	return resp, nil
}
