package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/doris-admission/doris-admission/policies"
)

func newMutateCommand() *cobra.Command {
	var opts offlineOptions
	var diff bool
	cmd := &cobra.Command{
		Use:   "mutate -f FILE|DIR|- [--policies DIR] [--diff]",
		Short: "Print manifests as the mutating policies would change them",
		Long: `Run the mutating policies on local manifests, the way the webhook does when
they are applied, and print every document: changed where a policy matched,
unchanged otherwise. With --diff, print a unified diff of what would change.`,
		Example: `  doris-admission mutate -f deploy/examples/seed-fe-plain.yaml
  kubectl kustomize overlays/prod | doris-admission mutate -f - --diff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if diff && opts.output == "json" {
				return errors.New("--diff writes a text diff; leave out --output json")
			}
			run, err := newOfflineRun(opts, cmd.InOrStdin(), cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			if opts.output == "json" {
				return run.mutateToList(cmd.Context(), cmd.OutOrStdout())
			}
			return run.mutate(cmd.Context(), cmd.OutOrStdout(), diff)
		},
	}
	opts.bindFlags(cmd)
	cmd.Flags().BoolVar(&diff, "diff", false, "print a unified diff of the changes instead of the documents")
	return cmd
}

// mutate prints each document, mutated where a policy matched.
func (r *offlineRun) mutate(ctx context.Context, out io.Writer, diff bool) error {
	for i, doc := range r.docs {
		mutated := r.mutated(ctx, doc)
		before, err := yaml.Marshal(doc.Object.Object)
		if err != nil {
			return err
		}
		after := before
		if mutated != nil {
			if after, err = yaml.Marshal(mutated.Object); err != nil {
				return err
			}
		}
		if diff {
			err = printDiff(out, doc, string(before), string(after))
		} else {
			err = printDocument(out, i, after)
		}
		if err != nil {
			return err
		}
	}
	if r.failed {
		return errFailed
	}
	return nil
}

// mutateToList writes every document, mutated where a policy matched, as
// one JSON List, the way kubectl get -o json writes several objects.
func (r *offlineRun) mutateToList(ctx context.Context, out io.Writer) error {
	items := make([]any, len(r.docs))
	for i, doc := range r.docs {
		items[i] = doc.Object.Object
		if mutated := r.mutated(ctx, doc); mutated != nil {
			items[i] = mutated.Object
		}
	}
	if err := writeJSON(out, map[string]any{"apiVersion": "v1", "kind": "List", "items": items}); err != nil {
		return err
	}
	if r.failed {
		return errFailed
	}
	return nil
}

// mutated returns doc's object after the mutating policies, or nil when none
// changed it or it could not be mutated (reported).
func (r *offlineRun) mutated(ctx context.Context, doc policies.Document) *unstructured.Unstructured {
	req := r.request(doc)
	if req == nil {
		return nil
	}
	return r.mutateRequest(ctx, doc, req)
}

// mutateRequest is mutated for a request already made from doc.
func (r *offlineRun) mutateRequest(ctx context.Context, doc policies.Document, req *policies.Request) *unstructured.Unstructured {
	res, err := r.engine.Mutate(ctx, req)
	if err != nil {
		r.report(fmt.Errorf("%s: document %d: %s: %w", doc.Origin, doc.Index, describe(doc.Object, req), err))
		return nil
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(r.stderr, "Warning: %s: document %d: %s: %s\n", doc.Origin, doc.Index, describe(doc.Object, req), w)
	}
	return res.Object
}

func printDocument(out io.Writer, i int, data []byte) error {
	if i > 0 {
		if _, err := io.WriteString(out, "---\n"); err != nil {
			return err
		}
	}
	_, err := out.Write(data)
	return err
}

func printDiff(out io.Writer, doc policies.Document, before, after string) error {
	if before == after {
		return nil
	}
	name := fmt.Sprintf("%s (document %d: %s %s)", doc.Origin, doc.Index, doc.Object.GetKind(), doc.Object.GetName())
	text, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(before), B: difflib.SplitLines(after),
		FromFile: name, ToFile: name + " mutated", Context: 3,
	})
	if err != nil {
		return err
	}
	_, err = io.WriteString(out, text)
	return err
}
