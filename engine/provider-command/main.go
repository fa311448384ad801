// Command pulumi-resource-command is ha-web-lab's own stand-in for the
// registry's command provider (pulumi-command 1.2.1), which the Go module
// proxy we can reach refuses. It implements the part of that provider's
// resource API the lab program uses: command:local:Command and
// command:remote:Command with a `create` command that runs once. There is no
// update or delete command: any input change replaces the resource (which
// runs `create` again), and deleting it does nothing.
//
// Machines that can download the registry plugin should use it; the engine
// prefers a plugin found on PATH, so keep this one off PATH there.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	"ha-web-lab/engine/providerkit"
)

const (
	pluginName = "command"
	// The registry release whose API we mirror; the SDK in the venv asks for it.
	pluginVersion = "1.2.1"

	tokLocal  = "command:local:Command"
	tokRemote = "command:remote:Command"
)

// inputs per resource type: what Check accepts and Diff compares.
// addPreviousOutputInEnv only matters for update/delete commands, which this
// stand-in does not run, so it is accepted and ignored; so is logging (the
// output is captured either way).
var inputs = map[string][]string{
	tokLocal:  {"create", "interpreter", "dir", "environment", "stdin", "triggers", "logging", "addPreviousOutputInEnv"},
	tokRemote: {"connection", "create", "stdin", "triggers", "logging", "addPreviousOutputInEnv"},
}

// Inputs whose content can show up in stdout/stderr: when one is secret, the
// outputs are too. The connection is left out: it is secret only because it
// may hold a key, which a command does not print.
var outputSources = []resource.PropertyKey{"create", "stdin", "environment"}

func main() {
	base := providerkit.Base{Name: pluginName, Version: pluginVersion, Inputs: inputs, Compare: diff}
	providerkit.Main(pluginName, func() pulumirpc.ResourceProviderServer { return &server{Base: base} })
}

// server adds what is particular to commands to the calls providerkit.Base
// answers (plugin info, schema, CheckConfig, Check, Diff, Cancel).
type server struct {
	providerkit.Base
}

func (s *server) DiffConfig(context.Context, *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(context.Context, *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

// diff (Diff's answer): any change replaces, which re-runs `create`: the
// registry provider re-runs it too (as an update) when no `update` command is
// set.
func diff(token string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	return providerkit.Replace(providerkit.ChangedKeys(olds, news, inputs[token]), false)
}

func (s *server) Create(ctx context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	news, err := providerkit.Unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		// stdout and stderr are only known once the command ran.
		out := news.Copy()
		out["stdout"] = resource.MakeComputed(resource.NewProperty(""))
		out["stderr"] = resource.MakeComputed(resource.NewProperty(""))
		props, err := providerkit.Marshal(out)
		return &pulumirpc.CreateResponse{Properties: props}, err
	}
	var res result
	switch req.GetType() {
	case tokLocal:
		var a localArgs
		if err := providerkit.Decode(news, &a); err != nil {
			return nil, err
		}
		res, err = runLocal(ctx, a)
	case tokRemote:
		var a remoteArgs
		if err := providerkit.Decode(news, &a); err != nil {
			return nil, err
		}
		res, err = runRemote(ctx, a)
	default:
		err = fmt.Errorf("unknown resource type %s", req.GetType())
	}
	if err != nil {
		return nil, err
	}
	props, err := providerkit.Marshal(outputs(news, res))
	if err != nil {
		return nil, err
	}
	return &pulumirpc.CreateResponse{Id: resourceID(), Properties: props}, nil
}

// outputs: the inputs (secret markers kept) plus what the command printed,
// secret when an input it could have printed was secret.
func outputs(news resource.PropertyMap, res result) resource.PropertyMap {
	secret := false
	for _, k := range outputSources {
		secret = secret || news[k].ContainsSecrets()
	}
	wrap := func(s string) resource.PropertyValue {
		v := resource.NewProperty(s)
		if secret {
			return resource.MakeSecret(v)
		}
		return v
	}
	out := news.Copy()
	out["stdout"] = wrap(res.stdout)
	out["stderr"] = wrap(res.stderr)
	return out
}

// Read: a command has nothing to look at afterwards; keep the state.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

// Delete runs nothing: Check rejects a `delete` command.
func (s *server) Delete(context.Context, *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// result is what a finished command printed; a trailing newline is dropped,
// as the registry provider does, so `echo x` gives "x".
type result struct {
	stdout, stderr string
}

func newResult(stdout, stderr string) result {
	return result{strings.TrimSuffix(stdout, "\n"), strings.TrimSuffix(stderr, "\n")}
}
