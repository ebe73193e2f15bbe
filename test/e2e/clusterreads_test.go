package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// TestClusterReadsFailLoudly runs the server's engine on an informer cache
// whose account may read ConfigMaps, Services and Namespaces but not
// StatefulSets or Secrets: a policy whose paramKind it cannot read has a
// load problem with the API server's answer, and a built-in lookup that
// reads StatefulSets fails the request with a message that names the lookup
// and the cause, instead of finding nothing.
func TestClusterReadsFailLoudly(t *testing.T) {
	if out, err := suite.apply(`
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: e2e-reads-some}
rules:
  - {apiGroups: [""], resources: [configmaps, services, namespaces], verbs: [get, list, watch]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-reads-some}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: e2e-reads-some}
subjects: [{kind: User, name: e2e-reads-some}]
`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "clusterrole,clusterrolebinding", "e2e-reads-some") })
	cfg := rest.CopyConfig(suite.env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "e2e-reads-some"}
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, httpClient)
	if err != nil {
		t.Fatal(err)
	}
	cacheErrors := &source.CacheErrors{}
	informers, err := cache.New(cfg, cache.Options{HTTPClient: httpClient, Mapper: mapper, DefaultWatchErrorHandler: cacheErrors.Handle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go informers.Start(ctx)
	kube, err := kubernetes.NewForConfig(suite.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	eng := engine.NewEngine(source.Cluster(informers, kube, mapper, kube.Discovery(), cacheErrors))
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		t.Fatal(err)
	}
	limited, err := policies.ReadPolicies("-", strings.NewReader(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: secret-limits}
spec:
  paramKind: {apiVersion: v1, kind: Secret}
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
  validations: [{expression: "has(params.data)"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	loaded := eng.Load(append(builtins, limited...))
	waitCtx, done := context.WithTimeout(ctx, 5*time.Second)
	eng.CheckParams(waitCtx, loaded)
	done()
	for _, l := range loaded {
		if l.Name() == "secret-limits" && (len(l.Problems) != 1 || !strings.Contains(l.Problems[0].Message, "the server cannot read Secret objects") || !strings.Contains(l.Problems[0].Message, `secrets is forbidden: User "e2e-reads-some" cannot list resource "secrets"`)) {
			t.Errorf("secret-limits problems %+v, want one that says the Secrets cannot be read and why", l.Problems)
		}
	}
	// The server would not turn ready: it cannot fill its cache of StatefulSets.
	waitCtx, done = context.WithTimeout(ctx, 5*time.Second)
	err = eng.WarmUp(waitCtx)
	done()
	if err == nil || !strings.Contains(err.Error(), "statefulsets.apps is forbidden") {
		t.Errorf("WarmUp: %v, want the StatefulSets' cache to fail with the API server's answer", err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "deploy", "examples", "seed-be-plain.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, err := policies.ReadDocuments("-", strings.NewReader(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range docs {
		if doc.Object.GetKind() != "StatefulSet" {
			continue
		}
		req, err := eng.RequestForObject(doc.Object)
		if err != nil {
			t.Fatal(err)
		}
		_, err = eng.Mutate(ctx, req)
		var perr *engine.PolicyError
		for _, want := range []string{"dorisFEService could not read the cluster: reading the StatefulSet objects of namespace default", "statefulsets.apps is forbidden"} {
			if !errors.As(err, &perr) || !strings.Contains(err.Error(), want) {
				t.Errorf("mutating the seed's BE with StatefulSets unreadable: %v, want it to fail saying %q", err, want)
			}
		}
	}
}

// TestPolicyListLiveShowsTheServersProblems: a policy whose paramKind the
// server cannot read (no such kind in this cluster) is admitted, enforced
// per its failurePolicy, and its problem is in its status and in
// `policy list --live`.
func TestPolicyListLiveShowsTheServersProblems(t *testing.T) {
	if out, err := suite.apply(`
apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: widget-limits}
spec:
  paramKind: {apiVersion: example.com/v1, kind: Widget}
  paramRef: {name: limits, namespace: default, parameterNotFoundAction: Deny}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [daemonsets]}]
  validations: [{expression: "has(params.spec)"}]
`); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Cleanup(func() { suite.kubectl("delete", "validatingpolicy", "widget-limits", "--ignore-not-found") })
	const want = "the server cannot read Widget objects"
	eventually(t, 30*time.Second, func() string {
		status, _ := suite.kubectl("get", "validatingpolicy", "widget-limits", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].message}")
		return map[bool]string{false: "the policy's Ready condition does not say it: " + status}[strings.Contains(status, want)]
	})
	out, err := exec.Command(suite.serverBin, "policy", "list", "--live", "--kubeconfig", suite.kubeconfig).CombinedOutput()
	if err != nil || !regexp.MustCompile(`widget-limits\s+ValidatingPolicy\s+cluster\s+daemonsets.apps\s+server: .*`+want).Match(out) {
		t.Errorf("policy list --live (%v) does not show the server's problem with widget-limits:\n%s", err, out)
	}
}
