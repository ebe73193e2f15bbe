package webhook

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	kjson "sigs.k8s.io/json"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// builtinHandler is the mux of NewServer with the built-in policies on an
// offline engine, shared by the fuzz target's iterations.
var builtinHandler = sync.OnceValue(func() http.Handler {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		panic(err)
	}
	eng := engine.NewEngine(source.Offline(nil))
	eng.Load(builtins)
	return NewServer(Options{}, eng).WebhookMux()
})

// reviewSeeds are AdmissionReview bodies worth starting from: what an API
// server sends, and what it never would.
func reviewSeeds(t testing.TB) [][]byte {
	t.Helper()
	fe, err := os.ReadFile("../deploy/examples/seed-fe-plain.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := policies.ReadDocuments("../deploy/examples/seed-fe-plain.yaml", nil)
	if err != nil || len(fe) == 0 {
		t.Fatal(err)
	}
	var statefulSet []byte
	for _, doc := range docs {
		if doc.Object.GetKind() == "StatefulSet" {
			doc.Object.SetNamespace("shop")
			statefulSet, _ = json.Marshal(doc.Object.Object)
		}
	}
	request := func(fields string) []byte {
		return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{` + fields + `}}`)
	}
	sts := `"uid":"u1","kind":{"group":"apps","version":"v1","kind":"StatefulSet"},"resource":{"group":"apps","version":"v1","resource":"statefulsets"},"namespace":"shop","name":"doris-fe","userInfo":{"username":"alice"}`
	svc := `"uid":"u2","kind":{"group":"","version":"v1","kind":"Service"},"resource":{"group":"","version":"v1","resource":"services"},"namespace":"shop","name":"s"`
	cm := `"uid":"u3","kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"namespace":"shop","name":"c"`
	policy := `"uid":"u4","kind":{"group":"policies.doris-admission.io","version":"v1alpha1","kind":"ValidatingPolicy"},"resource":{"group":"policies.doris-admission.io","version":"v1alpha1","resource":"validatingpolicies"},"name":"p"`
	service := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"s","namespace":"shop"},"spec":{"type":"NodePort","ports":[{"port":80,"nodePort":30080}]}}`
	return [][]byte{
		request(sts + `,"operation":"CREATE","object":` + string(statefulSet)),
		request(sts + `,"operation":"UPDATE","object":` + string(statefulSet) + `,"oldObject":` + string(statefulSet)),
		request(sts + `,"operation":"CREATE","dryRun":true,"object":` + string(statefulSet)),
		request(sts + `,"operation":"DELETE","oldObject":` + string(statefulSet)),
		request(sts + `,"operation":"UPDATE","subResource":"scale","object":{"apiVersion":"autoscaling/v1","kind":"Scale","metadata":{"name":"doris-fe"},"spec":{"replicas":3}}`),
		request(sts + `,"operation":"UPDATE","subResource":"status","object":` + string(statefulSet)),
		request(sts + `,"operation":"CONNECT","object":{"apiVersion":"v1","kind":"PodExecOptions","command":["sh"]}`),
		request(sts + `,"operation":"CREATE"`),
		request(sts + `,"operation":"CREATE","object":null`),
		request(sts + `,"operation":"CREATE","object":"a string"`),
		request(sts + `,"operation":"CREATE","object":{"apiVersion":"apps/v1","kind":"StatefulSet","spec":{"replicas":"three"}}`),
		request(svc + `,"operation":"CREATE","object":` + service),
		request(svc + `,"operation":"UPDATE","object":` + service + `,"oldObject":` + service),
		request(cm + `,"operation":"CREATE","object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"},"data":{"a":"b"}}`),
		request(policy + `,"operation":"CREATE","object":{"apiVersion":"policies.doris-admission.io/v1alpha1","kind":"ValidatingPolicy","metadata":{"name":"p"},"spec":{"matchConstraints":{"resourceRules":[{"apiGroups":[""],"apiVersions":["v1"],"operations":["CREATE"],"resources":["configmaps"]}]},"validations":[{"expression":"object.data.size() <"}]}}`),
		request(policy + `,"operation":"CREATE","object":{"apiVersion":"policies.doris-admission.io/v1alpha1","kind":"ValidatingPolicy","metadata":{"name":"p"},"spec":{"bogus":1}}`),
		request(policy + `,"operation":"DELETE"`),
		request(`"uid":"u5","kind":{"kind":"StatefulSet"},"operation":"CREATE","dryRun":"yes"`),
		request(`"uid":"u5","kind":{"kind":"StatefulSet"},"operation":"CREATE","userInfo":5`),
		request(`"uid":"u5","kind":{"kind":"StatefulSet"},"operation":"CREATE","resource":"statefulsets"`),
		request(`"uid":5,"kind":{"kind":"StatefulSet"},"operation":"CREATE"`),
		request(`"uid":"u6","kind":{"kind":"StatefulSet"},"operation":"EXPLODE"`),
		request(`"UID":"u7","Kind":{"Kind":"StatefulSet"},"Operation":"CREATE"`),
		[]byte(`{"APIVERSION":"admission.k8s.io/v1","KIND":"AdmissionReview","REQUEST":{"uid":"u8","kind":{"kind":"ConfigMap"},"operation":"CREATE"}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"u9","kind":{"kind":"ConfigMap"},"operation":"CREATE"}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":null}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u"},"request":{}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":"u","allowed":true}}`),
		[]byte(`{"apiVersion":"v1","kind":"ConfigMap"}`),
		[]byte(`[]`),
		[]byte(`null`),
		[]byte(``),
		[]byte(`{`),
		[]byte("\xff\xfe{}"),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"ConfigMap"},"operation":"CREATE","object":{"a":"\ud800"}}}`),
		[]byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","kind":{"kind":"ConfigMap"},"operation":"CREATE","object":` + strings.Repeat(`{"a":`, 50) + `1` + strings.Repeat(`}`, 50) + `}}`),
	}
}

