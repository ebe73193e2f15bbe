package e2e

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// The chart, the cert-manager overlay and what the tests compare them with.
var (
	chartDir          = filepath.Join(repoRoot, "deploy", "helm", "doris-admission")
	certManagerDir    = filepath.Join(repoRoot, "deploy", "kustomize", "overlays", "cert-manager")
	certManagerCRDDir = filepath.Join("testdata", "cert-manager")
)

const (
	certDirArg     = "--cert-dir=/var/run/doris-admission/tls"
	servingCert    = "doris-admission-serving"
	injectCAFromAn = "cert-manager.io/inject-ca-from"
)

// TestHelmChartCRDsAreDeployCRDs fails when the chart's copies of the CRDs
// differ from deploy/crds, which `make generate` writes: copy them over.
func TestHelmChartCRDsAreDeployCRDs(t *testing.T) {
	want, err := filepath.Glob(filepath.Join(repoRoot, "deploy", "crds", "*_*.yaml"))
	if err != nil || len(want) == 0 {
		t.Fatalf("no CRDs in deploy/crds: %v", err)
	}
	got, err := filepath.Glob(filepath.Join(chartDir, "crds", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	names := func(paths []string) []string {
		var out []string
		for _, p := range paths {
			out = append(out, filepath.Base(p))
		}
		return out
	}
	if !slices.Equal(names(want), names(got)) {
		t.Fatalf("deploy/helm/doris-admission/crds holds %v, deploy/crds holds %v: copy deploy/crds/*_*.yaml into the chart's crds folder", names(got), names(want))
	}
	for _, p := range want {
		source, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		chartCopy, err := os.ReadFile(filepath.Join(chartDir, "crds", filepath.Base(p)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(source, chartCopy) {
			t.Errorf("deploy/helm/doris-admission/crds/%s differs from deploy/crds/%[1]s: copy it over after `make generate`", filepath.Base(p))
		}
	}
}

// TestHelmLint lints the chart in both certificate modes and checks that
// values the chart cannot honour are refused, naming the field.
func TestHelmLint(t *testing.T) {
	for _, mode := range []string{"self-managed", "cert-manager"} {
		out, err := runHelm(t, "lint", "--strict", chartDir, "--namespace", "doris-admission", "--set", "certificates.mode="+mode)
		if err != nil {
			t.Errorf("helm lint with certificates.mode=%s: %v\n%s", mode, err, out)
		}
	}
	for _, bad := range []struct{ set, field string }{
		{"certificates.mode=vault", "certificates/mode"},
		{"webhooks.mutating.timeoutSeconds=4", "webhooks/mutating/timeoutSeconds"},
		// Each policy's failurePolicy decides: the chart has none to set.
		{"webhooks.validating.failurePolicy=Fail", "failurePolicy"},
		{"networkPolicy.apiServer[0].cidr=10.0.0.1/32", "networkPolicy/apiServer/0"},
		{"webhooks.excludeNamespaces={Not_A_Namespace}", "webhooks/excludeNamespaces"},
	} {
		out, err := runHelm(t, "template", "doris-admission", chartDir, "--set", bad.set)
		if err == nil {
			t.Errorf("helm template accepted --set %s:\n%s", bad.set, out)
		} else if !strings.Contains(out, bad.field) {
			t.Errorf("helm template refused --set %s without naming %s:\n%s", bad.set, bad.field, out)
		}
	}
}

// TestHelmChartMatchesKustomize renders the chart in the namespace of the
// kustomize base and compares every object with the base's (self-managed
// certificates) and the cert-manager overlay's (cert-manager mode): they must
// be the same but for Helm's own labels and the base's Namespace, which the
// chart leaves to `helm install --create-namespace`.
func TestHelmChartMatchesKustomize(t *testing.T) {
	for _, c := range []struct{ mode, kustomization string }{
		{"self-managed", filepath.Join(repoRoot, "deploy", "kustomize", "base")},
		{"cert-manager", certManagerDir},
	} {
		t.Run(c.mode, func(t *testing.T) {
			chart := byKey(t, parseObjects(t, renderChart(t, "doris-admission", "certificates.mode="+c.mode)))
			kustomized := byKey(t, parseObjects(t, kustomize(t, c.kustomization)))
			if _, ok := kustomized["Namespace//doris-admission"]; !ok {
				t.Errorf("%s has no Namespace doris-admission", c.kustomization)
			}
			delete(kustomized, "Namespace//doris-admission")
			for _, objects := range []map[string]*unstructured.Unstructured{chart, kustomized} {
				for _, u := range objects {
					dropHelmLabels(u)
				}
			}
			if diff := cmp.Diff(objectMaps(kustomized), objectMaps(chart)); diff != "" {
				t.Errorf("the chart in mode %s differs from %s (-kustomize +helm):\n%s", c.mode, c.kustomization, diff)
			}
		})
	}
}

// TestHelmChartValues checks the values users set reach the objects: the
// image, replicas, timeouts and the namespaces excluded
// both in the webhook configurations and in the server's flags (the server
// keeps the configurations' namespaceSelector equal to its flag).
func TestHelmChartValues(t *testing.T) {
	objects := byKey(t, parseObjects(t, renderChart(t, "ops",
		"image.repository=registry.example/doris-admission", "image.tag=v1.2.3", "image.pullPolicy=IfNotPresent",
		"replicas=3", "webhooks.mutating.timeoutSeconds=2",
		"webhooks.validating.timeoutSeconds=10", "webhooks.excludeNamespaces={monitoring,ops}")))
	var deploy appsv1.Deployment
	fromUnstructured(t, objects, "Deployment/ops/doris-admission", &deploy)
	server := deploy.Spec.Template.Spec.Containers[0]
	if server.Image != "registry.example/doris-admission:v1.2.3" || server.ImagePullPolicy != "IfNotPresent" || *deploy.Spec.Replicas != 3 {
		t.Errorf("Deployment doris-admission: image %s, imagePullPolicy %s, replicas %d; want registry.example/doris-admission:v1.2.3, IfNotPresent, 3",
			server.Image, server.ImagePullPolicy, *deploy.Spec.Replicas)
	}
	excluded := []string{"kube-node-lease", "kube-system", "monitoring", "ops"}
	want := []string{"serve", "--manage-certificates", certDirArg, "--agent-image=registry.example/doris-admission-agent:v1.2.3", "--exclude-namespaces=" + strings.Join(excluded, ",")}
	if !slices.Equal(server.Args, want) {
		t.Errorf("Deployment doris-admission: args %q, want %q", server.Args, want)
	}
	var mutating admissionregistrationv1.MutatingWebhookConfiguration
	fromUnstructured(t, objects, "MutatingWebhookConfiguration//doris-admission", &mutating)
	var validating admissionregistrationv1.ValidatingWebhookConfiguration
	fromUnstructured(t, objects, "ValidatingWebhookConfiguration//doris-admission", &validating)
	m, v := mutating.Webhooks[0], validating.Webhooks[0]
	// The anchors: the server's webhooks take their timeouts; they fail
	// open, as each policy decides for its own.
	if *m.FailurePolicy != "Ignore" || *m.TimeoutSeconds != 2 || *v.FailurePolicy != "Ignore" || *v.TimeoutSeconds != 10 {
		t.Errorf("webhooks: mutating failurePolicy %s timeoutSeconds %d, validating failurePolicy %s timeoutSeconds %d; want Ignore 2, Ignore 10",
			*m.FailurePolicy, *m.TimeoutSeconds, *v.FailurePolicy, *v.TimeoutSeconds)
	}
	for name, hook := range map[string]admissionregistrationv1.WebhookClientConfig{"MutatingWebhookConfiguration": m.ClientConfig, "ValidatingWebhookConfiguration": v.ClientConfig} {
		if hook.Service == nil || hook.Service.Namespace != "ops" || hook.Service.Name != "doris-admission" {
			t.Errorf("%s doris-admission: clientConfig.service %+v, want doris-admission in ops", name, hook.Service)
		}
	}
	for name, selector := range map[string]*metav1.LabelSelector{"MutatingWebhookConfiguration": m.NamespaceSelector, "ValidatingWebhookConfiguration": v.NamespaceSelector} {
		want := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: excluded,
		}}}
		if diff := cmp.Diff(want, selector); diff != "" {
			t.Errorf("%s doris-admission: namespaceSelector (-want +got):\n%s", name, diff)
		}
	}
	if _, ok := objects["PodDisruptionBudget/ops/doris-admission"]; !ok {
		t.Errorf("no PodDisruptionBudget doris-admission with 3 replicas")
	}
	checkCertificates(t, objects, "ops", false)
}

// TestHelmChartKeepsTheServersWebhooks renders the chart against the
// suite's cluster, whose webhook configurations doris-admission carry the
// webhooks the server added for its policies: an upgrade must apply those,
// not drop them (which would stop enforcement until the server resyncs) nor
// change anything Helm's server-side apply would conflict over.
func TestHelmChartKeepsTheServersWebhooks(t *testing.T) {
	objects := byKey(t, parseObjects(t, renderChart(t, "doris-admission", "--dry-run=server", "--take-ownership", "--kubeconfig", suite.kubeconfig)))
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		out, err := suite.kubectl("get", strings.ToLower(kind), "doris-admission", "-o", "json")
		if err != nil {
			t.Fatalf("reading the %s: %v\n%s", kind, err, out)
		}
		var live unstructured.Unstructured
		if err := live.UnmarshalJSON([]byte(out)); err != nil {
			t.Fatal(err)
		}
		added := addedWebhooks(t, &live)
		if len(added) == 0 {
			t.Fatalf("the server added no webhook to the %s; the built-in policies need one", kind)
		}
		if diff := cmp.Diff(added, addedWebhooks(t, objects[kind+"//doris-admission"])); diff != "" {
			t.Errorf("the chart renders other webhooks than the server added to the %s doris-admission (-cluster +helm):\n%s", kind, diff)
		}
	}
}

