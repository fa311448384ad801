package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

type localArgs struct {
	Create      string            `json:"create"`
	Interpreter []string          `json:"interpreter"`
	Dir         string            `json:"dir"`
	Environment map[string]string `json:"environment"`
	Stdin       string            `json:"stdin"`
}

type connection struct {
	Host               string   `json:"host"`
	Port               *float64 `json:"port"`
	User               string   `json:"user"`
	Password           string   `json:"password"`
	PrivateKey         string   `json:"privateKey"`
	PrivateKeyPassword string   `json:"privateKeyPassword"`
	AgentSocketPath    string   `json:"agentSocketPath"`
	HostKey            string   `json:"hostKey"`
	PerDialTimeout     *float64 `json:"perDialTimeout"`
	DialErrorLimit     *float64 `json:"dialErrorLimit"`
}

type remoteArgs struct {
	Connection connection `json:"connection"`
	Create     string     `json:"create"`
	Stdin      string     `json:"stdin"`
}

func resourceID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// failure names the exit and quotes the end of stderr: that is where a
// script says what went wrong.
func failure(what string, err error, stderr string) error {
	tail := strings.TrimSpace(stderr)
	if len(tail) > 4000 {
		tail = "..." + tail[len(tail)-4000:]
	}
	if tail == "" {
		return fmt.Errorf("%s: %w", what, err)
	}
	// stderr right after the exit status: the CLI's progress line shows
	// only the first line of an error.
	return fmt.Errorf("%s (%w): %s", what, err, tail)
}

func runLocal(ctx context.Context, a localArgs) (result, error) {
	if a.Create == "" {
		return result{}, nil
	}
	argv := a.Interpreter
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-c"}
	}
	cmd := exec.CommandContext(ctx, argv[0], append(slices.Clone(argv[1:]), a.Create)...)
	cmd.Dir = a.Dir
	cmd.Env = os.Environ()
	for k, v := range a.Environment {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdin = strings.NewReader(a.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return result{}, failure("local command failed", err, stderr.String())
	}
	return newResult(stdout.String(), stderr.String()), nil
}

// dialPolicy turns the connection's perDialTimeout/dialErrorLimit into a
// timeout per attempt and a number of attempts (-1: until cancelled). The
// defaults are the registry provider's documented ones (15 s, 10).
func dialPolicy(c connection) (time.Duration, int) {
	timeout, limit := 15*time.Second, 10
	if c.PerDialTimeout != nil && *c.PerDialTimeout > 0 {
		timeout = time.Duration(*c.PerDialTimeout * float64(time.Second))
	}
	if c.DialErrorLimit != nil {
		limit = int(*c.DialErrorLimit)
	}
	return timeout, limit
}

// retryPause grows from 1 s to 5 s: a VM that refuses connections at once
// while it boots would otherwise burn all attempts in a few seconds.
func retryPause(attempt int) time.Duration {
	d := time.Second
	for i := 1; i < attempt && d < 5*time.Second; i++ {
		d = d * 3 / 2
	}
	return min(d, 5*time.Second)
}

func clientConfig(c connection) (*ssh.ClientConfig, func(), error) {
	user := c.User
	if user == "" {
		user = "root"
	}
	var auths []ssh.AuthMethod
	cleanup := func() {}
	if c.PrivateKey != "" {
		var signer ssh.Signer
		var err error
		if c.PrivateKeyPassword != "" {
			signer, err = ssh.ParsePrivateKeyWithPassphrase([]byte(c.PrivateKey), []byte(c.PrivateKeyPassword))
		} else {
			signer, err = ssh.ParsePrivateKey([]byte(c.PrivateKey))
		}
		if err != nil {
			return nil, cleanup, fmt.Errorf("connection.privateKey: %w", err)
		}
		auths = append(auths, ssh.PublicKeys(signer))
	}
	if sock := c.AgentSocketPath; sock != "" || (c.PrivateKey == "" && c.Password == "") {
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock != "" {
			ac, err := net.Dial("unix", sock)
			if err != nil {
				return nil, cleanup, fmt.Errorf("ssh agent at %s: %w", sock, err)
			}
			cleanup = func() { _ = ac.Close() }
			auths = append(auths, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
		}
	}
	if c.Password != "" {
		auths = append(auths, ssh.Password(c.Password))
	}
	if len(auths) == 0 {
		return nil, cleanup, errors.New("connection needs privateKey, password or an ssh agent")
	}
	// Lab VMs get new host keys on every rebuild: without a pinned hostKey
	// there is nothing to check against (the registry provider does the same).
	hostKeyCheck := ssh.InsecureIgnoreHostKey()
	if c.HostKey != "" {
		key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(c.HostKey))
		if err != nil {
			return nil, cleanup, fmt.Errorf("connection.hostKey: %w", err)
		}
		hostKeyCheck = ssh.FixedHostKey(key)
	}
	return &ssh.ClientConfig{User: user, Auth: auths, HostKeyCallback: hostKeyCheck}, cleanup, nil
}

// dial retries both TCP and SSH failures: a booting VM first refuses
// connections, then may reject the key until cloud-init has installed it.
func dial(ctx context.Context, c connection) (*ssh.Client, error) {
	cfg, cleanup, err := clientConfig(c)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	port := 22
	if c.Port != nil {
		port = int(*c.Port)
	}
	addr := net.JoinHostPort(c.Host, strconv.Itoa(port))
	timeout, limit := dialPolicy(c)
	cfg.Timeout = timeout
	for attempt := 1; ; attempt++ {
		client, err := dialOnce(ctx, addr, cfg)
		if err == nil {
			return client, nil
		}
		if limit >= 0 && attempt >= limit {
			return nil, fmt.Errorf("ssh %s@%s: %d failed attempts, last: %w", cfg.User, addr, attempt, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(retryPause(attempt)):
		}
	}
}

func dialOnce(ctx context.Context, addr string, cfg *ssh.ClientConfig) (*ssh.Client, error) {
	d := net.Dialer{Timeout: cfg.Timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	// The handshake gets the same budget as the TCP connect.
	_ = nc.SetDeadline(time.Now().Add(cfg.Timeout))
	sc, chans, reqs, err := ssh.NewClientConn(nc, addr, cfg)
	if err != nil {
		_ = nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

func runRemote(ctx context.Context, a remoteArgs) (result, error) {
	if a.Connection.Host == "" {
		return result{}, errors.New("connection.host is required")
	}
	if a.Create == "" {
		return result{}, nil
	}
	client, err := dial(ctx, a.Connection)
	if err != nil {
		return result{}, err
	}
	defer client.Close()
	session, err := client.NewSession()
	if err != nil {
		return result{}, err
	}
	defer session.Close()
	var stdout, stderr bytes.Buffer
	session.Stdout, session.Stderr = &stdout, &stderr
	session.Stdin = strings.NewReader(a.Stdin)
	done := make(chan error, 1)
	go func() { done <- session.Run(a.Create) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = session.Signal(ssh.SIGTERM)
		return result{}, ctx.Err()
	}
	if err != nil {
		return result{}, failure("remote command on "+a.Connection.Host+" failed", err, stderr.String())
	}
	return newResult(stdout.String(), stderr.String()), nil
}
