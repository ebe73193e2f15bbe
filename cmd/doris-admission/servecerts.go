package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/doris-admission/doris-admission/certs"
)

// certOptions say whether and how serve manages its own certificates.
type certOptions struct {
	manage      bool
	secret      string
	service     string
	hosts       []string
	caValidity  time.Duration
	validity    time.Duration
	renewBefore time.Duration
}

func (o *certOptions) bindFlags(cmd *cobra.Command) {
	flags := cmd.Flags()
	flags.BoolVar(&o.manage, "manage-certificates", false, "create and renew the CA and serving certificate in a Secret, write them to --cert-dir and put the CA in the webhook configurations")
	flags.StringVar(&o.secret, "certificate-secret", "doris-admission-tls", "Secret in the server's namespace that holds the certificates, with --manage-certificates")
	flags.StringVar(&o.service, "service-name", "doris-admission", "the webhook's Service, whose DNS names the certificate is for")
	flags.StringSliceVar(&o.hosts, "certificate-hosts", nil, "more DNS names or IP addresses the serving certificate is for")
	flags.DurationVar(&o.caValidity, "ca-validity", certs.DefaultCAValidity, "lifetime of a new CA")
	flags.DurationVar(&o.validity, "certificate-validity", certs.DefaultLeafValidity, "lifetime of a new serving certificate")
	flags.DurationVar(&o.renewBefore, "renew-before", 90*24*time.Hour, "replace a certificate this long before it expires")
}

// start makes sure the certificates exist before the webhook server starts,
// and returns the manager that renews them (nil without --manage-certificates).
func (o *certOptions) start(ctx context.Context, mgr ctrl.Manager, certDir string) (*certs.Manager, error) {
	if !o.manage {
		return nil, nil
	}
	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, fmt.Errorf("connecting to the cluster: %w", err)
	}
	m := &certs.Manager{
		Client:      direct,
		Secret:      types.NamespacedName{Namespace: ownNamespace(), Name: o.secret},
		Options:     certs.Options{Service: o.service, Namespace: ownNamespace(), Hosts: o.hosts, CAValidity: o.caValidity, LeafValidity: o.validity},
		RenewBefore: o.renewBefore, CertDir: certDir, Log: ctrl.Log.WithName("certificates"),
	}
	if _, err := m.Ensure(ctx); err != nil {
		return nil, fmt.Errorf("setting up the webhook certificates: %w", err)
	}
	return m, nil
}