// addedWebhooks are the webhooks of a configuration after its anchor.
func addedWebhooks(t *testing.T, u *unstructured.Unstructured) []any {
	t.Helper()
	if u == nil {
		t.Fatal("no webhook configuration doris-admission among the rendered objects")
	}
	webhooks, _, _ := unstructured.NestedSlice(u.Object, "webhooks")
	if len(webhooks) == 0 {
		t.Fatalf("%s %s has no webhook", u.GetKind(), u.GetName())
	}
	return webhooks[1:]
}

// TestHelmChartIsAccepted renders the chart in both certificate modes, with
// its CRDs, into a namespace of its own and applies it server-side, as
// TestKustomizeBaseIsAccepted does the base; cert-manager's CRDs are installed
// for the Issuers and Certificates.
func TestHelmChartIsAccepted(t *testing.T) {
	installCertManagerCRDs(t)
	for _, mode := range []string{"self-managed", "cert-manager"} {
		t.Run(mode, func(t *testing.T) {
			namespace := "helm-" + mode
			objects := parseObjects(t, renderChart(t, namespace, "certificates.mode="+mode))
			checkCertificates(t, byKey(t, objects), namespace, mode == "cert-manager")
			applyInNamespace(t, namespace, objects)
		})
	}
}

// TestKustomizeCertManagerOverlayIsAccepted checks the cert-manager overlay
// wires the certificate through and applies it server-side. It is applied in
// a namespace of its own (doris-admission, which the kustomize tests delete,
// may be terminating: the test control plane has no namespace controller),
// with every reference to the namespace moved along.
func TestKustomizeCertManagerOverlayIsAccepted(t *testing.T) {
	installCertManagerCRDs(t)
	rendered := kustomize(t, certManagerDir)
	checkCertificates(t, byKey(t, parseObjects(t, rendered)), "doris-admission", true)

	const namespace = "overlay-cert-manager"
	for _, r := range []struct{ old, new string }{
		{"namespace: doris-admission\n", "namespace: " + namespace + "\n"},
		{injectCAFromAn + ": doris-admission/", injectCAFromAn + ": " + namespace + "/"},
		{"- doris-admission.doris-admission", "- doris-admission." + namespace},
	} {
		if !strings.Contains(rendered, r.old) {
			t.Fatalf("the rendered overlay has no %q to move to namespace %s:\n%s", r.old, namespace, rendered)
		}
		rendered = strings.ReplaceAll(rendered, r.old, r.new)
	}
	var objects []*unstructured.Unstructured
	for _, u := range parseObjects(t, rendered) {
		if u.GetKind() != "Namespace" {
			objects = append(objects, u)
		}
	}
	checkCertificates(t, byKey(t, objects), namespace, true)
	applyInNamespace(t, namespace, objects)
}

