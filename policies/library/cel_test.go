package library

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/cel-go/cel"
	"k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/version"
	"k8s.io/apiserver/pkg/cel/environment"
	"sigs.k8s.io/yaml"
)

// images are image names around the conventions imageRole reads: with
// registries (and their ports), paths, tags and digests, and near misses.
var images = []string{
	"apache/doris:fe-2.1.7", "apache/doris:be-3.0.2", "docker.io/apache/doris:be-3.0.2@sha256:abc",
	"reg.local:5000/apache/doris:fe-2.1", "reg.local:5000/apache/doris", "reg.local:5000/apache/doris@sha256:fe-1",
	"apache/doris@sha256:abc", "apache/doris:2.1-fe", "apache/doris:fe-", "apache/doris:fe-1:2", "apache/doris:fe-1@",
	"apache/doris:be-2@sha256:x@y", "/apache/doris:fe-1", "apache//doris:fe-1", "myapache/doris:fe-1", "apache/dorisx:fe-1",
	"doris:fe-1", "apache/httpd:fe-1", "APACHE/DORIS:FE-1", "a@apache/doris:fe-1", "apache/doris:fe-1\n",
	"zyzcenter/apache-doris:1.2.4.1-fe", "zyzcenter/apache-doris:1.2.4.1-be", "apache-doris:2.0-be", "apache-doris:-fe",
	"x/apache-doris:be", "reg:5000/team/apache-doris:2.1.0-be@sha256:1", "apache-doris:2.0-fe:x", "my-apache-doris:2.0-fe",
	"apache-doris/x:2.0-fe", "apache-doris:2.0-fe-debug",
	"selectdb/doris.fe-ubuntu", "selectdb/doris.be-ubuntu:2.0.3", "mirror.io:443/selectdb/doris.fe-centos@sha256:1",
	"selectdb/doris.fe-ubuntu:1/2", "selectdb/doris.fe-", "selectdb/doris.fe", "selectdb/doris.fe-a:b:c", "xselectdb/doris.fe-ubuntu",
	"selectdb/doris-fe-ubuntu", "selectdb/doris.be-ubuntu:2.0.3@sha256:be", "nginx:1.27", "fluent/fluent-bit:3.1", "",
}

// containerNames are container names around the conventions.
var containerNames = []string{"fe", "be", "doris-fe", "doris-be", "FE", "doris", "fe-0", "log", ""}

// portNames are names containers give their ports.
var portNames = []string{"query-port", "query", "http", "http-port", "edit-log-port", "rpc", "be-port", "webserver",
	"heartbeat-port", "brpc", "brpc-port", "tcp", ""}

// annotationValues are values of the doris.apache.org/<name>-port annotations.
var annotationValues = []string{"19030", "+80", "0008030", "65535", "65536", "0", "-1", "1", " 80", "80 ", "8o", "",
	"99999999999999999999", "+", "0x50", "1_000", "000000000000000000000080", "٣"}

