package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/source"
)

// addPolicySeeds adds the built-in policies and the example policies, whole
// and as their first few hundred bytes, to f.
func addPolicySeeds(f *testing.F) {
	var files []string
	for _, pattern := range []string{"../builtin/*.yaml", "../../deploy/examples/policies/*.yaml"} {
		matches, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		files = append(files, matches...)
	}
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(data[:min(len(data), 400)])
	}
}

// policySeeds are documents that are not quite policies, or not policies at all.
var policySeeds = []string{
	"",
	"---\n---\n",
	"# only a comment\n",
	"kind: ValidatingPolicy\n",
	"apiVersion: v1\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {a: b}\n",
	"[1, 2, 3]\n",
	"just a string\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: ValidatingPolicy\nmetadata: {}\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: ValidatingPolicy\nmetadata: {name: p}\nspec: {validatons: []}\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: MutatingPolicy\nmetadata: {name: p}\nspec: {mutations: [{patchType: JSONPatch}]}\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: ValidatingPolicy\nmetadata: {name: p}\nspec:\n  matchConstraints: {resourceRules: [{}], namespaceSelector: {matchExpressions: [{key: a, operator: Bogus}]}}\n  validations: [{expression: 'true'}]\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: ValidatingPolicy\nmetadata: {name: p, generation: 1.5}\n",
	"apiVersion: policies.doris-admission.io/v1alpha1\nkind: ValidatingPolicy\nmetadata: {name: p}\nspec: {paramKind: {}, paramRef: {}, matchConstraints: {resourceRules: [{apiGroups: ['*'], apiVersions: ['*'], resources: ['*'], operations: ['*']}]}, validations: [{expression: 'params.x'}]}\n",
	"a: &a [1, 2]\nb: &b [*a, *a, *a, *a]\nc: &c [*b, *b, *b, *b]\nd: [*c, *c, *c, *c]\n",
	"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"c\"}, \"data\": {\"n\": 1e400}}",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata: {\"\\xff\": \"\\ud800\"}\n",
	"apiVersion: v1\nkind: ConfigMap\n" + strings.Repeat("x: [", 200) + strings.Repeat("]", 200) + "\n",
	"{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"n\": " + strings.Repeat("[", 20_000) + strings.Repeat("]", 20_000) + "}",
}

// fuzzEngine is one engine per fuzzing process; generation makes every
// iteration's policies new to it, so they are compiled, never reused.
var (
	fuzzEngine     = NewEngine(source.Offline(nil))
	fuzzGeneration atomic.Int64
)

// FuzzReadPolicies reads an arbitrary policy file. Properties: no panic;
// every error says which document it is about; every document read has
// apiVersion and kind, and decoding it after encoding it is stable; every
// policy read encodes and decodes to itself; compiling, loading and
// evaluating the policies read never panics and always gives a result or
// an error, within the request's CEL budget.
func FuzzReadPolicies(f *testing.F) {
	addPolicySeeds(f)
	for _, seed := range policySeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		docs, err := policies.DecodeStream("fuzz.yaml", bytes.NewReader(data))
		checkDocumentErrors(t, err)
		var read []policies.Policy
		for _, doc := range docs {
			if doc.Object.GetKind() == "" || doc.Object.GetAPIVersion() == "" {
				t.Errorf("document %d read without kind or apiVersion: %v", doc.Index, doc.Object.Object)
			}
			first, err := json.Marshal(doc.Object.Object)
			if err != nil {
				t.Fatalf("document %d does not encode: %v", doc.Index, err)
			}
			again, err := policies.DocumentFromRaw("again", first)
			if err != nil {
				t.Fatalf("document %d encoded as %s does not decode: %v", doc.Index, first, err)
			}
			if second, _ := json.Marshal(again.Object.Object); !bytes.Equal(first, second) {
				t.Errorf("document %d is not stable: encoded as\n%s\nthen as\n%s", doc.Index, first, second)
			}
			p, err := policies.PolicyFromDocument(doc)
			checkDocumentErrors(t, err)
			if err != nil {
				continue
			}
			checkPolicyRoundTrip(t, p)
			read = append(read, p)
		}
		// ReadPolicies is DecodeStream then PolicyFromDocument: it must agree.
		policies, err := policies.ReadPolicies("-", bytes.NewReader(data))
		if len(policies) != len(read) {
			t.Errorf("ReadPolicies read %d policies, the documents hold %d (%v)", len(policies), len(read), err)
		}
		if len(read) > 0 {
			evaluate(t, read)
		}
	})
}

