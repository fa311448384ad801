package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"

	"libvirt.org/go/libvirtxml"
)

// Inputs, by the wire names of the pulumi_libvirt 0.5.4 SDK. Only what the
// lab program uses (plus a few trivial neighbours); Check rejects the rest.

type networkArgs struct {
	Name      string   `json:"name"`
	Mode      string   `json:"mode"`
	Bridge    string   `json:"bridge"`
	Domain    string   `json:"domain"`
	MTU       uint     `json:"mtu"`
	Addresses []string `json:"addresses"`
	DHCP      *struct {
		Enabled *bool `json:"enabled"`
	} `json:"dhcp"`
	DNS *struct {
		Enabled   bool `json:"enabled"`
		LocalOnly bool `json:"localOnly"`
	} `json:"dns"`
	Autostart bool `json:"autostart"`
}

type poolArgs struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

type volumeArgs struct {
	Name         string `json:"name"`
	Pool         string `json:"pool"`
	Format       string `json:"format"`
	Source       string `json:"source"`
	BaseVolumeID string `json:"baseVolumeId"`
	Size         uint64 `json:"size"`
}

type cloudInitArgs struct {
	Name          string `json:"name"`
	Pool          string `json:"pool"`
	UserData      string `json:"userData"`
	MetaData      string `json:"metaData"`
	NetworkConfig string `json:"networkConfig"`
}

type domainArgs struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	Arch    string `json:"arch"`
	Machine string `json:"machine"`
	VCPU    uint   `json:"vcpu"`
	Memory  uint   `json:"memory"`
	CPU     *struct {
		Mode string `json:"mode"`
	} `json:"cpu"`
	Kernel   string              `json:"kernel"`
	Initrd   string              `json:"initrd"`
	Cmdlines []map[string]string `json:"cmdlines"`
	Disks    []struct {
		VolumeID string `json:"volumeId"`
	} `json:"disks"`
	Cloudinit         string `json:"cloudinit"`
	NetworkInterfaces []struct {
		NetworkID   string `json:"networkId"`
		NetworkName string `json:"networkName"`
		MAC         string `json:"mac"`
	} `json:"networkInterfaces"`
	Consoles []struct {
		Type       string `json:"type"`
		TargetPort string `json:"targetPort"`
		TargetType string `json:"targetType"`
		SourcePath string `json:"sourcePath"`
	} `json:"consoles"`
	Autostart bool  `json:"autostart"`
	Running   *bool `json:"running"`
}

// networkXML follows the registry provider's model: addresses are networks
// (CIDRs) and the host side of the bridge takes the first address of each.
func networkXML(a networkArgs) (string, error) {
	n := libvirtxml.Network{Name: a.Name}
	switch a.Mode {
	case "", "nat", "route":
		mode := a.Mode
		if mode == "" {
			mode = "nat"
		}
		n.Forward = &libvirtxml.NetworkForward{Mode: mode}
	case "none":
		// Isolated: no <forward> at all.
	case "bridge":
		if a.Bridge == "" {
			return "", errors.New("mode bridge needs the name of an existing host bridge in 'bridge'")
		}
		if len(a.Addresses) > 0 {
			return "", errors.New("mode bridge takes no addresses: libvirt does not manage that bridge")
		}
		n.Forward = &libvirtxml.NetworkForward{Mode: "bridge"}
		n.Bridge = &libvirtxml.NetworkBridge{Name: a.Bridge}
		out, err := n.Marshal()
		return out, err
	default:
		return "", fmt.Errorf("unknown network mode %q (nat, route, none, bridge)", a.Mode)
	}
	if a.Bridge != "" {
		n.Bridge = &libvirtxml.NetworkBridge{Name: a.Bridge, STP: "on", Delay: "0"}
	}
	if a.MTU > 0 {
		n.MTU = &libvirtxml.NetworkMTU{Size: a.MTU}
	}
	dhcp := a.DHCP == nil || a.DHCP.Enabled == nil || *a.DHCP.Enabled
	for _, cidr := range a.Addresses {
		ip, err := hostAddress(cidr, dhcp)
		if err != nil {
			return "", err
		}
		n.IPs = append(n.IPs, ip)
	}
	if a.DNS != nil {
		n.DNS = &libvirtxml.NetworkDNS{Enable: yesNo(a.DNS.Enabled)}
		// localOnly needs a domain to be local to; without one there is
		// nothing to keep from being forwarded.
		if a.DNS.LocalOnly && a.Domain != "" {
			n.Domain = &libvirtxml.NetworkDomain{Name: a.Domain, LocalOnly: "yes"}
		}
	}
	if n.Domain == nil && a.Domain != "" {
		n.Domain = &libvirtxml.NetworkDomain{Name: a.Domain}
	}
	return n.Marshal()
}

