package compile

import (
	"github.com/google/cel-go/checker"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/library"

	dorislib "github.com/doris-admission/doris-admission/policies/library"
)

// costEstimator estimates the worst-case cost of an expression the way
// Kubernetes does for CRD validation rules: lists and strings of object,
// oldObject and params are as large as their schema allows (maxItems,
// maxLength, or what fits in a 3 MiB request).
type costEstimator struct {
	library.CostEstimator
}

// newCostEstimator sizes the variables named in roots by their types.
func newCostEstimator(roots map[string]*apiservercel.DeclType) *costEstimator {
	return &costEstimator{library.CostEstimator{SizeEstimator: schemaSizes(roots)}}
}

func (e *costEstimator) EstimateCallCost(function, overloadID string, target *checker.AstNode, args []checker.AstNode) *checker.CallEstimate {
	if estimate := dorislib.EstimateCallCost(function); estimate != nil {
		return estimate
	}
	return e.CostEstimator.EstimateCallCost(function, overloadID, target, args)
}

// schemaSizes gives the largest size of a value reached from a typed variable.
type schemaSizes map[string]*apiservercel.DeclType

func (s schemaSizes) EstimateSize(element checker.AstNode) *checker.SizeEstimate {
	path := element.Path()
	if len(path) == 0 || s[path[0]] == nil {
		return nil
	}
	node := s[path[0]]
	for _, name := range path[1:] {
		switch name {
		case "@items", "@values":
			node = node.ElemType
		case "@keys":
			node = node.KeyType
		default:
			field, ok := node.Fields[name]
			if !ok {
				return nil
			}
			node = field.Type
		}
		if node == nil {
			return nil
		}
	}
	return &checker.SizeEstimate{Min: 0, Max: uint64(node.MaxElements)}
}

func (schemaSizes) EstimateCallCost(string, string, *checker.AstNode, []checker.AstNode) *checker.CallEstimate {
	return nil
}
