package lint

import (
	"fmt"
	"io"
	"math"
	"strconv"

	celconfig "k8s.io/apiserver/pkg/apis/cel"

	"github.com/doris-admission/doris-admission/policies/compile"
)

// WriteCosts writes each policy's costliest expression against the limit.
func WriteCosts(out io.Writer, costs []Cost) {
	for _, c := range costs {
		verdict := "within the limit"
		switch {
		case c.Unbounded():
			verdict = "no bound known; see the warnings"
		case c.Max > celconfig.PerCallLimit:
			verdict = "over the limit on the largest objects; such an object fails the expression per failurePolicy"
		}
		fmt.Fprintf(out, "cost: %s: highest estimate %s (%s, on the largest %s its schema allows), limit %s per expression: %s\n",
			c.Policy, ReadableCost(c.Max), c.Field, c.Kind, compile.FormatCost(celconfig.PerCallLimit), verdict)
	}
}

// ReadableCost writes a cost with thousands separators, large estimates in
// powers of ten, and "unbounded" when there is no bound.
func ReadableCost(cost uint64) string {
	if cost != math.MaxUint64 && cost >= 1e12 {
		return "about 10^" + strconv.Itoa(int(math.Log10(float64(cost))))
	}
	return compile.FormatCost(cost)
}