// checkCertificates checks how the objects of one install in namespace get
// their serving certificate. With cert-manager: a self-signed Issuer signs a
// CA Certificate, whose Issuer signs the serving Certificate for the
// Service's names; both webhook configurations take its CA; the Deployment
// mounts its Secret as the cert dir, without --manage-certificates, and the
// Role grants the audit Lease only, no Secrets. Self-managed: --manage-certificates, the Role on the
// Secret doris-admission-tls, and no cert-manager objects or annotations.
func checkCertificates(t *testing.T, objects map[string]*unstructured.Unstructured, namespace string, certManager bool) {
	t.Helper()
	var deploy appsv1.Deployment
	fromUnstructured(t, objects, "Deployment/"+namespace+"/doris-admission", &deploy)
	server := deploy.Spec.Template.Spec.Containers[0]
	if !slices.Contains(server.Args, certDirArg) {
		t.Errorf("Deployment doris-admission: args %q lack %s", server.Args, certDirArg)
	}
	var certVolume string
	for _, m := range server.VolumeMounts {
		if "--cert-dir="+m.MountPath == certDirArg {
			certVolume = m.Name
		}
	}
	var secretVolume string
	for _, v := range deploy.Spec.Template.Spec.Volumes {
		if v.Name == certVolume && v.Secret != nil {
			secretVolume = v.Secret.SecretName
		}
	}
	var webhookAnnotations []string
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		u := objects[kind+"//doris-admission"]
		if u == nil {
			t.Fatalf("no %s doris-admission", kind)
		}
		webhookAnnotations = append(webhookAnnotations, u.GetAnnotations()[injectCAFromAn])
	}
	role := objects["Role/"+namespace+"/doris-admission"]

	if !certManager {
		if !slices.Contains(server.Args, "--manage-certificates") || secretVolume != "" {
			t.Errorf("Deployment doris-admission: args %q, cert dir from Secret %q; want --manage-certificates and an emptyDir", server.Args, secretVolume)
		}
		if role == nil || !strings.Contains(fmt.Sprint(role.Object["rules"]), "doris-admission-tls") {
			t.Errorf("no Role doris-admission on the Secret doris-admission-tls for --manage-certificates: %v", role)
		}
		for key, u := range objects {
			if u.GroupVersionKind().Group == "cert-manager.io" {
				t.Errorf("%s without cert-manager", key)
			}
		}
		if !slices.Equal(webhookAnnotations, []string{"", ""}) {
			t.Errorf("webhook configurations annotated %s %q without cert-manager", injectCAFromAn, webhookAnnotations)
		}
		return
	}

	if slices.Contains(server.Args, "--manage-certificates") {
		t.Errorf("Deployment doris-admission: args %q: with cert-manager the server must not manage the certificates", server.Args)
	}
	if role == nil || strings.Contains(fmt.Sprint(role.Object["rules"]), "secrets") || !strings.Contains(fmt.Sprint(role.Object["rules"]), "leases") {
		t.Errorf("Role doris-admission with cert-manager: want the audit Lease and no Secrets, got %v", role)
	}
	if want := namespace + "/" + servingCert; !slices.Equal(webhookAnnotations, []string{want, want}) {
		t.Errorf("webhook configurations annotated %s %q, want %s on both", injectCAFromAn, webhookAnnotations, want)
	}
	serving := objects["Certificate/"+namespace+"/"+servingCert]
	if serving == nil {
		t.Fatalf("no Certificate %s in %s", servingCert, namespace)
	}
	if secret, _, _ := unstructured.NestedString(serving.Object, "spec", "secretName"); secret == "" || secret != secretVolume {
		t.Errorf("Deployment doris-admission mounts the Secret %q as its cert dir; Certificate %s writes %q", secretVolume, servingCert, secret)
	}
	dnsNames, _, _ := unstructured.NestedStringSlice(serving.Object, "spec", "dnsNames")
	for _, name := range []string{"doris-admission." + namespace + ".svc", "doris-admission." + namespace + ".svc.cluster.local"} {
		if !slices.Contains(dnsNames, name) {
			t.Errorf("Certificate %s: dnsNames %q lack %s, the name the API server calls the Service by", servingCert, dnsNames, name)
		}
	}
	// serving <- CA Issuer <- CA Certificate <- self-signed Issuer.
	caIssuer := issuerOf(t, objects, namespace, serving)
	caSecret, _, _ := unstructured.NestedString(caIssuer.Object, "spec", "ca", "secretName")
	var ca *unstructured.Unstructured
	for key, u := range objects {
		if secret, _, _ := unstructured.NestedString(u.Object, "spec", "secretName"); strings.HasPrefix(key, "Certificate/") && secret == caSecret {
			ca = u
		}
	}
	if ca == nil {
		t.Fatalf("Issuer %s signs with the Secret %q, which no Certificate writes", caIssuer.GetName(), caSecret)
	}
	if isCA, _, _ := unstructured.NestedBool(ca.Object, "spec", "isCA"); !isCA {
		t.Fatalf("Certificate %s, whose Secret %q the Issuer %s signs with, is not a CA (spec.isCA is not true)", ca.GetName(), caSecret, caIssuer.GetName())
	}
	if _, selfSigned, _ := unstructured.NestedMap(issuerOf(t, objects, namespace, ca).Object, "spec", "selfSigned"); !selfSigned {
		t.Errorf("the CA Certificate %s is not issued by a self-signed Issuer", ca.GetName())
	}
}

