package main

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// defaultGracePeriod is what the API server stores when a pod template does
// not set terminationGracePeriodSeconds.
const defaultGracePeriod = 30

// lastApplied is the annotation kubectl apply keeps; it is not the webhook's.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// summarizeApplied says, in one line, what the file sets of what the webhook
// may add, so the additions below read against it.
func summarizeApplied(sts *appsv1.StatefulSet) string {
	pod := &sts.Spec.Template.Spec
	var env, probes, hooks int
	for _, c := range pod.Containers {
		env += len(c.Env)
		for _, p := range []*corev1.Probe{c.StartupProbe, c.LivenessProbe, c.ReadinessProbe} {
			if p != nil {
				probes++
			}
		}
		if c.Lifecycle != nil {
			if c.Lifecycle.PostStart != nil {
				hooks++
			}
			if c.Lifecycle.PreStop != nil {
				hooks++
			}
		}
	}
	grace := "no terminationGracePeriodSeconds"
	if pod.TerminationGracePeriodSeconds != nil {
		grace = fmt.Sprintf("terminationGracePeriodSeconds %d", *pod.TerminationGracePeriodSeconds)
	}
	return fmt.Sprintf("As applied it has %s, %s, %s, %s, %s and %s.", plural(len(pod.Containers), "container"),
		plural(env, "env variable"), plural(hooks, "lifecycle hook"), plural(probes, "probe"),
		plural(len(pod.InitContainers), "init container"), grace)
}

// group is a heading and what was added under it.
type group struct {
	title string
	items []string
}

// describeInjection lists what the stored StatefulSet has that the applied
// one did not: labels and annotations, then per container env variables,
// volume mounts, lifecycle hooks and probes, then init containers, volumes
// and the grace period of the pod. Fields the API server fills in by default
// are not compared.
func describeInjection(applied, stored *appsv1.StatefulSet) []group {
	var r report
	r.metadata(applied, stored)
	appliedPod, storedPod := &applied.Spec.Template.Spec, &stored.Spec.Template.Spec
	for _, c := range storedPod.Containers {
		r.container(c, findContainer(appliedPod.Containers, c.Name))
	}
	r.pod(appliedPod, storedPod)
	return r.groups
}

// report collects what was added, in groups by title, in the order met.
type report struct {
	groups []group
}

func (r *report) add(title, format string, args ...any) {
	if len(r.groups) == 0 || r.groups[len(r.groups)-1].title != title {
		r.groups = append(r.groups, group{title: title})
	}
	g := &r.groups[len(r.groups)-1]
	g.items = append(g.items, fmt.Sprintf(format, args...))
}

// metadata reports the labels and annotations added to the StatefulSet and
// its pod template.
func (r *report) metadata(applied, stored *appsv1.StatefulSet) {
	const meta = "the StatefulSet's metadata and pod template metadata"
	for _, k := range addedKeys(applied.Annotations, stored.Annotations) {
		r.add(meta, "annotation %s: %q", k, stored.Annotations[k])
	}
	for _, k := range addedKeys(applied.Labels, stored.Labels) {
		r.add(meta, "label %s: %q", k, stored.Labels[k])
	}
	appliedPod, storedPod := &applied.Spec.Template, &stored.Spec.Template
	for _, k := range addedKeys(appliedPod.Annotations, storedPod.Annotations) {
		r.add(meta, "pod annotation %s: %q", k, storedPod.Annotations[k])
	}
	for _, k := range addedKeys(appliedPod.Labels, storedPod.Labels) {
		r.add(meta, "pod label %s: %q", k, storedPod.Labels[k])
	}
}

