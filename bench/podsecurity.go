package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/export"
)

// The workload users compare policy engines on (Kyverno's CEL load test,
// docs/perf-testing in its repository): Pods created through the API server
// by many clients at once, with the Pod Security Standards as
// ValidatingPolicies (deploy/examples/pod-security), against the same
// creates with no policies and with the native ValidatingAdmissionPolicies
// `policy export` makes of the same policies.

// Namespaces of the Pod creates, one per way of admitting; the policies
// apply to the two labelled restricted.
const (
	podsPlainNamespace   = "bench-pods-plain"
	podsWebhookNamespace = "bench-pods-webhook"
	podsNativeNamespace  = "bench-pods-native"
	enforceLabel         = "pod-security.doris-admission.io/enforce"
)

// podSecurityPolicies reads the Pod Security Standards policies.
func podSecurityPolicies(root string) ([]policies.Policy, error) {
	var out []policies.Policy
	for _, file := range []string{"baseline.yaml", "restricted.yaml"} {
		ps, err := policies.ReadPolicies(filepath.Join(root, "deploy", "examples", "pod-security", file), nil)
		if err != nil {
			return nil, err
		}
		out = append(out, ps...)
	}
	return out, nil
}

// restrictedPod keeps every Restricted control, so each create runs every
// check to the end and is admitted.
func restrictedPod() *corev1.Pod {
	noEscalation := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr.To(true), RunAsUser: ptr.To[int64](1000),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{{Name: "setup", Image: "busybox:1.36", SecurityContext: noEscalation}},
			Containers: []corev1.Container{
				{Name: "web", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 8080}}, SecurityContext: noEscalation},
				{Name: "sidecar", Image: "envoy:1.31", SecurityContext: noEscalation},
			},
			Volumes: []corev1.Volume{
				{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "web"}}}},
			},
		},
	}
}

// podsDenied tells whether a dry-run create in namespace of a Pod that runs
// as root is denied: whether the policies are in force there.
func podsDenied(ctx context.Context, kube kubernetes.Interface, namespace string) (bool, error) {
	pod := restrictedPod()
	pod.Namespace, pod.Name = namespace, "probe"
	pod.Spec.SecurityContext.RunAsUser = ptr.To[int64](0)
	_, err := kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	switch {
	case err == nil:
		return false, nil
	case apierrors.IsForbidden(err) || apierrors.IsInvalid(err):
		return true, nil
	}
	return false, err
}

// podLoad is what one way of admitting gave at one number of clients.
type podLoad struct {
	latencies []time.Duration
	// elapsed is the wall time of the creates, summed over the rounds.
	elapsed time.Duration
	// failed counts the creates that did not succeed; firstErr is the first.
	failed   int
	firstErr error
}

func (l *podLoad) throughput() float64 {
	return float64(len(l.latencies)) / l.elapsed.Seconds()
}

// String is the load's quantiles and throughput, and its failures.
func (l *podLoad) String() string {
	s := fmt.Sprintf("p50 %s, p95 %s, p99 %s; %.0f creates/s", ms(quantile(l.latencies, 0.50)), ms(quantile(l.latencies, 0.95)), ms(quantile(l.latencies, 0.99)), l.throughput())
	if l.failed > 0 {
		s += fmt.Sprintf("; %d failed (first: %v)", l.failed, l.firstErr)
	}
	return s
}

