package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/digitalocean/go-libvirt/socket/dialers"
	"github.com/google/uuid"
	"libvirt.org/go/libvirtxml"
)

// conn is one lazily opened libvirt connection shared by all requests: a
// preview never needs libvirtd, and go-libvirt serialises calls itself.
type conn struct {
	uri string

	mu sync.Mutex
	l  *golibvirt.Libvirt
}

// socketFor maps a libvirt URI to the unix socket it names. Only local
// qemu URIs: remote transports (ssh, tls) are beyond this stand-in.
func socketFor(uri string) (socket string, driver golibvirt.ConnectURI, err error) {
	if uri == "" {
		uri = "qemu:///system"
	}
	u, err := url.Parse(uri)
	if err != nil {
		return "", "", fmt.Errorf("libvirt uri %q: %w", uri, err)
	}
	if u.Scheme != "qemu" && u.Scheme != "qemu+unix" {
		return "", "", fmt.Errorf("libvirt uri %q: only qemu:// and qemu+unix:// are supported by this stand-in", uri)
	}
	if u.Host != "" {
		return "", "", fmt.Errorf("libvirt uri %q: remote hosts are not supported by this stand-in", uri)
	}
	switch u.Path {
	case "/system":
		driver, socket = golibvirt.QEMUSystem, "/var/run/libvirt/libvirt-sock"
	case "/session":
		driver = golibvirt.QEMUSession
		socket = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "libvirt", "libvirt-sock")
	default:
		return "", "", fmt.Errorf("libvirt uri %q: path must be /system or /session", uri)
	}
	if s := u.Query().Get("socket"); s != "" {
		socket = s
	}
	return socket, driver, nil
}

func (c *conn) get() (*golibvirt.Libvirt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil && c.l.IsConnected() {
		return c.l, nil
	}
	socket, driver, err := socketFor(c.uri)
	if err != nil {
		return nil, err
	}
	l := golibvirt.NewWithDialer(dialers.NewLocal(dialers.WithSocket(socket), dialers.WithLocalTimeout(10*time.Second)))
	if err := l.ConnectToURI(driver); err != nil {
		return nil, fmt.Errorf("connecting to libvirt at %s: %w", socket, err)
	}
	c.l = l
	return l, nil
}

func (c *conn) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil {
		_ = c.l.Disconnect()
		c.l = nil
	}
}

// notFound: deleting something already gone is success (a refresh-less
// destroy after a manual cleanup must not wedge the stack).
func notFound(err error, codes ...golibvirt.ErrorNumber) bool {
	var le golibvirt.Error
	if !errors.As(err, &le) {
		return false
	}
	for _, c := range codes {
		if le.Code == uint32(c) {
			return true
		}
	}
	return false
}

func uuidString(u golibvirt.UUID) string { return uuid.UUID(u).String() }

func parseUUID(s string) (golibvirt.UUID, error) {
	u, err := uuid.Parse(s)
	if err != nil {
		return golibvirt.UUID{}, fmt.Errorf("%q is not a libvirt UUID: %w", s, err)
	}
	return golibvirt.UUID(u), nil
}

// ---- networks ----

func createNetwork(l *golibvirt.Libvirt, a networkArgs) (string, error) {
	doc, err := networkXML(a)
	if err != nil {
		return "", err
	}
	n, err := l.NetworkDefineXML(doc)
	if err != nil {
		return "", fmt.Errorf("defining network %s: %w", a.Name, err)
	}
	// Undo the definition on a later failure, so a retry does not meet a
	// half-made network of the same name.
	if err := l.NetworkCreate(n); err != nil {
		_ = l.NetworkUndefine(n)
		return "", fmt.Errorf("starting network %s: %w", a.Name, err)
	}
	if err := l.NetworkSetAutostart(n, boolInt(a.Autostart)); err != nil {
		_ = l.NetworkDestroy(n)
		_ = l.NetworkUndefine(n)
		return "", fmt.Errorf("autostart of network %s: %w", a.Name, err)
	}
	return uuidString(n.UUID), nil
}