// issuerOf is the Issuer in namespace that cert's issuerRef names.
func issuerOf(t *testing.T, objects map[string]*unstructured.Unstructured, namespace string, cert *unstructured.Unstructured) *unstructured.Unstructured {
	t.Helper()
	kind, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "kind")
	name, _, _ := unstructured.NestedString(cert.Object, "spec", "issuerRef", "name")
	issuer := objects["Issuer/"+namespace+"/"+name]
	if kind != "Issuer" || issuer == nil {
		t.Fatalf("Certificate %s: spec.issuerRef names %s %q, which is not among the objects", cert.GetName(), kind, name)
	}
	return issuer
}

// applyInNamespace creates namespace and applies the objects server-side, the
// way TestKustomizeBaseIsAccepted does: the webhook configurations go through
// a server-side dry run under another name, so the suite's own stay in place.
func applyInNamespace(t *testing.T, namespace string, objects []*unstructured.Unstructured) {
	t.Helper()
	var others, webhooks []*unstructured.Unstructured
	for _, u := range objects {
		if u.GetNamespace() != "" && u.GetNamespace() != namespace {
			t.Errorf("%s %s is in namespace %s, not the install's %s", u.GetKind(), u.GetName(), u.GetNamespace(), namespace)
		}
		if strings.HasSuffix(u.GetKind(), "WebhookConfiguration") {
			u = u.DeepCopy()
			u.SetName("doris-admission-dry-run")
			webhooks = append(webhooks, u)
		} else {
			others = append(others, u)
		}
	}
	if len(others) < 8 || len(webhooks) != 2 {
		t.Fatalf("%d objects and %d webhook configurations to apply", len(others), len(webhooks))
	}
	if out, err := suite.kubectl("create", "namespace", namespace); err != nil && !strings.Contains(out, "AlreadyExists") {
		t.Fatalf("creating the namespace %s: %v\n%s", namespace, err, out)
	}
	t.Cleanup(func() {
		suite.kubectl("delete", "namespace", namespace, "--wait=false")
		suite.kubectl("delete", "clusterrole,clusterrolebinding", "doris-admission")
	})
	file := filepath.Join(t.TempDir(), "objects.yaml")
	write := func(objects []*unstructured.Unstructured) string {
		var docs []string
		for _, u := range objects {
			data, err := yaml.Marshal(u.Object)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(data))
		}
		if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	if out, err := suite.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "e2e", "-f", write(others)); err != nil {
		t.Fatalf("server-side apply: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("apply", "--server-side", "--dry-run=server", "--force-conflicts", "--field-manager", "e2e", "-f", write(webhooks)); err != nil {
		t.Fatalf("server-side dry run of the webhook configurations: %v\n%s", err, out)
	}
}

