package engine

import (
	"context"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/doris-admission/doris-admission/policies/compile"
	"github.com/doris-admission/doris-admission/policies/jsonpatch"
)

// WithRequestBudget gives ctx a full request budget unless it has one; every
// evaluation under ctx shares it, so the mutating and validating policies of
// one webhook call spend from one budget. What every policy of the request
// reads the same (its namespace, the parameter objects) is read once under
// ctx too.
func WithRequestBudget(ctx context.Context) context.Context {
	if memoOf(ctx) != nil {
		return ctx
	}
	return context.WithValue(compile.WithRequest(ctx), memoKey{}, &requestMemo{})
}

// requestMemo keeps what the policies of one request read from the cluster,
// so each is read once. The policies of a request are evaluated one after
// the other, so it needs no lock.
type requestMemo struct {
	namespaceRead bool
	namespace     *corev1.Namespace
	namespaceErr  error
	params        map[paramsKey]paramsRead
	// patches knows which objects come back unchanged from a JSON round
	// trip, as the mutations' objects are checked.
	patches jsonpatch.Memo
}

// paramsKey is one read of parameter objects.
type paramsKey struct {
	kind      schema.GroupVersionKind
	namespace string
	selector  string
}

type paramsRead struct {
	objects []*unstructured.Unstructured
	err     error
}

type memoKey struct{}

// memoOf is ctx's request memo, nil when it has none.
func memoOf(ctx context.Context) *requestMemo {
	m, _ := ctx.Value(memoKey{}).(*requestMemo)
	return m
}

// patchMemo is the request's memo of the JSON patches, nil when ctx has none.
func patchMemo(ctx context.Context) *jsonpatch.Memo {
	if m := memoOf(ctx); m != nil {
		return &m.patches
	}
	return nil
}