// container reports a container that was added (was is nil), or what was
// added to it: env, volume mounts, hooks and probes.
func (r *report) container(c corev1.Container, was *corev1.Container) {
	if was == nil {
		r.add("the pod", "container %s (image %s): %s", c.Name, c.Image, command(c.Command, c.Args))
		return
	}
	in := "container " + c.Name
	for _, e := range c.Env {
		if !slices.ContainsFunc(was.Env, func(w corev1.EnvVar) bool { return w.Name == e.Name }) {
			r.add(in, "env %s = %s", e.Name, envValue(e))
		}
	}
	for _, m := range c.VolumeMounts {
		if !slices.ContainsFunc(was.VolumeMounts, func(w corev1.VolumeMount) bool { return w.MountPath == m.MountPath }) {
			r.add(in, "volume %s mounted at %s", m.Name, m.MountPath)
		}
	}
	if h := hook(c.Lifecycle, true); h != nil && hook(was.Lifecycle, true) == nil {
		r.add(in, "postStart hook, run when the container starts: %s", handler(*h))
	}
	if h := hook(c.Lifecycle, false); h != nil && hook(was.Lifecycle, false) == nil {
		r.add(in, "preStop hook, run before the container is stopped: %s", handler(*h))
	}
	if c.StartupProbe != nil && was.StartupProbe == nil {
		r.add(in, "startupProbe: %s", probe(c.StartupProbe, "restarts the container"))
	}
	if c.LivenessProbe != nil && was.LivenessProbe == nil {
		r.add(in, "livenessProbe: %s", probe(c.LivenessProbe, "restarts the container"))
	}
	if c.ReadinessProbe != nil && was.ReadinessProbe == nil {
		r.add(in, "readinessProbe: %s", probe(c.ReadinessProbe, "takes the pod out of its Services"))
	}
}

// pod reports the init containers and volumes added to the pod, and its
// grace period where it differs from what the file means.
func (r *report) pod(applied, stored *corev1.PodSpec) {
	const pod = "the pod"
	for _, c := range stored.InitContainers {
		if findContainer(applied.InitContainers, c.Name) == nil {
			r.add(pod, "init container %s (image %s): %s", c.Name, c.Image, command(c.Command, c.Args))
		}
	}
	for _, v := range stored.Volumes {
		if !slices.ContainsFunc(applied.Volumes, func(w corev1.Volume) bool { return w.Name == v.Name }) {
			kind := "a volume"
			if v.EmptyDir != nil {
				kind = "an emptyDir"
			}
			r.add(pod, "volume %s: %s", v.Name, kind)
		}
	}
	if g := stored.TerminationGracePeriodSeconds; g != nil {
		was := applied.TerminationGracePeriodSeconds
		switch {
		case was == nil && *g != defaultGracePeriod:
			r.add(pod, "terminationGracePeriodSeconds: %d (the file leaves it out, which would mean %d)", *g, defaultGracePeriod)
		case was != nil && *was != *g:
			r.add(pod, "terminationGracePeriodSeconds: %d (the file says %d)", *g, *was)
		}
	}
}

func addedKeys(before, after map[string]string) []string {
	var keys []string
	for _, k := range slices.Sorted(maps.Keys(after)) {
		if _, ok := before[k]; !ok && k != lastApplied {
			keys = append(keys, k)
		}
	}
	return keys
}

func findContainer(containers []corev1.Container, name string) *corev1.Container {
	for i := range containers {
		if containers[i].Name == name {
			return &containers[i]
		}
	}
	return nil
}

// envValue says where an env variable's value comes from.
func envValue(e corev1.EnvVar) string {
	switch from := e.ValueFrom; {
	case from == nil:
		return fmt.Sprintf("%q", e.Value)
	case from.FieldRef != nil:
		meaning := map[string]string{
			"status.podIP":       "the pod's IP",
			"metadata.name":      "the pod's name",
			"metadata.namespace": "the pod's namespace",
			"spec.nodeName":      "the node's name",
		}[from.FieldRef.FieldPath]
		if meaning == "" {
			return "the pod's " + from.FieldRef.FieldPath
		}
		return fmt.Sprintf("%s (%s)", meaning, from.FieldRef.FieldPath)
	case from.SecretKeyRef != nil:
		return fmt.Sprintf("key %s of Secret %s", from.SecretKeyRef.Key, from.SecretKeyRef.Name)
	case from.ConfigMapKeyRef != nil:
		return fmt.Sprintf("key %s of ConfigMap %s", from.ConfigMapKeyRef.Key, from.ConfigMapKeyRef.Name)
	case from.ResourceFieldRef != nil:
		return "the container's " + from.ResourceFieldRef.Resource
	}
	return "a reference"
}

func hook(l *corev1.Lifecycle, postStart bool) *corev1.LifecycleHandler {
	switch {
	case l == nil:
		return nil
	case postStart:
		return l.PostStart
	default:
		return l.PreStop
	}
}