func TestCELMatchesGo(t *testing.T) {
	objects := celFixtures(t)
	t.Logf("%d objects", len(objects))
	env := celTestEnv(t)
	// Each builder with its argument in several forms: the usual name, the
	// names its comprehensions bind, and expressions, which it binds first;
	// the other forms on fewer objects.
	arguments := append([]string{"object", "dorisObject", "[object][0]", "dyn(object)"}, boundNames...)
	type check struct {
		name    string
		goFunc  func(map[string]any) (any, error)
		inline  string
		objects []celFixture
	}
	var checks []check
	for _, arg := range arguments {
		some := objects
		if arg != "object" {
			some = objects[:300]
		}
		checks = append(checks,
			check{"dorisRole(" + arg + ")", func(o map[string]any) (any, error) { return Role(o), nil }, RoleCEL(arg), some},
			check{"dorisContainer(" + arg + ")", func(o map[string]any) (any, error) { return Container(o), nil }, ContainerCEL(arg), some},
			check{"dorisConfDir(" + arg + ")", func(o map[string]any) (any, error) { return ConfDir(o), nil }, ConfDirCEL(arg), some},
			check{"dorisVersion(" + arg + ")", func(o map[string]any) (any, error) { return Version(o), nil }, VersionCEL(arg), some},
			check{"dorisHostMode(" + arg + ", null, '2.1')", func(o map[string]any) (any, error) { return HostMode(o, nil, "2.1"), nil }, HostModeCEL(arg, "dyn(null)", "'2.1'"), some},
			check{"dorisHostMode(" + arg + ", null, '1.2')", func(o map[string]any) (any, error) { return HostMode(o, nil, "1.2"), nil }, HostModeCEL(arg, "dyn(null)", "'1.2'"), some},
			check{"dorisHostMode(" + arg + ", " + arg + ", '2.1')", func(o map[string]any) (any, error) { return HostMode(o, o, "2.1"), nil }, HostModeCEL(arg, arg, "'2.1'"), some},
		)
		for _, name := range sortedPortNames() {
			inline, err := PortCEL(arg, name)
			if err != nil {
				t.Fatal(err)
			}
			checks = append(checks, check{fmt.Sprintf("dorisPort(%s, %q)", arg, name), func(o map[string]any) (any, error) { return Port(o, name) }, inline, some})
		}
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			program := celProgram(t, env, c.inline)
			failures := 0
			for _, o := range c.objects {
				want, wantErr := c.goFunc(o.obj)
				got, gotErr := celEval(program, o.obj)
				switch {
				case wantErr != nil && gotErr != nil:
					continue
				case wantErr == nil && gotErr == nil && fmt.Sprint(got) == fmt.Sprint(want):
					continue
				}
				failures++
				if failures <= 5 {
					t.Errorf("%s: Go gives %v (error %v), the CEL %v (error %v)\nobject: %s", o.name, want, wantErr, got, gotErr, toJSON(o.obj))
				}
			}
			if failures > 5 {
				t.Errorf("... %d differences in all", failures)
			}
		})
	}
}

// TestCELThroughTheLibrary compares the CEL with the library's own functions,
// called from CEL, for the value types as CEL sees them.
func TestCELThroughTheLibrary(t *testing.T) {
	env := celTestEnv(t)
	objects := celFixtures(t)
	for _, pair := range [][2]string{
		{"dorisRole(object)", RoleCEL("object")},
		{"dorisContainer(object)", ContainerCEL("object")},
		{"dorisConfDir(object)", ConfDirCEL("object")},
		{"dorisVersion(object)", VersionCEL("object")},
		{"dorisHostMode(object, null, '2.1')", HostModeCEL("object", "dyn(null)", "'2.1'")},
		{"dorisHostMode(object, object, '1.2')", HostModeCEL("object", "object", "'1.2'")},
		{"dorisPort(object, 'query')", mustPortCEL(t, "object", "query")},
		{"dorisPort(object, 'webserver')", mustPortCEL(t, "object", "webserver")},
	} {
		library, inline := celProgram(t, env, pair[0]), celProgram(t, env, pair[1])
		for _, o := range objects {
			want, wantErr := celEval(library, o.obj)
			got, gotErr := celEval(inline, o.obj)
			if (wantErr != nil) != (gotErr != nil) || (wantErr == nil && !reflectEqual(want, got)) {
				t.Fatalf("%s on %s: the library gives %v (%v), the CEL %v (%v)", pair[0], o.name, want, wantErr, got, gotErr)
			}
		}
	}
}

// TestPortCELFails checks that the CEL fails where Port does, with its message.
func TestPortCELFails(t *testing.T) {
	if _, err := PortCEL("object", "nope"); err == nil || !strings.Contains(err.Error(), `no Doris port is called "nope"`) {
		t.Errorf("PortCEL of an unknown port: %v", err)
	}
	env := celTestEnv(t)
	program := celProgram(t, env, mustPortCEL(t, "object", "query"))
	obj := statefulSet(nil, container("fe", "apache/doris:fe-2.1.7"))
	obj["metadata"].(map[string]any)["annotations"] = map[string]any{"doris.apache.org/query-port": "9o30"}
	_, err := celEval(program, obj)
	if err == nil || !strings.Contains(err.Error(), `annotation doris.apache.org/query-port is "9o30", not a port number`) {
		t.Errorf("the CEL of a bad port annotation gives %v", err)
	}
}

// FuzzImagePattern holds imagePattern to imageRole on any image name.
func FuzzImagePattern(f *testing.F) {
	for _, image := range images {
		f.Add(image)
	}
	patterns := map[string]*regexp.Regexp{"fe": regexp.MustCompile(imagePattern("fe")), "be": regexp.MustCompile(imagePattern("be"))}
	f.Fuzz(func(t *testing.T, image string) {
		want := imageRole(image)
		got := ""
		for _, role := range []string{"fe", "be"} {
			if patterns[role].MatchString(image) {
				if got != "" {
					t.Fatalf("%q matches both patterns", image)
				}
				got = role
			}
		}
		if got != want {
			t.Errorf("imageRole(%q) = %q, the patterns say %q", image, want, got)
		}
	})
}

