package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/policies/policytest"
)

func newPolicyTestCommand() *cobra.Command {
	var update bool
	cmd := &cobra.Command{
		Use:   "test DIR|FILE...",
		Short: "Run policy test suites: resources and the outcome each must have",
		Long: `Run the test suites under each path, offline, on the engine the webhook uses.
A suite is a YAML document of kind PolicyTest that names policies, resources,
objects the cluster holds (parameters, Namespaces) and, per case, the outcome:
allowed or denied, with which messages and warnings, for mutations the
expected object or a JSON patch, and the objects generating policies create. Paths in a suite are relative to its file.

  apiVersion: ` + policytest.APIVersion + `
  kind: ` + policytest.Kind + `
  metadata: {name: replicas}
  policies: [max-replicas.yaml]
  resources: [resources.yaml]
  cluster: [params.yaml]
  cases:
    - name: a small Deployment is allowed
      resource: Deployment/shop/web
      expect: {allowed: true, unchanged: true}
    - name: a big one is denied
      resource: Deployment/shop/huge
      expect: {allowed: false, messages: ["at most 5 replicas"]}

Prints one line per case and "N passed, N failed"; the exit status is 1 when a
case fails or a suite cannot be read.`,
		Example: `  doris-admission policy test deploy/examples/policies/
  doris-admission policy test policies/builtin/tests/`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPolicyTests(cmd, args, update)
		},
	}
	cmd.Flags().BoolVar(&update, "update", false, "rewrite each case's expect.mutated and expect.generated files that differ with what the policies made, instead of failing")
	return cmd
}

func runPolicyTests(cmd *cobra.Command, paths []string, update bool) error {
	out := cmd.OutOrStdout()
	var passed, failed int
	var readErrs []error
	for _, path := range paths {
		suites, err := policytest.Find(path)
		readErrs = append(readErrs, err)
		for _, s := range suites {
			for _, r := range s.Run(cmd.Context(), update) {
				printResult(out, r)
				if r.Passed() {
					passed++
				} else {
					failed++
				}
			}
		}
	}
	readErr := errors.Join(readErrs...)
	if readErr != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "Error:", readErr)
	}
	fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
	if failed > 0 || readErr != nil {
		return errFailed
	}
	return nil
}

func printResult(out io.Writer, r policytest.Result) {
	if r.Passed() {
		fmt.Fprintf(out, "PASS  %s: %s\n", r.Suite, r.Case)
		return
	}
	fmt.Fprintf(out, "FAIL  %s: %s\n", r.Suite, r.Case)
	for _, f := range r.Failures {
		fmt.Fprintf(out, "      %s\n", strings.ReplaceAll(strings.TrimRight(f, "\n"), "\n", "\n      "))
	}
}