// installCertManagerCRDs installs the Certificate and Issuer CRDs of the
// pinned cert-manager release (testdata/cert-manager) and waits until they
// are served. They stay for the rest of the run: nothing else uses them.
func installCertManagerCRDs(t *testing.T) {
	t.Helper()
	if out, err := suite.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager", "e2e", "-f", certManagerCRDDir); err != nil {
		t.Fatalf("installing the cert-manager CRDs: %v\n%s", err, out)
	}
	if out, err := suite.kubectl("wait", "--for=condition=Established", "--timeout=60s",
		"crd/certificates.cert-manager.io", "crd/issuers.cert-manager.io"); err != nil {
		t.Fatalf("the cert-manager CRDs are not served: %v\n%s", err, out)
	}
}

var helmBuild struct {
	once sync.Once
	path string
	err  error
}

// helmBinary builds helm from tools/helm (cached in .cache/helm; about 2
// minutes the first time) and returns its path.
func helmBinary(t *testing.T) string {
	t.Helper()
	helmBuild.once.Do(func() {
		cmd := exec.Command("bash", filepath.Join("tools", "helm", "build.sh"))
		cmd.Dir = repoRoot
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			helmBuild.err = fmt.Errorf("tools/helm/build.sh: %w\n%s", err, stderr.String())
			return
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		helmBuild.path = lines[len(lines)-1]
		if !filepath.IsAbs(helmBuild.path) {
			helmBuild.path = filepath.Join(repoRoot, helmBuild.path)
		}
	})
	if helmBuild.err != nil {
		t.Fatal(helmBuild.err)
	}
	return helmBuild.path
}

