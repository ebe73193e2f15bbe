package certs

import (
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"
)

// expiryDesc describes doris_admission_certificate_expiry_timestamp_seconds.
var expiryDesc = prometheus.NewDesc(
	"doris_admission_certificate_expiry_timestamp_seconds",
	"When a certificate the webhook serves with expires, in Unix seconds: the serving certificate (tls.crt) and its CA (ca.crt), as found in the certificate folder.",
	[]string{"certificate"}, nil,
)

// ExpiryCollector reports the expiry of the certificates in dir at every
// scrape, so it shows what is served whoever wrote the files: this server,
// cert-manager or a person.
type ExpiryCollector struct {
	Dir string
}

func (c ExpiryCollector) Describe(ch chan<- *prometheus.Desc) { ch <- expiryDesc }

func (c ExpiryCollector) Collect(ch chan<- prometheus.Metric) {
	for label, file := range map[string]string{"serving": "tls.crt", "ca": keyCA} {
		data, err := os.ReadFile(filepath.Join(c.Dir, file))
		if err != nil {
			continue
		}
		if cert, err := ParseCertificate(data); err == nil {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, float64(cert.NotAfter.Unix()), label)
		}
	}
}