// celTestEnv is the Kubernetes 1.37 base environment with the Doris library
// and the argument names of TestCELMatchesGo, each bound to the object.
func celTestEnv(t *testing.T) *cel.Env {
	t.Helper()
	base, err := environment.MustBaseEnvSet(version.MajorMinor(1, 37)).Env(environment.NewExpressions)
	if err != nil {
		t.Fatal(err)
	}
	opts := []cel.EnvOption{Doris(nil)}
	for _, name := range celVariables {
		opts = append(opts, cel.Variable(name, cel.DynType))
	}
	env, err := base.Extend(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

var celVariables = append([]string{"object", objectVar}, boundNames...)

func celProgram(t *testing.T, env *cel.Env, expression string) cel.Program {
	t.Helper()
	checked, issues := env.Compile(expression)
	if issues.Err() != nil {
		t.Fatalf("%v\n%s", issues.Err(), expression)
	}
	program, err := env.Program(checked)
	if err != nil {
		t.Fatal(err)
	}
	return program
}

func celEval(program cel.Program, obj map[string]any) (any, error) {
	vars := map[string]any{}
	for _, name := range celVariables {
		vars[name] = obj
	}
	out, _, err := program.Eval(vars)
	if err != nil {
		return nil, err
	}
	return out.Value(), nil
}

func reflectEqual(a, b any) bool {
	return fmt.Sprintf("%T %v", a, a) == fmt.Sprintf("%T %v", b, b)
}

func mustPortCEL(t *testing.T, object, name string) string {
	t.Helper()
	out, err := PortCEL(object, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sortedPortNames() []string {
	var names []string
	for name := range DefaultPorts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

type celFixture struct {
	name string
	obj  map[string]any
}

// celFixtures are the objects the CEL is held to the Go code on: every
// StatefulSet of the built-in policies' tests and of deploy/examples, the
// cases of TestRoleAndContainer and TestPort and more, one per rule, and
// generated ones that mix them.
func celFixtures(t *testing.T) []celFixture {
	t.Helper()
	var out []celFixture
	for _, pattern := range []string{"../builtin/tests/resources/*.yaml", "../builtin/tests/expected/*.yaml", "../../deploy/examples/*.yaml", "../../deploy/examples/*/*.yaml"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			out = append(out, statefulSetsIn(t, file)...)
		}
	}
	if len(out) < 20 {
		t.Fatalf("found only %d StatefulSets in the test files", len(out))
	}

	withPorts := func(c map[string]any, ports ...map[string]any) map[string]any {
		list := make([]any, len(ports))
		for i, p := range ports {
			list[i] = p
		}
		c["ports"] = list
		return c
	}
	port := func(name string, number int64) map[string]any {
		p := map[string]any{"containerPort": number}
		if name != "" {
			p["name"] = name
		}
		return p
	}
	annotated := func(obj map[string]any, annotations map[string]any) map[string]any {
		obj["metadata"].(map[string]any)["annotations"] = annotations
		return obj
	}
	templateLabels := func(labels map[string]any, containers ...map[string]any) map[string]any {
		obj := statefulSet(map[string]any{"app": "db"}, containers...)
		obj["spec"].(map[string]any)["template"].(map[string]any)["metadata"] = map[string]any{"labels": labels}
		return obj
	}
	sidecar := container("log", "fluent/fluent-bit:3")
	named := func(obj map[string]any) map[string]any {
		obj["spec"].(map[string]any)["serviceName"] = "doris-internal"
		return obj
	}
	labelled := func(obj map[string]any, labels map[string]any) map[string]any {
		obj["metadata"].(map[string]any)["labels"] = labels
		return obj
	}
	table := []celFixture{
		{"version annotation, tag says nothing", named(annotated(statefulSet(nil, container("fe", "reg/doris:latest")), map[string]any{VersionKey: "2.1.5"}))},
		{"version annotation v2", named(annotated(statefulSet(nil, container("fe", "reg/doris")), map[string]any{VersionKey: "v2.1"}))},
		{"version annotation 10.0 beyond", named(annotated(statefulSet(nil, container("fe", "reg/doris:x")), map[string]any{VersionKey: "10.0-rc1"}))},
		{"version label 1.2.8", named(labelled(statefulSet(nil, container("be", "reg/doris")), map[string]any{VersionKey: "1.2.8"}))},
		{"tag with a leading zero", named(statefulSet(nil, container("x", "apache/doris:fe-02.1.7")))},
		{"tag be-fe-", named(statefulSet(nil, container("x", "apache/doris:be-fe-3.0")))},
		{"tag fe-be-", named(statefulSet(nil, container("x", "apache/doris:fe-be-3.0")))},
		{"tag 1", named(statefulSet(nil, container("x", "x/apache-doris:1-fe")))},
		{"host-mode fqdn", named(annotated(statefulSet(nil, container("x", "zyzcenter/apache-doris:1.2.4.1-fe")), map[string]any{HostModeAnnotation: "fqdn"}))},
		{"host-mode ip", named(annotated(statefulSet(nil, container("x", "apache/doris:fe-2.1.7")), map[string]any{HostModeAnnotation: "ip"}))},
		{"host-mode FQDN in capitals", named(annotated(statefulSet(nil, container("x", "apache/doris:fe-2.1.7")), map[string]any{HostModeAnnotation: "FQDN"}))},
		{"no serviceName", statefulSet(nil, container("x", "apache/doris:fe-2.1.7"))},
		{"stored FQDN", func() map[string]any {
			obj := named(statefulSet(nil, sidecar, container("x", "apache/doris:be-2.1.7")))
			obj["spec"].(map[string]any)["template"].(map[string]any)["spec"].(map[string]any)["containers"].([]any)[1].(map[string]any)["env"] =
				[]any{map[string]any{"name": "A"}, map[string]any{"name": NodeAddressEnv, "value": "x"}}
			return obj
		}()},
		{"labels on the template only", templateLabels(map[string]any{RoleLabel: "be"}, sidecar, container("main", "registry.local/db:7"))},
		{"template label, BE container second", templateLabels(map[string]any{RoleLabel: "be"}, sidecar, container("x", "apache/doris:be-2.1.7"))},
		{"template label fe, BE image", templateLabels(map[string]any{RoleLabel: "fe"}, container("x", "apache/doris:be-2.1.7"))},
		{"object label wins over template label", func() map[string]any {
			obj := templateLabels(map[string]any{RoleLabel: "be"}, container("x", "apache/doris:fe-2.1.7"))
			obj["metadata"].(map[string]any)["labels"] = map[string]any{RoleLabel: "fe"}
			return obj
		}()},
		{"label of another role value", statefulSet(map[string]any{RoleLabel: "broker"}, container("x", "apache/doris:be-2.1.7"))},
		{"label, no containers", statefulSet(map[string]any{RoleLabel: "fe"})},
		{"registry with a port", statefulSet(nil, sidecar, container("x", "reg.local:5000/apache/doris:fe-2.1"))},
		{"digest", statefulSet(nil, container("x", "docker.io/apache/doris:be-3.0.2@sha256:abc"))},
		{"apache-doris BE", statefulSet(nil, container("x", "zyzcenter/apache-doris:1.2.4.1-be"))},
		{"selectdb FE", statefulSet(nil, container("x", "selectdb/doris.fe-ubuntu"))},
		{"selectdb FE with tag", statefulSet(nil, container("x", "selectdb/doris.fe-ubuntu:2.0.3"))},
		{"name fe, BE image", statefulSet(nil, container("fe", "apache/doris:be-2.1.7"))},
		{"FE and BE containers", statefulSet(nil, container("b", "apache/doris:be-2.1.7"), container("f", "apache/doris:fe-2.1.7"))},
		{"named port query-port", statefulSet(nil, withPorts(container("fe", "apache/doris:fe-2.1.7"), port("http", 18030), port("query-port", 19030)))},
		{"named port query", statefulSet(nil, withPorts(container("fe", "apache/doris:fe-2.1.7"), port("query", 29030), port("query-port", 19030)))},
		{"unnamed ports", statefulSet(nil, withPorts(container("fe", "apache/doris:fe-2.1.7"), port("", 9030), port("", 8030)))},
		{"port without containerPort", statefulSet(nil, withPorts(container("fe", "apache/doris:fe-2.1.7"), map[string]any{"name": "query"}, port("query-port", 19030)))},
		{"ports of another container", statefulSet(nil, withPorts(container("log", "fluent/fluent-bit:3"), port("query", 1)), container("fe", "apache/doris:fe-2.1.7"))},
		{"annotations", annotated(statefulSet(nil, withPorts(container("be", "apache/doris:be-2.1.7"), port("heartbeat", 1))), map[string]any{
			"doris.apache.org/heartbeat-port": "19050", "doris.apache.org/webserver-port": "+18040", "doris.apache.org/be-port": "0009060",
			"doris.apache.org/conf-dir": "/etc/doris",
		})},
		{"empty conf dir annotation", annotated(statefulSet(nil, container("be", "apache/doris:be-2.1.7")), map[string]any{"doris.apache.org/conf-dir": ""})},
		{"conf dir of something not Doris", annotated(statefulSet(nil, container("web", "nginx")), map[string]any{"doris.apache.org/conf-dir": "/etc/x"})},
		{"no containers", statefulSet(nil)},
		{"empty object", map[string]any{}},
		{"no template", map[string]any{"metadata": map[string]any{"name": "x"}, "spec": map[string]any{"replicas": int64(1)}}},
		{"not Doris", statefulSet(nil, container("web", "nginx:1.27"), sidecar)},
		{"container without name or image", statefulSet(nil, map[string]any{"ports": []any{port("query", 1)}})},
	}
	for _, value := range annotationValues {
		table = append(table, celFixture{"query-port annotation " + fmt.Sprintf("%q", value),
			annotated(statefulSet(nil, container("fe", "apache/doris:fe-2.1.7")), map[string]any{"doris.apache.org/query-port": value})})
	}
	out = append(out, table...)
	return append(out, generatedStatefulSets(2000)...)
}

// statefulSetsIn reads the StatefulSets of a YAML file as the engine does:
// JSON numbers that are integers become int64.
func statefulSetsIn(t *testing.T, file string) []celFixture {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []celFixture
	for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
		raw, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		var obj map[string]any
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if obj["kind"] != "StatefulSet" {
			continue
		}
		out = append(out, celFixture{fmt.Sprintf("%s#%d", file, i), obj})
	}
	return out
}

// generatedStatefulSets are n StatefulSets that mix labels, annotations,
// containers, images and ports at random, from a fixed seed.
func generatedStatefulSets(n int) []celFixture {
	r := rand.New(rand.NewPCG(1, 37))
	pick := func(list []string) string { return list[r.IntN(len(list))] }
	roleLabels := func() map[string]any {
		switch r.IntN(6) {
		case 0:
			return map[string]any{RoleLabel: "fe"}
		case 1:
			return map[string]any{RoleLabel: "be"}
		case 2:
			return map[string]any{RoleLabel: "FE", "app": "x"}
		case 3:
			return map[string]any{}
		}
		return nil
	}
	var out []celFixture
	for k := range n {
		var containers []any
		for range r.IntN(4) {
			c := map[string]any{}
			if r.IntN(8) > 0 {
				c["name"] = pick(containerNames)
			}
			if r.IntN(8) > 0 {
				c["image"] = pick(images)
			}
			if r.IntN(2) == 0 {
				var ports []any
				for range r.IntN(4) {
					p := map[string]any{}
					if r.IntN(5) > 0 {
						p["name"] = pick(portNames)
					}
					if r.IntN(8) > 0 {
						p["containerPort"] = int64(1 + r.IntN(65535))
					}
					ports = append(ports, p)
				}
				c["ports"] = ports
			}
			containers = append(containers, c)
		}
		metadata := map[string]any{"name": fmt.Sprintf("generated-%d", k)}
		if labels := roleLabels(); labels != nil {
			metadata["labels"] = labels
		}
		annotations := map[string]any{}
		for range r.IntN(3) {
			switch r.IntN(3) {
			case 0:
				annotations["doris.apache.org/conf-dir"] = pick([]string{"", "/etc/doris", "/opt/apache-doris/fe/conf"})
			default:
				annotations["doris.apache.org/"+pick(sortedPortNames())+"-port"] = pick(annotationValues)
			}
		}
		if len(annotations) > 0 || r.IntN(2) == 0 {
			metadata["annotations"] = annotations
		}
		template := map[string]any{}
		if labels := roleLabels(); labels != nil {
			template["metadata"] = map[string]any{"labels": labels}
		}
		if r.IntN(10) > 0 {
			template["spec"] = map[string]any{"containers": containers}
		}
		obj := map[string]any{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": metadata, "spec": map[string]any{"template": template}}
		out = append(out, celFixture{fmt.Sprintf("generated-%d", k), obj})
	}
	return out
}

func toJSON(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(data)
}