// runHelm runs helm with a home of its own and returns its combined output.
func runHelm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := runHelmSplit(t, args...)
	return stdout + stderr, err
}

func runHelmSplit(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(helmBinary(t), args...)
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"), "HELM_DATA_HOME="+filepath.Join(home, "data"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// renderChart is `helm template` of the chart, with its CRDs, into namespace;
// each of set is a --set value, or a flag when it starts with --.
func renderChart(t *testing.T, namespace string, set ...string) string {
	t.Helper()
	args := []string{"template", "doris-admission", chartDir, "--namespace", namespace, "--include-crds"}
	for i := 0; i < len(set); i++ {
		switch s := set[i]; {
		case s == "--kubeconfig":
			args = append(args, s, set[i+1])
			i++
		case strings.HasPrefix(s, "--"):
			args = append(args, s)
		default:
			args = append(args, "--set", s)
		}
	}
	out, stderr, err := runHelmSplit(t, args...)
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// kustomize is `kubectl kustomize dir`.
func kustomize(t *testing.T, dir string) string {
	t.Helper()
	out, err := suite.kubectl("kustomize", dir)
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	return out
}

// parseObjects reads the objects of a multi-document manifest.
func parseObjects(t *testing.T, manifest string) []*unstructured.Unstructured {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(manifest)))
	var objects []*unstructured.Unstructured
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading the manifest: %v", err)
		}
		var object map[string]any
		if err := utilyaml.Unmarshal(doc, &object); err != nil {
			t.Fatalf("reading a document of the manifest: %v\n%s", err, doc)
		}
		if len(object) > 0 {
			objects = append(objects, &unstructured.Unstructured{Object: object})
		}
	}
	return objects
}