func deleteNetwork(l *golibvirt.Libvirt, id string) error {
	u, err := parseUUID(id)
	if err != nil {
		return err
	}
	n, err := l.NetworkLookupByUUID(u)
	if notFound(err, golibvirt.ErrNoNetwork) {
		return nil
	} else if err != nil {
		return err
	}
	if active, err := l.NetworkIsActive(n); err == nil && active == 1 {
		if err := l.NetworkDestroy(n); err != nil {
			return fmt.Errorf("stopping network %s: %w", n.Name, err)
		}
	}
	if err := l.NetworkUndefine(n); err != nil && !notFound(err, golibvirt.ErrNoNetwork) {
		return fmt.Errorf("undefining network %s: %w", n.Name, err)
	}
	return nil
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// ---- pools ----

func createPool(l *golibvirt.Libvirt, a poolArgs) (string, error) {
	doc, err := poolXML(a)
	if err != nil {
		return "", err
	}
	p, err := l.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return "", fmt.Errorf("defining pool %s: %w", a.Name, err)
	}
	undo := func() { _ = l.StoragePoolUndefine(p) }
	if err := l.StoragePoolBuild(p, golibvirt.StoragePoolBuildNew); err != nil {
		undo()
		return "", fmt.Errorf("building pool %s: %w", a.Name, err)
	}
	if err := l.StoragePoolCreate(p, 0); err != nil {
		undo()
		return "", fmt.Errorf("starting pool %s: %w", a.Name, err)
	}
	if err := l.StoragePoolSetAutostart(p, 1); err != nil {
		_ = l.StoragePoolDestroy(p)
		undo()
		return "", fmt.Errorf("autostart of pool %s: %w", a.Name, err)
	}
	return uuidString(p.UUID), nil
}

func deletePool(l *golibvirt.Libvirt, id string) error {
	u, err := parseUUID(id)
	if err != nil {
		return err
	}
	p, err := l.StoragePoolLookupByUUID(u)
	if notFound(err, golibvirt.ErrNoStoragePool) {
		return nil
	} else if err != nil {
		return err
	}
	if active, err := l.StoragePoolIsActive(p); err == nil && active == 1 {
		if err := l.StoragePoolDestroy(p); err != nil {
			return fmt.Errorf("stopping pool %s: %w", p.Name, err)
		}
	}
	// Removes the (empty) folder: the volumes went first, they depend on it.
	if err := l.StoragePoolDelete(p, golibvirt.StoragePoolDeleteNormal); err != nil {
		return fmt.Errorf("deleting pool %s: %w", p.Name, err)
	}
	if err := l.StoragePoolUndefine(p); err != nil {
		return fmt.Errorf("undefining pool %s: %w", p.Name, err)
	}
	return nil
}

// ---- volumes ----

// qcow2VirtualSize reads the guest-visible size from a qcow2 header (magic
// "QFI\xfb", big-endian size at byte 24): the volume must be that large.
func qcow2VirtualSize(header []byte) (uint64, error) {
	if len(header) < 32 || !bytes.Equal(header[:4], []byte("QFI\xfb")) {
		return 0, errors.New("not a qcow2 image")
	}
	return binary.BigEndian.Uint64(header[24:32]), nil
}

func createVolume(l *golibvirt.Libvirt, a volumeArgs) (string, error) {
	if a.Format == "" {
		a.Format = "qcow2"
	}
	pool, err := l.StoragePoolLookupByName(a.Pool)
	if err != nil {
		return "", fmt.Errorf("pool %s: %w", a.Pool, err)
	}
	switch {
	case a.Source != "" && a.BaseVolumeID != "":
		return "", errors.New("source and baseVolumeId exclude each other")
	case a.Source != "":
		return uploadVolume(l, pool, a)
	case a.BaseVolumeID != "":
		base, err := l.StorageVolLookupByKey(a.BaseVolumeID)
		if err != nil {
			return "", fmt.Errorf("base volume %s: %w", a.BaseVolumeID, err)
		}
		_, capacity, _, err := l.StorageVolGetInfo(base)
		if err != nil {
			return "", err
		}
		if a.Size > capacity {
			capacity = a.Size
		}
		format, path, err := volumeFormat(l, base)
		if err != nil {
			return "", err
		}
		doc, err := volumeXML(a.Name, a.Format, capacity, path, format)
		if err != nil {
			return "", err
		}
		return makeVolume(l, pool, a.Name, doc)
	default:
		if a.Size == 0 {
			return "", errors.New("a volume without source or baseVolumeId needs a size")
		}
		doc, err := volumeXML(a.Name, a.Format, a.Size, "", "")
		if err != nil {
			return "", err
		}
		return makeVolume(l, pool, a.Name, doc)
	}
}

func makeVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, name, doc string) (string, error) {
	v, err := l.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		return "", fmt.Errorf("creating volume %s: %w", name, err)
	}
	return v.Key, nil
}

// volumeFormat reads a volume's format and path from its XML.
func volumeFormat(l *golibvirt.Libvirt, v golibvirt.StorageVol) (format, path string, err error) {
	doc, err := l.StorageVolGetXMLDesc(v, 0)
	if err != nil {
		return "", "", err
	}
	var x libvirtxml.StorageVolume
	if err := x.Unmarshal(doc); err != nil {
		return "", "", err
	}
	format = "raw"
	if x.Target != nil {
		path = x.Target.Path
		if x.Target.Format != nil && x.Target.Format.Type != "" {
			format = x.Target.Format.Type
		}
	}
	return format, path, nil
}

// uploadVolume streams a local file into a new volume; the file is read
// here, by the provider, so it works against a libvirtd in another
// namespace or on another host alike.
func uploadVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, a volumeArgs) (string, error) {
	path := strings.TrimPrefix(a.Source, "file://")
	if strings.Contains(path, "://") {
		return "", fmt.Errorf("source %q: only local files are supported by this stand-in", a.Source)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	size := uint64(st.Size())
	capacity := size
	if a.Format == "qcow2" {
		header := make([]byte, 32)
		if _, err := io.ReadFull(f, header); err != nil {
			return "", fmt.Errorf("source %s: %w", path, err)
		}
		if capacity, err = qcow2VirtualSize(header); err != nil {
			return "", fmt.Errorf("source %s: %w (format is qcow2)", path, err)
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return "", err
		}
	}
	doc, err := volumeXML(a.Name, a.Format, capacity, "", "")
	if err != nil {
		return "", err
	}
	return uploadInto(l, pool, a.Name, doc, f, size)
}

func uploadInto(l *golibvirt.Libvirt, pool golibvirt.StoragePool, name, doc string, r io.Reader, size uint64) (string, error) {
	v, err := l.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		return "", fmt.Errorf("creating volume %s: %w", name, err)
	}
	if err := l.StorageVolUpload(v, r, 0, size, 0); err != nil {
		_ = l.StorageVolDelete(v, golibvirt.StorageVolDeleteNormal)
		return "", fmt.Errorf("uploading into volume %s: %w", name, err)
	}
	return v.Key, nil
}

func deleteVolume(l *golibvirt.Libvirt, key string) error {
	v, err := l.StorageVolLookupByKey(key)
	if notFound(err, golibvirt.ErrNoStorageVol) {
		return nil
	} else if err != nil {
		return err
	}
	if err := l.StorageVolDelete(v, golibvirt.StorageVolDeleteNormal); err != nil && !notFound(err, golibvirt.ErrNoStorageVol) {
		return fmt.Errorf("deleting volume %s: %w", v.Name, err)
	}
	return nil
}

// ---- cloud-init seed ----

// seedISO builds a NoCloud seed (volume label "cidata") with genisoimage or
// mkisofs, whichever is installed, on the machine running Pulumi.
func seedISO(a cloudInitArgs) ([]byte, error) {
	tool := ""
	for _, t := range []string{"genisoimage", "mkisofs", "xorrisofs"} {
		if p, err := exec.LookPath(t); err == nil {
			tool = p
			break
		}
	}
	if tool == "" {
		return nil, errors.New("building the cloud-init ISO needs genisoimage (or mkisofs) on PATH")
	}
	dir, err := os.MkdirTemp("", "hwl-seed-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	files := []string{"user-data", "meta-data"}
	contents := []string{a.UserData, a.MetaData}
	if a.NetworkConfig != "" {
		files = append(files, "network-config")
		contents = append(contents, a.NetworkConfig)
	}
	for i, name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(contents[i]), 0o600); err != nil {
			return nil, err
		}
	}
	iso := filepath.Join(dir, "seed.iso")
	args := append([]string{"-output", iso, "-volid", "cidata", "-joliet", "-rock", "-quiet"}, files...)
	cmd := exec.Command(tool, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", filepath.Base(tool), err, strings.TrimSpace(string(out)))
	}
	return os.ReadFile(iso)
}

