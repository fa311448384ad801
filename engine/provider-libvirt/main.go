// Command pulumi-resource-libvirt is ha-web-lab's own stand-in for the
// registry's libvirt provider (pulumi-libvirt 0.5.4). The Go module proxy we
// can reach refuses the real provider and the Terraform provider it wraps, so
// this small plugin implements just the part of that provider's resource API
// that the lab program uses: Network, Pool, Volume, CloudInitDisk and Domain,
// each created and deleted, never updated in place (every input change is a
// replacement). It talks to libvirtd over its unix socket with go-libvirt.
//
// Machines that can download the registry plugin should use it; the engine
// prefers a plugin found on PATH, so keep this one off PATH there.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/util/cmdutil"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/provider"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

const (
	pluginName = "libvirt"
	// The registry release whose API we mirror; the SDK in the venv asks for it.
	pluginVersion = "0.5.4"
)

const (
	tokNetwork   = "libvirt:index/network:Network"
	tokPool      = "libvirt:index/pool:Pool"
	tokVolume    = "libvirt:index/volume:Volume"
	tokCloudInit = "libvirt:index/cloudInitDisk:CloudInitDisk"
	tokDomain    = "libvirt:index/domain:Domain"
)

// inputs per resource type: what Check accepts and Diff compares.
var inputs = map[string][]string{
	tokNetwork:   {"name", "mode", "bridge", "domain", "mtu", "addresses", "dhcp", "dns", "autostart"},
	tokPool:      {"name", "type", "path"},
	tokVolume:    {"name", "pool", "format", "source", "baseVolumeId", "size"},
	tokCloudInit: {"name", "pool", "userData", "metaData", "networkConfig"},
	tokDomain: {
		"name", "type", "arch", "machine", "vcpu", "memory", "cpu", "kernel", "initrd", "cmdlines",
		"disks", "cloudinit", "networkInterfaces", "consoles", "autostart", "running",
	},
}

func main() {
	if err := provider.Main(pluginName, func(*provider.HostClient) (pulumirpc.ResourceProviderServer, error) {
		return &server{}, nil
	}); err != nil {
		cmdutil.ExitError(err.Error())
	}
}

type server struct {
	pulumirpc.UnimplementedResourceProviderServer
	conn *conn
}

func (s *server) GetPluginInfo(context.Context, *emptypb.Empty) (*pulumirpc.PluginInfo, error) {
	return &pulumirpc.PluginInfo{Version: pluginVersion}, nil
}

// GetSchema: a name and version are enough; the SDK is generated elsewhere.
func (s *server) GetSchema(context.Context, *pulumirpc.GetSchemaRequest) (*pulumirpc.GetSchemaResponse, error) {
	schema, _ := json.Marshal(map[string]string{"name": pluginName, "version": pluginVersion})
	return &pulumirpc.GetSchemaResponse{Schema: string(schema)}, nil
}

func (s *server) CheckConfig(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	return &pulumirpc.CheckResponse{Inputs: req.GetNews()}, nil
}

func (s *server) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if changed := changedKeys(olds, news, []string{"uri"}); len(changed) > 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	uri := req.GetVariables()["libvirt:config:uri"]
	if args := req.GetArgs(); args != nil {
		if m, err := unmarshal(args); err == nil && str(m, "uri") != "" {
			uri = str(m, "uri")
		}
	}
	if s.conn != nil {
		s.conn.close()
	}
	s.conn = &conn{uri: uri}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
}