// byKey indexes objects by kind/namespace/name.
func byKey(t *testing.T, objects []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	t.Helper()
	out := map[string]*unstructured.Unstructured{}
	for _, u := range objects {
		key := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		if _, dup := out[key]; dup {
			t.Errorf("%s appears twice", key)
		}
		out[key] = u
	}
	return out
}

func objectMaps(objects map[string]*unstructured.Unstructured) map[string]map[string]any {
	out := map[string]map[string]any{}
	for key, u := range objects {
		out[key] = u.Object
	}
	return out
}

// dropHelmLabels removes the labels the chart adds to the base's.
func dropHelmLabels(u *unstructured.Unstructured) {
	for _, path := range [][]string{{"metadata", "labels"}, {"spec", "template", "metadata", "labels"}} {
		labels, found, _ := unstructured.NestedStringMap(u.Object, path...)
		if !found {
			continue
		}
		for _, key := range []string{"app.kubernetes.io/instance", "app.kubernetes.io/version", "app.kubernetes.io/managed-by", "helm.sh/chart"} {
			delete(labels, key)
		}
		_ = unstructured.SetNestedStringMap(u.Object, labels, path...)
	}
}

// fromUnstructured converts the object at key into a typed one.
func fromUnstructured(t *testing.T, objects map[string]*unstructured.Unstructured, key string, into any) {
	t.Helper()
	u := objects[key]
	if u == nil {
		t.Fatalf("no %s among the rendered objects", key)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, into); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

// TestNetworkPolicyIsOffered: off by default (TestHelmChartMatchesKustomize);
// when enabled, the chart and the kustomize component make the same
// NetworkPolicy, which admits to the webhook port only the API server's
// addresses, and the API server accepts it; the chart refuses to enable it
// without those addresses.
func TestNetworkPolicyIsOffered(t *testing.T) {
	if _, stderr, err := runHelmSplit(t, "template", "doris-admission", chartDir, "--set", "networkPolicy.enabled=true"); err == nil || !strings.Contains(stderr, "networkPolicy.enabled needs networkPolicy.apiServer") {
		t.Errorf("enabling the NetworkPolicy without the API server's addresses: %v\n%s", err, stderr)
	}
	const key = "NetworkPolicy/doris-admission/doris-admission"
	chart := byKey(t, parseObjects(t, renderChart(t, "doris-admission", "networkPolicy.enabled=true", "networkPolicy.apiServer[0].ipBlock.cidr=10.0.0.10/32")))
	kustomized := byKey(t, parseObjects(t, kustomize(t, filepath.Join("testdata", "network-policy"))))
	for _, u := range []*unstructured.Unstructured{chart[key], kustomized[key]} {
		if u == nil {
			t.Fatalf("no %s: chart %v, kustomize %v", key, chart[key] != nil, kustomized[key] != nil)
		}
		dropHelmLabels(u)
	}
	if diff := cmp.Diff(kustomized[key].Object, chart[key].Object); diff != "" {
		t.Errorf("the chart's NetworkPolicy differs from the kustomize component's (-kustomize +helm):\n%s", diff)
	}
	ingress, _, _ := unstructured.NestedSlice(chart[key].Object, "spec", "ingress")
	if got := fmt.Sprint(ingress); len(ingress) != 2 || !strings.Contains(got, "cidr:10.0.0.10/32") || !strings.Contains(got, "port:webhook") {
		t.Errorf("ingress %s, want the webhook port from 10.0.0.10/32 and the probes", got)
	}
	applyInNamespace(t, "helm-network-policy", parseObjects(t, renderChart(t, "helm-network-policy", "networkPolicy.enabled=true", "networkPolicy.apiServer[0].ipBlock.cidr=10.0.0.10/32")))
}
