// Package browser drives the policy playground's page in headless Chromium
// (Debian's chromium, installed by install.sh): what a policy author does,
// keystrokes and clicks, and what the page must show.
package browser

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/doris-admission/doris-admission/playground"
)

// chromium is Debian's Chromium, which install.sh puts there.
const chromium = "/usr/bin/chromium"

// brokenLine is the line of the policy below whose expression names a field
// a StatefulSet's spec does not have; brokenColumn where the compiler
// points in it (the '.' of .nosuchfield).
const (
	policy = `apiVersion: policies.doris-admission.io/v1alpha1
kind: ValidatingPolicy
metadata: {name: enough-replicas}
spec:
  validationActions: [Warn]
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [statefulsets]}]
  validations:
    - expression: "object.spec.replicas >= 1 && object.spec.replicas >= 3"
      message: fewer than 3 replicas
`
	brokenLine = 9
)

var broken = strings.Replace(policy, "object.spec.replicas >= 3", "object.spec.nosuchfield >= 3", 1)

// TestPlaygroundInTheBrowser: load the page, paste the seed FE StatefulSet
// with the built-in policies on and see the injected env in the diff; break
// an expression and see the marker at its line and column; reload the
// shared address and see the same case; save the suite and pass it with
// doris-admission policy test. Screenshots of each step go to
// $PLAYGROUND_SCREENSHOTS (a temporary folder when unset).
func TestPlaygroundInTheBrowser(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seed := seedFE(t, filepath.Join(root, "deploy", "examples", "seed-fe-plain.yaml"))
	shots := os.Getenv("PLAYGROUND_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	}
	suites := t.TempDir()
	page := httptest.NewServer(playground.NewHandler(playground.Options{SuitesDir: suites, Timeout: time.Minute}))
	defer page.Close()

	ctx, cancel := browser(t)
	defer cancel()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(shots, name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}

	// 1. The seed FE StatefulSet with the built-in policies: the diff shows
	// the injected env.
	run(t, ctx, "loading the page and pasting the seed FE StatefulSet",
		chromedp.Navigate(page.URL),
		chromedp.WaitVisible(chromedp.CSS("#object .cm-content")),
		chromedp.Click(chromedp.CSS("#builtins")),
		paste("#object .cm-content", seed),
		waitText("#diff", "FE_IPADDRESS"),
	)
	shot("1-seed-fe-diff")

	// 2. A broken expression: the marker sits on its line and column, and
	// the problem says so in text.
	run(t, ctx, "pasting a policy with a broken expression",
		paste("#policies .cm-content", broken),
		waitText("#policies-problems", "nosuchfield"),
		waitText("#policies-problems", fmt.Sprintf("error at line %d, column %d", brokenLine, brokenColumn())),
	)
	line := value(t, ctx, chromedp.Evaluate[int](`Array.from(document.querySelectorAll("#policies .cm-line")).findIndex(l => l.querySelector(".cm-lintRange-error")) + 1`))
	marked := value(t, ctx, chromedp.Evaluate[string](`document.querySelector("#policies .cm-lintRange-error").textContent`))
	if line != brokenLine || !strings.HasPrefix(marked, ".nosuchfield") {
		t.Errorf("the error marker is on line %d over %q, want line %d over .nosuchfield", line, marked, brokenLine)
	}
	shot("2-broken-expression")

	// Every text on the page, the editors' highlighting and gutters, the
	// verdicts and the problems included, has a contrast of at least 4.5:1
	// against what is behind it (WCAG AA).
	if low := value(t, ctx, chromedp.Evaluate[[]string](lowContrast)); len(low) > 0 {
		t.Errorf("text below a 4.5:1 contrast:\n%s", strings.Join(low, "\n"))
	}

	// Keyboard only: Tab leaves an editor (it does not trap the focus), and
	// Enter on the problem's text puts the cursor at the error.
	run(t, ctx, "leaving the editor with Tab, going to the error with Enter",
		chromedp.Click(chromedp.CSS("#policies .cm-content")),
		chromedp.KeyEvent("\t"),
	)
	if in := value(t, ctx, chromedp.Evaluate[bool](`document.querySelector("#policies").contains(document.activeElement)`)); in {
		t.Error("Tab in the policies editor left the focus in it: a keyboard user cannot get out")
	}
	run(t, ctx, "going to the error with Enter",
		chromedp.Focus(chromedp.CSS("#policies-problems button")),
		chromedp.KeyEvent("\r"),
	)
	at := value(t, ctx, chromedp.Evaluate[string](`(() => { const s = window.getSelection(); const line = s.anchorNode.parentElement.closest(".cm-line"); return [...document.querySelectorAll("#policies .cm-line")].indexOf(line) + 1 + ":" + document.querySelector("#policies").contains(document.activeElement); })()`))
	if at != fmt.Sprintf("%d:true", brokenLine) {
		t.Errorf("after Enter on the problem the cursor is at line:focused %s, want %d:true", at, brokenLine)
	}

	// 3. The address holds the case: a reload shows the same.
	address := value(t, ctx, chromedp.Location())
	run(t, ctx, "reloading the shared address",
		chromedp.Navigate("about:blank"),
		chromedp.Navigate(address),
		waitText("#diff", "FE_IPADDRESS"),
		waitText("#policies-problems", "nosuchfield"),
	)
	if !strings.Contains(address, "#case=") {
		t.Errorf("the address %q holds no case", address)
	}
	shot("3-shared-address")

	// 4. Fixed, and saved as a suite that policy test passes.
	run(t, ctx, "fixing the policy and saving the suite",
		replaceAll("#policies .cm-content", policy),
		waitText("#status", "0 problems"),
		chromedp.SetValue(chromedp.CSS("#suite-name"), "seed-fe"),
		chromedp.Click(chromedp.CSS("#save-form button")),
		waitText("#saved", "Saved to"),
	)
	shot("4-saved-suite")
	folder := filepath.Join(suites, "seed-fe")
	test := exec.Command("go", "run", "./cmd/doris-admission", "policy", "test", folder)
	test.Dir = root
	out, err := test.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "passed") {
		t.Errorf("doris-admission policy test %s: %v\n%s", folder, err, out)
	}
}