// createPods creates n Pods in namespace from clients goroutines at once,
// each creating the next until n are sent, and records each latency.
func createPods(ctx context.Context, kube kubernetes.Interface, namespace, prefix string, n, clients int, load *podLoad) {
	next := make(chan int)
	go func() {
		defer close(next)
		for i := range n {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for i := range next {
				pod := restrictedPod()
				pod.Namespace, pod.Name = namespace, fmt.Sprintf("%s-%d", prefix, i)
				began := time.Now()
				_, err := kube.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
				took := time.Since(began)
				mu.Lock()
				switch {
				case err != nil && load.firstErr == nil:
					load.failed, load.firstErr = load.failed+1, err
				case err != nil:
					load.failed++
				default:
					load.latencies = append(load.latencies, took)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	load.elapsed += time.Since(start)
}

// podWay is one way of admitting the Pod creates, with its load at each
// number of clients.
type podWay struct {
	admitting
	loads map[int]*podLoad
}

// measurePodSecurity creates Pods through the API server with no policies,
// through our webhook with the Pod Security Standards policies, and with the
// native policies export makes of them, at each number of clients, in
// rounds that alternate the ways.
func (r *run) measurePodSecurity(ctx context.Context) error {
	pss, err := podSecurityPolicies(r.root)
	if err != nil {
		return err
	}
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		return err
	}
	r.ours.engine.Load(append(slices.Clip(builtins), pss...))
	defer r.ours.engine.Load(builtins)
	if err := createLabelledNamespaces(ctx, r.kube, r.ours, map[string]string{
		podsPlainNamespace: "", podsWebhookNamespace: "restricted", podsNativeNamespace: "restricted",
	}); err != nil {
		return err
	}
	native, err := nativeValidating(pss)
	if err != nil {
		return err
	}
	ways := []*podWay{
		{admitting: admitting{name: "no policies", namespace: podsPlainNamespace}, loads: map[int]*podLoad{}},
		{admitting: admitting{name: "doris-admission webhook", namespace: podsWebhookNamespace}, loads: map[int]*podLoad{}},
		{admitting: admitting{name: "native ValidatingAdmissionPolicy", namespace: podsNativeNamespace}, loads: map[int]*podLoad{}},
	}
	ways[1].on, ways[1].off = ourWebhook(r.ours, r.files, func(ctx context.Context) (bool, error) {
		return podsDenied(ctx, r.kube, podsWebhookNamespace)
	})
	ways[2].on, ways[2].off = nativeWay(r.ours, native, func(ctx context.Context) (bool, error) {
		return podsDenied(ctx, r.kube, podsNativeNamespace)
	})
	o := r.opts
	for _, clients := range o.PodClients {
		for _, way := range ways {
			way.loads[clients] = &podLoad{}
		}
		perRound := max(1, o.PodCreates/o.PodRounds)
		for round := range o.PodRounds {
			for _, way := range ways {
				r.progress("round %d/%d: %d Pod creates from %d clients, %s", round+1, o.PodRounds, perRound, clients, way.name)
				if err := way.run(ctx, func() {
					createPods(ctx, r.kube, way.namespace, fmt.Sprintf("web-%d-%d", clients, round), perRound, clients, way.loads[clients])
				}); err != nil {
					return fmt.Errorf("%s: %w", way.name, err)
				}
			}
		}
		r.table.Rows = append(r.table.Rows, podSecurityRows(clients, len(pss), ways[0].loads[clients], ways[1].loads[clients], ways[2].loads[clients])...)
	}
	return emptyNamespaces(ctx, r.kube, podsPlainNamespace, podsWebhookNamespace, podsNativeNamespace)
}

// run puts the way in force, runs creates, and takes it out again.
func (a *admitting) run(ctx context.Context, creates func()) error {
	if a.on != nil {
		if err := a.on(ctx); err != nil {
			return err
		}
	}
	creates()
	if a.off != nil {
		return a.off(ctx)
	}
	return nil
}

// createLabelledNamespaces creates each namespace with its enforce label ("" for none).
func createLabelledNamespaces(ctx context.Context, kube kubernetes.Interface, o *ours, levels map[string]string) error {
	var names []string
	for name, level := range levels {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if level != "" {
			ns.Labels = map[string]string{enforceLabel: level}
		}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
		names = append(names, name)
	}
	return createNamespaces(ctx, kube, o, names...)
}

// nativeValidating is what `policy export` makes of the validating
// policies: every one must export.
func nativeValidating(ps []policies.Policy) ([]runtime.Object, error) {
	var objects []runtime.Object
	for _, e := range export.Export(ps) {
		if e.NotExported != "" {
			return nil, fmt.Errorf("policy export does not export %s: %s", e.Policy.Name(), e.Explanation())
		}
		objects = append(objects, e.Objects...)
	}
	return objects, nil
}

// podSecurityRows are the rows of one number of clients.
func podSecurityRows(clients, count int, plain, ours, native *podLoad) []Row {
	scenario := func(way string) string { return fmt.Sprintf("Pod creates, %d clients: %s", clients, way) }
	measure := "create latency, throughput"
	id := fmt.Sprintf("pods/%d/", clients)
	p99 := func(l *podLoad) float64 { return float64(quantile(l.latencies, 0.99)) }
	return []Row{{
		ID: id + "none", Section: "Pod Security Standards", Scenario: scenario("(i) no policies"),
		Measure: measure, Ours: plain.String(), Baseline: "(the baseline of the rows below)",
	}, {
		ID: id + "webhook", Section: "Pod Security Standards", Scenario: scenario(fmt.Sprintf("(ii) doris-admission webhook, %d ValidatingPolicies", count)),
		Measure: measure, Ours: ours.String(), Baseline: plain.String() + " (i)",
		Ratio: ratio(p99(ours)/p99(plain)) + " p99", Target: "p99 <= 1.3x (i)", Met: met(p99(ours) <= 1.3*p99(plain) && ours.failed == 0),
	}, {
		ID: id + "native", Section: "Pod Security Standards", Scenario: scenario("(iii) native ValidatingAdmissionPolicy (policy export)"),
		Measure: measure, Ours: native.String(), Baseline: plain.String() + " (i)",
		Ratio: ratio(p99(native)/p99(plain)) + " p99 of (i)",
	}, {
		ID: id + "vs-native", Section: "Pod Security Standards", Scenario: scenario("(ii) against (iii)"),
		Measure: "create latency p99", Ours: ms(quantile(ours.latencies, 0.99)), Baseline: ms(quantile(native.latencies, 0.99)) + " (iii)",
		Ratio: ratio(p99(ours) / p99(native)), Target: "p99 <= 1.1x (iii)", Met: met(p99(ours) <= 1.1*p99(native) && ours.failed == 0),
	}}
}

// ParseClients reads numbers of clients, comma-separated: "50,200,500".
func ParseClients(s string) ([]int, error) {
	var out []int
	for _, field := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a number of clients: want whole numbers of at least 1, comma-separated, such as 50,200,500", field)
		}
		out = append(out, n)
	}
	return out, nil
}
