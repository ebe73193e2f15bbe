// Package inventory keeps indexes of cluster state that policies read
// through CEL and that native admission policies cannot see, such as which
// Service holds a node port. Lookups are O(1); memory grows with the
// indexed entries only.
package inventory
