package main

import (
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"libvirt.org/go/libvirtxml"

	"ha-web-lab/engine/providerkit"
)

func ptr[T any](v T) *T { return &v }

func TestCmdlineKeepsOrderAndBareWords(t *testing.T) {
	got := cmdline([]map[string]string{
		{"root": "/dev/vda"}, {"_": "rw"}, {"console": "ttyS0"}, {"net.ifnames": "0"},
	})
	want := "root=/dev/vda rw console=ttyS0 net.ifnames=0"
	if got != want {
		t.Fatalf("cmdline = %q, want %q", got, want)
	}
	if got := cmdline(nil); got != "" {
		t.Fatalf("empty cmdline = %q", got)
	}
}

func parseNetwork(t *testing.T, a networkArgs) libvirtxml.Network {
	t.Helper()
	doc, err := networkXML(a)
	if err != nil {
		t.Fatal(err)
	}
	var n libvirtxml.Network
	if err := n.Unmarshal(doc); err != nil {
		t.Fatalf("%v in %s", err, doc)
	}
	return n
}

func TestNetworkIsolatedWithHostAddressNoDHCP(t *testing.T) {
	a := networkArgs{Name: "lab-dmz", Mode: "none", Bridge: "hwl-dmz", Addresses: []string{"172.20.1.0/24"}, Autostart: true}
	a.DHCP = &struct {
		Enabled *bool `json:"enabled"`
	}{Enabled: ptr(false)}
	a.DNS = &struct {
		Enabled   bool `json:"enabled"`
		LocalOnly bool `json:"localOnly"`
	}{Enabled: true, LocalOnly: true}
	n := parseNetwork(t, a)
	if n.Forward != nil {
		t.Errorf("isolated network has a forward element: %+v", n.Forward)
	}
	if n.Bridge == nil || n.Bridge.Name != "hwl-dmz" {
		t.Errorf("bridge = %+v", n.Bridge)
	}
	if len(n.IPs) != 1 || n.IPs[0].Address != "172.20.1.1" || n.IPs[0].Prefix != 24 || n.IPs[0].DHCP != nil {
		t.Errorf("ips = %+v", n.IPs)
	}
	if n.DNS == nil || n.DNS.Enable != "yes" {
		t.Errorf("dns = %+v", n.DNS)
	}
}

func TestNetworkNatWithDHCPRange(t *testing.T) {
	n := parseNetwork(t, networkArgs{Name: "n", Mode: "nat", Addresses: []string{"10.0.0.0/24"}})
	if n.Forward == nil || n.Forward.Mode != "nat" {
		t.Fatalf("forward = %+v", n.Forward)
	}
	r := n.IPs[0].DHCP.Ranges[0]
	if r.Start != "10.0.0.2" || r.End != "10.0.0.254" {
		t.Errorf("dhcp range = %s-%s", r.Start, r.End)
	}
}

func TestNetworkWithoutAddressesHasNoIP(t *testing.T) {
	n := parseNetwork(t, networkArgs{Name: "n", Mode: "none", Bridge: "b0"})
	if len(n.IPs) != 0 || n.DNS != nil {
		t.Errorf("pure layer-2 network got ips %+v dns %+v", n.IPs, n.DNS)
	}
}

func TestNetworkRejectsBadInput(t *testing.T) {
	for _, a := range []networkArgs{
		{Name: "n", Mode: "weird"},
		{Name: "n", Mode: "bridge"},
		{Name: "n", Mode: "nat", Addresses: []string{"10.0.0.0"}},
		{Name: "n", Mode: "nat", Addresses: []string{"10.0.0.0/31"}},
	} {
		if _, err := networkXML(a); err == nil {
			t.Errorf("networkXML(%+v) gave no error", a)
		}
	}
}

