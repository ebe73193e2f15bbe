package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/doris-admission/doris-admission/internal/harness"
	"github.com/doris-admission/doris-admission/policies"
)

// serverNamespace is where the server runs, as in deploy/kustomize/base: it
// keeps its certificate Secret there, and the webhooks never see it.
const serverNamespace = "doris-admission"

// configurationName is the name of both webhook configurations in
// deploy/kustomize/base/webhooks.yaml.
const configurationName = "doris-admission"

// findRepo returns the repository's top folder: the nearest folder, from the
// working directory up, whose go.mod is doris-admission's.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(data, []byte("module github.com/doris-admission/doris-admission\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("the doris-admission repository is not here or above: run the demo from inside it (make demo)")
		}
		dir = parent
	}
}

// controlPlaneAssets returns the folder with kube-apiserver, etcd and
// kubectl: the one given, else what test/controlplane/build.sh builds or
// reuses (it reports its progress on stderr).
func controlPlaneAssets(ctx context.Context, repo, given string) (string, error) {
	if given != "" {
		for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
			if _, err := os.Stat(filepath.Join(given, name)); err != nil {
				return "", fmt.Errorf("%s is not in %s (from --assets or KUBEBUILDER_ASSETS): run `make controlplane` and pass the folder it prints, or leave both unset", name, given)
			}
		}
		return given, nil
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(repo, "test", "controlplane", "build.sh"))
	cmd.Dir, cmd.Stderr = repo, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("building the control plane with test/controlplane/build.sh: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1], nil
}

// startControlPlane starts etcd and kube-apiserver from assets with the CRDs
// of deploy/crds installed.
func startControlPlane(repo, assets string) (*envtest.Environment, error) {
	env := harness.ControlPlane(assets, filepath.Join(repo, "deploy", "crds"))
	if _, err := env.Start(); err != nil {
		// Stop what did start; envtest removes its own folders.
		env.Stop()
		return nil, fmt.Errorf("starting etcd and kube-apiserver from %s: %w", assets, err)
	}
	return env, nil
}

// writeKubeconfig writes a cluster-admin kubeconfig for kubectl and the server.
func writeKubeconfig(env *envtest.Environment, path string) error {
	admin, err := env.AddUser(envtest.User{Name: "demo-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("adding the admin user: %w", err)
	}
	data, err := admin.KubeConfig()
	if err != nil {
		return fmt.Errorf("writing the admin kubeconfig: %w", err)
	}
	return os.WriteFile(path, data, 0o600)
}

// kubeVersion is what kube-apiserver --version says, such as "v1.37.2".
func kubeVersion(assets string) string {
	out, err := exec.Command(filepath.Join(assets, "kube-apiserver"), "--version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "Kubernetes ")
}

// localWebhookConfigurations reads deploy/kustomize/base/webhooks.yaml and
// points every webhook at https://<address><path> instead of the in-cluster
// Service, since this cluster has no pod network; everything else (rules,
// failurePolicy, timeouts, namespaceSelector) is kept as written.
func localWebhookConfigurations(repo, address string) (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	path := filepath.Join(repo, "deploy", "kustomize", "base", "webhooks.yaml")
	docs, err := policies.ReadDocuments(path, nil)
	if err != nil {
		return nil, nil, err
	}
	local := func(config *admissionregistrationv1.WebhookClientConfig) error {
		if config.Service == nil || config.Service.Path == nil {
			return fmt.Errorf("%s: a webhook's clientConfig has no service path to point at the local server", path)
		}
		url := "https://" + address + *config.Service.Path
		config.Service, config.URL = nil, &url
		return nil
	}
	var mutating *admissionregistrationv1.MutatingWebhookConfiguration
	var validating *admissionregistrationv1.ValidatingWebhookConfiguration
	for _, doc := range docs {
		switch doc.Object.GetKind() {
		case "MutatingWebhookConfiguration":
			mutating = &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := decode(doc, mutating); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range mutating.Webhooks {
				if err := local(&mutating.Webhooks[i].ClientConfig); err != nil {
					return nil, nil, err
				}
			}
		case "ValidatingWebhookConfiguration":
			validating = &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := decode(doc, validating); err != nil {
				return nil, nil, fmt.Errorf("%s: %w", path, err)
			}
			for i := range validating.Webhooks {
				if err := local(&validating.Webhooks[i].ClientConfig); err != nil {
					return nil, nil, err
				}
			}
		}
	}
	if mutating == nil || validating == nil || mutating.Name != configurationName || validating.Name != configurationName {
		return nil, nil, fmt.Errorf("%s must hold a MutatingWebhookConfiguration and a ValidatingWebhookConfiguration named %s", path, configurationName)
	}
	return mutating, validating, nil
}

// decode turns a document into a typed object, refusing fields it does not have.
func decode(doc policies.Document, into any) error {
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(doc.Object.Object, into, true); err != nil {
		return fmt.Errorf("%s: document %d: %w", doc.Origin, doc.Index, err)
	}
	return nil
}

// createNamespace creates a namespace, leaving an existing one alone.
func createNamespace(ctx context.Context, kube kubernetes.Interface, name string) error {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