func (s *server) Check(_ context.Context, req *pulumirpc.CheckRequest) (*pulumirpc.CheckResponse, error) {
	allowed, ok := inputs[req.GetType()]
	if !ok {
		return nil, fmt.Errorf("%s is not implemented by ha-web-lab's stand-in libvirt provider", req.GetType())
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	var failures []*pulumirpc.CheckFailure
	for _, key := range unsupported(news, allowed) {
		failures = append(failures, &pulumirpc.CheckFailure{Property: key, Reason: describe([]string{key})})
	}
	return &pulumirpc.CheckResponse{Inputs: req.GetNews(), Failures: failures}, nil
}

// Diff: every difference replaces. libvirt keeps some inputs unique per
// host (names, a network's bridge, a pool's folder): while one of those stays
// the same, the old object must go first, hence delete-before-replace.
func (s *server) Diff(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := oldInputs(req)
	if err != nil {
		return nil, err
	}
	news, err := unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	return diff(req.GetType(), olds, news), nil
}

// uniqueInputs per resource type: inputs libvirt refuses to share between
// two live objects.
var uniqueInputs = map[string][]string{
	tokNetwork:   {"name", "bridge"},
	tokPool:      {"name", "path"},
	tokVolume:    {"name"},
	tokCloudInit: {"name"},
	tokDomain:    {"name"},
}

func oldInputs(req *pulumirpc.DiffRequest) (resource.PropertyMap, error) {
	if req.GetOldInputs() != nil {
		return unmarshal(req.GetOldInputs())
	}
	return unmarshal(req.GetOlds())
}

func diff(token string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	changed := changedKeys(olds, news, inputs[token])
	if len(changed) == 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}
	}
	kept := false
	for _, k := range uniqueInputs[token] {
		kept = kept || (str(news, k) != "" && !slices.Contains(changed, k))
	}
	return &pulumirpc.DiffResponse{
		Changes:             pulumirpc.DiffResponse_DIFF_SOME,
		Diffs:               changed,
		Replaces:            changed,
		DeleteBeforeReplace: kept,
	}
}

func (s *server) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	news, err := unmarshal(req.GetProperties())
	if err != nil {
		return nil, err
	}
	if req.GetPreview() {
		return &pulumirpc.CreateResponse{Properties: req.GetProperties()}, nil
	}
	l, err := s.conn.get()
	if err != nil {
		return nil, err
	}
	var id string
	switch req.GetType() {
	case tokNetwork:
		var a networkArgs
		if err = decode(news, &a); err == nil {
			id, err = createNetwork(l, a)
		}
	case tokPool:
		var a poolArgs
		if err = decode(news, &a); err == nil {
			id, err = createPool(l, a)
		}
	case tokVolume:
		var a volumeArgs
		if err = decode(news, &a); err == nil {
			id, err = createVolume(l, a)
		}
	case tokCloudInit:
		var a cloudInitArgs
		if err = decode(news, &a); err == nil {
			id, err = createCloudInit(l, a)
		}
	case tokDomain:
		var a domainArgs
		if err = decode(news, &a); err == nil {
			id, err = createDomain(l, a)
		}
	default:
		err = fmt.Errorf("unknown resource type %s", req.GetType())
	}
	if err != nil {
		return nil, err
	}
	// Outputs are the inputs (secret markers kept) under the new id.
	return &pulumirpc.CreateResponse{Id: id, Properties: req.GetProperties()}, nil
}

// Read keeps the stored state while the object exists, and reports it gone
// (empty id) when it was removed behind Pulumi's back.
func (s *server) Read(_ context.Context, req *pulumirpc.ReadRequest) (*pulumirpc.ReadResponse, error) {
	l, err := s.conn.get()
	if err != nil {
		return nil, err
	}
	ok, err := exists(l, req.GetType(), req.GetId())
	if err != nil {
		return nil, err
	}
	if !ok {
		return &pulumirpc.ReadResponse{}, nil
	}
	return &pulumirpc.ReadResponse{Id: req.GetId(), Properties: req.GetProperties(), Inputs: req.GetInputs()}, nil
}

func (s *server) Delete(_ context.Context, req *pulumirpc.DeleteRequest) (*emptypb.Empty, error) {
	l, err := s.conn.get()
	if err != nil {
		return nil, err
	}
	switch req.GetType() {
	case tokNetwork:
		err = deleteNetwork(l, req.GetId())
	case tokPool:
		err = deletePool(l, req.GetId())
	case tokVolume, tokCloudInit:
		err = deleteVolume(l, req.GetId())
	case tokDomain:
		err = deleteDomain(l, req.GetId())
	default:
		err = fmt.Errorf("unknown resource type %s", req.GetType())
	}
	if err != nil {
		return nil, err
	}
	return &emptypb.Empty{}, nil
}

func (s *server) Cancel(context.Context, *emptypb.Empty) (*emptypb.Empty, error) {
	return &emptypb.Empty{}, nil
}