// hostAddress gives the bridge the first address of the CIDR and, with DHCP,
// a range from the second after it to the one before the broadcast address.
func hostAddress(cidr string, dhcp bool) (libvirtxml.NetworkIP, error) {
	_, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		return libvirtxml.NetworkIP{}, fmt.Errorf("address %q: %w", cidr, err)
	}
	ones, bits := ipnet.Mask.Size()
	if bits-ones < 2 {
		return libvirtxml.NetworkIP{}, fmt.Errorf("address %q: network too small for a host address", cidr)
	}
	base := ipnet.IP
	ip := libvirtxml.NetworkIP{Address: offset(base, 1).String(), Prefix: uint(ones)}
	if base.To4() == nil {
		ip.Family = "ipv6"
	}
	if dhcp {
		last := offset(base, new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), uint(bits-ones)), big.NewInt(2)).Int64())
		ip.DHCP = &libvirtxml.NetworkDHCP{Ranges: []libvirtxml.NetworkDHCPRange{{
			Start: offset(base, 2).String(), End: last.String(),
		}}}
	}
	return ip, nil
}

func offset(ip net.IP, n int64) net.IP {
	if v4 := ip.To4(); v4 != nil {
		return binary.BigEndian.AppendUint32(nil, binary.BigEndian.Uint32(v4)+uint32(n))
	}
	v := new(big.Int).Add(new(big.Int).SetBytes(ip.To16()), big.NewInt(n))
	return v.FillBytes(make([]byte, 16))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func poolXML(a poolArgs) (string, error) {
	if a.Type != "dir" {
		return "", fmt.Errorf("pool type %q: only 'dir' is supported", a.Type)
	}
	if a.Path == "" {
		return "", errors.New("a dir pool needs a path")
	}
	p := libvirtxml.StoragePool{Type: "dir", Name: a.Name, Target: &libvirtxml.StoragePoolTarget{Path: a.Path}}
	return p.Marshal()
}

// volumeXML describes a new volume; backing (path and format) makes it a
// copy-on-write overlay.
func volumeXML(name, format string, capacity uint64, backingPath, backingFormat string) (string, error) {
	v := libvirtxml.StorageVolume{
		Name:     name,
		Capacity: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
		Target:   &libvirtxml.StorageVolumeTarget{Format: &libvirtxml.StorageVolumeTargetFormat{Type: format}},
	}
	if backingPath != "" {
		v.BackingStore = &libvirtxml.StorageVolumeBackingStore{
			Path:   backingPath,
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: backingFormat},
		}
	}
	return v.Marshal()
}

// cmdline joins the SDK's list of single-entry maps in list order; "_" marks
// a bare word. Keys of a map with several entries are sorted for stability.
func cmdline(maps []map[string]string) string {
	var words []string
	for _, m := range maps {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			if k == "_" {
				words = append(words, m[k])
			} else {
				words = append(words, k+"="+m[k])
			}
		}
	}
	return strings.Join(words, " ")
}

// resolvedDomain is what the domain XML needs beyond the inputs: facts read
// from libvirt (volume formats, network names by UUID).
type resolvedDomain struct {
	diskFormats  []string // per disk in a.Disks
	networkNames []string // per interface in a.NetworkInterfaces
}

