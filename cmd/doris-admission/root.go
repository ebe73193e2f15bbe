package main

import "github.com/spf13/cobra"

// newRootCommand returns the doris-admission command with every subcommand.
func newRootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "doris-admission",
		Short: "Admission webhook and CEL policy server for Apache Doris on Kubernetes",
		Long: `doris-admission makes plain Apache Doris StatefulSets work on Kubernetes: at
kubectl apply time it injects what hand-written manifests forget, and rejects
NodePort Services that collide or fall out of range. Its rules are CEL
policies, and it enforces your own CEL policies cluster-wide too.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newServeCommand(runServe), newMutateCommand(), newValidateCommand(), newPolicyCommand(), newAuditCommand(), newExposeBECommand(), newCertsCommand(), newPlaygroundCommand(), newVersionCommand())
	return root
}
