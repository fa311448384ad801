package providerkit

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// Main serves the provider made by newServer over gRPC, as the engine starts
// a plugin, and exits with the error if serving fails. Both stand-ins start
// the same way; only the server differs.
func Main(name string, newServer func() pulumirpc.ResourceProviderServer) {
	if err := provider.Main(name, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return newServer(), nil
	}); err != nil {
		cmdutil.ExitError(err.Error())
	}
}

// Base answers the provider calls that both stand-ins answer the same way:
// plugin info, schema, provider config check, the input check against a fixed
// list per resource type, Diff (around the plugin's Compare) and Cancel. A
// plugin's server embeds it (by value) and adds DiffConfig, Configure, Create,
// Read and Delete; calls neither implements fall through to the embedded
// Unimplemented server.
type Base struct {
	pulumirpc.UnimplementedResourceProviderServer
	// Name is the provider's package name ("libvirt", "command").
	Name string
	// Version is the registry release whose API the stand-in mirrors.
	Version string
	// Inputs per resource type token: what Check accepts (and what a
	// plugin's Compare looks at); a type not listed is not implemented.
	Inputs map[string][]string
	// Compare gives the Diff answer for a resource's old and new inputs
	// (required).
	Compare func(token string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse
}

// GetPluginInfo reports the mirrored registry version.
func (b *Base) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: b.Version}, nil
}

// GetSchema: a name and version are enough; the SDK is generated elsewhere.
func (b *Base) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	schema, _ := json.Marshal(map[string]string{"name": b.Name, "version": b.Version})
	return &pulumirpc.GetSchemaResponse{Schema: string(schema)}, nil
}

// CheckConfig accepts the provider config as given.
func (b *Base) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

// Check refuses a resource type outside Inputs and names every input outside
// its list as a check failure, leaving the inputs themselves unchanged.
func (b *Base) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	allowed, ok := b.Inputs[req.GetType()]
	if !ok {
		return nil, fmt.Errorf("%s is not implemented by ha-web-lab's stand-in %s provider", req.GetType(), b.Name)
	}
	news, err := Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	for _, key := range Unsupported(news, allowed) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: key, Reason: describe([]string{key})})
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

// Cancel has nothing to stop: every call finishes on its own.
func (b *Base) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}

// Diff hands the request's old and new inputs to Compare.
func (b *Base) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, news, err := diffInputs(req)
	if err != nil {
		return nil, err
	}
	return b.Compare(req.GetType(), olds, news), nil
}

// diffInputs unmarshals a Diff request's old and new inputs. The old ones are
// the stored inputs or, when the engine sends none, the stored outputs.
func diffInputs(req *pulumirpc.DiffRequest) (olds, news resource.PropertyMap, err error) {
	oldStruct := req.GetOldInputs()
	if oldStruct == nil {
		oldStruct = req.GetOlds()
	}
	if olds, err = Unmarshal(oldStruct); err != nil {
		return nil, nil, err
	}
	if news, err = Unmarshal(req.GetNews()); err != nil {
		return nil, nil, err
	}
	return olds, news, nil
}

// Replace is the diff of a stand-in that never updates in place: no change,
// or a replacement on every changed key (deleting the old object first when
// deleteFirst is set).
func Replace(changed []string, deleteFirst bool) *pulumirpc.DiffResponse {
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:               changed,
		Replaces:            changed,
		DeleteBeforeReplace: deleteFirst,
	}
}
