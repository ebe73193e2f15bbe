package main

import (
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/doris-admission/doris-admission/policies"
	"github.com/doris-admission/doris-admission/policies/builtin"
	"github.com/doris-admission/doris-admission/policies/engine"
	"github.com/doris-admission/doris-admission/policies/source"
)

// offlineOptions are the inputs mutate and validate share.
type offlineOptions struct {
	files []string
	// params are files of objects the cluster holds: policy parameters,
	// Namespaces, Services; they are seen, not checked.
	params          []string
	namespaceLabels map[string]string
	output          string
	policySources
}

func (o *offlineOptions) bindFlags(cmd *cobra.Command) {
	cmd.Flags().StringArrayVarP(&o.files, "filename", "f", nil, "manifest file, folder (searched recursively) or - for standard input; repeatable")
	_ = cmd.MarkFlagRequired("filename")
	cmd.Flags().StringArrayVar(&o.params, "params", nil, "file or folder of objects the cluster holds, seen by the policies but not checked: parameter objects (paramRef), Namespaces, Services; repeatable")
	cmd.Flags().StringToStringVar(&o.namespaceLabels, "namespace-labels", nil, "labels of the namespaces the manifests go to (those --params does not define), for namespaceSelector and namespaceObject, e.g. team=shop,env=prod")
	cmd.Flags().StringVarP(&o.output, "output", "o", "text", "text, or json for a machine-readable report")
	o.policySources.bindFlags(cmd)
}

// checkOutput rejects an --output the command does not write.
func (o *offlineOptions) checkOutput() error {
	if o.output != "" && o.output != "text" && o.output != "json" {
		return fmt.Errorf("--output %q: write text or json", o.output)
	}
	return nil
}

// policySources says which policies to load besides the cluster's.
type policySources struct {
	dir      string
	disabled []string
}

func (p *policySources) bindFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&p.dir, "policies", "", "file or folder of MutatingPolicy and ValidatingPolicy objects to enforce with the built-in policies")
	cmd.Flags().StringSliceVar(&p.disabled, "disable-builtin", nil, "built-in policies to turn off, by name (doris-admission policy list names them)")
}

// load returns the built-in policies (settings in namespace) but the
// disabled ones, and those in dir, if given.
func (p policySources) load(namespace string, stdin io.Reader) ([]policies.Policy, error) {
	builtins, err := builtin.Builtin(namespace, p.disabled)
	if p.dir == "" {
		return builtins, err
	}
	files, filesErr := policies.ReadPolicies(p.dir, stdin)
	return append(builtins, files...), errors.Join(err, filesErr)
}

// offlineRun is an engine loaded with the policies, and the documents to run
// it on. failed records that something could not be read or evaluated; it
// has been reported on stderr and the command must exit non-zero.
type offlineRun struct {
	engine *engine.Engine
	docs   []policies.Document
	// cluster is what the cluster would hold: the documents, the --params
	// objects and what was generated so far.
	cluster source.Objects
	stderr  io.Writer
	failed  bool
}

// newOfflineRun reads the policies and the documents, reporting on stderr
// every one it cannot read and keeping the rest.
func newOfflineRun(opts offlineOptions, stdin io.Reader, stderr io.Writer) (*offlineRun, error) {
	if err := opts.checkOutput(); err != nil {
		return nil, err
	}
	run := &offlineRun{stderr: stderr}
	loadedPolicies, err := opts.load(builtin.DefaultNamespace, stdin)
	run.report(err)
	for _, file := range opts.files {
		docs, err := policies.ReadDocuments(file, stdin)
		run.report(err)
		run.docs = append(run.docs, docs...)
	}
	if len(run.docs) == 0 && run.failed {
		return nil, errors.New("no document could be read")
	}
	var params []policies.Document
	for _, file := range opts.params {
		docs, err := policies.ReadDocuments(file, stdin)
		run.report(err)
		params = append(params, docs...)
	}
	cluster := append(slices.Clone(params), run.docs...)
	cluster = append(cluster, source.NamespacesFor(cluster, opts.namespaceLabels)...)
	run.engine = engine.NewEngine(source.Offline(cluster))
	run.cluster = source.OfflineObjects(cluster)
	for _, doc := range params {
		run.engine.Admitted(doc.Object, 0) // its node ports are taken
	}
	warnProblems(stderr, run.engine.Load(loadedPolicies))
	return run, nil
}

// warnProblems prints a warning for each problem of the loaded policies:
// they are enforced, and each failing expression fails per failurePolicy.
func warnProblems(stderr io.Writer, loaded []engine.Loaded) {
	for _, l := range loaded {
		for _, problem := range l.Problems {
			fmt.Fprintf(stderr, "Warning: %s %s (%s): %v\n", l.Kind(), l.Name(), l.Origin, problem)
		}
	}
}

// report prints each of err's joined errors on its own line and marks the run failed.
func (r *offlineRun) report(err error) {
	if err == nil {
		return
	}
	r.failed = true
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			r.report(e)
		}
		return
	}
	fmt.Fprintln(r.stderr, "Error:", err)
}

// request is the CREATE request for doc, or nil (reported) when its kind is unknown.
func (r *offlineRun) request(doc policies.Document) *engine.Request {
	req, err := r.engine.RequestForObject(doc.Object)
	if err != nil {
		r.report(&policies.DocumentError{Origin: doc.Origin, Index: doc.Index, Err: err})
		return nil
	}
	return req
}

// describe names an object the way the output lines do: Kind namespace/name.
func describe(obj *unstructured.Unstructured, req *engine.Request) string {
	if req.GetNamespace() == "" {
		return obj.GetKind() + " " + obj.GetName()
	}
	return obj.GetKind() + " " + req.GetNamespace() + "/" + obj.GetName()
}

// errFailed makes the command exit 1 after everything was already reported.
var errFailed = errors.New("the command failed; see the messages above")
