package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/api/v1alpha1"
	"github.com/doris-admission/doris-admission/policies/compile"
)

// celObject is the object fuzzed expressions are evaluated on: a ConfigMap
// with enough entries for a nested comprehension to be expensive.
const celObject = `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop",
  "labels": {"app": "web", "team": "shop"}, "annotations": {"note": "a fairly long annotation value, repeated for size"}},
  "data": {"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "j": "10",
           "k": "11", "l": "12", "m": "13", "n": "14", "o": "15", "p": "16", "q": "17", "r": "18", "s": "19", "t": "20"}}`

// celSeeds are expressions worth starting from: plain ones, ones that do not
// compile, and ones that cost too much or would, without the limits, run for
// a very long time or use a lot of memory.
var celSeeds = [][2]string{
	{"true", ""},
	{"false", "'denied: ' + object.metadata.name"},
	{"object.data.size() < 5", "'data has ' + string(object.data.size()) + ' keys'"},
	{"has(object.metadata.labels) && object.metadata.labels.app == 'web'", ""},
	{"object.data.all(k, object.data[k].matches('^[0-9]+$'))", ""},
	{"object.spec.replicas > 1", ""},
	{"object.metadata.name +", ""},
	{"1 / 0 == 1", ""},
	{"'a' == 1", ""},
	{"undefinedVariable", ""},
	{"params.x == 1", ""},
	{"variables.nope", ""},
	{"authorizer.group('').resource('pods').check('get').allowed()", ""},
	{"inventory.nodePortOwners(30080).size() == 0", ""},
	{"object.data.map(a, object.data.map(b, object.data.map(c, object.data.map(d, object.data.map(e, a + b + c + d + e))))).size() > 0", ""},
	{"[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, [1,2,3,4,5,6,7,8,9,10].all(c, [1,2,3,4,5,6,7,8,9,10].all(d, [1,2,3,4,5,6,7,8,9,10].all(e, [1,2,3,4,5,6,7,8,9,10].all(f, a + b + c + d + e + f > 0))))))", ""},
	{"false", "string(object.data.map(a, object.data.map(b, object.data.map(c, object.data.map(d, object.data.map(e, a + b + c + d + e))))).size())"},
	{"false", "object.data.map(a, object.data.map(b, object.metadata.annotations.note + a + b).join(' ')).join(' ')"},
	{"false", "object.data.map(a, object.metadata.annotations.note).join('\\n')"},
	{"object.metadata.annotations.note.split('').size() > 0", ""},
	{"'x'.matches('(a*)*b')", ""},
	{"object.metadata.name.matches('(' + object.metadata.annotations.note + ')*')", ""},
	{"quantity('1Gi').isGreaterThan(quantity('1Mi'))", ""},
	{"ip('10.0.0.1').family() == 4 && cidr('10.0.0.0/8').containsIP(ip('10.0.0.1'))", ""},
	{"url('https://example.com/a').getHost() == 'example.com'", ""},
	{"format.dns1123Label().validate(object.metadata.name).hasValue()", ""},
	{"'%s-%d'.format([object.metadata.name, 1]) != ''", ""},
	{"dyn(object.data).a == '1'", ""},
	{"object.?spec.?replicas.orValue(1) == 1", ""},
	{strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300), ""},
	{strings.Repeat("!", 10_000) + "true", ""},
	{"[" + strings.Repeat("1,", 5_000) + "1].size() > 0", ""},
	{"'" + strings.Repeat("a", 200_000) + "' != ''", ""},
	{"\xff\xfe", "\x00"},
	{"", ""},
	{"  ", "''"},
}

// FuzzCELExpression compiles and evaluates an arbitrary validation
// expression and messageExpression, in a ValidatingPolicy with
// failurePolicy Fail, on a fixed ConfigMap. Properties: no panic; the
// engine gives a result or an error; the expression is allowed, or denied
// with a message, and an empty one is denied; the CEL spent
// never exceeds the per-expression limit for each of the two expressions,
// nor the request's budget.
func FuzzCELExpression(f *testing.F) {
	for _, seed := range celSeeds {
		f.Add(seed[0], seed[1])
	}
	obj, err := policies.DocumentFromRaw("object", []byte(celObject))
	if err != nil {
		f.Fatal(err)
	}
	req, err := fuzzEngine.RequestForObject(obj.Object)
	if err != nil {
		f.Fatal(err)
	}
	fail := admissionregistrationv1.Fail
	f.Fuzz(func(t *testing.T, expression, messageExpression string) {
		p := policies.Policy{Origin: "fuzz", Validating: &v1alpha1.ValidatingPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: "fuzz", Generation: fuzzGeneration.Add(1)},
			Spec: v1alpha1.ValidatingPolicySpec{
				FailurePolicy: &fail,
				MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}},
					},
				}}},
				Validations: []v1alpha1.Validation{{Expression: expression, MessageExpression: messageExpression, Message: "fuzzed expression failed"}},
			},
		}}
		loaded := fuzzEngine.Load([]policies.Policy{p})
		// The hang guard: the cost limits must stop any expression long
		// before this; the property checked is the cost, not the time.
		ctx, cancel := context.WithTimeout(WithRequestBudget(context.Background()), time.Minute)
		defer cancel()
		res, err := fuzzEngine.Validate(ctx, req)
		if ctx.Err() != nil {
			t.Fatalf("evaluating %q (message %q) ran for a minute", expression, messageExpression)
		}
		if (res == nil) == (err == nil) {
			t.Fatalf("Validate gave result %v and error %v: want exactly one", res, err)
		}
		if err != nil {
			return
		}
		if len(res.Denied) > 1 || len(res.Warned) > 0 {
			t.Errorf("one validation gave denials %v and warnings %v", res.Denied, res.Warned)
		}
		for _, v := range res.Denied {
			if v.Message == "" || v.Policy != "fuzz" {
				t.Errorf("denial %+v does not name the policy or say why", v)
			}
		}
		if strings.TrimSpace(expression) == "" && len(res.Denied) == 0 {
			t.Errorf("an empty expression was allowed under failurePolicy Fail (load problems: %v)", loaded[0].Problems)
		}
		spent := compile.RequestCostBudget - budgetLeft(ctx)
		if spent < 0 || spent > 2*celconfig.PerCallLimit {
			t.Errorf("%q (message %q) spent %d of the CEL budget: more than two expressions' limit of %d each", expression, messageExpression, spent, celconfig.PerCallLimit)
		}
	})
}
