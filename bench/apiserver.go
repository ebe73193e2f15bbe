package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/export"
	"github.com/doris-admission/doris-admission/webhook"
)

// authenticationUser is who the benchmark's requests come from.
func authenticationUser() authenticationv1.UserInfo {
	return authenticationv1.UserInfo{Username: "kubernetes-admin", Groups: []string{"system:masters", "system:authenticated"}}
}

// startControlPlane starts etcd and kube-apiserver from assets (the folder
// test/controlplane/build.sh prints), as the e2e suite does.
func startControlPlane(assets string) (*envtest.Environment, *rest.Config, error) {
	env := harness.ControlPlane(assets, "")
	// Room for the cluster IPs and node ports of the server memory measure's
	// Services (nodePortService).
	apiServer := env.ControlPlane.GetAPIServer().Configure()
	apiServer.Set("service-cluster-ip-range", "10.0.0.0/16")
	apiServer.Set("service-node-port-range", "30000-60000")
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	return env, cfg, nil
}

// Namespaces of the create runs, one per way of admitting.
const (
	plainNamespace   = "bench-plain"
	webhookNamespace = "bench-webhook"
	nativeNamespace  = "bench-native"
)

// emptyNamespaces deletes the StatefulSets and Pods a section created, so
// the sections after it see the cluster their rows name: the server memory
// measure, above all, would otherwise cache thousands of StatefulSets its
// row does not count.
func emptyNamespaces(ctx context.Context, kube kubernetes.Interface, namespaces ...string) error {
	var errs []error
	for _, ns := range namespaces {
		errs = append(errs,
			kube.AppsV1().StatefulSets(ns).DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{}),
			kube.CoreV1().Pods(ns).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}, metav1.ListOptions{}))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deleting what the section created: %w", err)
	}
	return nil
}

// createNamespaces creates the namespaces and waits until our server's cache has them.
func createNamespaces(ctx context.Context, kube kubernetes.Interface, o *ours, names ...string) error {
	for _, name := range names {
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating namespace %s: %w", name, err)
		}
	}
	return poll(ctx, 30*time.Second, func() (bool, error) {
		for _, name := range names {
			if err := o.mgr.GetCache().Get(ctx, client.ObjectKey{Name: name}, &corev1.Namespace{}); err != nil {
				return false, nil
			}
		}
		return true, nil
	})
}

// createSettings creates the built-in policies' settings ConfigMap with its
// defaults in the server's namespace: the exported native bindings read it
// as their params (doris-admission falls back to the same defaults).
func createSettings(ctx context.Context, kube kubernetes.Interface) error {
	cm := &corev1.ConfigMap{}
	if err := yaml.UnmarshalStrict(builtin.Settings, cm); err != nil {
		return fmt.Errorf("the embedded settings: %w", err)
	}
	cm.Namespace = builtin.DefaultNamespace
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: cm.Namespace}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := kube.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating the settings ConfigMap: %w", err)
	}
	return nil
}

// admitting is one way the API server admits the StatefulSets: with no
// webhooks, through our webhook, or through native policies.
type admitting struct {
	name      string
	namespace string
	// on and off put it in force and take it out, each returning once the
	// API server acts on it; nil for no admission webhooks.
	on, off func(context.Context) error
	// unavailable says why it cannot be measured; "" when it can.
	unavailable string
	latencies   []time.Duration
}

