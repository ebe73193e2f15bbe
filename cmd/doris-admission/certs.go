package main

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/doris-admission/doris-admission/certs"
)

func newCertsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make the webhook's certificates",
	}
	cmd.AddCommand(newCertsGenerateCommand())
	return cmd
}

func newCertsGenerateCommand() *cobra.Command {
	var opts certs.Options
	var out string
	cmd := &cobra.Command{
		Use:   "generate --service S --namespace N --out DIR",
		Short: "Write a CA and a serving certificate for a manual install",
		Long: `Write a new CA (ca.crt) and a serving certificate (tls.crt, tls.key) for the
webhook's Service into DIR, ECDSA P-256. Give DIR to serve --cert-dir, and put
the CA, base64-encoded (printed at the end), in the caBundle of both webhook
configurations.`,
		Example: "  doris-admission certs generate --service doris-admission --namespace doris-admission --out ./certs",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			bundle, err := certs.Generate(opts)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating %s: %w", out, err)
			}
			for name, file := range map[string]struct {
				data []byte
				mode os.FileMode
			}{
				"ca.crt":  {bundle.CA.CertPEM, 0o644},
				"tls.crt": {bundle.Serving.CertPEM, 0o644},
				"tls.key": {bundle.Serving.KeyPEM, 0o600},
			} {
				if err := os.WriteFile(filepath.Join(out, name), file.data, file.mode); err != nil {
					return fmt.Errorf("writing %s: %w", name, err)
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote ca.crt, tls.crt and tls.key to %s for %s\ncaBundle: %s\n",
				out, certs.DNSNames(opts.Service, opts.Namespace)[2], base64.StdEncoding.EncodeToString(bundle.CA.CertPEM))
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Service, "service", "doris-admission", "name of the webhook's Service")
	cmd.Flags().StringVar(&opts.Namespace, "namespace", "doris-admission", "namespace of the webhook's Service")
	cmd.Flags().StringVar(&out, "out", "certs", "folder to write the files into")
	cmd.Flags().DurationVar(&opts.CAValidity, "ca-validity", certs.DefaultCAValidity, "how long the CA is valid")
	cmd.Flags().DurationVar(&opts.LeafValidity, "validity", certs.DefaultLeafValidity, "how long the serving certificate is valid")
	return cmd
}
