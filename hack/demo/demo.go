package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/policies"
)

// certificateSecret is the Secret `serve --manage-certificates` keeps its CA
// and serving certificate in (its --certificate-secret default).
const certificateSecret = "doris-admission-tls"

// demo is one run: what it started, so cleanup can stop it.
type demo struct {
	out        io.Writer
	opts       options
	repo       string
	assets     string
	workDir    string
	kubeconfig string
	env        *envtest.Environment
	kube       kubernetes.Interface
	server     *harness.Server
	// webhookAddress is where the server listens, host:port.
	webhookAddress string
	// steps is how many steps there are; step is the current one.
	steps, step int
}

// run performs the demo, and always stops what it started and removes its
// temporary folder before it returns.
func run(ctx context.Context, out io.Writer, opts options) (err error) {
	d := &demo{out: out, opts: opts}
	steps := []func(context.Context) error{d.startControlPlane, d.installWebhooks, d.startServer, d.applyStatefulSets, d.applyNodePortPlan, d.applyNodePortConflicts}
	d.steps = len(steps)
	defer func() {
		if stopErr := d.cleanup(); stopErr != nil {
			err = errors.Join(err, &cleanupError{stopErr})
		}
	}()
	if d.repo, err = findRepo(); err != nil {
		return err
	}
	d.printf("doris-admission demo: a throwaway Kubernetes control plane on this machine, the real\n")
	d.printf("doris-admission server in front of it, and the examples of deploy/examples applied with kubectl.\n")
	d.printf("Nothing outside this demo is touched; it cleans up after itself (Ctrl-C stops it at any time).\n")
	if d.assets, err = controlPlaneAssets(ctx, d.repo, opts.assets); err != nil {
		return err
	}
	if d.workDir, err = os.MkdirTemp("", "doris-admission-demo-"); err != nil {
		return err
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s(ctx); err != nil {
			return err
		}
	}
	return d.finish(ctx)
}

func (d *demo) printf(format string, args ...any) { fmt.Fprintf(d.out, format, args...) }

// begin prints the heading of the next step.
func (d *demo) begin(title string) {
	d.step++
	d.printf("\n[%d/%d] %s\n", d.step, d.steps, title)
}

// indent prints text with every line indented.
func (d *demo) indent(prefix, text string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		d.printf("%s%s\n", prefix, line)
	}
}

func since(start time.Time) string { return fmt.Sprintf("%.1f s", time.Since(start).Seconds()) }

func (d *demo) startControlPlane(ctx context.Context) error {
	version := kubeVersion(d.assets)
	d.begin("Starting etcd and kube-apiserver " + version)
	d.printf("   From %s (built from source by test/controlplane/build.sh).\n", d.assets)
	d.printf("   There is no scheduler, controller manager or kubelet: objects are stored, no pods run.\n")
	start := time.Now()
	env, err := startControlPlane(d.repo, d.assets)
	if err != nil {
		return err
	}
	d.env = env
	d.kubeconfig = filepath.Join(d.workDir, "kubeconfig")
	if err := writeKubeconfig(env, d.kubeconfig); err != nil {
		return err
	}
	if d.kube, err = kubernetes.NewForConfig(env.Config); err != nil {
		return fmt.Errorf("connecting to the API server: %w", err)
	}
	var kinds []string
	for _, crd := range env.CRDs {
		kinds = append(kinds, crd.Spec.Names.Kind)
	}
	slices.Sort(kinds)
	d.printf("   Up at %s in %s, with the CRDs of deploy/crds: %s.\n", env.Config.Host, since(start), strings.Join(kinds, ", "))
	return ctx.Err()
}

// installWebhooks creates the server's namespace and both webhook
// configurations, pointed at a free local port for the server.
func (d *demo) installWebhooks(ctx context.Context) error {
	d.begin("Installing the webhook configurations")
	address, err := harness.FreeAddress("127.0.0.1")
	if err != nil {
		return err
	}
	mutating, validating, err := localWebhookConfigurations(d.repo, address)
	if err != nil {
		return err
	}
	if err := createNamespace(ctx, d.kube, serverNamespace); err != nil {
		return err
	}
	if _, err := d.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, mutating, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating MutatingWebhookConfiguration %s: %w", mutating.Name, err)
	}
	if _, err := d.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, validating, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating ValidatingWebhookConfiguration %s: %w", validating.Name, err)
	}
	d.printf("   MutatingWebhookConfiguration and ValidatingWebhookConfiguration %q from\n", configurationName)
	d.printf("   deploy/kustomize/base/webhooks.yaml, as written (timeoutSeconds %d,\n", *mutating.Webhooks[0].TimeoutSeconds)
	d.printf("   namespaceSelector) except clientConfig: this cluster has no pod network, so instead of the\n")
	d.printf("   Service %s/%s they call %s and %s.\n",
		serverNamespace, "doris-admission", *mutating.Webhooks[0].ClientConfig.URL, *validating.Webhooks[0].ClientConfig.URL)
	d.printf("   They have no caBundle yet: the server makes its own certificates and puts its CA there.\n")
	d.webhookAddress = address
	return nil
}

