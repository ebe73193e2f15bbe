// Package audit scans the objects that already exist with the validating and
// mutating policies and writes what it finds as PolicyReports
// (wgpolicyk8s.io/v1alpha2, the format dashboards read), one per namespace,
// and ClusterPolicyReports for cluster-scoped objects.
package audit

import (
	"cmp"
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/doris-admission/doris-admission/policies/engine"
)

// The report kinds and the name of the reports this server owns.
var (
	PolicyReportKind        = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "PolicyReport"}
	ClusterPolicyReportKind = schema.GroupVersionKind{Group: "wgpolicyk8s.io", Version: "v1alpha2", Kind: "ClusterPolicyReport"}
)

const (
	// ReportName names the report in each namespace, and the cluster report.
	ReportName = "doris-admission"
	// Source is the results' source, as dashboards group them.
	Source = "doris-admission"
)

// Resource is the object a result is about.
type Resource struct {
	APIVersion string    `json:"apiVersion"`
	Kind       string    `json:"kind"`
	Namespace  string    `json:"namespace,omitempty"`
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
}

// Timestamp is the wgpolicyk8s.io result time.
type Timestamp struct {
	Seconds int64 `json:"seconds"`
	Nanos   int32 `json:"nanos"`
}

// Result is one policy's verdict on one object, in the report format.
type Result struct {
	Source     string            `json:"source"`
	Policy     string            `json:"policy"`
	Rule       string            `json:"rule,omitempty"`
	Result     string            `json:"result"`
	Message    string            `json:"message,omitempty"`
	Scored     bool              `json:"scored"`
	Resources  []Resource        `json:"resources"`
	Properties map[string]string `json:"properties,omitempty"`
	Timestamp  Timestamp         `json:"timestamp"`
}

// Summary counts the results by verdict.
type Summary struct {
	Pass  int `json:"pass"`
	Fail  int `json:"fail"`
	Warn  int `json:"warn"`
	Error int `json:"error"`
	Skip  int `json:"skip"`
}

// reportContent is what a report holds besides its metadata.
type reportContent struct {
	Summary Summary  `json:"summary"`
	Results []Result `json:"results"`
}

// objectResults are an object's results, as the scan last found them.
type objectResults struct {
	resource Resource
	results  []Result
}

// newResults turns the engine's verdicts on obj into report results. A
// result that is the same as before keeps its time, so an unchanged object
// does not rewrite its report.
func newResults(obj *unstructured.Unstructured, found []engine.AuditResult, previous []Result, now time.Time) objectResults {
	r := Resource{APIVersion: obj.GetAPIVersion(), Kind: obj.GetKind(), Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID()}
	out := objectResults{resource: r}
	for _, f := range found {
		result := Result{
			Source: Source, Policy: f.Policy, Rule: f.Rule, Result: f.Result, Message: f.Message, Scored: true,
			Resources:  []Resource{r},
			Properties: map[string]string{"kind": f.Kind, "origin": f.Origin},
			Timestamp:  Timestamp{Seconds: now.Unix(), Nanos: int32(now.Nanosecond())},
		}
		if i := slices.IndexFunc(previous, result.same); i >= 0 {
			result.Timestamp = previous[i].Timestamp
		}
		out.results = append(out.results, result)
	}
	return out
}

// same tells whether two results say the same thing of the same object.
func (r Result) same(other Result) bool {
	return r.Policy == other.Policy && r.Rule == other.Rule && r.Result == other.Result && r.Message == other.Message &&
		slices.Equal(r.Resources, other.Resources)
}

// report is the content of one PolicyReport (namespace set) or of the
// ClusterPolicyReport (namespace ""), with results in a stable order.
func report(namespace string, objects []objectResults) *unstructured.Unstructured {
	var results []Result
	var summary Summary
	for _, o := range objects {
		for _, r := range o.results {
			results = append(results, r)
			switch r.Result {
			case engine.ResultPass:
				summary.Pass++
			case engine.ResultFail:
				summary.Fail++
			case engine.ResultWarn:
				summary.Warn++
			case engine.ResultError:
				summary.Error++
			}
		}
	}
	slices.SortFunc(results, func(a, b Result) int {
		ra, rb := a.Resources[0], b.Resources[0]
		return cmp.Or(cmp.Compare(ra.Kind, rb.Kind), cmp.Compare(ra.Name, rb.Name), cmp.Compare(a.Policy, b.Policy), cmp.Compare(a.Rule, b.Rule), cmp.Compare(a.Message, b.Message))
	})
	if results == nil {
		results = []Result{}
	}
	content, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&reportContent{Summary: summary, Results: results})
	if err != nil {
		panic("a report does not convert: " + err.Error()) // only plain fields: cannot happen
	}
	obj := &unstructured.Unstructured{Object: content}
	gvk := PolicyReportKind
	if namespace == "" {
		gvk = ClusterPolicyReportKind
	}
	obj.SetGroupVersionKind(gvk)
	obj.SetName(ReportName)
	obj.SetNamespace(namespace)
	obj.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "doris-admission"})
	return obj
}
