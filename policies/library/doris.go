package library

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Cluster is what the functions may read of the cluster: the objects of a
// kind in a namespace, from an informer cache or from the documents at hand.
// A read that fails (a cache not synced, not allowed) is an error, never an
// empty list: the expression then fails, and its failurePolicy decides.
type Cluster interface {
	List(kind schema.GroupVersionKind, namespace string) ([]map[string]any, error)
}

// Doris is the CEL library with dorisRole, dorisContainer, dorisPort and
// dorisFEService; the last reads cluster (which may be nil: it then finds nothing).
func Doris(cluster Cluster) cel.EnvOption {
	return cel.Lib(dorisLib{cluster})
}

type dorisLib struct {
	cluster Cluster
}

func (dorisLib) LibraryName() string { return "doris-admission.doris" }

func (l dorisLib) CompileOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("dorisRole", cel.Overload("doris_role_dyn", []*cel.Type{cel.DynType}, cel.StringType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val { return types.String(Role(o)) })
			}))),
		cel.Function("dorisContainer", cel.Overload("doris_container_dyn", []*cel.Type{cel.DynType}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val { return types.Int(Container(o)) })
			}))),
		cel.Function("dorisPort", cel.Overload("doris_port_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.IntType,
			cel.BinaryBinding(func(v, name ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val {
					port, err := Port(o, string(name.(types.String)))
					if err != nil {
						return types.NewErr("%v", err)
					}
					return types.Int(port)
				})
			}))),
		cel.Function("dorisFEService", cel.Overload("doris_fe_service_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.StringType,
			cel.BinaryBinding(func(v, namespace ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val {
					return lookup("dorisFEService", str)(FEService(l.cluster, o, string(namespace.(types.String))))
				})
			}))),
		cel.Function("dorisStatefulSetRole", cel.Overload("doris_statefulset_role_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.StringType,
			cel.BinaryBinding(func(namespace, name ref.Val) ref.Val {
				return lookup("dorisStatefulSetRole", str)(StatefulSetRole(l.cluster, string(namespace.(types.String)), string(name.(types.String))))
			}))),
		cel.Function("dorisService", cel.Overload("doris_service_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DynType,
			cel.BinaryBinding(func(namespace, name ref.Val) ref.Val {
				return lookup("dorisService", func(svc map[string]any) ref.Val {
					if svc == nil {
						return types.NullValue
					}
					return types.DefaultTypeAdapter.NativeToValue(svc)
				})(Service(l.cluster, string(namespace.(types.String)), string(name.(types.String))))
			}))),
		cel.Function("dorisSelectedPorts", cel.Overload("doris_selected_ports_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.ListType(cel.IntType),
			cel.BinaryBinding(func(v, namespace ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val {
					return lookup("dorisSelectedPorts", func(ports []int) ref.Val { return types.DefaultTypeAdapter.NativeToValue(ports) })(SelectedPorts(l.cluster, o, string(namespace.(types.String))))
				})
			}))),
		cel.Function("dorisVersion", cel.Overload("doris_version_dyn", []*cel.Type{cel.DynType}, cel.StringType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val { return types.String(Version(o)) })
			}))),
		cel.Function("dorisHostMode", cel.Overload("doris_host_mode_dyn_dyn_string", []*cel.Type{cel.DynType, cel.DynType, cel.StringType}, cel.StringType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				return withObject(args[0], func(o map[string]any) ref.Val {
					if args[1] == types.NullValue {
						return types.String(HostMode(o, nil, string(args[2].(types.String))))
					}
					return withObject(args[1], func(old map[string]any) ref.Val {
						return types.String(HostMode(o, old, string(args[2].(types.String))))
					})
				})
			}))),
		cel.Function("dorisConfDir", cel.Overload("doris_conf_dir_dyn", []*cel.Type{cel.DynType}, cel.StringType,
			cel.UnaryBinding(func(v ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val { return types.String(ConfDir(o)) })
			}))),
		cel.Function("dorisMountedConf", cel.Overload("doris_mounted_conf_dyn_string", []*cel.Type{cel.DynType, cel.StringType}, cel.StringType,
			cel.BinaryBinding(func(v, namespace ref.Val) ref.Val {
				return withObject(v, func(o map[string]any) ref.Val {
					return lookup("dorisMountedConf", str)(MountedConf(l.cluster, o, string(namespace.(types.String))))
				})
			}))),
	}
}

func (dorisLib) ProgramOptions() []cel.ProgramOption { return nil }

// lookup turns the result of a function that reads the cluster into a CEL
// value with toValue, or into an error that names the function.
func lookup[T any](function string, toValue func(T) ref.Val) func(T, error) ref.Val {
	return func(result T, err error) ref.Val {
		if err != nil {
			return types.NewErr("%s could not read the cluster: %v", function, err)
		}
		return toValue(result)
	}
}

func str(s string) ref.Val { return types.String(s) }