func (d *demo) startServer(ctx context.Context) error {
	d.begin("Starting doris-admission serve --manage-certificates, with no certificates")
	start := time.Now()
	bin := filepath.Join(d.workDir, "doris-admission")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/doris-admission")
	build.Dir = d.repo
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/doris-admission: %w\n%s", err, out)
	}
	d.printf("   Built with go build ./cmd/doris-admission in %s.\n", since(start))
	host, port, _ := strings.Cut(d.webhookAddress, ":")
	args := []string{"--manage-certificates", "--certificate-hosts", host,
		"--kubeconfig", d.kubeconfig, "--host", host, "--port", port,
		"--cert-dir", filepath.Join(d.workDir, "tls"),
		"--webhook-configuration", configurationName}
	env := []string{"POD_NAMESPACE=" + serverNamespace}
	start = time.Now()
	var err error
	d.server, err = harness.StartServer(bin, filepath.Join(d.workDir, "server.log"), env, args...)
	if err != nil {
		return err
	}
	d.printf("   $ POD_NAMESPACE=%s doris-admission %s\n", serverNamespace, wrapCommand(d.server.Cmd.Args[1:], "       "))
	if err := d.server.WaitReady(ctx, 2*time.Minute); err != nil {
		return err
	}
	d.printf("   Ready (/readyz on %s) in %s. On its own, as in a real install, it:\n", d.server.ProbeAddr, since(start))
	return d.describeCertificates(ctx)
}

// describeCertificates waits until the server has put its CA in both webhook
// configurations, then says what it created.
func (d *demo) describeCertificates(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var (
		secretCA, secretCert []byte
		mutating             *admissionregistrationv1.MutatingWebhookConfiguration
		validating           *admissionregistrationv1.ValidatingWebhookConfiguration
		missing              string
	)
	for {
		missing = ""
		secret, err := d.kube.CoreV1().Secrets(serverNamespace).Get(ctx, certificateSecret, metav1.GetOptions{})
		if err == nil {
			secretCA, secretCert = secret.Data["ca.crt"], secret.Data["tls.crt"]
			mutating, err = d.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, configurationName, metav1.GetOptions{})
		}
		if err == nil {
			validating, err = d.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, configurationName, metav1.GetOptions{})
		}
		switch {
		case err != nil:
			missing = err.Error()
		case len(secretCA) == 0 || len(secretCert) == 0:
			missing = fmt.Sprintf("Secret %s/%s has no ca.crt or tls.crt", serverNamespace, certificateSecret)
		case !bytes.Contains(mutating.Webhooks[0].ClientConfig.CABundle, secretCA):
			missing = fmt.Sprintf("MutatingWebhookConfiguration %s: webhooks[0].clientConfig.caBundle does not hold the CA of Secret %s/%s", configurationName, serverNamespace, certificateSecret)
		case !bytes.Contains(validating.Webhooks[0].ClientConfig.CABundle, secretCA):
			missing = fmt.Sprintf("ValidatingWebhookConfiguration %s: webhooks[0].clientConfig.caBundle does not hold the CA of Secret %s/%s", configurationName, serverNamespace, certificateSecret)
		case len(mutating.Webhooks) < 2:
			missing = fmt.Sprintf("MutatingWebhookConfiguration %s has no webhook for the policies yet", configurationName)
		}
		if missing == "" {
			break
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("the server was ready but did not set up its certificates and webhooks within a minute: %s; its log:\n%s", missing, d.server.Log())
			}
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	ca, caErr := parseCertificate(secretCA)
	leaf, leafErr := parseCertificate(secretCert)
	if err := errors.Join(caErr, leafErr); err != nil {
		return fmt.Errorf("reading the certificates in Secret %s/%s: %w", serverNamespace, certificateSecret, err)
	}
	hosts := slices.Clone(leaf.DNSNames)
	for _, ip := range leaf.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	d.printf("   - created the Secret %s/%s with a CA (%q, valid until %s)\n", serverNamespace, certificateSecret, ca.Subject.CommonName, ca.NotAfter.Format(time.DateOnly))
	d.printf("     and a serving certificate (valid until %s) for\n", leaf.NotAfter.Format(time.DateOnly))
	d.printf("       %s,\n", strings.Join(hosts, ", "))
	d.printf("   - put that CA in the caBundle of both webhook configurations,\n")
	d.printf("   - added to each a webhook per group of the policies it loaded (same failurePolicy and\n")
	d.printf("     selectors), sent only what they match and failing as they do:\n")
	for _, w := range mutating.Webhooks[1:] {
		d.printf("       %s (%s): %s\n", w.Name, *w.FailurePolicy, describeRules(w.Rules))
	}
	for _, w := range validating.Webhooks[1:] {
		d.printf("       %s (%s): %s\n", w.Name, *w.FailurePolicy, describeRules(w.Rules))
	}
	return nil
}