// brokenColumn is where the compiler points in the broken line.
func brokenColumn() int {
	return strings.Index(strings.Split(broken, "\n")[brokenLine-1], ".nosuchfield") + 1
}

// browser starts headless Chromium.
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("%s is missing: run test/browser/install.sh as root (make test does)", chromium)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium), chromedp.NoSandbox, chromedp.WindowSize(1400, 1100))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

// run runs the actions of one step, failing the test with what it was doing
// and what the page said.
func run(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
		problems, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#policies-problems")))
		t.Fatalf("%s: %v\nstatus: %s\npolicy problems: %s", step, err, status, problems)
	}
}

// value runs an action that reads something off the page.
func value[T any](t *testing.T, ctx context.Context, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// paste focuses the editor and inserts text where the cursor is, as a paste
// does.
func paste(editor, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(chromedp.Click(chromedp.CSS(editor)), insertText(text))
}

// insertText inserts text where the focus is, as a paste does.
func insertText(text string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return chromedp.Void{}, err
	}
}

// replaceAll selects the whole text of the editor with the keyboard
// (Ctrl-A) and pastes text over it.
func replaceAll(editor, text string) chromedp.Action[chromedp.Void] {
	return chromedp.Steps(
		chromedp.Click(chromedp.CSS(editor)),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		insertText(text),
	)
}

// waitText waits until the element's text contains want.
func waitText(selector, want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		for {
			text, err := chromedp.Text(chromedp.CSS(selector))(ctx, t)
			if err != nil {
				return chromedp.Void{}, err
			}
			if strings.Contains(text, want) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, fmt.Errorf("%s never said %q; it says %.300q", selector, want, text)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// seedFE is the FE StatefulSet of the seed example, alone.
func seedFE(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.Contains(doc, "kind: StatefulSet") {
			return strings.TrimSpace(doc) + "\n"
		}
	}
	t.Fatalf("%s has no StatefulSet", file)
	return ""
}

// lowContrast lists the elements with text whose colour has less than a
// 4.5:1 contrast with the first opaque background behind them.
const lowContrast = `(() => {
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim() !== "");
    if (!own || el.offsetParent === null) continue;
    const [a, b] = [lum(rgb(getComputedStyle(el).color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) low.push(el.tagName + "." + el.className + " " + JSON.stringify(el.textContent.slice(0, 30)) + ": " + ratio.toFixed(2));
  }
  return low.slice(0, 20);
})()`