// withObject converts a CEL object to a map and applies f. The request's
// object is already a map underneath; only other values are converted.
func withObject(v ref.Val, f func(map[string]any) ref.Val) ref.Val {
	if m, ok := v.Value().(map[string]any); ok {
		return f(m)
	}
	native, err := v.ConvertToNative(reflect.TypeFor[map[string]any]())
	if err != nil {
		return types.NewErr("the argument is not an object: %v", err)
	}
	return f(native.(map[string]any))
}

// RoleLabel marks a StatefulSet (or its pod template) as a Doris fe or be.
const RoleLabel = "doris.apache.org/role"

// Role is "fe" or "be" when the StatefulSet obj is a Doris frontend or
// backend: by the role label on the StatefulSet or its pod template, else by
// the first container whose name or image follows the Doris conventions.
func Role(obj map[string]any) string {
	for _, labels := range []any{path(obj, "metadata", "labels"), path(obj, "spec", "template", "metadata", "labels")} {
		if role, _ := asMap(labels)[RoleLabel].(string); role == "fe" || role == "be" {
			return role
		}
	}
	for _, c := range containers(obj) {
		if role := containerRole(c); role != "" {
			return role
		}
	}
	return ""
}

// Container is the index of the Doris container of the StatefulSet obj: the
// first that follows the conventions of its role, else, for a StatefulSet
// labelled with a role, the first container; -1 when obj is not Doris.
func Container(obj map[string]any) int {
	role := Role(obj)
	if role == "" {
		return -1
	}
	cs := containers(obj)
	for i, c := range cs {
		if containerRole(c) == role {
			return i
		}
	}
	if len(cs) == 0 {
		return -1
	}
	return 0
}

// containerRole is the role a container's name or image says, or "".
func containerRole(c map[string]any) string {
	name, _ := c["name"].(string)
	image, _ := c["image"].(string)
	for _, role := range []string{"fe", "be"} {
		if name == role || name == "doris-"+role || imageRole(image) == role {
			return role
		}
	}
	return ""
}

// imageRole reads the role from the image names Doris is published under:
// apache/doris:fe-<version>, <user>/apache-doris:<version>-fe and
// selectdb/doris.fe-<os>, with or without a registry, tag or digest.
func imageRole(image string) string {
	image, _, _ = strings.Cut(image, "@")
	repo, tag := image, ""
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo, tag = image[:i], image[i+1:]
	}
	segments := strings.Split(repo, "/")
	last := segments[len(segments)-1]
	parent := ""
	if len(segments) > 1 {
		parent = segments[len(segments)-2]
	}
	for _, role := range []string{"fe", "be"} {
		switch {
		case parent == "apache" && last == "doris" && strings.HasPrefix(tag, role+"-"),
			last == "apache-doris" && strings.HasSuffix(tag, "-"+role),
			parent == "selectdb" && strings.HasPrefix(last, "doris."+role+"-"):
			return role
		}
	}
	return ""
}

// containers returns the pod template's containers.
func containers(obj map[string]any) []map[string]any {
	list, _ := path(obj, "spec", "template", "spec", "containers").([]any)
	out := make([]map[string]any, 0, len(list))
	for _, c := range list {
		out = append(out, asMap(c))
	}
	return slices.Clip(out)
}

func path(obj map[string]any, keys ...string) any {
	var cur any = obj
	for _, k := range keys {
		cur = asMap(cur)[k]
	}
	return cur
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// DefaultPorts are the Doris ports by name, as fe.conf and be.conf set them.
var DefaultPorts = map[string]int{
	"http": 8030, "rpc": 9020, "query": 9030, "edit-log": 9010,
	"be": 9060, "webserver": 8040, "heartbeat": 9050, "brpc": 8060,
}

// Port is the Doris port name (query, edit-log, http, rpc, be, webserver,
// heartbeat, brpc) of the StatefulSet obj: annotation
// doris.apache.org/<name>-port, else the Doris container's port named
// <name>-port or <name>, else the Doris default.
func Port(obj map[string]any, name string) (int, error) {
	fallback, ok := DefaultPorts[name]
	if !ok {
		return 0, fmt.Errorf("no Doris port is called %q", name)
	}
	if value, ok := asMap(path(obj, "metadata", "annotations"))["doris.apache.org/"+name+"-port"].(string); ok {
		port, err := strconv.Atoi(value)
		if err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("annotation doris.apache.org/%s-port is %q, not a port number", name, value)
		}
		return port, nil
	}
	if i := Container(obj); i >= 0 {
		ports, _ := containers(obj)[i]["ports"].([]any)
		for _, p := range ports {
			port := asMap(p)
			if n, _ := port["name"].(string); n == name+"-port" || n == name {
				if number, ok := port["containerPort"].(int64); ok {
					return int(number), nil
				}
			}
		}
	}
	return fallback, nil
}
