package providerkit

import (
	"context"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/protobuf/types/known/emptypb"
)

// A plugin's server embeds Base by value and is a full provider server.
var _ pulumirpc.ResourceProviderServer = &struct{ Base }{}

func TestMarshalKeepsSecretsAndUnknowns(t *testing.T) {
	in := resource.PropertyMap{
		"pw":  resource.MakeSecret(resource.NewProperty("s3cret")),
		"id":  resource.MakeComputed(resource.NewProperty("")),
		"nil": resource.NewNullProperty(),
	}
	s, err := Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := Unmarshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if !out["pw"].IsSecret() || !out["id"].IsComputed() {
		t.Errorf("round trip = %v", out)
	}
	if _, ok := out["nil"]; ok {
		t.Errorf("null kept: %v", out)
	}
}

func TestDecodeAndStrUnwrapSecretsAndDropUnknowns(t *testing.T) {
	m := resource.PropertyMap{
		"name":   resource.MakeSecret(resource.NewProperty("vm")),
		"size":   resource.NewProperty(2.0),
		"bridge": resource.MakeComputed(resource.NewProperty("")),
		"tags":   resource.NewProperty([]resource.PropertyValue{resource.NewProperty("a"), resource.MakeSecret(resource.NewProperty("b"))}),
		"inner":  resource.NewProperty(resource.PropertyMap{"on": resource.NewProperty(true)}),
	}
	var got struct {
		Name   string   `json:"name"`
		Size   int      `json:"size"`
		Bridge string   `json:"bridge"`
		Tags   []string `json:"tags"`
		Inner  struct {
			On bool `json:"on"`
		} `json:"inner"`
	}
	if err := Decode(m, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "vm" || got.Size != 2 || got.Bridge != "" || strings.Join(got.Tags, ",") != "a,b" || !got.Inner.On {
		t.Errorf("decoded %+v", got)
	}
	for key, want := range map[string]string{"name": "vm", "size": "", "bridge": "", "absent": ""} {
		if got := Str(m, key); got != want {
			t.Errorf("Str(%s) = %q, want %q", key, got, want)
		}
	}
}

func TestChangedKeys(t *testing.T) {
	olds := resource.NewPropertyMapFromMap(map[string]any{"a": "x", "b": []any{"1"}, "c": "same"})
	news := resource.PropertyMap{
		"a": resource.MakeSecret(resource.NewProperty("x")), // only made secret: no change
		"b": resource.NewProperty([]resource.PropertyValue{resource.NewProperty("2")}),
		"c": resource.MakeComputed(resource.NewProperty("")), // unknown: counts as changed
		"d": resource.NewProperty("not compared"),
	}
	if got := ChangedKeys(olds, news, []string{"a", "b", "c"}); strings.Join(got, ",") != "b,c" {
		t.Errorf("changed = %v", got)
	}
}

func TestUnsupportedSkipsEngineKeysAndNulls(t *testing.T) {
	m := resource.PropertyMap{
		"ok":         resource.NewProperty("x"),
		"zeta":       resource.NewProperty("y"),
		"alpha":      resource.NewProperty("z"),
		"gone":       resource.NewNullProperty(),
		"__defaults": resource.NewProperty([]resource.PropertyValue{}),
	}
	if got := Unsupported(m, []string{"ok"}); strings.Join(got, ",") != "alpha,zeta" {
		t.Errorf("unsupported = %v", got)
	}
}

func TestBaseInfoSchemaAndCheck(t *testing.T) {
	b := &Base{Name: "demo", Version: "1.2.3", Inputs: map[string][]string{"demo:index:Thing": {"name"}}}
	ctx := context.Background()
	if info, _ := b.GetPluginInfo(ctx, &emptypb.Empty{}); info.GetVersion() != "1.2.3" {
		t.Errorf("info = %v", info)
	}
	if s, _ := b.GetSchema(ctx, &pulumirpc.GetSchemaRequest{}); s.GetSchema() != `{"name":"demo","version":"1.2.3"}` {
		t.Errorf("schema = %s", s.GetSchema())
	}
	news, err := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "n", "xml": "<x/>"}))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.Check(ctx, &pulumirpc.CheckRequest{Type: "demo:index:Thing", News: news})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetInputs() != news || len(resp.GetFailures()) != 1 || resp.GetFailures()[0].GetProperty() != "xml" ||
		resp.GetFailures()[0].GetReason() != "not supported by ha-web-lab's stand-in provider: xml" {
		t.Errorf("check = %v", resp)
	}
	_, err = b.Check(ctx, &pulumirpc.CheckRequest{Type: "demo:index:Other", News: news})
	if err == nil || err.Error() != "demo:index:Other is not implemented by ha-web-lab's stand-in demo provider" {
		t.Errorf("unknown type: %v", err)
	}
}

func TestDiffInputsFallsBackToOlds(t *testing.T) {
	olds, _ := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "from-olds"}))
	oldInputs, _ := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "from-inputs"}))
	news, _ := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "new"}))
	o, n, err := diffInputs(&pulumirpc.DiffRequest{Olds: olds, News: news})
	if err != nil || Str(o, "name") != "from-olds" || Str(n, "name") != "new" {
		t.Errorf("without old inputs: %v %v %v", o, n, err)
	}
	o, _, err = diffInputs(&pulumirpc.DiffRequest{Olds: olds, OldInputs: oldInputs, News: news})
	if err != nil || Str(o, "name") != "from-inputs" {
		t.Errorf("with old inputs: %v %v", o, err)
	}
}

func TestReplace(t *testing.T) {
	if d := Replace(nil, true); d.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE || len(d.GetReplaces()) != 0 || d.GetDeleteBeforeReplace() {
		t.Errorf("no change = %v", d)
	}
	d := Replace([]string{"a"}, true)
	if d.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME || strings.Join(d.GetDiffs(), ",") != "a" ||
		strings.Join(d.GetReplaces(), ",") != "a" || !d.GetDeleteBeforeReplace() {
		t.Errorf("change = %v", d)
	}
}

func TestBaseDiffHandsInputsToCompare(t *testing.T) {
	var gotToken, gotOld, gotNew string
	b := &Base{Compare: func(token string, olds, news resource.PropertyMap) *pulumirpc.DiffResponse {
		gotToken, gotOld, gotNew = token, Str(olds, "name"), Str(news, "name")
		return Replace([]string{"name"}, false)
	}}
	olds, _ := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "a"}))
	news, _ := Marshal(resource.NewPropertyMapFromMap(map[string]any{"name": "b"}))
	d, err := b.Diff(context.Background(), &pulumirpc.DiffRequest{Type: "demo:index:Thing", OldInputs: olds, News: news})
	if err != nil || gotToken != "demo:index:Thing" || gotOld != "a" || gotNew != "b" || strings.Join(d.GetReplaces(), ",") != "name" {
		t.Errorf("diff = %v, %v (compare saw %q %q %q)", d, err, gotToken, gotOld, gotNew)
	}
}
