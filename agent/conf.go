package agent

import (
	"bytes"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// ConfOptions say what PrepareConf copies and which key it sets.
type ConfOptions struct {
	// From is the image's conf dir; To is where the prepared copy goes.
	From, To string
	// File is the conf file to set the key in, relative to From: fe.conf or be.conf.
	File string
	// FQDN sets enable_fqdn_mode = true instead of priority_networks.
	FQDN bool
	// IPVariable names the environment variable with the pod IP, written as
	// ${IPVariable} for Doris to resolve at start; its value here says
	// whether the prefix is /32 (IPv4) or /128 (IPv6).
	IPVariable string
}

// PrepareConf copies the conf dir From into To and sets, in File, the key
// that makes Doris bind the pod's address, unless File already sets it.
// Every other line and comment is kept. Running it again gives the same result.
// It returns what it did, for the log.
func PrepareConf(opts ConfOptions, getenv func(string) string) (string, error) {
	key, value, err := confSetting(opts, getenv)
	if err != nil {
		return "", err
	}
	if err := copyDir(opts.From, opts.To); err != nil {
		return "", fmt.Errorf("copying the conf dir %s to %s: %w", opts.From, opts.To, err)
	}
	path := filepath.Join(opts.To, opts.File)
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if existing, ok := confValue(data, key); ok {
		return fmt.Sprintf("%s already sets %s = %s; left as is", opts.File, key, existing), nil
	}
	if len(data) > 0 && !bytes.HasSuffix(data, []byte("\n")) {
		data = append(data, '\n')
	}
	data = fmt.Appendf(data, "\n# Set by doris-admission: bind the pod's address on every start.\n%s = %s\n", key, value)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("writing %s: %w", path, err)
	}
	return fmt.Sprintf("set %s = %s in %s", key, value, opts.File), nil
}

// confSetting is the key and value PrepareConf sets.
func confSetting(opts ConfOptions, getenv func(string) string) (string, string, error) {
	if opts.FQDN {
		return "enable_fqdn_mode", "true", nil
	}
	if opts.IPVariable == "" {
		return "", "", fmt.Errorf("say which environment variable holds the pod IP (--ip-variable), or use --fqdn")
	}
	ip := net.ParseIP(getenv(opts.IPVariable))
	if ip == nil {
		return "", "", fmt.Errorf("environment variable %s is %q, not an IP address: give the container %s from the downward API (status.podIP)",
			opts.IPVariable, getenv(opts.IPVariable), opts.IPVariable)
	}
	prefix := 128
	if ip.To4() != nil {
		prefix = 32
	}
	return "priority_networks", fmt.Sprintf("${%s}/%d", opts.IPVariable, prefix), nil
}

// confValue returns the value of key in a Doris conf, if a line that is not
// a comment sets it.
func confValue(data []byte, key string) (string, bool) {
	// Not a bufio.Scanner: it stops at a line over 64 KiB, and the key after
	// it would be missed and set twice.
	for raw := range bytes.Lines(data) {
		line := strings.TrimSpace(string(raw))
		if strings.HasPrefix(line, "#") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// copyDir copies the files under from into to, replacing what is there.
func copyDir(from, to string) error {
	return filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, path)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, info.Mode().Perm())
	})
}
