package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"

	"ha-web-lab/engine/providerkit"
)

func TestRunLocalCapturesAndTrims(t *testing.T) {
	res, err := runLocal(context.Background(), localArgs{
		Create:      `printf 'a\nb\n'; echo "$GREETING" >&2; cat`,
		Environment: map[string]string{"GREETING": "hi"},
		Stdin:       "from-stdin",
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.stdout != "a\nb\nfrom-stdin" || res.stderr != "hi" {
		t.Errorf("got %+v", res)
	}
}

func TestRunLocalInterpreterAndDir(t *testing.T) {
	dir := t.TempDir()
	res, err := runLocal(context.Background(), localArgs{Create: "pwd; echo ${BASH_VERSION:+bash}", Interpreter: []string{"/bin/bash", "-c"}, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if res.stdout != dir+"\nbash" {
		t.Errorf("stdout = %q", res.stdout)
	}
}

func TestRunLocalFailureQuotesStderr(t *testing.T) {
	_, err := runLocal(context.Background(), localArgs{Create: "echo broken thing >&2; exit 4"})
	if err == nil || !strings.Contains(err.Error(), "exit status 4") || !strings.Contains(err.Error(), "broken thing") {
		t.Fatalf("err = %v", err)
	}
	// The stderr is on the error's first line: the CLI shows only that line.
	if first := strings.SplitN(err.Error(), "\n", 2)[0]; !strings.Contains(first, "broken thing") {
		t.Errorf("first line = %q", first)
	}
}

func TestDialPolicy(t *testing.T) {
	timeout, limit := dialPolicy(connection{})
	if timeout != 15*time.Second || limit != 10 {
		t.Errorf("defaults = %v, %d", timeout, limit)
	}
	ten, thirty := 10.0, 30.0
	timeout, limit = dialPolicy(connection{PerDialTimeout: &ten, DialErrorLimit: &thirty})
	if timeout != 10*time.Second || limit != 30 {
		t.Errorf("set = %v, %d", timeout, limit)
	}
}

func TestRetryPauseGrowsToFiveSeconds(t *testing.T) {
	if retryPause(1) != time.Second {
		t.Errorf("first pause = %v", retryPause(1))
	}
	prev := time.Duration(0)
	for i := 1; i < 20; i++ {
		p := retryPause(i)
		if p < prev || p > 5*time.Second {
			t.Fatalf("pause %d = %v after %v", i, p, prev)
		}
		prev = p
	}
	if prev != 5*time.Second {
		t.Errorf("pause caps at %v", prev)
	}
}

func TestDialGivesUpAfterLimit(t *testing.T) {
	one, limit := 1.0, 2.0
	port := 1.0 // nothing listens on port 1
	start := time.Now()
	_, err := dial(context.Background(), connection{
		Host: "127.0.0.1", Port: &port, Password: "x", PerDialTimeout: &one, DialErrorLimit: &limit,
	})
	if err == nil || !strings.Contains(err.Error(), "2 failed attempts") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestClientConfigRejectsBadKeyAndNoAuth(t *testing.T) {
	if _, _, err := clientConfig(connection{PrivateKey: "not a key"}); err == nil {
		t.Error("bad key accepted")
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, _, err := clientConfig(connection{}); err == nil {
		t.Error("no auth method accepted")
	}
}

func TestDiffReplacesOnAnyChange(t *testing.T) {
	olds := resource.NewPropertyMapFromMap(map[string]any{"create": "echo", "triggers": []any{"a"}})
	if d := diff(tokLocal, olds, olds.Copy()); len(d.Replaces) != 0 {
		t.Errorf("no change gave %+v", d)
	}
	news := resource.NewPropertyMapFromMap(map[string]any{"create": "echo", "triggers": []any{"b"}})
	d := diff(tokLocal, olds, news)
	if len(d.Replaces) != 1 || d.Replaces[0] != "triggers" || d.DeleteBeforeReplace {
		t.Errorf("trigger change gave %+v", d)
	}
}

func TestOutputsSecretWhenCommandIsSecret(t *testing.T) {
	plainIn := resource.PropertyMap{"create": resource.NewProperty("echo")}
	out := outputs(plainIn, result{stdout: "x"})
	if out["stdout"].IsSecret() || out["stdout"].StringValue() != "x" {
		t.Errorf("plain stdout = %v", out["stdout"])
	}
	secretIn := resource.PropertyMap{"create": resource.MakeSecret(resource.NewProperty("echo s3cret"))}
	out = outputs(secretIn, result{stdout: "s3cret"})
	if !out["stdout"].IsSecret() || !out["stderr"].IsSecret() || !out["create"].IsSecret() {
		t.Errorf("secret input gave %v", out)
	}
	// A secret connection alone (it holds the key) does not make the output secret.
	conn := resource.PropertyMap{"connection": resource.MakeSecret(resource.NewProperty(resource.PropertyMap{})), "create": resource.NewProperty("id")}
	if outputs(conn, result{stdout: "root"})["stdout"].IsSecret() {
		t.Error("secret connection made stdout secret")
	}
}

func TestCheckNamesUnsupportedInputs(t *testing.T) {
	m := resource.NewPropertyMapFromMap(map[string]any{"create": "x", "delete": "y", "update": "z"})
	got := providerkit.Unsupported(m, inputs[tokLocal])
	if strings.Join(got, ",") != "delete,update" {
		t.Errorf("unsupported = %v", got)
	}
}