// FuzzAdmissionReview posts an arbitrary body to /mutate or /validate, or
// to one webhook group's path under them, of the server NewServer builds,
// with the built-in policies. Properties: no panic;
// the answer is an HTTP 4xx with a plain-text message, or an HTTP 200
// admission.k8s.io/v1 AdmissionReview that answers the request's uid, says
// why when it refuses, and carries only a JSON patch that applies to the
// object sent; a review the server answered decodes and re-encodes stably.
func FuzzAdmissionReview(f *testing.F) {
	for i, seed := range reviewSeeds(f) {
		group := []string{"", "fail", "ignore", engine.PolicyGroup, "no-such-group"}[i%5]
		f.Add(seed, false, group)
		f.Add(seed, true, group)
	}
	f.Fuzz(func(t *testing.T, body []byte, validate bool, group string) {
		path := MutatePath
		if validate {
			path = ValidatePath
		}
		if group != "" {
			path += "/" + url.PathEscape(group)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		builtinHandler().ServeHTTP(rec, req)
		checkAnswer(t, body, rec.Code, rec.Header(), rec.Body.Bytes())
	})
}

// checkAnswer fails unless status, header and answer are a clear answer to
// the AdmissionReview body: a 4xx with a plain message, or a 200 with an
// AdmissionReview response to it. It returns the response, nil for a 4xx.
func checkAnswer(t *testing.T, body []byte, status int, header http.Header, answer []byte) *admissionv1.AdmissionResponse {
	t.Helper()
	if status >= 400 && status < 500 {
		if mediaType, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mediaType != "text/plain" {
			t.Errorf("HTTP %d with Content-Type %q, want text/plain: %.300s", status, header.Get("Content-Type"), answer)
		}
		if len(bytes.TrimSpace(answer)) == 0 {
			t.Errorf("HTTP %d with no message", status)
		}
		return nil
	}
	if status != http.StatusOK {
		t.Fatalf("HTTP %d, want 200 or 4xx: %.300s", status, answer)
	}
	var out admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(answer, &out); err != nil {
		t.Fatalf("the answer is not JSON: %v: %.300s", err, answer)
	}
	if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
		t.Fatalf("the answer is not an admission.k8s.io/v1 AdmissionReview with a response: %.300s", answer)
	}
	var in admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(body, &in); err != nil || in.Request == nil {
		t.Fatalf("the server answered 200 to a body that is not an AdmissionReview with a request (%v)", err)
	}
	resp := out.Response
	if resp.UID != in.Request.UID {
		t.Errorf("the answer is for uid %q, the request is %q: %.300s", resp.UID, in.Request.UID, answer)
	}
	if !resp.Allowed && (resp.Result == nil || strings.TrimSpace(resp.Result.Message) == "") {
		t.Errorf("a refusal that does not say why: %.300s", answer)
	}
	if len(resp.Patch) > 0 {
		if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
			t.Errorf("a patch of type %v, want JSONPatch", resp.PatchType)
		}
		patch, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatalf("the patch does not decode: %v: %s", err, resp.Patch)
		}
		if _, err := patch.Apply(in.Request.Object.Raw); err != nil {
			t.Errorf("the patch does not apply to the object sent: %v: %s", err, resp.Patch)
		}
	}
	// What the server decoded encodes and decodes to itself.
	first, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var again admissionv1.AdmissionReview
	if err := kjson.UnmarshalCaseSensitivePreserveInts(first, &again); err != nil {
		t.Fatalf("the request encoded as %.300s does not decode: %v", first, err)
	}
	if second, _ := json.Marshal(again); !bytes.Equal(first, second) {
		t.Errorf("the request is not stable: encoded as\n%.300s\nthen as\n%.300s", first, second)
	}
	return resp
}
