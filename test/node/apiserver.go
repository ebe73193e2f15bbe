package node

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/doris-admission/doris-admission/certs"
	"github.com/doris-admission/doris-admission/internal/harness"
)

// APIServing is how the API server must serve for the node's pods to reach
// it, as a pod reaches it in any cluster: through the `kubernetes` Service
// (the first address of the service range), which kube-proxy sends to the
// address the API server advertises. So it listens on the node's address,
// not loopback, and its certificate names the Service's address and names.
type APIServing struct {
	// Address and Port are where the API server listens: the node's address.
	Address string
	Port    int
	// CertDir holds the serving certificate and the service account signing
	// key, in the file names envtest's API server reads (apiserver.crt and
	// .key, sa-signer.crt and .key).
	CertDir string
	// CA signed the serving certificate: what clients trust.
	CA []byte
}

// PrepareAPIServer writes into certDir what the API server serves with.
func PrepareAPIServer(certDir, serviceCIDR string) (*APIServing, error) {
	ip, err := nodeIP()
	if err != nil {
		return nil, err
	}
	serviceIP, err := firstAddress(serviceCIDR)
	if err != nil {
		return nil, err
	}
	port, err := harness.FreePort(ip)
	if err != nil {
		return nil, err
	}
	serving, err := certs.Generate(certs.Options{Service: "kubernetes", Namespace: "default",
		Hosts: []string{"localhost", "127.0.0.1", ip, serviceIP}})
	if err != nil {
		return nil, err
	}
	// Any key pair signs service account tokens: a second CA's.
	signer, err := certs.Generate(certs.Options{Service: "service-accounts", Namespace: "default"})
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		"apiserver.crt": serving.Serving.CertPEM, "apiserver.key": serving.Serving.KeyPEM,
		"sa-signer.crt": signer.CA.CertPEM, "sa-signer.key": signer.CA.KeyPEM,
	}
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(certDir, name), data, 0o600); err != nil {
			return nil, err
		}
	}
	return &APIServing{Address: ip, Port: port, CertDir: certDir, CA: serving.CA.CertPEM}, nil
}

// firstAddress is the first host address of cidr: the `kubernetes` Service's.
func firstAddress(cidr string) (string, error) {
	_, network, err := net.ParseCIDR(cidr)
	if err != nil {
		return "", fmt.Errorf("the service range %q: %w", cidr, err)
	}
	ip := network.IP.To4()
	if ip == nil {
		return "", fmt.Errorf("the service range %q is not IPv4", cidr)
	}
	first := append(net.IP(nil), ip...)
	first[3]++
	return first.String(), nil
}
