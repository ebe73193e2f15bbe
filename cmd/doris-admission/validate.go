package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/engine"
)

func newValidateCommand() *cobra.Command {
	var opts offlineOptions
	var live bool
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "validate -f FILE|DIR|- [--policies DIR]",
		Short: "Check manifests against the validating policies",
		Long: `Run the policies on local manifests the way the cluster would when they are
applied: mutating policies first, then every validating policy on the result.
Print one line per failed validation:

  <Kind> <namespace>/<name>: <field>: <message> (policy <name>)

Warnings are printed with a "Warning:" prefix. The exit status is 1 when any
validation with the Deny action fails or a document cannot be read, else 0.

Documents are checked in order, each seeing the ones before it, as kubectl
apply would create them: a Service whose node port an earlier document takes
is reported. With --live, the node ports of the Services in the cluster are
taken too.`,
		Example: `  doris-admission validate -f deploy/examples/
  doris-admission validate -f manifests/ --policies my-policies/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			run, err := newOfflineRun(opts, cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if live {
				if err := run.takeLiveNodePorts(cmd.Context(), kubeconfig); err != nil {
					return err
				}
			}
			return run.validate(cmd.Context(), cmd.OutOrStdout(), opts.output)
		},
	}
	opts.bindFlags(cmd)
	cmd.Flags().BoolVar(&live, "live", false, "also check against the node ports of the Services in the cluster")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file of the cluster, with --live (default: $KUBECONFIG, then ~/.kube/config)")
	return cmd
}

// takeLiveNodePorts reads the cluster's Services so the documents are
// checked against the node ports they hold.
func (r *offlineRun) takeLiveNodePorts(ctx context.Context, kubeconfig string) error {
	kube, err := kubeClient(kubeconfig)
	if err != nil {
		return err
	}
	services, err := kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("reading the cluster's Services: %w", err)
	}
	for i := range services.Items {
		content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&services.Items[i])
		if err != nil {
			return err
		}
		obj := &unstructured.Unstructured{Object: content}
		obj.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Service"))
		r.engine.Admitted(obj, 0)
	}
	return nil
}

// documentResult is what the policies made of one document, as --output json writes it.
type documentResult struct {
	File      string      `json:"file"`
	Document  int         `json:"document"`
	Kind      string      `json:"kind"`
	Namespace string      `json:"namespace,omitempty"`
	Name      string      `json:"name"`
	Allowed   bool        `json:"allowed"`
	Mutated   bool        `json:"mutated"`
	Denials   []violation `json:"denials"`
	Warnings  []violation `json:"warnings"`
}

type violation struct {
	Policy  string `json:"policy"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func violations(vs []engine.Violation) []violation {
	out := make([]violation, len(vs))
	for i, v := range vs {
		out[i] = violation{Policy: v.Policy, Field: v.Field, Message: v.Message}
	}
	return out
}

// validate prints every failed validation of every document, as text lines
// or, with format json, as one report.
func (r *offlineRun) validate(ctx context.Context, out io.Writer, format string) error {
	var results []documentResult
	denied := false
	for _, doc := range r.docs {
		req := r.request(doc)
		if req == nil {
			continue
		}
		obj := doc.Object
		mutated, err := r.mutateRequest(ctx, doc, req)
		if err != nil {
			// The API server refuses the request at the mutating webhook.
			denied = true
			refusal := violation{Message: err.Error()}
			var perr *engine.PolicyError
			if errors.As(err, &perr) {
				refusal.Policy = perr.Policy
			}
			results = append(results, documentResult{File: doc.Origin, Document: doc.Index, Kind: obj.GetKind(), Namespace: req.GetNamespace(), Name: obj.GetName(), Denials: []violation{refusal}})
			if format == "text" {
				fmt.Fprintf(out, "%s: %v\n", describe(obj, req), err)
			}
			continue
		}
		if mutated != nil {
			// The API server validates the object the mutations made.
			obj = mutated
			req = r.request(policies.Document{Origin: doc.Origin, Index: doc.Index, Object: obj})
		}
		res, err := r.engine.Validate(ctx, req)
		if err != nil {
			r.report(fmt.Errorf("%s: document %d: %s: %w", doc.Origin, doc.Index, describe(obj, req), err))
			continue
		}
		if len(res.Denied) == 0 {
			r.engine.Admitted(obj, 0)
		}
		denied = denied || len(res.Denied) > 0
		results = append(results, documentResult{
			File: doc.Origin, Document: doc.Index, Kind: obj.GetKind(), Namespace: req.GetNamespace(), Name: obj.GetName(),
			Allowed: len(res.Denied) == 0, Mutated: mutated != nil, Denials: violations(res.Denied), Warnings: violations(res.Warned),
		})
		if format == "text" {
			for _, v := range res.Denied {
				fmt.Fprintf(out, "%s: %s\n", describe(obj, req), v)
			}
			for _, v := range res.Warned {
				fmt.Fprintf(out, "Warning: %s: %s\n", describe(obj, req), v)
			}
		}
	}
	if format == "json" {
		if err := writeJSON(out, map[string]any{"results": results, "allowed": !denied, "errors": r.failed}); err != nil {
			return err
		}
	}
	if denied || r.failed {
		return errFailed
	}
	return nil
}

func writeJSON(out io.Writer, v any) error {
	encoder := json.NewEncoder(out)
	encoder.SetIndent("", "  ")
	return encoder.Encode(v)
}
