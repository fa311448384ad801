// Package providerkit holds the code that ha-web-lab's two stand-in Pulumi
// resource plugins (engine/provider-libvirt and engine/provider-command) share:
// property marshalling and the gRPC provider methods both answer the same way.
// It lives once here so that a fix to how inputs are decoded, compared or
// checked reaches both plugins; each plugin's go.mod points at this folder
// with a `replace` line, and scripts/build-engine.sh stamps it with them.
package providerkit

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	"google.golang.org/protobuf/types/known/structpb"
)

// wireOpts keep secret and unknown markers intact so that what came in as a
// secret goes back to the engine as a secret, and previews see unknowns.
var wireOpts = plugin.MarshalOptions{KeepUnknowns: true, KeepSecrets: true, SkipNulls: true}

// Unmarshal reads properties from the engine, keeping secret and unknown
// markers (so that a plugin can hand them back unchanged).
func Unmarshal(s *structpb.Struct) (resource.PropertyMap, error) {
	return plugin.UnmarshalProperties(s, wireOpts)
}

// Marshal writes properties for the engine with the same options as
// Unmarshal, so that secrets stay secret and unknowns stay unknown.
func Marshal(m resource.PropertyMap) (*structpb.Struct, error) {
	return plugin.MarshalProperties(m, wireOpts)
}

// plain turns a property value into plain Go data (secrets unwrapped, unknowns
// as nil), the shape encoding/json understands, so inputs decode into typed
// structs with one json round trip.
func plain(v resource.PropertyValue) any {
	switch {
	case v.IsSecret():
		return plain(v.SecretValue().Element)
	case v.IsOutput():
		if !v.OutputValue().Known {
			return nil
		}
		return plain(v.OutputValue().Element)
	case v.IsComputed(), v.IsNull():
		return nil
	case v.IsArray():
		out := make([]any, 0, len(v.ArrayValue()))
		for _, e := range v.ArrayValue() {
			out = append(out, plain(e))
		}
		return out
	case v.IsObject():
		return plainMap(v.ObjectValue())
	default:
		return v.V
	}
}

func plainMap(m resource.PropertyMap) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if !v.IsNull() {
			out[string(k)] = plain(v)
		}
	}
	return out
}

// Decode fills a typed struct (json tags = the SDK's wire names) from inputs,
// secrets unwrapped and unknowns left at their zero value.
func Decode(m resource.PropertyMap, into any) error {
	raw, err := json.Marshal(plainMap(m))
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, into)
}

// Unsupported lists input keys this stand-in does not implement, so that a
// program using them fails at check time instead of being silently ignored.
// Engine-internal keys ("__defaults" and the like) and null inputs pass.
func Unsupported(m resource.PropertyMap, allowed []string) []string {
	var bad []string
	for k, v := range m {
		key := string(k)
		if strings.HasPrefix(key, "__") || v.IsNull() || slices.Contains(allowed, key) {
			continue
		}
		bad = append(bad, key)
	}
	slices.Sort(bad)
	return bad
}

// ChangedKeys compares old and new inputs on the allowed keys, by value (a
// value only made secret is no change). An unknown new value counts as
// changed: the engine cannot know until apply time.
func ChangedKeys(olds, news resource.PropertyMap, allowed []string) []string {
	var changed []string
	for _, key := range allowed {
		o, n := olds[resource.PropertyKey(key)], news[resource.PropertyKey(key)]
		if n.ContainsUnknowns() || !reflect.DeepEqual(plain(o), plain(n)) {
			changed = append(changed, key)
		}
	}
	return changed
}

// Str reads an optional string input ("" when absent or unknown).
func Str(m resource.PropertyMap, key string) string {
	if s, ok := plain(m[resource.PropertyKey(key)]).(string); ok {
		return s
	}
	return ""
}

func describe(bad []string) string {
	return fmt.Sprintf("not supported by ha-web-lab's stand-in provider: %s", strings.Join(bad, ", "))
}