// createStats creates n StatefulSets per way of admitting, in rounds that
// alternate the ways, one create at a time, and records each latency.
func createStats(ctx context.Context, kube kubernetes.Interface, template *appsv1.StatefulSet, ways []*admitting, n, rounds int, progress func(string, ...any)) error {
	perRound := max(1, n/rounds)
	for round := range rounds {
		for _, way := range ways {
			if way.unavailable != "" {
				continue
			}
			count := perRound
			if round == rounds-1 {
				count = n - perRound*(rounds-1)
			}
			progress("round %d/%d: %d StatefulSet creates, %s", round+1, rounds, count, way.name)
			var createErr error
			err := way.run(ctx, func() {
				for i := range count {
					sts := template.DeepCopy()
					sts.Namespace = way.namespace
					sts.Name = fmt.Sprintf("fe-%d-%d", round, i)
					start := time.Now()
					if _, createErr = kube.AppsV1().StatefulSets(way.namespace).Create(ctx, sts, metav1.CreateOptions{}); createErr != nil {
						createErr = fmt.Errorf("creating StatefulSet %s: %w", sts.Name, createErr)
						return
					}
					way.latencies = append(way.latencies, time.Since(start))
				}
			})
			if err = cmp.Or(createErr, err); err != nil {
				return fmt.Errorf("%s: %w", way.name, err)
			}
		}
	}
	return nil
}

// mutatedByDoris tells whether a dry-run create of template in namespace
// comes back with the environment the built-in doris-env policy adds.
func mutatedByDoris(ctx context.Context, kube kubernetes.Interface, template *appsv1.StatefulSet, namespace string) (bool, error) {
	sts := template.DeepCopy()
	sts.Namespace, sts.Name = namespace, "probe"
	got, err := kube.AppsV1().StatefulSets(namespace).Create(ctx, sts, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return false, err
	}
	return !equalPodSpecs(template, got), nil
}

// equalPodSpecs tells whether got's pod template is what template asked for,
// in what the Doris policies change (the API server's defaults aside): no
// policy changed it.
func equalPodSpecs(template, got *appsv1.StatefulSet) bool {
	want, have := template.Spec.Template.Spec, got.Spec.Template.Spec
	if len(want.Containers) != len(have.Containers) || len(want.InitContainers) != len(have.InitContainers) || len(want.Volumes) != len(have.Volumes) {
		return false
	}
	if grace := ptr.Deref(have.TerminationGracePeriodSeconds, 30); grace != ptr.Deref(want.TerminationGracePeriodSeconds, 30) {
		return false
	}
	for i := range want.Containers {
		w, h := want.Containers[i], have.Containers[i]
		if len(w.Env) != len(h.Env) || len(w.VolumeMounts) != len(h.VolumeMounts) ||
			(w.Lifecycle == nil) != (h.Lifecycle == nil) || (w.StartupProbe == nil) != (h.StartupProbe == nil) ||
			(w.LivenessProbe == nil) != (h.LivenessProbe == nil) || (w.ReadinessProbe == nil) != (h.ReadinessProbe == nil) {
			return false
		}
	}
	return true
}

// webhookConfigName names the webhook configurations that point the API
// server at our in-process server.
const webhookConfigName = "doris-admission-bench"