// checkDocumentErrors fails unless every error in err names its document.
func checkDocumentErrors(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	for _, err := range errs {
		var derr *policies.DocumentError
		if !errors.As(err, &derr) || derr.Origin == "" || derr.Index < 1 || derr.Err == nil || err.Error() == "" {
			t.Errorf("error %q does not say which document it is about", err)
		}
	}
}

// checkPolicyRoundTrip fails unless p, encoded and read again, is p.
func checkPolicyRoundTrip(t *testing.T, p policies.Policy) {
	t.Helper()
	var obj any = p.Validating
	if p.Mutating != nil {
		obj = p.Mutating
	}
	data, err := json.Marshal(obj)
	if err != nil {
		t.Fatalf("policy %s does not encode: %v", p.Name(), err)
	}
	doc, err := policies.DocumentFromRaw(p.Origin, data)
	if err != nil {
		t.Fatalf("policy %s encoded as %s does not decode: %v", p.Name(), data, err)
	}
	again, err := policies.PolicyFromDocument(doc)
	if err != nil {
		t.Fatalf("policy %s encoded as %s is not a policy: %v", p.Name(), data, err)
	}
	if !equality.Semantic.DeepEqual(p, again) {
		t.Errorf("policy %s changed on a round trip through\n%s", p.Name(), data)
	}
}

// fuzzObjects are what fuzzed policies are evaluated on.
var fuzzObjects = []string{
	`{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop", "labels": {"app": "web"}}, "data": {"a": "1", "b": "2"}}`,
	`{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "shop"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}}`,
	`{"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "doris-fe", "namespace": "shop"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "fe"}}, "template": {"metadata": {"labels": {"app": "fe"}}, "spec": {"containers": [{"name": "fe", "image": "apache/doris:fe-2.1.7"}]}}}}`,
}

// evaluate loads ps as new policies into the fuzzing engine and runs them on
// each of fuzzObjects: a result or an error, and never over the budget.
func evaluate(t *testing.T, ps []policies.Policy) {
	t.Helper()
	generation := fuzzGeneration.Add(1)
	for i := range ps {
		if ps[i].Mutating != nil {
			ps[i].Mutating = ps[i].Mutating.DeepCopy()
			ps[i].Mutating.Generation = generation
		} else {
			ps[i].Validating = ps[i].Validating.DeepCopy()
			ps[i].Validating.Generation = generation
		}
	}
	fuzzEngine.Load(ps)
	for _, raw := range fuzzObjects {
		doc, err := policies.DocumentFromRaw("object", []byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		req, err := fuzzEngine.RequestForObject(doc.Object)
		if err != nil {
			t.Fatal(err)
		}
		ctx := WithRequestBudget(context.Background())
		mutated, mutateErr := fuzzEngine.Mutate(ctx, req)
		if (mutated == nil) == (mutateErr == nil) {
			t.Errorf("Mutate gave result %v and error %v: want exactly one", mutated, mutateErr)
		}
		validated, validateErr := fuzzEngine.Validate(ctx, req)
		if (validated == nil) == (validateErr == nil) {
			t.Errorf("Validate gave result %v and error %v: want exactly one", validated, validateErr)
		}
		if left := budgetLeft(ctx); left < 0 || left > compile.RequestCostBudget {
			t.Errorf("the request's CEL budget shows %d left of %d", left, compile.RequestCostBudget)
		}
	}
}

// budgetLeft is what is left of the request budget in ctx.
func budgetLeft(ctx context.Context) int64 {
	return compile.BudgetLeft(ctx)
}
