package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// benchmarkObject is the first document of kind in file, in namespace bench.
func benchmarkObject(b *testing.B, file, kind string) *unstructured.Unstructured {
	b.Helper()
	docs, err := policies.ReadDocuments(file, nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, doc := range docs {
		if doc.Object.GetKind() == kind {
			doc.Object.SetNamespace("bench")
			return doc.Object
		}
	}
	b.Fatalf("%s has no %s", file, kind)
	return nil
}

// benchmarkReview is an AdmissionReview of a CREATE of obj.
func benchmarkReview(b *testing.B, obj *unstructured.Unstructured, resource metav1.GroupVersionResource) []byte {
	b.Helper()
	raw, err := json.Marshal(obj.Object)
	if err != nil {
		b.Fatal(err)
	}
	gvk := obj.GroupVersionKind()
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "uid-1", Kind: metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Resource: resource, Name: obj.GetName(), Namespace: obj.GetNamespace(), Operation: admissionv1.Create,
			Object: runtime.RawExtension{Raw: raw},
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

// mutatedOnce is obj as the policies of eng leave it: what a second apply
// of the same manifest sends.
func mutatedOnce(b *testing.B, eng *engine.Engine, obj *unstructured.Unstructured) *unstructured.Unstructured {
	b.Helper()
	req, err := eng.RequestForObject(obj)
	if err != nil {
		b.Fatal(err)
	}
	res, err := eng.Mutate(context.Background(), req)
	if err != nil || res.Object == nil {
		b.Fatalf("the built-in policies did not change the %s: %v", obj.GetKind(), err)
	}
	return res.Object
}

// BenchmarkServeHTTP answers AdmissionReviews through the handlers NewServer
// registers, with the built-in policies on an offline engine: the server's
// work per request without TLS and the network. The null-* cases are the
// baseline: a controller-runtime webhook whose handler allows without
// looking at the object. Compare commits with benchstat (see BENCHMARKS.md).
func BenchmarkServeHTTP(b *testing.B) {
	builtins, err := builtin.Builtin(builtin.DefaultNamespace, nil)
	if err != nil {
		b.Fatal(err)
	}
	eng := engine.NewEngine(source.Offline(nil))
	eng.Load(builtins)
	mutate := answer(&webhook.Admission{Handler: &Handler{Name: "mutate", Decide: mutator{eng}.decide, KindOf: eng.KindOf}})
	validate := answer(&webhook.Admission{Handler: &Handler{Name: "validate", Decide: validator{eng}.decide, KindOf: eng.KindOf}})
	statefulSets := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "statefulsets"}
	fe := benchmarkObject(b, "../deploy/examples/seed-fe-plain.yaml", "StatefulSet")
	sts := benchmarkReview(b, fe, statefulSets)
	stsAgain := benchmarkReview(b, mutatedOnce(b, eng, fe), statefulSets)
	svc := benchmarkReview(b, benchmarkObject(b, "../deploy/examples/nodeport-plan.yaml", "Service"), metav1.GroupVersionResource{Version: "v1", Resource: "services"})
	cm := []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"uid-1","kind":{"group":"","version":"v1","kind":"ConfigMap"},"resource":{"group":"","version":"v1","resource":"configmaps"},"name":"c","namespace":"bench","operation":"CREATE","userInfo":{},"object":{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","namespace":"bench"},"data":{"a":"b"}}}}`)
	null := &webhook.Admission{Handler: admission.HandlerFunc(func(context.Context, admission.Request) admission.Response { return admission.Allowed("") })}
	for _, tt := range []struct {
		name    string
		handler http.Handler
		body    []byte
	}{
		{"statefulset-mutate", mutate, sts},
		{"statefulset-mutate-again", mutate, stsAgain},
		{"service-mutate", mutate, svc},
		{"configmap-mutate", mutate, cm},
		{"configmap-validate", validate, cm},
		{"null-configmap", null, cm},
		{"null-statefulset", null, sts},
	} {
		b.Run(tt.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(tt.body))
				req.Header.Set("Content-Type", "application/json")
				tt.handler.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"allowed":true`)) {
					b.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