// ourWebhook puts our webhook in force and out: the two configurations
// pointing at the in-process server, their rules set by webhook.Configurations
// from the loaded policies, as serve does.
func ourWebhook(o *ours, files *tlsFiles, inForce func(context.Context) (bool, error)) (on, off func(context.Context) error) {
	c := o.mgr.GetClient()
	exclude := []string{"kube-system", builtin.DefaultNamespace}
	selector := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpNotIn, Values: exclude}}}
	config := func(path string) admissionregistrationv1.WebhookClientConfig {
		return admissionregistrationv1.WebhookClientConfig{URL: ptr.To(o.base + path), CABundle: files.ca}
	}
	none, fail, equivalent := admissionregistrationv1.SideEffectClassNone, admissionregistrationv1.Fail, admissionregistrationv1.Equivalent
	on = func(ctx context.Context) error {
		mutating := &admissionregistrationv1.MutatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName},
			Webhooks: []admissionregistrationv1.MutatingWebhook{{
				Name: "mutate.doris-admission.io", AdmissionReviewVersions: []string{"v1"}, SideEffects: &none,
				FailurePolicy: &fail, MatchPolicy: &equivalent, TimeoutSeconds: ptr.To[int32](3),
				ReinvocationPolicy: ptr.To(admissionregistrationv1.IfNeededReinvocationPolicy),
				ClientConfig:       config(webhook.MutatePath), NamespaceSelector: selector,
			}},
		}
		validating := &admissionregistrationv1.ValidatingWebhookConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName},
			Webhooks: []admissionregistrationv1.ValidatingWebhook{{
				Name: "validate.doris-admission.io", AdmissionReviewVersions: []string{"v1"}, SideEffects: &none,
				FailurePolicy: &fail, MatchPolicy: &equivalent, TimeoutSeconds: ptr.To[int32](3),
				ClientConfig: config(webhook.ValidatePath), NamespaceSelector: selector,
			}},
		}
		for _, obj := range []client.Object{mutating, validating} {
			if err := c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating the webhook configuration: %w", err)
			}
		}
		sync := &webhook.Configurations{Reader: o.mgr.GetAPIReader(), Writer: c, Name: webhookConfigName, ExcludeNamespaces: exclude, Engine: o.engine}
		if err := sync.Sync(ctx); err != nil {
			return err
		}
		return poll(ctx, time.Minute, func() (bool, error) { return inForce(ctx) })
	}
	off = func(ctx context.Context) error {
		for _, obj := range []client.Object{
			&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName}},
			&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: webhookConfigName}},
		} {
			if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("deleting the webhook configuration: %w", err)
			}
		}
		return poll(ctx, time.Minute, func() (bool, error) {
			in, err := inForce(ctx)
			return !in, err
		})
	}
	return on, off
}

// nativePolicies is what `doris-admission policy export --builtin` makes of
// the built-in MutatingPolicies: the native objects to apply and the names
// of the policies they come from, or why there are none; notes say which
// were not exported and why.
func nativePolicies() (objects []runtime.Object, exported []string, unavailable string, notes []string, err error) {
	all, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		return nil, nil, "", nil, err
	}
	var names []string
	for _, e := range export.Export(all) {
		if e.Policy.Mutating == nil {
			continue
		}
		if e.NotExported != "" {
			notes = append(notes, e.Explanation())
			names = append(names, e.Policy.Name())
			continue
		}
		objects = append(objects, e.Objects...)
		exported = append(exported, e.Policy.Name())
	}
	if len(objects) == 0 {
		return nil, nil, fmt.Sprintf("policy export --builtin exports none of %s (why: notes below)", strings.Join(names, ", ")), notes, nil
	}
	return objects, exported, "", notes, nil
}

// nativeWay puts the exported native policies in force and out.
func nativeWay(o *ours, objects []runtime.Object, inForce func(context.Context) (bool, error)) (on, off func(context.Context) error) {
	c := o.mgr.GetClient()
	toClient := func() ([]client.Object, error) {
		var out []client.Object
		for _, obj := range objects {
			content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
			if err != nil {
				return nil, err
			}
			out = append(out, &unstructured.Unstructured{Object: content})
		}
		return out, nil
	}
	on = func(ctx context.Context) error {
		objs, err := toClient()
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if err := c.Create(ctx, obj); err != nil {
				return fmt.Errorf("creating %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
			}
		}
		return poll(ctx, time.Minute, func() (bool, error) { return inForce(ctx) })
	}
	off = func(ctx context.Context) error {
		objs, err := toClient()
		if err != nil {
			return err
		}
		for _, obj := range slices.Backward(objs) {
			if err := c.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
				return err
			}
		}
		return poll(ctx, time.Minute, func() (bool, error) {
			in, err := inForce(ctx)
			return !in, err
		})
	}
	return on, off
}

// poll calls done every 100 ms until it returns true or an error, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("timed out waiting for the API server")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// typedStatefulSet converts the seed StatefulSet to the typed object client-go sends.
func typedStatefulSet(obj *unstructured.Unstructured) (*appsv1.StatefulSet, error) {
	sts := &appsv1.StatefulSet{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj.Object, sts); err != nil {
		return nil, err
	}
	sts.ResourceVersion = ""
	return sts, nil
}