func TestPoolAndOverlayVolume(t *testing.T) {
	doc, err := poolXML(poolArgs{Name: "p", Type: "dir", Path: "/srv/p"})
	if err != nil || !strings.Contains(doc, "<path>/srv/p</path>") || !strings.Contains(doc, `type="dir"`) {
		t.Fatalf("pool xml %q, %v", doc, err)
	}
	if _, err := poolXML(poolArgs{Name: "p", Type: "logical", Path: "/x"}); err == nil {
		t.Error("logical pool accepted")
	}
	doc, err = volumeXML("root.qcow2", "qcow2", 1<<30, "/srv/p/base.qcow2", "qcow2")
	if err != nil {
		t.Fatal(err)
	}
	var v libvirtxml.StorageVolume
	if err := v.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if v.Capacity.Value != 1<<30 || v.Target.Format.Type != "qcow2" ||
		v.BackingStore == nil || v.BackingStore.Path != "/srv/p/base.qcow2" || v.BackingStore.Format.Type != "qcow2" {
		t.Errorf("overlay volume = %s", doc)
	}
}

func TestQcow2VirtualSize(t *testing.T) {
	h := make([]byte, 32)
	copy(h, "QFI\xfb")
	h[24+4] = 0x40 // big-endian 0x00000000_40000000 = 1 GiB at bytes 24..31
	got, err := qcow2VirtualSize(h)
	if err != nil || got != 1<<30 {
		t.Fatalf("size = %d, %v", got, err)
	}
	if _, err := qcow2VirtualSize([]byte("not a qcow2 header at all, really")); err == nil {
		t.Error("raw data accepted as qcow2")
	}
}

func labDomain() domainArgs {
	a := domainArgs{
		Name: "hwl-web-1", Type: "qemu", VCPU: 2, Memory: 768,
		Kernel: "/p/kernel", Initrd: "/p/initrd",
		Cmdlines:  []map[string]string{{"root": "/dev/vda"}, {"_": "rw"}},
		Cloudinit: "/p/seed.iso", Autostart: true,
	}
	a.Disks = append(a.Disks, struct {
		VolumeID string `json:"volumeId"`
	}{"/p/root.qcow2"})
	a.NetworkInterfaces = append(a.NetworkInterfaces, struct {
		NetworkID   string `json:"networkId"`
		NetworkName string `json:"networkName"`
		MAC         string `json:"mac"`
	}{NetworkID: "uuid", MAC: "52:54:00:00:00:01"})
	a.Consoles = append(a.Consoles, struct {
		Type       string `json:"type"`
		TargetPort string `json:"targetPort"`
		TargetType string `json:"targetType"`
		SourcePath string `json:"sourcePath"`
	}{Type: "pty", TargetPort: "0", TargetType: "serial"})
	return a
}

func TestDomainXML(t *testing.T) {
	doc, err := domainXML(labDomain(), resolvedDomain{diskFormats: []string{"qcow2"}, networkNames: []string{"hwl-internal"}})
	if err != nil {
		t.Fatal(err)
	}
	var d libvirtxml.Domain
	if err := d.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	if d.Type != "qemu" || d.Memory.Value != 768 || d.Memory.Unit != "MiB" || d.VCPU.Value != 2 {
		t.Errorf("basics: %s", doc)
	}
	if d.OS.Type.Machine != "pc" || d.OS.Kernel != "/p/kernel" || d.OS.Cmdline != "root=/dev/vda rw" || len(d.OS.BootDevices) != 0 {
		t.Errorf("os: %+v", d.OS)
	}
	disks := d.Devices.Disks
	if len(disks) != 2 || disks[0].Target.Dev != "vda" || disks[0].Driver.Type != "qcow2" ||
		disks[1].Device != "cdrom" || disks[1].Target.Bus != "ide" || disks[1].ReadOnly == nil {
		t.Errorf("disks: %s", doc)
	}
	nic := d.Devices.Interfaces[0]
	if nic.Source.Network.Network != "hwl-internal" || nic.MAC.Address != "52:54:00:00:00:01" || nic.Model.Type != "virtio" {
		t.Errorf("nic: %s", doc)
	}
	c := d.Devices.Consoles[0]
	if c.Source.Pty == nil || c.Target.Type != "serial" || c.Target.Port == nil || *c.Target.Port != 0 {
		t.Errorf("console: %s", doc)
	}
	if d.CPU != nil {
		t.Errorf("cpu set without input: %+v", d.CPU)
	}
}

