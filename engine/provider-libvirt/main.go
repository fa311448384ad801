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
	"fmt"
	"slices"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"

	"ha-web-lab/engine/providerkit"
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
	base := providerkit.Base{Name: pluginName, Version: pluginVersion, Inputs: inputs, Compare: diff}
	providerkit.Main(pluginName, func() pulumirpc.ResourceProviderServer { return &server{Base: base} })
}

// server adds libvirt's connection and calls to the ones providerkit.Base
// answers (plugin info, schema, CheckConfig, Check, Diff, Cancel).
type server struct {
	providerkit.Base
	conn *conn
}

func (s *server) DiffConfig(_ context.Context, req *pulumirpc.DiffRequest) (*pulumirpc.DiffResponse, error) {
	olds, err := providerkit.Unmarshal(req.GetOldInputs())
	if err != nil {
		return nil, err
	}
	news, err := providerkit.Unmarshal(req.GetNews())
	if err != nil {
		return nil, err
	}
	if changed := providerkit.ChangedKeys(olds, news, []string{"uri"}); len(changed) > 0 {
		return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_SOME, Diffs: changed}, nil
	}
	return &pulumirpc.DiffResponse{Changes: pulumirpc.DiffResponse_DIFF_NONE}, nil
}

func (s *server) Configure(_ context.Context, req *pulumirpc.ConfigureRequest) (*pulumirpc.ConfigureResponse, error) {
	uri := req.GetVariables()["libvirt:config:uri"]
	if args := req.GetArgs(); args != nil {
		if m, err := providerkit.Unmarshal(args); err == nil && providerkit.Str(m, "uri") != "" {
			uri = providerkit.Str(m, "uri")
		}
	}
	if s.conn != nil {
		s.conn.close()
	}
	s.conn = &conn{uri: uri}
	return &pulumirpc.ConfigureResponse{AcceptSecrets: true, SupportsPreview: true}, nil
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

// diff (Diff's answer): every difference replaces. libvirt keeps some inputs
// unique per host (names, a network's bridge, a pool's folder): while one of
// those stays the same, the old object must go first, hence
// delete-before-replace.
func diff(token string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
	changed := providerkit.ChangedKeys(olds, news, inputs[token])
	kept := false
	for _, k := range uniqueInputs[token] {
		kept = kept || (providerkit.Str(news, k) != "" && !slices.Contains(changed, k))
	}
	return providerkit.Replace(changed, kept)
}

func (s *server) Create(_ context.Context, req *pulumirpc.CreateRequest) (*pulumirpc.CreateResponse, error) {
	news, err := providerkit.Unmarshal(req.GetProperties())
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
		if err = providerkit.Decode(news, &a); err == nil {
			id, err = createNetwork(l, a)
		}
	case tokPool:
		var a poolArgs
		if err = providerkit.Decode(news, &a); err == nil {
			id, err = createPool(l, a)
		}
	case tokVolume:
		var a volumeArgs
		if err = providerkit.Decode(news, &a); err == nil {
			id, err = createVolume(l, a)
		}
	case tokCloudInit:
		var a cloudInitArgs
		if err = providerkit.Decode(news, &a); err == nil {
			id, err = createCloudInit(l, a)
		}
	case tokDomain:
		var a domainArgs
		if err = providerkit.Decode(news, &a); err == nil {
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
