// Command pylanghost is istio-ca's own minimal Python language host for the Pulumi CLI.
//
// It exists because the Go module proxy reachable from CI serves no version of the upstream
// module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 (see ../NOTES.md).
// build.sh compiles it as OUT_DIR/pulumi-language-python and copies the upstream executor script
// pulumi-language-python-exec (from the sdk/v3 module) next to it.
//
// It speaks the LanguageRuntime gRPC protocol of github.com/pulumi/pulumi/sdk/v3 and covers what a
// Python *program* needs: Handshake, GetPluginInfo, GetRequiredPackages, Run, InstallDependencies,
// About, GetProgramDependencies and Cancel. Virtualenv/toolchain handling is delegated to the sdk's
// python/toolchain package. Not covered (answer Unimplemented): code generation (convert, import,
// package gen-sdk), Python component/policy plugins (RunPlugin), pulumi new prompts, Pack and Link.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

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

func main() {
	tracing := flag.String("tracing", "", "Zipkin-compatible tracing endpoint (passed to the program)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	executor := flag.String("use-executor", "", "path of pulumi-language-python-exec (default: next to this binary)")
	flag.Parse()
	if *showVersion {
		fmt.Println(version.Version)
		return
	}
	logging.InitLogging(false, 0, false)

	if *executor == "" {
		self, err := os.Executable()
		if err != nil {
			cmdutil.Exit(fmt.Errorf("could not determine current executable: %w", err))
		}
		if resolved, err := filepath.EvalSymlinks(self); err == nil {
			self = resolved
		}
		*executor = filepath.Join(filepath.Dir(self), "pulumi-language-python-exec")
	}
	if _, err := os.Stat(*executor); err != nil {
		cmdutil.Exit(fmt.Errorf("missing executor %s: %w", *executor, err))
	}

	host := &pyHost{exec: *executor, tracing: *tracing}
	host.cancelCtx, host.cancel = context.WithCancel(context.Background())

	sigCtx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	done := make(chan bool)
	go func() {
		<-sigCtx.Done()
		stop()
		close(done)
	}()

	// The engine passes its address as the first positional argument (older protocol); newer
	// engines may instead call Handshake.
	if args := flag.Args(); len(args) > 0 {
		host.engineAddress = args[0]
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
	engineAddress string
	cancelCtx     context.Context
	cancel        context.CancelFunc
}

// options turns Pulumi.yaml `runtime.options` into toolchain options.
func options(info *pulumirpc.ProgramInfo) (toolchain.PythonOptions, error) {
	opts := toolchain.PythonOptions{}
	if info == nil {
		opts.Toolchain = toolchain.Pip
		return opts, nil
	}
	opts.Root, opts.ProgramDir = info.GetRootDirectory(), info.GetProgramDirectory()
	raw := map[string]any{}
	if info.GetOptions() != nil {
		raw = info.GetOptions().AsMap()
	}
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
	_, tc, err := validatedToolchain(ctx, req.GetInfo())
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
	opts, tc, err := validatedToolchain(ctx, req.GetInfo())
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
func validatedToolchain(ctx context.Context,
	info *pulumirpc.ProgramInfo,
) (toolchain.PythonOptions, toolchain.Toolchain, error) {
	opts, err := options(info)
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

func (h *pyHost) InstallDependencies(req *pulumirpc.InstallDependenciesRequest,
	server pulumirpc.LanguageRuntime_InstallDependenciesServer,
) error {
	if req.GetIsPlugin() {
		return errors.New("this language host does not support installing Python plugins")
	}
	opts, err := options(req.GetInfo())
	if err != nil {
		return err
	}
	closer, stdout, stderr, err := rpcutil.MakeInstallDependenciesStreams(server, req.GetIsTerminal())
	if err != nil {
		return err
	}
	defer closer.Close()
	tc, err := toolchain.ResolveToolchain(opts)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Installing dependencies...\n\n")
	if err := tc.InstallDependencies(server.Context(), req.GetInfo().GetProgramDirectory(),
		req.GetUseLanguageVersionTools(), true, stdout, stderr); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Finished installing dependencies\n\n")
	return closer.Close()
}

func (h *pyHost) About(ctx context.Context, req *pulumirpc.AboutRequest) (*pulumirpc.AboutResponse, error) {
	opts, err := options(req.GetInfo())
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
	opts, err := options(req.GetInfo())
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
