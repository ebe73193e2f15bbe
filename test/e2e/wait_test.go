package e2e

import (
	"strings"
	"testing"
	"time"
)

// eventually polls check every 200 ms until it returns "" or timeout passes,
// then fails with the last thing check said.
func eventually(t *testing.T, timeout time.Duration, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		last := check()
		if last == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForWebhookRule waits until the named webhook configuration's rules name resource.
func waitForWebhookRule(t *testing.T, kind, resource string, present bool) {
	t.Helper()
	eventually(t, 30*time.Second, func() string {
		out, err := suite.kubectl("get", kind, "doris-admission", "-o", "jsonpath={.webhooks[*].rules[*].resources}")
		if err != nil {
			return out
		}
		if strings.Contains(out, `"`+resource+`"`) != present {
			return kind + " rules are " + out
		}
		return ""
	})
}