func createCloudInit(l *golibvirt.Libvirt, a cloudInitArgs) (string, error) {
	iso, err := seedISO(a)
	if err != nil {
		return "", err
	}
	pool, err := l.StoragePoolLookupByName(a.Pool)
	if err != nil {
		return "", fmt.Errorf("pool %s: %w", a.Pool, err)
	}
	doc, err := volumeXML(a.Name, "raw", uint64(len(iso)), "", "")
	if err != nil {
		return "", err
	}
	return uploadInto(l, pool, a.Name, doc, bytes.NewReader(iso), uint64(len(iso)))
}

// ---- domains ----

func createDomain(l *golibvirt.Libvirt, a domainArgs) (string, error) {
	var r resolvedDomain
	for _, disk := range a.Disks {
		v, err := l.StorageVolLookupByKey(disk.VolumeID)
		if err != nil {
			return "", fmt.Errorf("disk volume %s: %w", disk.VolumeID, err)
		}
		format, _, err := volumeFormat(l, v)
		if err != nil {
			return "", err
		}
		r.diskFormats = append(r.diskFormats, format)
	}
	for _, nic := range a.NetworkInterfaces {
		name := nic.NetworkName
		if nic.NetworkID != "" {
			u, err := parseUUID(nic.NetworkID)
			if err != nil {
				return "", err
			}
			n, err := l.NetworkLookupByUUID(u)
			if err != nil {
				return "", fmt.Errorf("network %s: %w", nic.NetworkID, err)
			}
			name = n.Name
		}
		if name == "" {
			return "", errors.New("a network interface needs networkId or networkName")
		}
		r.networkNames = append(r.networkNames, name)
	}
	doc, err := domainXML(a, r)
	if err != nil {
		return "", err
	}
	d, err := l.DomainDefineXML(doc)
	if err != nil {
		return "", fmt.Errorf("defining domain %s: %w", a.Name, err)
	}
	undo := func() { _ = l.DomainUndefineFlags(d, golibvirt.DomainUndefineNvram) }
	if err := l.DomainSetAutostart(d, boolInt(a.Autostart)); err != nil {
		undo()
		return "", fmt.Errorf("autostart of domain %s: %w", a.Name, err)
	}
	if a.Running == nil || *a.Running {
		if err := l.DomainCreate(d); err != nil {
			undo()
			return "", fmt.Errorf("starting domain %s: %w", a.Name, err)
		}
	}
	return uuidString(d.UUID), nil
}

func deleteDomain(l *golibvirt.Libvirt, id string) error {
	u, err := parseUUID(id)
	if err != nil {
		return err
	}
	d, err := l.DomainLookupByUUID(u)
	if notFound(err, golibvirt.ErrNoDomain) {
		return nil
	} else if err != nil {
		return err
	}
	if active, err := l.DomainIsActive(d); err == nil && active == 1 {
		if err := l.DomainDestroy(d); err != nil && !notFound(err, golibvirt.ErrNoDomain) {
			return fmt.Errorf("stopping domain %s: %w", d.Name, err)
		}
	}
	if err := l.DomainUndefineFlags(d, golibvirt.DomainUndefineNvram); err != nil && !notFound(err, golibvirt.ErrNoDomain) {
		return fmt.Errorf("undefining domain %s: %w", d.Name, err)
	}
	return nil
}

// exists tells Read whether the object behind an id is still there.
func exists(l *golibvirt.Libvirt, token, id string) (bool, error) {
	var err error
	var codes []golibvirt.ErrorNumber
	switch token {
	case tokNetwork, tokPool, tokDomain:
		u, perr := parseUUID(id)
		if perr != nil {
			return false, perr
		}
		switch token {
		case tokNetwork:
			_, err = l.NetworkLookupByUUID(u)
			codes = []golibvirt.ErrorNumber{golibvirt.ErrNoNetwork}
		case tokPool:
			_, err = l.StoragePoolLookupByUUID(u)
			codes = []golibvirt.ErrorNumber{golibvirt.ErrNoStoragePool}
		default:
			_, err = l.DomainLookupByUUID(u)
			codes = []golibvirt.ErrorNumber{golibvirt.ErrNoDomain}
		}
	default:
		_, err = l.StorageVolLookupByKey(id)
		codes = []golibvirt.ErrorNumber{golibvirt.ErrNoStorageVol}
	}
	if notFound(err, codes...) {
		return false, nil
	}
	return err == nil, err
}