func domainXML(a domainArgs, r resolvedDomain) (string, error) {
	if a.Type == "" {
		a.Type = "kvm"
	}
	if a.Arch == "" {
		a.Arch = "x86_64"
	}
	if a.Machine == "" {
		// i440fx: it has the IDE bus the cloud-init cdrom sits on.
		a.Machine = "pc"
	}
	if a.VCPU == 0 {
		a.VCPU = 1
	}
	if a.Memory == 0 {
		a.Memory = 512
	}
	d := libvirtxml.Domain{
		Type:   a.Type,
		Name:   a.Name,
		Memory: &libvirtxml.DomainMemory{Value: a.Memory, Unit: "MiB"},
		VCPU:   &libvirtxml.DomainVCPU{Value: a.VCPU},
		OS: &libvirtxml.DomainOS{
			Type:    &libvirtxml.DomainOSType{Arch: a.Arch, Machine: a.Machine, Type: "hvm"},
			Kernel:  a.Kernel,
			Initrd:  a.Initrd,
			Cmdline: cmdline(a.Cmdlines),
		},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Devices:  &libvirtxml.DomainDeviceList{},
	}
	if a.Kernel == "" {
		d.OS.BootDevices = []libvirtxml.DomainBootDevice{{Dev: "hd"}}
	}
	if a.CPU != nil && a.CPU.Mode != "" {
		d.CPU = &libvirtxml.DomainCPU{Mode: a.CPU.Mode}
	}
	if len(r.diskFormats) != len(a.Disks) || len(r.networkNames) != len(a.NetworkInterfaces) {
		return "", errors.New("internal: resolved facts do not match the inputs")
	}
	for i, disk := range a.Disks {
		if i >= 26 {
			return "", errors.New("more than 26 disks")
		}
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device: "disk",
			Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: r.diskFormats[i]},
			Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: disk.VolumeID}},
			Target: &libvirtxml.DomainDiskTarget{Dev: "vd" + string(rune('a'+i)), Bus: "virtio"},
		})
	}
	if a.Cloudinit != "" {
		d.Devices.Disks = append(d.Devices.Disks, libvirtxml.DomainDisk{
			Device:   "cdrom",
			Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
			Source:   &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: a.Cloudinit}},
			Target:   &libvirtxml.DomainDiskTarget{Dev: "hda", Bus: "ide"},
			ReadOnly: &libvirtxml.DomainDiskReadOnly{},
		})
	}
	for i, nic := range a.NetworkInterfaces {
		iface := libvirtxml.DomainInterface{
			Source: &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: r.networkNames[i]}},
			Model:  &libvirtxml.DomainInterfaceModel{Type: "virtio"},
		}
		if nic.MAC != "" {
			iface.MAC = &libvirtxml.DomainInterfaceMAC{Address: nic.MAC}
		}
		d.Devices.Interfaces = append(d.Devices.Interfaces, iface)
	}
	for _, c := range a.Consoles {
		console, err := consoleXML(c.Type, c.TargetPort, c.TargetType, c.SourcePath)
		if err != nil {
			return "", err
		}
		d.Devices.Consoles = append(d.Devices.Consoles, console)
	}
	return d.Marshal()
}

func consoleXML(kind, port, targetType, sourcePath string) (libvirtxml.DomainConsole, error) {
	c := libvirtxml.DomainConsole{Source: &libvirtxml.DomainChardevSource{}}
	switch kind {
	case "", "pty":
		c.Source.Pty = &libvirtxml.DomainChardevSourcePty{}
	case "file":
		if sourcePath == "" {
			return c, errors.New("a file console needs sourcePath")
		}
		c.Source.File = &libvirtxml.DomainChardevSourceFile{Path: sourcePath}
	default:
		return c, fmt.Errorf("console type %q: only pty and file are supported", kind)
	}
	if targetType == "" {
		targetType = "serial"
	}
	c.Target = &libvirtxml.DomainConsoleTarget{Type: targetType}
	if port != "" {
		var p uint
		if _, err := fmt.Sscanf(port, "%d", &p); err != nil {
			return c, fmt.Errorf("console targetPort %q is not a number", port)
		}
		c.Target.Port = &p
	}
	return c, nil
}
