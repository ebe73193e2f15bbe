package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/source"
)

// builtinEngine is an offline engine with the built-in policies only, seeing
// docs as the cluster's objects.
func builtinEngine(t *testing.T, docs ...policies.Document) *Engine {
	t.Helper()
	return builtinEngineOn(t, source.Offline(docs))
}

// builtinEngineOn is an engine on cfg with the built-in policies loaded.
func builtinEngineOn(t *testing.T, cfg source.Config) *Engine {
	t.Helper()
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := NewEngine(cfg)
	for _, l := range e.Load(builtins) {
		if len(l.Problems) > 0 {
			t.Fatalf("built-in policy %s does not compile: %v", l.Name(), l.Problems)
		}
	}
	return e
}

// mutateObject runs the mutating policies on obj and returns the result
// (obj itself when nothing changed).
func mutateObject(t *testing.T, e *Engine, obj *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	req, err := e.RequestForObject(obj)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Mutate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if res.Object == nil {
		return obj
	}
	return res.Object
}

// officialFE is builtin/tests/resources/official-fe.yaml.
func officialFE(t *testing.T) *unstructured.Unstructured {
	t.Helper()
	docs, err := policies.ReadDocuments("../builtin/tests/resources/official-fe.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return docs[0].Object
}

// TestBuiltinKeepsWhatTheUserSet sets, one at a time, each value the built-in
// policies would inject, and checks the user's value survives.
func TestBuiltinKeepsWhatTheUserSet(t *testing.T) {
	container := []string{"spec", "template", "spec", "containers"}
	tests := []struct {
		name  string
		path  []string // under the Doris container, or from the root when it starts with "spec"
		value any
	}{
		{"env", []string{"env"}, []any{map[string]any{"name": "FE_PORT", "value": "19030"}}},
		{"postStart", []string{"lifecycle", "postStart"}, map[string]any{"exec": map[string]any{"command": []any{"true"}}}},
		{"preStop", []string{"lifecycle", "preStop"}, map[string]any{"exec": map[string]any{"command": []any{"sleep", "5"}}}},
		{"startupProbe", []string{"startupProbe"}, map[string]any{"tcpSocket": map[string]any{"port": int64(1)}}},
		{"livenessProbe", []string{"livenessProbe"}, map[string]any{"tcpSocket": map[string]any{"port": int64(2)}}},
		{"readinessProbe", []string{"readinessProbe"}, map[string]any{"httpGet": map[string]any{"path": "/x", "port": int64(3)}}},
		{"grace period", []string{"spec", "template", "spec", "terminationGracePeriodSeconds"}, int64(90)},
		{"own conf", []string{"volumeMounts"}, []any{map[string]any{"name": "conf", "mountPath": "/opt/apache-doris/fe/conf"}}},
	}
	e := builtinEngine(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj := officialFE(t)
			path := tt.path
			if path[0] != "spec" {
				containers, _, _ := unstructured.NestedSlice(obj.Object, container...)
				c := containers[0].(map[string]any)
				if err := unstructured.SetNestedField(c, tt.value, path...); err != nil {
					t.Fatal(err)
				}
				if err := unstructured.SetNestedSlice(obj.Object, containers, container...); err != nil {
					t.Fatal(err)
				}
			} else if err := unstructured.SetNestedField(obj.Object, tt.value, path...); err != nil {
				t.Fatal(err)
			}
			got := mutateObject(t, e, obj)
			var value any
			if path[0] != "spec" {
				containers, _, _ := unstructured.NestedSlice(got.Object, container...)
				value, _, _ = unstructured.NestedFieldNoCopy(containers[0].(map[string]any), path...)
			} else {
				value, _, _ = unstructured.NestedFieldNoCopy(got.Object, path...)
			}
			switch want := tt.value.(type) {
			case []any: // a list the policies append to: the user's items come first, unchanged
				list, _ := value.([]any)
				if len(list) < len(want) {
					t.Fatalf("%v lost the user's items: %v", path, value)
				}
				if diff := cmp.Diff(want, list[:len(want)]); diff != "" {
					t.Errorf("%v changed (-want +got):\n%s", path, diff)
				}
				if tt.name == "env" && strings.Count(toYAML(t, list), "FE_PORT") != 1 {
					t.Errorf("FE_PORT is set twice: %v", list)
				}
			default:
				if diff := cmp.Diff(want, value); diff != "" {
					t.Errorf("%v changed (-want +got):\n%s", path, diff)
				}
			}
			if tt.name == "own conf" && strings.Contains(toYAML(t, got.Object), "doris-admission-conf") {
				t.Errorf("the conf was replaced although the user mounts their own")
			}
		})
	}
}

