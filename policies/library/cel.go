package library

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The pure functions read nothing but their arguments, so each call can be
// written out in plain Kubernetes CEL: RoleCEL, ContainerCEL, PortCEL and
// ConfDirCEL build that CEL for the call's arguments, with the rules of Role,
// Container, Port and ConfDir. policy export inlines them, so a native
// admission policy can do what a policy calling them does. The differential
// test (cel_test.go) holds each builder to its Go function.
//
// The CEL is exact for the objects the API server accepts: labels and
// annotations map strings to strings, container names and images are
// strings, containerPort is an integer. It needs the Kubernetes base
// environment from 1.37 on: optional fields, regex matches and the lists
// library's indexOf.

// PureFunctions are the functions a call of which can be inlined as plain CEL.
var PureFunctions = []string{"dorisRole", "dorisContainer", "dorisPort", "dorisConfDir", "dorisVersion", "dorisHostMode"}

// IsPure tells whether function reads only its arguments.
func IsPure(function string) bool {
	return slices.Contains(PureFunctions, function)
}

// boundNames are the variables the CEL of the builders binds in its
// comprehensions; an argument that names one of them is bound first, under
// objectVar, so it is not shadowed.
var boundNames = []string{"r", "c", "l", "i", "p", "v", "m", "t", "u", "a", "w"}

// objectVar holds an argument that is not a plain name.
const objectVar = "dorisObject"

var plainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$`)

// bindObject is body applied to the CEL expression object: directly when
// object is a name (object, variables.x) that none of the comprehensions
// shadows, else through a one-element map that evaluates object once.
func bindObject(object string, body func(o string) string) string {
	object = strings.TrimSpace(object)
	if plainName.MatchString(object) {
		root, _, _ := strings.Cut(object, ".")
		if !slices.Contains(boundNames, root) {
			return body(object)
		}
	}
	return "[" + object + "].map(" + objectVar + ", " + body(objectVar) + ")[0]"
}

// quote is s as a CEL string literal.
func quote(s string) string {
	return strconv.Quote(s)
}

// imagePattern matches the images imageRole gives role: apache/doris:<role>-*,
// */apache-doris:*-<role> and selectdb/doris.<role>-*, under any registry
// and path, with any digest. Up to the first "@" an image is its name and
// tag; the tag follows the last ":" when no "/" follows it.
func imagePattern(role string) string {
	return `(?s)^([^@]*/)?(apache/doris:` + role + `-[^:/@]*|apache-doris:[^:/@]*-` + role +
		`|selectdb/doris\.` + role + `-[^/@]*)(@.*)?$`
}

// containerRoleCEL is the CEL of containerRole for the container c.
func containerRoleCEL(c string) string {
	roleOf := func(role string) string {
		return fmt.Sprintf("%[1]s.?name.orValue('') in [%[2]s, %[3]s] || %[1]s.?image.orValue('').matches(%[4]s)",
			c, quote(role), quote("doris-"+role), quote(imagePattern(role)))
	}
	return fmt.Sprintf("%s ? 'fe' : %s ? 'be' : ''", roleOf("fe"), roleOf("be"))
}

// containerRolesCEL is the roles containerRole gives the containers of o, in order.
func containerRolesCEL(o string) string {
	return o + ".?spec.?template.?spec.?containers.orValue([]).map(c, " + containerRoleCEL("c") + ")"
}

// roleFromCEL is Role for o, given roles, the CEL of its containers' roles:
// the role label of o or of its pod template, else the first container role.
func roleFromCEL(o, roles string) string {
	return fmt.Sprintf("string(([%[1]s.?metadata.?labels[?%[2]s].orValue(''), %[1]s.?spec.?template.?metadata.?labels[?%[2]s].orValue('')]"+
		".filter(r, r in ['fe', 'be']) + %[3]s.filter(r, r != '') + [''])[0])", o, quote(RoleLabel), roles)
}

// RoleCEL is the CEL of dorisRole(object): "fe" or "be" from the role label
// of the StatefulSet or of its pod template, else from the first container
// whose name or image follows the Doris conventions, else "".
func RoleCEL(object string) string {
	return bindObject(object, func(o string) string {
		return roleFromCEL(o, containerRolesCEL(o))
	})
}

// ContainerCEL is the CEL of dorisContainer(object): the index of the first
// container that follows the conventions of the role, else 0 when there is
// a container, else -1; -1 when the StatefulSet is not Doris. The
// containers' roles (l) are found once, for the role (r) and the index.
func ContainerCEL(object string) string {
	return bindObject(object, func(o string) string {
		return fmt.Sprintf("int([%s].map(l, [%s].map(r, r == '' ? -1 : l.indexOf(r) >= 0 ? l.indexOf(r) : size(l) > 0 ? 0 : -1)[0])[0])",
			containerRolesCEL(o), roleFromCEL(o, "l"))
	})
}

// portNumber is the annotation values strconv.Atoi reads as 1..65535 or 0:
// a "+" at most, and five digits after the leading zeros.
const portNumber = `^[+]?0*[0-9]{1,5}$`

// PortCEL is the CEL of dorisPort(object, name) for a constant name: the
// annotation doris.apache.org/<name>-port, which must be a port number (the
// CEL fails otherwise, as the function does), else the containerPort of the
// Doris container's port named <name>-port or <name>, else the default. A
// name that is not a Doris port is an error, as it is for Port.
func PortCEL(object, name string) (string, error) {
	fallback, ok := DefaultPorts[name]
	if !ok {
		return "", fmt.Errorf("no Doris port is called %q", name)
	}
	annotation := "doris.apache.org/" + name + "-port"
	return bindObject(object, func(o string) string {
		// {}[message] fails with "no such key: <message>".
		fromAnnotation := fmt.Sprintf("[%[1]s.metadata.annotations[%[2]s]].map(v, v.matches(%[3]s) && int(v) >= 1 && int(v) <= 65535 ? int(v)"+
			" : {}[%[4]s + v + %[5]s])[0]",
			o, quote(annotation), quote(portNumber), quote("annotation "+annotation+" is \""), quote("\", not a port number"))
		fromContainer := fmt.Sprintf("([%[1]s].map(i, i < 0 ? [] : %[2]s.spec.template.spec.containers[i].?ports.orValue([])"+
			".filter(p, p.?name.orValue('') in [%[3]s, %[4]s] && has(p.containerPort) && type(p.containerPort) == int).map(p, p.containerPort))[0] + [%[5]d])[0]",
			ContainerCEL(o), o, quote(name+"-port"), quote(name), fallback)
		return fmt.Sprintf("int(%s.?metadata.?annotations[?%s].hasValue() ? %s : %s)", o, quote(annotation), fromAnnotation, fromContainer)
	}), nil
}

// ConfDirCEL is the CEL of dorisConfDir(object): the annotation
// doris.apache.org/conf-dir unless empty, else /opt/apache-doris/<role>/conf.
func ConfDirCEL(object string) string {
	return bindObject(object, func(o string) string {
		annotation := quote("doris.apache.org/conf-dir")
		return fmt.Sprintf("string(%[1]s.?metadata.?annotations[?%[2]s].orValue('') != '' ? %[1]s.metadata.annotations[%[2]s] : '/opt/apache-doris/' + %[3]s + '/conf')",
			o, annotation, RoleCEL(o))
	})
}

// VersionCEL is the CEL of dorisVersion(object): the version at the start of
// the Doris container's image tag (after fe- or be-), else of the annotation
// or label doris.apache.org/version, else "".
func VersionCEL(object string) string {
	return bindObject(object, func(o string) string {
		image := fmt.Sprintf("[%[2]s].map(i, i < 0 ? '' : string(%[1]s.spec.template.spec.containers[i].?image.orValue('')))[0].split('@')[0]",
			o, ContainerCEL(o))
		fromTag := fmt.Sprintf("[%[1]s].map(m, m.lastIndexOf(':') > m.lastIndexOf('/') ? m.substring(m.lastIndexOf(':') + 1) : '')"+
			".map(t, t.startsWith('fe-') ? t.substring(3) : t).map(u, (u.startsWith('be-') ? u.substring(3) : u).find(%[2]s))[0]",
			image, quote(versionPattern))
		fromMeta := fmt.Sprintf("([%[1]s.?metadata.?annotations[?%[2]s].orValue(''), %[1]s.?metadata.?labels[?%[2]s].orValue('')]"+
			".filter(v, v.matches(%[3]s)).map(v, v.find(%[3]s)) + [''])[0]", o, quote(VersionKey), quote(versionPattern))
		return fmt.Sprintf("string([%s].map(v, v != '' ? v : %s)[0])", fromTag, fromMeta)
	})
}

// HostModeCEL is the CEL of dorisHostMode(object, old, defaultVersion): the
// annotation doris.apache.org/host-mode when it says fqdn or ip; ip without
// spec.serviceName; on an update (old not null) fqdn when old's Doris
// container has DORIS_NODE_ADDRESS, else ip; else fqdn from version 2 on.
// old and defaultVersion are written where no comprehension binds a name.
func HostModeCEL(object, old, defaultVersion string) string {
	return bindObject(object, func(o string) string {
		annotation := fmt.Sprintf("%s.?metadata.?annotations[?%s].orValue('')", o, quote(HostModeAnnotation))
		stored := bindObject(old, func(s string) string {
			return fmt.Sprintf("[%[2]s].map(i, i >= 0 && %[1]s.spec.template.spec.containers[i].?env.orValue([]).exists(e, e.?name.orValue('') == %[3]s))[0] ? 'fqdn' : 'ip'",
				s, ContainerCEL(s), quote(NodeAddressEnv))
		})
		version := fmt.Sprintf("([%s].filter(w, w != '') + [string(%s)])[0]", VersionCEL(o), defaultVersion)
		return fmt.Sprintf("string(%[1]s in ['fqdn', 'ip'] ? %[1]s : %[2]s.?spec.?serviceName.orValue('') == '' ? 'ip' : %[3]s != null ? (%[4]s) : %[5]s.matches(%[6]s) ? 'fqdn' : 'ip')",
			annotation, o, old, stored, version, quote(fqdnVersionPattern))
	})
}
