// Package certs makes the certificates the webhook serves with: a CA and a
// serving certificate for the webhook's Service, both ECDSA P-256.
package certs