func toYAML(t *testing.T, v any) string {
	t.Helper()
	data, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestBuiltinWarnings validates risky Doris StatefulSets and checks each
// doris-checks warning appears where it should, and only there.

// changingObjects is a cluster whose objects are replaced, as an informer
// cache replaces an object when it is updated.
type changingObjects struct {
	source.Objects
}

// TestSettingsFollowTheConfigMap: the built-in policies read the settings
// ConfigMap as it is at each request: its keys over the defaults, the
// defaults when it is deleted.
func TestSettingsFollowTheConfigMap(t *testing.T) {
	settings := func(grace string) *unstructured.Unstructured {
		return object(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: doris-admission-settings, namespace: doris-admission}
data: {feTerminationGracePeriodSeconds: "`+grace+`"}
`)
	}
	cluster := &changingObjects{}
	cfg := source.Offline(nil)
	cfg.Objects = cluster
	e := builtinEngineOn(t, cfg)
	grace := func() int64 {
		t.Helper()
		seconds, _, _ := unstructured.NestedInt64(mutatedSeedFE(t, e).Object, "spec", "template", "spec", "terminationGracePeriodSeconds")
		return seconds
	}
	for _, step := range []struct {
		// set is the ConfigMap's feTerminationGracePeriodSeconds; "" for no ConfigMap.
		set  string
		want int64
	}{
		{"", 120}, {"300", 300}, {"600", 600}, {"", 120},
	} {
		cluster.Objects = nil
		if step.set != "" {
			cluster.Objects = source.Objects{settings(step.set)}
		}
		if got := grace(); got != step.want {
			t.Errorf("with feTerminationGracePeriodSeconds %q in the settings ConfigMap the FE grace period is %d, want %d", step.set, got, step.want)
		}
	}
}

// TestSettingsDefaultsFromTheServer: a default the server is given (serve
// --agent-image) replaces the embedded one; the cluster's ConfigMap still
// wins over both.
func TestSettingsDefaultsFromTheServer(t *testing.T) {
	cluster := &changingObjects{}
	cfg := source.Offline(nil)
	cfg.Objects, cfg.Settings = cluster, map[string]string{"agentImage": "registry.example/doris-admission-agent:v9"}
	e := builtinEngineOn(t, cfg)
	agentImage := func() string {
		t.Helper()
		inits, _, _ := unstructured.NestedSlice(mutatedSeedFE(t, e).Object, "spec", "template", "spec", "initContainers")
		for _, c := range inits {
			if c := c.(map[string]any); c["name"] == "doris-admission-agent" {
				return c["image"].(string)
			}
		}
		return ""
	}
	if got := agentImage(); got != "registry.example/doris-admission-agent:v9" {
		t.Errorf("with serve's default, the agent image is %q", got)
	}
	cluster.Objects = source.Objects{object(t, `
apiVersion: v1
kind: ConfigMap
metadata: {name: doris-admission-settings, namespace: doris-admission}
data: {agentImage: "mirror.example/agent:v8"}
`)}
	if got := agentImage(); got != "mirror.example/agent:v8" {
		t.Errorf("with the ConfigMap's agentImage, the agent image is %q", got)
	}
}

// mutatedSeedFE is the seed's plain FE StatefulSet as e mutates it.
func mutatedSeedFE(t *testing.T, e *Engine) *unstructured.Unstructured {
	t.Helper()
	res, err := e.Mutate(context.Background(), seedRequest(t, e, "seed-fe-plain.yaml"))
	if err != nil || res.Object == nil {
		t.Fatalf("mutate: %v %v", res, err)
	}
	return res.Object
}

// seedRequest is the CREATE of the StatefulSet of deploy/examples/file.
func seedRequest(t *testing.T, e *Engine, file string) *Request {
	t.Helper()
	docs, err := policies.ReadDocuments("../../deploy/examples/"+file, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		if doc.Object.GetKind() == "StatefulSet" {
			req, err := e.RequestForObject(doc.Object)
			if err != nil {
				t.Fatal(err)
			}
			return req
		}
	}
	t.Fatalf("no StatefulSet in deploy/examples/%s", file)
	return nil
}
