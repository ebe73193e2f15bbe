package webhook

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// redacted replaces a credential in what the server logs.
const redacted = "[redacted]"

// minRedacted is the shortest value redacted: shorter ones would blank out
// ordinary words of the message and protect little.
const minRedacted = 4

// credentialKey is an annotation key whose value is taken for a credential.
var credentialKey = regexp.MustCompile(`(?i)token|passw|secret|credential|auth|api-?key|private-?key`)

// credentialValue is an annotation value taken for a credential, whatever
// its key: an HTTP authorization value.
var credentialValue = regexp.MustCompile(`(?i)^\s*(bearer|basic)\s+(\S+)`)

// redact returns message with the credentials req carries replaced, for the
// log: every value of a Secret (data, as sent and decoded, stringData and
// annotations, which may hold kubectl's copy of the data) and, of any
// object, the annotation and data values that look like credentials (by
// their key, or an HTTP authorization value). A policy's message may quote
// them; the API server gets the message as it is, the log does not.
func redact(req admission.Request, message string) string {
	var values []string
	for _, raw := range [][]byte{req.Object.Raw, req.OldObject.Raw} {
		values = append(values, credentials(raw)...)
	}
	if len(values) == 0 {
		return message
	}
	// Longest first, so a value is not half-replaced through a shorter one.
	slices.SortFunc(values, func(a, b string) int { return cmp.Compare(len(b), len(a)) })
	pairs := make([]string, 0, 2*len(values))
	for _, v := range slices.Compact(values) {
		pairs = append(pairs, v, redacted)
	}
	return strings.NewReplacer(pairs...).Replace(message)
}

// credentials lists the credentials in one raw object, each also as Go
// quotes it (as policy errors do).
func credentials(raw []byte) []string {
	if len(raw) == 0 {
		return nil
	}
	var obj struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Data       map[string]any `json:"data"`
		StringData map[string]any `json:"stringData"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return nil
	}
	var found []string
	add := func(v string) {
		if len(v) < minRedacted {
			return
		}
		found = append(found, v)
		if quoted := strconv.Quote(v); quoted[1:len(quoted)-1] != v {
			found = append(found, quoted[1:len(quoted)-1])
		}
	}
	secret := obj.APIVersion == "v1" && obj.Kind == "Secret"
	for key, value := range obj.Metadata.Annotations {
		if m := credentialValue.FindStringSubmatch(value); m != nil {
			add(value)
			add(m[2])
		} else if secret || credentialKey.MatchString(key) {
			add(value)
		}
	}
	for _, values := range []map[string]any{obj.Data, obj.StringData} {
		for key, v := range values {
			s, ok := v.(string)
			if !ok || !secret && !credentialKey.MatchString(key) {
				continue
			}
			add(s)
			if decoded, err := base64.StdEncoding.DecodeString(s); err == nil {
				add(string(decoded))
			}
		}
	}
	return found
}