func handler(h corev1.LifecycleHandler) string {
	switch {
	case h.Exec != nil:
		return command(h.Exec.Command, nil)
	case h.HTTPGet != nil:
		return fmt.Sprintf("HTTP GET %s on port %s", h.HTTPGet.Path, h.HTTPGet.Port.String())
	case h.Sleep != nil:
		return fmt.Sprintf("sleep %d s", h.Sleep.Seconds)
	}
	return "a handler"
}

// probe says what a probe checks, how often, and what happens when it fails.
func probe(p *corev1.Probe, onFailure string) string {
	var check string
	switch {
	case p.TCPSocket != nil:
		check = "TCP connect to port " + p.TCPSocket.Port.String()
	case p.HTTPGet != nil:
		check = fmt.Sprintf("HTTP GET %s on port %s", p.HTTPGet.Path, p.HTTPGet.Port.String())
	case p.Exec != nil:
		check = command(p.Exec.Command, nil)
	case p.GRPC != nil:
		check = fmt.Sprintf("gRPC health check on port %d", p.GRPC.Port)
	default:
		check = "a check"
	}
	period, failures := max(p.PeriodSeconds, 1), max(p.FailureThreshold, 1)
	return fmt.Sprintf("%s every %d s; after %d failures in a row (%d s) it %s", check, period, failures, period*failures, onFailure)
}

// command renders a command line as a shell would show it.
func command(cmd, args []string) string {
	words := append(slices.Clone(cmd), args...)
	for i, w := range words {
		if w == "" || strings.ContainsAny(w, " \t;'\"$") {
			words[i] = fmt.Sprintf("%q", w)
		}
	}
	return strings.Join(words, " ")
}

func plural(n int, noun string) string {
	switch n {
	case 0:
		return "no " + noun + "s"
	case 1:
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// rejection is one object kubectl apply reported the API server refused.
type rejection struct {
	kind, namespace, name, by string
	reasons                   []string
}

var (
	// kubectl: Error from server (Invalid): error when creating "FILE": admission webhook "W"
	// denied the request: Service default/N is invalid: spec.ports: M1 (policy P); spec.ports: M2 (policy P)
	refusedLine = regexp.MustCompile(`^Error from server \([^)]*\): error when [a-z ]+"[^"]*": (.*)$`)
	webhookPart = regexp.MustCompile(`^admission webhook "([^"]+)" denied the request: (.*)$`)
	invalidPart = regexp.MustCompile(`^(\w+) (?:"([^"]+)"|(\S+)) is (?:invalid|forbidden): (.*)$`)
	// A cause starts with the field it is about.
	causeStart = regexp.MustCompile(`(?:^|; |, )((?:metadata|spec|status|data)(?:\.[\w-]+|\[[^\]]*\])*): `)
)

// parseRejections reads kubectl apply's output for refused objects and the
// reasons given. What it cannot take apart is kept whole as the reason.
func parseRejections(output string) []rejection {
	var found []rejection
	for _, line := range strings.Split(output, "\n") {
		m := refusedLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		r := rejection{}
		rest := m[1]
		if w := webhookPart.FindStringSubmatch(rest); w != nil {
			r.by, rest = w[1], w[2]
		}
		inv := invalidPart.FindStringSubmatch(rest)
		if inv == nil {
			r.reasons = []string{rest}
			found = append(found, r)
			continue
		}
		r.kind, r.name = inv[1], inv[2]+inv[3]
		if ns, name, ok := strings.Cut(r.name, "/"); ok {
			r.namespace, r.name = ns, name
		}
		r.reasons = splitCauses(inv[4])
		found = append(found, r)
	}
	return found
}

// splitCauses splits "f1: m1; f2: m2" (or "[f1: m1, f2: m2]") into one
// "f: m" per cause.
func splitCauses(s string) []string {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	starts := causeStart.FindAllStringIndex(s, -1)
	if len(starts) == 0 || starts[0][0] != 0 {
		return []string{s}
	}
	var causes []string
	for i, st := range starts {
		end := len(s)
		if i+1 < len(starts) {
			end = starts[i+1][0]
		}
		cause := strings.TrimLeft(s[st[0]:end], ";, ")
		causes = append(causes, cause)
	}
	return causes
}