func TestDomainWithoutKernelBootsDisk(t *testing.T) {
	a := labDomain()
	a.Kernel, a.Initrd, a.Cmdlines = "", "", nil
	doc, err := domainXML(a, resolvedDomain{diskFormats: []string{"qcow2"}, networkNames: []string{"n"}})
	if err != nil || !strings.Contains(doc, `<boot dev="hd">`) {
		t.Fatalf("%v: %s", err, doc)
	}
}

func TestDiffReplacesAndFreesUnchangedName(t *testing.T) {
	olds := resource.NewPropertyMapFromMap(map[string]any{"name": "vm", "memory": 512, "vcpu": 1})
	same := resource.NewPropertyMapFromMap(map[string]any{"name": "vm", "memory": 512, "vcpu": 1})
	if d := diff(tokDomain, olds, same); len(d.Replaces) != 0 || d.Changes.String() != "DIFF_NONE" {
		t.Errorf("no change gave %+v", d)
	}
	bigger := resource.NewPropertyMapFromMap(map[string]any{"name": "vm", "memory": 1024, "vcpu": 1})
	d := diff(tokDomain, olds, bigger)
	if len(d.Replaces) != 1 || d.Replaces[0] != "memory" || !d.DeleteBeforeReplace {
		t.Errorf("memory change gave %+v", d)
	}
	renamed := resource.NewPropertyMapFromMap(map[string]any{"name": "vm2", "memory": 512, "vcpu": 1})
	if d := diff(tokDomain, olds, renamed); d.DeleteBeforeReplace {
		t.Errorf("rename should create first: %+v", d)
	}
}

func TestDiffSecretAndUnknown(t *testing.T) {
	olds := resource.PropertyMap{"name": resource.NewProperty("s.iso"), "userData": resource.NewProperty("x")}
	secret := resource.PropertyMap{"name": resource.NewProperty("s.iso"), "userData": resource.MakeSecret(resource.NewProperty("x"))}
	if d := diff(tokCloudInit, olds, secret); len(d.Replaces) != 0 {
		t.Errorf("same value made secret is no change: %+v", d)
	}
	unknown := resource.PropertyMap{"name": resource.MakeComputed(resource.NewProperty("")), "userData": resource.NewProperty("x")}
	if d := diff(tokCloudInit, olds, unknown); len(d.Replaces) != 1 || d.Replaces[0] != "name" {
		t.Errorf("unknown name must replace: %+v", d)
	}
}

func TestUnsupportedInputsAreNamed(t *testing.T) {
	m := resource.NewPropertyMapFromMap(map[string]any{"name": "n", "graphics": map[string]any{"type": "spice"}, "__defaults": []any{}})
	if got := providerkit.Unsupported(m, inputs[tokDomain]); len(got) != 1 || got[0] != "graphics" {
		t.Errorf("unsupported = %v", got)
	}
}

func TestSocketFor(t *testing.T) {
	sock, _, err := socketFor("qemu:///system?socket=/tmp/x/libvirt-sock")
	if err != nil || sock != "/tmp/x/libvirt-sock" {
		t.Errorf("socket = %q, %v", sock, err)
	}
	if sock, _, _ := socketFor("qemu:///system"); sock != "/var/run/libvirt/libvirt-sock" {
		t.Errorf("default socket = %q", sock)
	}
	for _, bad := range []string{"qemu+ssh://u@h/system", "xen:///system", "qemu:///other"} {
		if _, _, err := socketFor(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestDiffNetworkKeepingBridgeDeletesFirst(t *testing.T) {
	olds := resource.NewPropertyMapFromMap(map[string]any{"name": "a", "bridge": "br0", "mode": "nat"})
	news := resource.NewPropertyMapFromMap(map[string]any{"name": "b", "bridge": "br0", "mode": "nat"})
	if d := diff(tokNetwork, olds, news); !d.DeleteBeforeReplace {
		t.Errorf("same bridge must be freed first: %+v", d)
	}
}
