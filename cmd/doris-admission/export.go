package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/export"
)

func newPolicyExportCommand() *cobra.Command {
	var sources policySources
	var withBuiltin bool
	var output string
	cmd := &cobra.Command{
		Use:   "export [--policies DIR] [--builtin] [--disable-builtin NAME] [-o FILE]",
		Short: "Print policies as native MutatingAdmissionPolicy and ValidatingAdmissionPolicy objects",
		Long: `Print each policy as the equivalent native admissionregistration.k8s.io/v1
objects, a YAML stream for kubectl apply: a ValidatingAdmissionPolicy and its
ValidatingAdmissionPolicyBinding, or a MutatingAdmissionPolicy and its
MutatingAdmissionPolicyBinding, each with the policy's name. The binding holds
the policy's paramRef and validationActions.

The policies from --policies are exported; --builtin adds the built-in ones.
The calls of doris-admission's pure CEL functions, which read only the object
(dorisRole, dorisContainer, dorisConfDir, and dorisPort with a constant port
name), are inlined: written out as plain CEL that gives the same answers. A
policy whose expressions call the functions that read the cluster
(dorisFEService, dorisSelectedPorts, dorisMountedConf,
inventory.nodePortOwners), or dorisPort with a computed port name, has no
native equivalent: it is not exported, and standard error says why, one line
per policy. What an exported policy loses or does differently (such as a
validation's fieldPath, or the inlined functions) is said in comments above
it.`,
		Example: `  doris-admission policy export --policies deploy/examples/policies | kubectl apply -f -
  doris-admission policy export --builtin -o native.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sources.dir == "" && !withBuiltin {
				return errors.New("nothing to export: give --policies DIR, --builtin, or both")
			}
			if len(sources.disabled) > 0 && !withBuiltin {
				return errors.New("--disable-builtin needs --builtin: only then are the built-in policies exported")
			}
			run := &offlineRun{stderr: cmd.ErrOrStderr()}
			stream, err := exportStream(cmd, run.exportSelected(cmd, sources, withBuiltin))
			if err != nil {
				return err
			}
			if err := writeOutput(cmd, output, stream); err != nil {
				return err
			}
			if run.failed {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&sources.dir, "policies", "", "file or folder of MutatingPolicy and ValidatingPolicy objects to export, or - for standard input")
	cmd.Flags().StringSliceVar(&sources.disabled, "disable-builtin", nil, "with --builtin: built-in policies to leave out, by name (doris-admission policy list names them)")
	cmd.Flags().BoolVar(&withBuiltin, "builtin", false, "export the built-in policies too")
	cmd.Flags().StringVarP(&output, "output", "o", "", "write the YAML to FILE instead of standard output")
	return cmd
}

// exportSelected is the policies to export: the built-in ones (but the
// disabled) with withBuiltin, and those of --policies; what cannot be read is
// reported.
func (r *offlineRun) exportSelected(cmd *cobra.Command, sources policySources, withBuiltin bool) []policies.Policy {
	var selected []policies.Policy
	if withBuiltin {
		loaded, err := builtin.Builtin(builtin.DefaultNamespace, sources.disabled)
		r.report(err)
		selected = append(selected, loaded...)
	}
	if sources.dir != "" {
		loaded, err := policies.ReadPolicies(sources.dir, cmd.InOrStdin())
		r.report(err)
		selected = append(selected, loaded...)
	}
	return selected
}

// exportStream is the YAML stream of the native objects of selected; why a
// policy is not exported goes to standard error, a line each.
func exportStream(cmd *cobra.Command, selected []policies.Policy) ([]byte, error) {
	var out bytes.Buffer
	for _, e := range export.Export(selected) {
		if e.NotExported != "" {
			fmt.Fprintln(cmd.ErrOrStderr(), e.Explanation())
			continue
		}
		data, err := e.YAML()
		if err != nil {
			return nil, err
		}
		if out.Len() == 0 {
			out.WriteString(export.ExportHeader)
		} else {
			out.WriteString("---\n")
		}
		out.Write(data)
	}
	return out.Bytes(), nil
}

// writeOutput writes data to the file named output, or to stdout when it is "".
func writeOutput(cmd *cobra.Command, output string, data []byte) error {
	if output == "" {
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := os.WriteFile(output, data, 0o644); err != nil {
		return fmt.Errorf("writing the exported policies: %w", err)
	}
	return nil
}
