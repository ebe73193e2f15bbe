package engine

import (
	"context"
	"strings"
	"testing"
)

const generatingPolicy = `
apiVersion: policies.doris-admission.io/v1alpha1
kind: MutatingPolicy
metadata: {name: web-service}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  matchConditions:
    - {name: wants-a-service, expression: "object.metadata.?labels[?'expose'].orValue('') == 'true'"}
  variables:
    - {name: name, expression: "object.metadata.name + '-svc'"}
  generate:
    - name: service
      expression: >
        {'apiVersion': dyn('v1'), 'kind': dyn('Service'),
         'metadata': dyn({'name': variables.name}),
         'spec': dyn({'selector': dyn(object.spec.selector.matchLabels), 'ports': dyn([{'port': 80}])})}
    - name: nothing
      expression: 'null'
`

// A policy's generate makes the object it names, in the matched object's
// namespace, owned by it (it goes when the Deployment goes) and marked with
// the policy that made it; a null value makes nothing.
func TestGenerateMakesOwnedObjects(t *testing.T) {
	e, _ := load(t, generatingPolicy)
	web := object(t, strings.Replace(deployment, "metadata: {name: web, namespace: shop}",
		"metadata: {name: web, namespace: shop, uid: 9d1f, labels: {expose: 'true'}}", 1))
	generated, errs := e.Generate(context.Background(), web)
	if len(errs) != 0 || len(generated) != 1 {
		t.Fatalf("Generate: %v %+v, want one Service", errs, generated)
	}
	svc := generated[0].Object
	if svc.GetKind() != "Service" || svc.GetName() != "web-svc" || svc.GetNamespace() != "shop" {
		t.Errorf("generated %s %s/%s, want Service shop/web-svc", svc.GetKind(), svc.GetNamespace(), svc.GetName())
	}
	owners := svc.GetOwnerReferences()
	if len(owners) != 1 || owners[0].Kind != "Deployment" || owners[0].Name != "web" || owners[0].UID != "9d1f" || owners[0].Controller == nil || !*owners[0].Controller {
		t.Errorf("owner references %+v, want the Deployment web as controller", owners)
	}
	if got := svc.GetAnnotations()[GeneratedByAnnotation]; got != "web-service/service" {
		t.Errorf("%s = %q", GeneratedByAnnotation, got)
	}
	if generated, _ := e.Generate(context.Background(), object(t, deployment)); len(generated) != 0 {
		t.Errorf("a Deployment the match conditions leave out generated %+v", generated)
	}
}

// A generate expression that does not give an object is reported with the
// policy and what is wrong, and generates nothing.
func TestGenerateReportsWhatIsNotAnObject(t *testing.T) {
	for _, expression := range []string{"'a string'", "{'kind': 'Service'}", "object.metadata.labels['absent']"} {
		e, loaded := load(t, strings.Replace(generatingPolicy, "expression: 'null'", "expression: \""+expression+"\"", 1))
		if len(loaded[0].Problems) != 0 {
			t.Fatalf("%s: %v", expression, loaded[0].Problems)
		}
		web := object(t, strings.Replace(deployment, "namespace: shop}", "namespace: shop, labels: {expose: 'true'}}", 1))
		generated, errs := e.Generate(context.Background(), web)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "policy web-service failed at spec.generate[1] (nothing)") {
			t.Errorf("%s: errors %v, want one naming the policy and spec.generate", expression, errs)
		}
		if len(generated) != 0 {
			t.Errorf("%s: generated %+v", expression, generated)
		}
	}
}

// A generate expression that does not compile, or reads a field the
// matched kind does not have, is a load problem.
func TestGenerateCompileErrorsAreLoadProblems(t *testing.T) {
	for expression, want := range map[string]string{"object.spec.": "Syntax error", "object.spec.selectr": "undefined field 'selectr'"} {
		_, loaded := load(t, strings.Replace(generatingPolicy, "expression: 'null'", "expression: '"+expression+"'", 1))
		if len(loaded[0].Problems) != 1 || loaded[0].Problems[0].Field != "spec.generate[1].expression" || !strings.Contains(loaded[0].Problems[0].Message, want) {
			t.Errorf("%s: problems %+v, want one at spec.generate[1].expression saying %q", expression, loaded[0].Problems, want)
		}
	}
}