// wrapCommand joins a command's arguments, a flag and its value on one
// line, with a continuation backslash every few flags.
func wrapCommand(args []string, indent string) string {
	var lines []string
	line := ""
	for i := 0; i < len(args); i++ {
		word := args[i]
		if strings.HasPrefix(word, "--") && i+1 < len(args) && !strings.HasPrefix(args[i+1], "--") && word != "--manage-certificates" {
			word += " " + args[i+1]
			i++
		}
		if line != "" && len(line)+len(word) > 80 {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	lines = append(lines, line)
	return strings.Join(lines, " \\\n"+indent)
}

func parseCertificate(data []byte) (*x509.Certificate, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM certificate")
	}
	return x509.ParseCertificate(block.Bytes)
}

// describeRules lists the resources and operations of webhook rules.
func describeRules(rules []admissionregistrationv1.RuleWithOperations) string {
	var parts []string
	for _, r := range rules {
		ops := make([]string, len(r.Operations))
		for i, op := range r.Operations {
			ops[i] = string(op)
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", strings.Join(r.Resources, ", "), strings.Join(ops, ", ")))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

// kubectl runs the control plane's kubectl in the repository and returns
// its combined output.
func (d *demo) kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(d.assets, "kubectl"), append([]string{"--kubeconfig", d.kubeconfig}, args...)...)
	cmd.Dir = d.repo
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// apply runs kubectl apply -f on an example and prints what kubectl said.
func (d *demo) apply(ctx context.Context, file string) (string, error) {
	path := filepath.Join("deploy", "examples", file)
	d.printf("\n   $ kubectl apply -f %s\n", path)
	out, err := d.kubectl(ctx, "apply", "-f", path)
	if strings.TrimSpace(out) != "" {
		d.indent("   | ", out)
	}
	if ctx.Err() != nil {
		return out, ctx.Err()
	}
	return out, err
}

func (d *demo) applyStatefulSets(ctx context.Context) error {
	d.begin("Applying two plain Doris StatefulSets, as people write them by hand")
	for _, file := range []string{"seed-fe-plain.yaml", "seed-be-plain.yaml"} {
		out, err := d.apply(ctx, file)
		if err != nil {
			return fmt.Errorf("kubectl apply -f deploy/examples/%s was refused: %w\n%s", file, err, out)
		}
		if strings.Contains(out, "Warning:") {
			d.printf("   The Warning: lines come from the validating policies; warnings do not block the apply.\n")
		}
		docs, err := policies.ReadDocuments(filepath.Join(d.repo, "deploy", "examples", file), nil)
		if err != nil {
			return err
		}
		for _, doc := range docs {
			if doc.Object.GetKind() != "StatefulSet" {
				continue
			}
			var applied appsv1.StatefulSet
			if err := decode(doc, &applied); err != nil {
				return err
			}
			stored, err := d.kube.AppsV1().StatefulSets(applied.Namespace).Get(ctx, applied.Name, metav1.GetOptions{})
			if err != nil {
				return fmt.Errorf("reading back StatefulSet %s/%s: %w", applied.Namespace, applied.Name, err)
			}
			added := describeInjection(&applied, stored)
			d.printf("\n   StatefulSet %s/%s. %s\n", applied.Namespace, applied.Name, summarizeApplied(&applied))
			if len(added) == 0 {
				d.printf("   The API server stored it as applied: the webhook added nothing.\n")
				continue
			}
			d.printf("   Read back from the API server, it has these additions, made by the mutating webhook:\n")
			for _, g := range added {
				d.printf("     to %s:\n", g.title)
				for _, item := range g.items {
					d.printf("       + %s\n", item)
				}
			}
		}
	}
	return nil
}

func (d *demo) applyNodePortPlan(ctx context.Context) error {
	d.begin("Applying a valid node port plan for a Doris cluster")
	if err := createNamespace(ctx, d.kube, "doris"); err != nil {
		return err
	}
	d.printf("   (Namespace doris created first, for these Services.)\n")
	out, err := d.apply(ctx, "nodeport-plan.yaml")
	if err != nil {
		return fmt.Errorf("kubectl apply -f deploy/examples/nodeport-plan.yaml was refused, but its node ports are all free and in range: %w\n%s", err, out)
	}
	d.printf("   Accepted: the node-ports policy found every nodePort in the allowed range and held by no other Service.\n")
	return nil
}

func (d *demo) applyNodePortConflicts(ctx context.Context) error {
	d.begin("Applying Services with node port mistakes")
	out, err := d.apply(ctx, "nodeport-conflicts.yaml")
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		return errors.New("kubectl apply -f deploy/examples/nodeport-conflicts.yaml was accepted, but its Services doris-be and doris-be-debug take node ports that are taken, out of range or repeated: the node-ports policy did not run")
	}
	rejected := parseRejections(out)
	if len(rejected) == 0 {
		return fmt.Errorf("kubectl apply -f deploy/examples/nodeport-conflicts.yaml failed without a refusal it could read: %w\n%s", err, out)
	}
	d.printf("\n   kubectl exits with status 1. What was rejected, and why:\n")
	for _, r := range rejected {
		name := "an object"
		switch {
		case r.namespace != "":
			name = fmt.Sprintf("%s %s/%s", r.kind, r.namespace, r.name)
		case r.name != "":
			name = r.kind + " " + r.name
		}
		by := ""
		if r.by != "" {
			by = fmt.Sprintf(" by the webhook %s", r.by)
		}
		stored := ""
		if r.kind == "Service" && r.namespace != "" {
			_, getErr := d.kube.CoreV1().Services(r.namespace).Get(ctx, r.name, metav1.GetOptions{})
			if apierrors.IsNotFound(getErr) {
				stored = " and not created"
			}
		}
		d.printf("   - %s was rejected%s%s:\n", name, by, stored)
		for _, reason := range r.reasons {
			d.printf("       %s\n", reason)
		}
	}
	if applied := appliedLines(out); len(applied) > 0 {
		d.printf("   The rest of the file was applied: %s.\n", strings.Join(applied, ", "))
	}
	d.printf("   The API server asks the webhook before it allocates node ports, so these are the rules'\n")
	d.printf("   messages, naming the Service that holds a port, not \"provided port is already allocated\".\n")
	return nil
}

// appliedLines are the objects kubectl apply reports it created, configured
// or left unchanged, such as "service/doris-fe configured".
func appliedLines(out string) []string {
	var applied []string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		for _, verb := range []string{" created", " configured", " unchanged"} {
			if strings.HasSuffix(line, verb) && strings.Count(line, " ") == 1 {
				applied = append(applied, line)
			}
		}
	}
	return applied
}

// finish says how to go on: with --keep it waits for Ctrl-C.
func (d *demo) finish(ctx context.Context) error {
	if !d.opts.keep {
		d.printf("\nDone. Run `make demo DEMO_KEEP=1` to keep the cluster running and try kubectl yourself.\n")
		d.printf("Stopping the server, kube-apiserver and etcd, and removing %s.\n", d.workDir)
		return nil
	}
	kubectl := filepath.Join(d.assets, "kubectl")
	d.printf("\nThe cluster and the server keep running (--keep). Try, in another terminal:\n\n")
	d.printf("   export KUBECONFIG=%s\n", d.kubeconfig)
	d.printf("   %s get statefulset doris-be -o yaml\n", kubectl)
	d.printf("   %s apply -f deploy/examples/seed-be-plain.yaml --dry-run=server -o yaml\n", kubectl)
	d.printf("\n   kubeconfig: %s\n", d.kubeconfig)
	d.printf("   server log: %s\n", d.server.LogPath)
	d.printf("\nPress Ctrl-C to stop everything and remove %s.\n", d.workDir)
	<-ctx.Done()
	d.printf("\nStopping the server, kube-apiserver and etcd, and removing %s.\n", d.workDir)
	return nil
}

// cleanupError is a failure to stop what the demo started or to remove its files.
type cleanupError struct{ err error }

func (e *cleanupError) Error() string {
	return "stopping what the demo started failed: " + e.err.Error()
}

func (e *cleanupError) Unwrap() error { return e.err }

// cleanup stops the server before the control plane it talks to, and
// removes the temporary folder.
func (d *demo) cleanup() error {
	var errs []error
	if d.server != nil {
		if err := d.server.Stop(30 * time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	if d.env != nil {
		if err := d.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
	}
	if d.workDir != "" {
		if err := os.RemoveAll(d.workDir); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
